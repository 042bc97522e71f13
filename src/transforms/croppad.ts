import { shiftAffine } from "./affine.js";
import {
  type Data,
  type InverseOptions,
  type InvertibleTransform,
  MapTransform,
  type MapTransformOptions,
  perKey,
} from "./compose.js";
import { cropPad, type InterpolateMode, PAD_MODES, type PadMode } from "./kernels.js";
import { resizeTensor } from "./spatial.js";
import { type Affine, cloneAffine, type MetaTensor, pad3, spatialOf, tensorAt } from "./tensor.js";

/** A voxel predicate selecting foreground (MONAI's `select_fn`; default `is_positive`, v > 0). */
export type SelectFn = (value: number) => boolean;

export const isPositive: SelectFn = (v) => v > 0;

function checkPadMode(mode: PadMode, name: string): PadMode {
  if (!PAD_MODES.includes(mode)) {
    throw new Error(`${name}: unknown pad mode ${JSON.stringify(mode)} (one of ${PAD_MODES.join(", ")})`);
  }
  return mode;
}

/**
 * Crops and/or pads the spatial axes: output voxel `v` is input voxel `v + start`, the output has spatial
 * size `size`; the part outside the input follows `mode` (`value` for "constant"). The affine moves with
 * the grid origin.
 */
export function cropPadTensor(
  t: MetaTensor,
  start: readonly number[],
  size: readonly number[],
  mode: PadMode = "constant",
  value = 0,
): MetaTensor {
  const spatial = spatialOf(t, "crop/pad");
  const r = spatial.length;
  const data = cropPad(t.data, t.channels, pad3(spatial), [...start, 0, 0].slice(0, 3), pad3([...size]), mode, value);
  return t.derive({ data, shape: [t.channels, ...size.slice(0, r)], affine: shiftAffine(t.affine, start.slice(0, r)) });
}

/**
 * MONAI's crop-then-pad of a box that may stick out of the image: the inside part is cropped, then the crop
 * is padded with `mode` (so "edge"/"reflect" read the crop, as MONAI's do).
 */
function cropThenPad(t: MetaTensor, boxStart: number[], boxEnd: number[], mode: PadMode, value: number): MetaTensor {
  const spatial = t.spatialShape;
  const s = boxStart.map((b) => Math.max(b, 0));
  const e = boxEnd.map((b, i) => Math.max(Math.min(b, spatial[i]!), s[i]!));
  const cropped = cropPadTensor(
    t,
    s,
    s.map((v, i) => e[i]! - v),
  );
  const before = boxStart.map((b) => Math.max(-b, 0));
  const after = boxEnd.map((b, i) => Math.max(b - spatial[i]!, 0));
  if (before.every((b) => b === 0) && after.every((a) => a === 0)) {
    return cropped;
  }
  return cropPadTensor(
    cropped,
    before.map((b) => -b),
    boxEnd.map((b, i) => b - boxStart[i]!),
    mode,
    value,
  );
}

/** One value for every spatial axis (MONAI's `ensure_tuple_rep`). */
function perAxis(value: number | readonly number[], r: number, name: string): number[] {
  if (typeof value === "number") {
    return Array.from({ length: r }, () => value);
  }
  if (value.length !== r) {
    throw new Error(`${name}: expected one value or ${r} (one per spatial axis), got [${value.join(", ")}]`);
  }
  return [...value];
}

/**
 * MONAI's `generate_spatial_bounding_box`: the box `[start, end)` of the voxels where `selectFn` holds in any
 * of `channelIndices` (default all), grown by `margin`; clamped to the image when `allowSmaller`. No
 * foreground gives an all-zero box.
 */
