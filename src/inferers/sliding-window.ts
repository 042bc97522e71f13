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
   * bit for bit, at 8 bytes per output value (plus 8 per voxel for the summed weights with gaussian blending;
   * constant blending keeps per-axis window counts only); "float32" is MONAI's (the input dtype) and takes half
   * that.
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

    // Sum of weights per voxel, shared by every batch item and channel. Constant blending: the windows are the
    // Cartesian product of per-axis starts, so a voxel's count is the product of how many windows cover it along
    // each axis (small integers, exact in any precision): three short arrays instead of a volume. Gaussian: the
    // clamped importance map is not separable, so its weights are summed window by window.
    const count: Counts =
      this.mode === "constant"
        ? { axes: axisCounts(img3, roi3, to3Lists(windowStartsPerAxis(imageSize, roi, interval))) }
        : { volume: new Acc(imgVol) };
    if (count.volume) {
      for (const s of starts3) {
        addWeightedBlock(count.volume, 0, null, 0, weights, s, geo);
      }
    }
    const blend = this.mode === "constant" ? null : weights;

    let acc: Float64Array | Float32Array | undefined;
    let outChannels = 0;
    const windowShape = [channels, ...roi];
    // One window buffer for all calls: the predictor is done with its input once its promise resolves (the
    // Predictor contract), and every call overwrites the whole of it (windows lie inside the padded image).
    const windows = new Float32Array(Math.min(this.swBatchSize, total) * channels * roiVol);
    for (let first = 0; first < total; first += this.swBatchSize) {
      options.signal?.throwIfAborted();
      const k = Math.min(this.swBatchSize, total - first);
      const win = k * channels * roiVol === windows.length ? windows : windows.subarray(0, k * channels * roiVol);
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
          const dstBase = (b * outChannels + c) * imgVol;
          const srcBase = (j * outChannels + c) * roiVol;
          if (blend === null) {
            addBlock(acc, dstBase, out.data, srcBase, s, geo);
          } else {
            addWeightedBlock(acc, dstBase, out.data, srcBase, blend, s, geo);
          }
        }
      }
      options.onProgress?.(first + k, total);
    }
    if (acc === undefined) {
      throw new InfererError("no windows to run"); // unreachable: there is always at least one window
    }

    // Divide by the weights and crop the padding off; a float32 accumulator without padding is divided in place.
    const outShape = [batch, outChannels, ...imageSizeIn];
    const inPlace = !padded && acc instanceof Float32Array;
    const result = inPlace ? acc : new Float32Array(numel(outShape));
    divideAndCrop(result, acc, count, batch * outChannels, img3, to3(imageSizeIn), to3Starts(padBefore));
    return { data: result as Float32Array, shape: outShape };
  }

  #weights(roi: readonly number[]): Float32Array {
    const key = roi.join(",");
    if (this.#weightsCache?.key !== key) {
      this.#weightsCache = { key, map: importanceMap(roi, this.mode, this.sigmaScale) };
    }
    return this.#weightsCache.map;
  }
}

/** The summed blending weights: per-axis window counts (constant mode) or a volume (gaussian). */
type Counts =
  | { axes: [Float64Array, Float64Array, Float64Array]; volume?: undefined }
  | { axes?: undefined; volume: Float64Array | Float32Array };

/** Per axis (3D form), how many windows cover each index, from the window starts along each axis. */
function axisCounts(
  img: readonly [number, number, number],
  roi: readonly [number, number, number],
  starts: readonly [number[], number[], number[]],
): [Float64Array, Float64Array, Float64Array] {
  const out = img.map((n) => new Float64Array(n)) as [Float64Array, Float64Array, Float64Array];
  for (let axis = 0; axis < 3; axis++) {
    const counts = out[axis] as Float64Array;
    const r = roi[axis] as number;
    for (const start of starts[axis] as number[]) {
      for (let i = start; i < start + r; i++) {
        counts[i] = (counts[i] as number) + 1;
      }
    }
  }
  return out;
}

/**
 * result[plane, z, y, x] = acc[plane, z + pad_z, y + pad_y, x + pad_x] / count[same voxel], where result may be
 * acc itself (no padding: same indices, each value read before it is written).
 */
function divideAndCrop(
  result: Float32Array | Float64Array,
  acc: Float64Array | Float32Array,
  count: Counts,
  planes: number,
  img: readonly [number, number, number],
  out: readonly [number, number, number],
  pad: readonly [number, number, number],
): void {
  const [, iy, ix] = img;
  const [oz, oy, ox] = out;
  const outVol = oz * oy * ox;
  const imgVol = img[0] * iy * ix;
  for (let plane = 0; plane < planes; plane++) {
    for (let z = 0; z < oz; z++) {
      for (let y = 0; y < oy; y++) {
        const src = ((z + pad[0]) * iy + y + pad[1]) * ix + pad[2];
        const dst = plane * outVol + (z * oy + y) * ox;
        const srcAcc = plane * imgVol + src;
        if (count.axes) {
          const [cz, cy, cx] = count.axes;
          // The product of per-axis counts is the number of windows over the voxel, an exact integer.
          const czy = (cz[z + pad[0]] as number) * (cy[y + pad[1]] as number);
          for (let x = 0; x < ox; x++) {
            result[dst + x] = (acc[srcAcc + x] as number) / (czy * (cx[x + pad[2]] as number));
          }
        } else {
          const c = count.volume;
          for (let x = 0; x < ox; x++) {
            result[dst + x] = (acc[srcAcc + x] as number) / (c[src + x] as number);
          }
        }
      }
    }
  }
}

function to3(size: readonly number[]): [number, number, number] {
  return size.length === 2 ? [1, size[0] as number, size[1] as number] : (size.slice(0, 3) as [number, number, number]);
}
function to3Lists(perAxis: number[][]): [number[], number[], number[]] {
  return perAxis.length === 2
    ? [[0], perAxis[0] as number[], perAxis[1] as number[]]
    : (perAxis.slice(0, 3) as [number[], number[], number[]]);
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

/** Adds a window-shaped block (`block` at `blockBase`) into the image-shaped `dst` at `dstBase`, at window `s`. */
function addBlock(
  dst: Float64Array | Float32Array,
  dstBase: number,
  block: Float32Array,
  blockBase: number,
  s: readonly [number, number, number],
  g: Geometry,
): void {
  const { iy, ix, rz, ry, rx } = g;
  for (let z = 0; z < rz; z++) {
    for (let y = 0; y < ry; y++) {
      const o = dstBase + ((s[0] + z) * iy + s[1] + y) * ix + s[2];
      const p = blockBase + (z * ry + y) * rx;
      for (let x = 0; x < rx; x++) {
        dst[o + x] = (dst[o + x] as number) + (block[p + x] as number);
      }
    }
  }
}

/**
 * Adds `block` times `weights` (both window-shaped) into `dst` as `addBlock` does; with `block` null, adds the
 * weights alone.
 */
function addWeightedBlock(
  dst: Float64Array | Float32Array,
  dstBase: number,
  block: Float32Array | null,
  blockBase: number,
  weights: Float32Array,
  s: readonly [number, number, number],
  g: Geometry,
): void {
  const { iy, ix, rz, ry, rx } = g;
  for (let z = 0; z < rz; z++) {
    for (let y = 0; y < ry; y++) {
      const o = dstBase + ((s[0] + z) * iy + s[1] + y) * ix + s[2];
      const w = (z * ry + y) * rx;
      if (block === null) {
        for (let x = 0; x < rx; x++) {
          dst[o + x] = (dst[o + x] as number) + (weights[w + x] as number);
        }
      } else {
        const p = blockBase + w;
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
