/**
 * MONAI's `SlidingWindowInferer` / `sliding_window_inference` (monai/inferers/utils.py) over a Predictor.
 *
 * The image is cut into roi-sized windows placed as MONAI places them (`_get_scan_interval`,
 * `dense_patch_slices`), windows are stacked `swBatchSize` at a time into one predictor call, and the predictions
 * are blended with an importance map (`compute_importance_map`, constant or gaussian) and divided by the summed
 * weights. An image smaller than the roi along an axis is padded symmetrically with `cval` first and the output is
 * cropped back, as MONAI does.
 *
 * Not ported: outputs whose spatial size differs from the window (MONAI's zoomed outputs), dict/tuple outputs,
 * `buffer_steps`, `process_fn`, `with_coord`, padding modes other than constant.
 */
import { InfererError } from "./errors.js";
import { checkImageTensor, formatShape, numel } from "./tensor.js";
import type { Float32Tensor, Inferer, Predictor } from "./types.js";

export type BlendMode = "constant" | "gaussian";

export interface SlidingWindowOptions {
  /**
   * Window size per spatial axis, or one number for all axes. A value <= 0 (e.g. -1) means "the image size along
   * that axis" (MONAI's `fall_back_tuple`). A value larger than the image pads the image up to it.
   */
  roiSize: number | readonly number[];
  /** Windows per predictor call (MONAI `sw_batch_size`). Default 1. */
  swBatchSize?: number;
  /** Fraction of the roi that neighbouring windows share, per axis or one for all, in [0, 1). Default 0.25. */
  overlap?: number | readonly number[];
  /** How overlapping predictions are blended. Default "constant". */
  mode?: BlendMode;
  /** Gaussian sigma as a fraction of the roi size, per axis or one for all. Default 0.125. */
  sigmaScale?: number | readonly number[];
  /** Only constant padding is supported (MONAI's default). */
  paddingMode?: "constant";
  /** Padding value when the image is smaller than the roi. Default 0. */
  cval?: number;
  /**
   * Accumulator precision. "float64" (default) blends exactly enough that an identity model gives back its input
   * bit for bit, at 8 bytes per output value plus 8 per voxel for the weights; "float32" is MONAI's (the input
   * dtype) and takes half that.
   */
  precision?: "float64" | "float32";
}

export interface InferOptions {
  /** Checked before each predictor call; an aborted signal rejects with its reason. */
  signal?: AbortSignal;
  /** Called after each predictor call with windows done and windows in all (over the whole batch). */
  onProgress?: (done: number, total: number) => void;
}

/** One value per spatial axis: a number is repeated, an array must have the right length. */
function perAxis(value: number | readonly number[], dims: number, name: string): number[] {
  if (typeof value === "number") {
    return new Array<number>(dims).fill(value);
  }
  if (value.length !== dims) {
    throw new InfererError(`${name} [${value.join(", ")}] has ${value.length} values for ${dims} spatial axes`, {
      [name]: value,
    });
  }
  return [...value];
}

/** MONAI `fall_back_tuple(roi_size, image_size)`: non-positive entries take the image size. */
export function resolveRoiSize(roiSize: number | readonly number[], imageSize: readonly number[]): number[] {
  const roi = perAxis(roiSize, imageSize.length, "roiSize");
  return roi.map((r, i) => (r > 0 ? r : (imageSize[i] as number)));
}

/**
 * MONAI `_get_scan_interval`: the step between window starts per axis. `int(roi * (1 - overlap))`, at least 1;
 * when the roi covers the whole axis the step is the roi (a single window).
 */
export function scanInterval(
  imageSize: readonly number[],
  roiSize: readonly number[],
  overlap: readonly number[],
): number[] {
  return imageSize.map((size, i) => {
    const roi = roiSize[i] as number;
    if (roi === size) {
      return roi;
    }
    const interval = Math.trunc(roi * (1 - (overlap[i] as number)));
    return interval > 0 ? interval : 1;
  });
}