export function generateSpatialBoundingBox(
  t: MetaTensor,
  selectFn: SelectFn = isPositive,
  channelIndices?: readonly number[],
  margin: number | readonly number[] = 0,
  allowSmaller = true,
): { start: number[]; end: number[] } {
  const spatial = spatialOf(t, "generate_spatial_bounding_box");
  const r = spatial.length;
  const m = perAxis(margin, r, "margin");
  if (m.some((v) => v < 0)) {
    throw new Error(`margin value should not be negative number, got [${m.join(", ")}]`);
  }
  const [X, Y, Z] = pad3(spatial);
  const lo = [X, Y, Z];
  const hi = [-1, -1, -1];
  const channels = channelIndices ? [...channelIndices] : Array.from({ length: t.channels }, (_, c) => c);
  for (const c of channels) {
    if (c < 0 || c >= t.channels) {
      throw new Error(`channel index ${c} is out of range for ${t.channels} channels`);
    }
    const ch = t.channel(c);
    let i = 0;
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        for (let x = 0; x < X; x++, i++) {
          if (selectFn(ch[i]!)) {
            if (x < lo[0]!) {
              lo[0] = x;
            }
            if (x > hi[0]!) {
              hi[0] = x;
            }
            if (y < lo[1]!) {
              lo[1] = y;
            }
            if (y > hi[1]!) {
              hi[1] = y;
            }
            if (z < lo[2]!) {
              lo[2] = z;
            }
            if (z > hi[2]!) {
              hi[2] = z;
            }
          }
        }
      }
    }
  }
  if (hi[0]! < 0) {
    return { start: spatial.map(() => 0), end: spatial.map(() => 0) };
  }
  const start: number[] = [];
  const end: number[] = [];
  for (let d = 0; d < r; d++) {
    let s = lo[d]! - m[d]!;
    let e = hi[d]! + m[d]! + 1;
    if (allowSmaller) {
      s = Math.max(s, 0);
      e = Math.min(e, spatial[d]!);
    }
    start.push(s);
    end.push(e);
  }
  return { start, end };
}

// ---------------------------------------------------------------------------------------------------

export interface CropForegrounddOptions extends MapTransformOptions {
  /** The key whose foreground defines the box (an image or a label). */
  sourceKey: string;
  /** Foreground predicate (default v > 0). */
  selectFn?: SelectFn;
  /** Channels of the source to look at (default all). */
  channelIndices?: number[];
  /** Voxels added around the box on each side (one, or one per spatial axis). */
  margin?: number | number[];
  /**
   * True: the margin-grown box is clamped to the image. False (MONAI's current default): it may stick out,
   * and the outside is padded with `mode`.
   */
  allowSmaller?: boolean;
  /** Grow the box (about its centre) to a multiple of k on each axis. */
  kDivisible?: number | number[];
  /** Pad mode for a box outside the image (default "constant", value 0); one or per key. */
  mode?: PadMode | PadMode[];
  /** Where to store the box start in the dictionary (null: don't). */
  startCoordKey?: string | null;
  endCoordKey?: string | null;
}

/** MONAI's `CropForegroundd`; invertible (the inverse puts the crop back, zeros around). */
export class CropForegroundd extends MapTransform implements InvertibleTransform {
  readonly sourceKey: string;
  readonly selectFn: SelectFn;
  readonly channelIndices: number[] | undefined;
  readonly margin: number | number[];
  readonly allowSmaller: boolean;
  readonly kDivisible: number | number[];
  readonly mode: PadMode[];
  readonly startCoordKey: string | null;
  readonly endCoordKey: string | null;

  constructor(options: CropForegrounddOptions) {
    super(options);
    this.sourceKey = options.sourceKey;
    this.selectFn = options.selectFn ?? isPositive;
    this.channelIndices = options.channelIndices;
    this.margin = options.margin ?? 0;
    this.allowSmaller = options.allowSmaller ?? false;
    this.kDivisible = options.kDivisible ?? 1;
    this.mode = perKey(options.mode ?? "constant", this.keys.length, "CropForegroundd mode").map((m) =>
      checkPadMode(m, "CropForegroundd"),
    );
    this.startCoordKey = options.startCoordKey === undefined ? "foreground_start_coord" : options.startCoordKey;
    this.endCoordKey = options.endCoordKey === undefined ? "foreground_end_coord" : options.endCoordKey;
  }

  /** MONAI's `CropForeground.compute_bounding_box`: the foreground box, grown to `kDivisible`. */
  computeBoundingBox(source: MetaTensor): { start: number[]; end: number[] } {
    const box = generateSpatialBoundingBox(source, this.selectFn, this.channelIndices, this.margin, this.allowSmaller);
    const r = box.start.length;
    const k = perAxis(this.kDivisible, r, "kDivisible");
    const start: number[] = [];
    const end: number[] = [];
    for (let i = 0; i < r; i++) {
      const size = box.end[i]! - box.start[i]!;
      const divisible = k[i]! > 0 ? Math.ceil(size / k[i]!) * k[i]! : size;
      const s = box.start[i]! - Math.floor((divisible - size) / 2);
      start.push(s);
      end.push(s + divisible);
    }
    return { start, end };
  }