/**
 * MONAI `dense_patch_slices`, per axis: window starts along each axis. Starts step by `interval` until a window
 * reaches the end; the last one is moved back so that it ends exactly at the image end.
 */
export function windowStartsPerAxis(
  imageSize: readonly number[],
  roiSize: readonly number[],
  interval: readonly number[],
): number[][] {
  return imageSize.map((size, i) => {
    const patch = Math.min(size, (roiSize[i] as number) || size); // get_valid_patch_size
    const step = interval[i] as number;
    let count = 1;
    if (step !== 0) {
      const num = Math.ceil(size / step);
      for (let d = 0; d < num; d++) {
        if (d * step + patch >= size) {
          count = d + 1;
          break;
        }
      }
    }
    const starts: number[] = [];
    for (let idx = 0; idx < count; idx++) {
      const start = idx * step;
      starts.push(start - Math.max(start + patch - size, 0));
    }
    return starts;
  });
}

/** All window starts, first axis slowest (numpy meshgrid "ij" flattened), as MONAI enumerates them. */
export function denseWindowStarts(
  imageSize: readonly number[],
  roiSize: readonly number[],
  interval: readonly number[],
): number[][] {
  let out: number[][] = [[]];
  for (const axis of windowStartsPerAxis(imageSize, roiSize, interval)) {
    const next: number[][] = [];
    for (const prefix of out) {
      for (const s of axis) {
        next.push([...prefix, s]);
      }
    }
    out = next;
  }
  return out;
}

/**
 * MONAI `compute_importance_map` for a window of `patchSize` (C order). Constant: ones. Gaussian: the outer
 * product of 1D gaussians exp(-x^2 / (2 sigma^2)) with x = -(p-1)/2 .. (p-1)/2 and sigma = sigmaScale * p per
 * axis, in float32 as torch computes it; then every weight is clamped to at least max(min weight, 1e-3), so
 * window corners still count.
 */
export function importanceMap(
  patchSize: readonly number[],
  mode: BlendMode = "constant",
  sigmaScale: number | readonly number[] = 0.125,
): Float32Array {
  const size = numel(patchSize);
  if (mode === "constant") {
    return new Float32Array(size).fill(1);
  }
  if (mode !== "gaussian") {
    throw new InfererError(`unsupported blend mode ${JSON.stringify(mode)}; use "constant" or "gaussian"`);
  }
  const scales = perAxis(sigmaScale, patchSize.length, "sigmaScale");
  let map = new Float32Array([1]);
  let mapSize = 1;
  patchSize.forEach((p, i) => {
    const sigma = p * (scales[i] as number);
    const g = new Float32Array(p);
    for (let k = 0; k < p; k++) {
      const x = -(p - 1) / 2 + k;
      g[k] = Math.exp((x * x) / (-2 * sigma * sigma));
    }
    if (i === 0) {
      map = g;
      mapSize = p;
      return;
    }
    const next = new Float32Array(mapSize * p);
    for (let a = 0; a < mapSize; a++) {
      const v = map[a] as number;
      for (let k = 0; k < p; k++) {
        next[a * p + k] = v * (g[k] as number);
      }
    }
    map = next;
    mapSize *= p;
  });
  let min = Number.POSITIVE_INFINITY;
  for (const v of map) {
    min = Math.min(v, min);
  }
  const floor = Math.fround(Math.max(min, 1e-3));
  for (let i = 0; i < map.length; i++) {
    if ((map[i] as number) < floor) {
      map[i] = floor;
    }
  }
  return map;
}

/** MONAI's `SlidingWindowInferer`. */
export class SlidingWindowInferer implements Inferer {
  readonly roiSize: number | readonly number[];
  readonly swBatchSize: number;
  readonly overlap: number | readonly number[];
  readonly mode: BlendMode;
  readonly sigmaScale: number | readonly number[];
  readonly cval: number;
  readonly precision: "float64" | "float32";
  /** Predictor calls made by the last `infer` (for tests and logs). */
  lastPredictorCalls = 0;
  /** Windows per image in the last `infer`. */
  lastWindowCount = 0;
  #weightsCache: { key: string; map: Float32Array } | undefined;

  constructor(options: SlidingWindowOptions) {
    this.roiSize = options.roiSize;
    this.swBatchSize = options.swBatchSize ?? 1;
    this.overlap = options.overlap ?? 0.25;
    this.mode = options.mode ?? "constant";
    this.sigmaScale = options.sigmaScale ?? 0.125;
    this.cval = options.cval ?? 0;
    this.precision = options.precision ?? "float64";
    const roi = typeof this.roiSize === "number" ? [this.roiSize] : this.roiSize;
    if (roi.length === 0 || !roi.every((r) => Number.isInteger(r))) {
      throw new InfererError(`roiSize must be integers, got ${JSON.stringify(this.roiSize)}`);
    }
    if (!Number.isInteger(this.swBatchSize) || this.swBatchSize < 1) {
      throw new InfererError(`swBatchSize must be a positive integer, got ${this.swBatchSize}`);
    }
    const overlap = typeof this.overlap === "number" ? [this.overlap] : this.overlap;
    if (!overlap.every((o) => o >= 0 && o < 1)) {
      throw new InfererError(`overlap must be >= 0 and < 1, got ${JSON.stringify(this.overlap)}`);
    }
    if (this.mode !== "constant" && this.mode !== "gaussian") {
      throw new InfererError(`unsupported blend mode ${JSON.stringify(this.mode)}; use "constant" or "gaussian"`);
    }
    const sigma = typeof this.sigmaScale === "number" ? [this.sigmaScale] : this.sigmaScale;
    if (!sigma.every((s) => s > 0 && Number.isFinite(s))) {
      throw new InfererError(`sigmaScale must be positive, got ${JSON.stringify(this.sigmaScale)}`);
    }
    if ((options.paddingMode ?? "constant") !== "constant") {
      throw new InfererError(`only constant padding is supported, got ${JSON.stringify(options.paddingMode)}`);
    }
    if (!Number.isFinite(this.cval)) {
      throw new InfererError(`cval must be a finite number, got ${this.cval}`);
    }
    if (this.precision !== "float64" && this.precision !== "float32") {
      throw new InfererError(`precision must be "float64" or "float32", got ${JSON.stringify(this.precision)}`);
    }
  }