  call(data: Data): Data {
    const d = { ...data };
    const source = tensorAt(d, this.sourceKey, this.name);
    const { start, end } = this.computeBoundingBox(source);
    if (this.startCoordKey !== null) {
      d[this.startCoordKey] = [...start];
    }
    if (this.endCoordKey !== null) {
      d[this.endCoordKey] = [...end];
    }
    for (const [key, i] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      if (t.spatialShape.length !== start.length) {
        throw new Error(`${this.name}: data["${key}"] and data["${this.sourceKey}"] differ in spatial rank`);
      }
      const out = cropThenPad(t, start, end, this.mode[i]!, 0);
      d[key] = this.trace(out, t.spatialShape, { affine: cloneAffine(t.affine), boxStart: start, boxEnd: end });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const boxStart = item.extraInfo.boxStart as number[];
      const out = cropPadTensor(
        tensor,
        boxStart.map((s) => -s),
        item.origSize,
      );
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------

export interface SpatialPaddOptions extends MapTransformOptions {
  /** Minimum spatial size; axes already as large, and entries <= 0, are left alone. */
  spatialSize: number | number[];
  /** "symmetric" (default: half before, the rest after) or "end" (all after). */
  method?: "symmetric" | "end";
  /** "constant" (default), "edge"/"replicate", "reflect", "symmetric", "wrap"/"circular"; one or per key. */
  mode?: PadMode | PadMode[];
  /** Fill value for "constant" (default 0). */
  value?: number;
}

/** MONAI's `SpatialPadd`; invertible (the inverse crops the padding off). */
export class SpatialPadd extends MapTransform implements InvertibleTransform {
  readonly spatialSize: number | number[];
  readonly method: "symmetric" | "end";
  readonly mode: PadMode[];
  readonly value: number;

  constructor(options: SpatialPaddOptions) {
    super(options);
    this.spatialSize = options.spatialSize;
    this.method = options.method ?? "symmetric";
    this.mode = perKey(options.mode ?? "constant", this.keys.length, "SpatialPadd mode").map((m) =>
      checkPadMode(m, "SpatialPadd"),
    );
    this.value = options.value ?? 0;
  }

  /** `[before, after]` per spatial axis (MONAI's `compute_pad_width`). */
  padWidth(spatial: readonly number[]): [number, number][] {
    const want = perAxis(this.spatialSize, spatial.length, "SpatialPadd spatialSize").map((s, i) =>
      s > 0 ? s : spatial[i]!,
    );
    return want.map((s, i) => {
      const width = Math.max(s - spatial[i]!, 0);
      return this.method === "symmetric" ? [Math.floor(width / 2), width - Math.floor(width / 2)] : [0, width];
    });
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, i] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const spatial = spatialOf(t, this.name);
      const pad = this.padWidth(spatial);
      const out = cropPadTensor(
        t,
        pad.map(([b]) => -b),
        spatial.map((s, a) => s + pad[a]![0] + pad[a]![1]),
        this.mode[i]!,
        this.value,
      );
      d[key] = this.trace(out, spatial, { affine: cloneAffine(t.affine), padded: pad });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const pad = item.extraInfo.padded as [number, number][];
      const out = cropPadTensor(
        tensor,
        pad.map(([b]) => b),
        item.origSize,
      );
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------

export interface SpatialCropForegrounddOptions extends MapTransformOptions {
  sourceKey: string;
  /** The patch size: when the foreground box is smaller on every axis, a patch this big around its centre. */
  spatialSize: number[];
  selectFn?: SelectFn;
  channelIndices?: number[];
  margin?: number | number[];
  /** Clamp the margin-grown box to the image (default true, as MONAI Label's). */
  allowSmaller?: boolean;
  /**
   * Not in MONAI Label: also resize the crop to `spatialSize` with this mode (e.g. "area"), undone by the
   * inverse. Without it the crop is not resized (MONAI Label resizes with a separate Resized).
   */
  resizeMode?: InterpolateMode;
  startCoordKey?: string;
  endCoordKey?: string;
  originalShapeKey?: string;
  croppedShapeKey?: string;
}

/**
 * MONAI Label's (deepgrow) `SpatialCropForegroundd`: crops to the foreground box of `sourceKey`; when that box
 * is smaller than `spatialSize` on every axis, crops a `spatialSize` patch around its centre instead (cut at
 * the image edges). Records `foreground_start_coord`, `foreground_end_coord`, `foreground_original_shape` and
 * `foreground_cropped_shape` (shapes with the channel) in each output's meta. Invertible (zeros around).
 */
export class SpatialCropForegroundd extends MapTransform implements InvertibleTransform {
  readonly sourceKey: string;
  readonly spatialSize: number[];
  readonly selectFn: SelectFn;
  readonly channelIndices: number[] | undefined;
  readonly margin: number | number[];
  readonly allowSmaller: boolean;
  readonly resizeMode: InterpolateMode | undefined;
  readonly startCoordKey: string;
  readonly endCoordKey: string;
  readonly originalShapeKey: string;
  readonly croppedShapeKey: string;

  constructor(options: SpatialCropForegrounddOptions) {
    super(options);
    this.sourceKey = options.sourceKey;
    this.spatialSize = [...options.spatialSize];
    this.selectFn = options.selectFn ?? isPositive;
    this.channelIndices = options.channelIndices;
    this.margin = options.margin ?? 0;
    this.allowSmaller = options.allowSmaller ?? true;
    this.resizeMode = options.resizeMode;
    this.startCoordKey = options.startCoordKey ?? "foreground_start_coord";
    this.endCoordKey = options.endCoordKey ?? "foreground_end_coord";
    this.originalShapeKey = options.originalShapeKey ?? "foreground_original_shape";
    this.croppedShapeKey = options.croppedShapeKey ?? "foreground_cropped_shape";
  }

  call(data: Data): Data {
    const d = { ...data };
    const source = tensorAt(d, this.sourceKey, this.name);
    let { start, end } = generateSpatialBoundingBox(
      source,
      this.selectFn,
      this.channelIndices,
      this.margin,
      this.allowSmaller,
    );
    const r = start.length;
    const want = this.spatialSize.slice(-r);
    const size = start.map((s, i) => end[i]! - s);
    if (size.every((s, i) => s < want[i]!)) {
      // SpatialCrop(roi_center, roi_size)
      const center = start.map((s, i) => Math.floor((s + end[i]!) / 2));
      start = center.map((c, i) => Math.max(c - Math.floor(want[i]! / 2), 0));
      end = start.map((s, i) => Math.max(s + want[i]!, s));
    }
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const spatial = spatialOf(t, this.name);
      const cropStart = start.map((s, i) => Math.min(Math.max(s, 0), spatial[i]!));
      const cropEnd = end.map((e, i) => Math.max(Math.min(e, spatial[i]!), cropStart[i]!));
      const cropSize = cropStart.map((s, i) => cropEnd[i]! - s);
      let out = cropPadTensor(t, cropStart, cropSize);
      out.meta = {
        ...out.meta,
        [this.startCoordKey]: [...start],
        [this.endCoordKey]: [...end],
        [this.originalShapeKey]: [...t.shape],
        [this.croppedShapeKey]: [...out.shape],
      };
      const cropAffine = cloneAffine(out.affine);
      if (this.resizeMode) {
        out = resizeTensor(out, want, this.resizeMode);
      }
      d[key] = this.trace(out, spatial, {
        affine: cloneAffine(t.affine),
        boxStart: cropStart,
        cropSize,
        cropAffine,
        ...(this.resizeMode ? { mode: this.resizeMode } : {}),
      });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const cropSize = item.extraInfo.cropSize as number[];
      let t = tensor;
      if (item.extraInfo.mode !== undefined) {
        t = resizeTensor(t, cropSize, item.extraInfo.mode as InterpolateMode);
        t.affine = cloneAffine(item.extraInfo.cropAffine as Affine);
      }
      const out = cropPadTensor(
        t,
        (item.extraInfo.boxStart as number[]).map((s) => -s),
        item.origSize,
      );
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}