  async infer(input: Float32Tensor, predictor: Predictor, options: InferOptions = {}): Promise<Float32Tensor> {
    checkImageTensor(input, "input");
    const [batch, channels, ...imageSizeIn] = input.shape as [number, number, ...number[]];
    const dims = imageSizeIn.length;
    const roi = resolveRoiSize(this.roiSize, imageSizeIn);
    const overlap = perAxis(this.overlap, dims, "overlap");

    // Pad the image up to the roi where it is smaller: floor(diff / 2) before, the rest after (MONAI).
    const imageSize = imageSizeIn.map((s, i) => Math.max(s, roi[i] as number));
    const padBefore = imageSize.map((s, i) => Math.floor((s - (imageSizeIn[i] as number)) / 2));
    const padded = imageSize.some((s, i) => s !== imageSizeIn[i]);
    const image = padded ? padImage(input, imageSize, padBefore, this.cval) : input.data;

    const interval = scanInterval(imageSize, roi, overlap);
    const starts = denseWindowStarts(imageSize, roi, interval);
    const weights = this.#weights(roi);
    const numWin = starts.length;
    const total = numWin * batch;
    this.lastWindowCount = numWin;
    this.lastPredictorCalls = 0;

    // Work in 3D: a 2D image is [1, H, W] with one window along the extra axis.
    const img3 = to3(imageSize);
    const roi3 = to3(roi);
    const starts3 = starts.map(to3Starts);
    const [, iy, ix] = img3;
    const rx = roi3[2];
    const imgVol = numel(imageSize);
    const roiVol = numel(roi);
    const Acc = this.precision === "float64" ? Float64Array : Float32Array;

    const geo: Geometry = { iy, ix, rz: roi3[0], ry: roi3[1], rx };
    const blend = this.mode === "constant" ? null : weights;

    // Sum of weights per voxel, shared by every batch item and channel.
    const count = new Acc(imgVol);
    for (const s of starts3) {
      addBlock(count, 0, weights, 0, null, s, geo);
    }

    let acc: Float64Array | Float32Array | undefined;
    let outChannels = 0;
    const windowShape = [channels, ...roi];
    for (let first = 0; first < total; first += this.swBatchSize) {
      options.signal?.throwIfAborted();
      const k = Math.min(this.swBatchSize, total - first);
      const win = new Float32Array(k * channels * roiVol);
      for (let j = 0; j < k; j++) {
        const b = Math.floor((first + j) / numWin);
        const s = starts3[(first + j) % numWin] as [number, number, number];
        for (let c = 0; c < channels; c++) {
          copyBlock(win, (j * channels + c) * roiVol, image, (b * channels + c) * imgVol, s, geo);
        }
      }
      const out = await predictor({ data: win, shape: [k, ...windowShape] });
      this.lastPredictorCalls++;
      checkWindowOutput(out, k, roi);
      const oc = out.shape[1] as number;
      if (acc === undefined) {
        outChannels = oc;
        acc = new Acc(batch * outChannels * imgVol);
      } else if (oc !== outChannels) {
        throw new InfererError(`predictor returned ${oc} channels after ${outChannels} for earlier windows`);
      }
      for (let j = 0; j < k; j++) {
        const b = Math.floor((first + j) / numWin);
        const s = starts3[(first + j) % numWin] as [number, number, number];
        for (let c = 0; c < outChannels; c++) {
          addBlock(acc, (b * outChannels + c) * imgVol, out.data, (j * outChannels + c) * roiVol, blend, s, geo);
        }
      }
      options.onProgress?.(first + k, total);
    }
    if (acc === undefined) {
      throw new InfererError("no windows to run"); // unreachable: there is always at least one window
    }

    // Divide by the weights and crop the padding off.
    const outShape = [batch, outChannels, ...imageSizeIn];
    if (!padded && acc instanceof Float32Array) {
      divideInPlace(acc, count, batch * outChannels, imgVol);
      return { data: acc, shape: outShape };
    }
    const result = new Float32Array(numel(outShape));
    divideAndCrop(result, acc, count, batch * outChannels, to3(imageSizeIn), to3Starts(padBefore), iy, ix);
    return { data: result, shape: outShape };
  }

  #weights(roi: readonly number[]): Float32Array {
    const key = roi.join(",");
    if (this.#weightsCache?.key !== key) {
      this.#weightsCache = { key, map: importanceMap(roi, this.mode, this.sigmaScale) };
    }
    return this.#weightsCache.map;
  }
}

function divideInPlace(acc: Float32Array, count: Float64Array | Float32Array, planes: number, vol: number): void {
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * vol;
    for (let i = 0; i < vol; i++) {
      acc[base + i] = (acc[base + i] as number) / (count[i] as number);
    }
  }
}

/** result[plane, z, y, x] = acc[plane, z + pad_z, y + pad_y, x + pad_x] / count[same voxel]. */
function divideAndCrop(
  result: Float32Array,
  acc: Float64Array | Float32Array,
  count: Float64Array | Float32Array,
  planes: number,
  out: readonly [number, number, number],
  pad: readonly [number, number, number],
  iy: number,
  ix: number,
): void {
  const [oz, oy, ox] = out;
  const outVol = oz * oy * ox;
  const imgVol = count.length;
  for (let plane = 0; plane < planes; plane++) {
    for (let z = 0; z < oz; z++) {
      for (let y = 0; y < oy; y++) {
        const src = ((z + pad[0]) * iy + y + pad[1]) * ix + pad[2];
        const dst = plane * outVol + (z * oy + y) * ox;
        const srcAcc = plane * imgVol + src;
        for (let x = 0; x < ox; x++) {
          result[dst + x] = (acc[srcAcc + x] as number) / (count[src + x] as number);
        }
      }
    }
  }
}

function to3(size: readonly number[]): [number, number, number] {
  return size.length === 2 ? [1, size[0] as number, size[1] as number] : (size.slice(0, 3) as [number, number, number]);
}
function to3Starts(s: readonly number[]): [number, number, number] {
  return s.length === 2 ? [0, s[0] as number, s[1] as number] : (s.slice(0, 3) as [number, number, number]);
}

/** Image rows and columns (in 3D form) and the window size. */
interface Geometry {
  iy: number;
  ix: number;
  rz: number;
  ry: number;
  rx: number;
}

/** Copies the window at `s` of one image channel (at `imgBase`) into one window channel (at `winBase`). */
function copyBlock(
  win: Float32Array,
  winBase: number,
  image: Float32Array,
  imgBase: number,
  s: readonly [number, number, number],
  g: Geometry,
): void {
  const { iy, ix, rz, ry, rx } = g;
  for (let z = 0; z < rz; z++) {
    for (let y = 0; y < ry; y++) {
      const src = imgBase + ((s[0] + z) * iy + s[1] + y) * ix + s[2];
      win.set(image.subarray(src, src + rx), winBase + (z * ry + y) * rx);
    }
  }
}

/**
 * Adds a window-shaped block (`block` at `blockBase`, times `weights` when given) into the image-shaped `dst`
 * at `dstBase`, at window position `s`.
 */
function addBlock(
  dst: Float64Array | Float32Array,
  dstBase: number,
  block: Float32Array,
  blockBase: number,
  weights: Float32Array | null,
  s: readonly [number, number, number],
  g: Geometry,
): void {
  const { iy, ix, rz, ry, rx } = g;
  for (let z = 0; z < rz; z++) {
    for (let y = 0; y < ry; y++) {
      const o = dstBase + ((s[0] + z) * iy + s[1] + y) * ix + s[2];
      const w = (z * ry + y) * rx;
      const p = blockBase + w;
      if (weights === null) {
        for (let x = 0; x < rx; x++) {
          dst[o + x] = (dst[o + x] as number) + (block[p + x] as number);
        }
      } else {
        for (let x = 0; x < rx; x++) {
          dst[o + x] = (dst[o + x] as number) + (block[p + x] as number) * (weights[w + x] as number);
        }
      }
    }
  }
}

function padImage(
  input: Float32Tensor,
  imageSize: readonly number[],
  padBefore: readonly number[],
  cval: number,
): Float32Array {
  const [batch, channels, ...sizeIn] = input.shape as [number, number, ...number[]];
  const [, iy, ix] = to3(imageSize);
  const [sz, sy, sx] = to3(sizeIn);
  const p = to3Starts(padBefore);
  const imgVol = numel(imageSize);
  const inVol = numel(sizeIn);
  const out = new Float32Array(batch * channels * imgVol);
  if (cval !== 0) {
    out.fill(cval);
  }
  for (let bc = 0; bc < batch * channels; bc++) {
    for (let z = 0; z < sz; z++) {
      for (let y = 0; y < sy; y++) {
        const src = bc * inVol + (z * sy + y) * sx;
        const dst = bc * imgVol + ((z + p[0]) * iy + y + p[1]) * ix + p[2];
        out.set(input.data.subarray(src, src + sx), dst);
      }
    }
  }
  return out;
}

function checkWindowOutput(out: Float32Tensor, k: number, roi: readonly number[]): void {
  checkImageTensor(out, "predictor output");
  const spatial = out.shape.slice(2);
  if (out.shape[0] !== k) {
    throw new InfererError(`predictor returned batch ${out.shape[0]} for ${k} stacked windows`, {
      outputShape: out.shape,
    });
  }
  if (spatial.length !== roi.length || spatial.some((d, i) => d !== roi[i])) {
    throw new InfererError(
      `predictor returned spatial size ${formatShape(spatial)} for a window of ${formatShape(roi)}; ` +
        "only outputs with the window's spatial size are supported (no zoomed outputs)",
      { outputShape: out.shape, roiSize: [...roi] },
    );
  }
}
