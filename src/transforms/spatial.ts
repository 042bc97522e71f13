import {
  AFFINE_TOL,
  aff2axcodes,
  allClose,
  axcodesToOrnt,
  computeShapeOffset,
  DEFAULT_AXIS_LABELS,
  embedAffine,
  eye,
  invert,
  ioOrientation,
  matmul,
  roundHalfEven,
  scaleAffine,
  toAffineNd,
  zoomAffine,
} from "./affine.js";
import {
  type Data,
  type InverseOptions,
  type InvertibleTransform,
  MapTransform,
  type MapTransformOptions,
  perKey,
} from "./compose.js";
import {
  type GridSampleMode,
  type GridSamplePadMode,
  type InterpolateMode,
  permuteFlip,
  resampleAffine,
  resize,
} from "./kernels.js";
import { type Affine, cloneAffine, type MetaTensor, pad3, spatialOf, tensorAt } from "./tensor.js";

// ---------------------------------------------------------------------------------------------------
// Orientation

export type AxisLabels = readonly (readonly [string, string])[];

/**
 * Reorients `t` (channel-first) so its voxel axes run along `axcodes` ("RAS": +x towards Right, +y Anterior,
 * +z Superior), by flipping and permuting axes only; the affine is updated so every voxel keeps its world
 * position. Only the first `r` codes are used for an r-D image.
 */
export function orient(t: MetaTensor, axcodes: string, labels: AxisLabels = DEFAULT_AXIS_LABELS): MetaTensor {
  const spatial = spatialOf(t, "Orientationd");
  const r = spatial.length;
  const a = toAffineNd(r, t.affine);
  const src = ioOrientation(a);
  const dst = axcodesToOrnt(axcodes.slice(0, r), labels);
  if (dst.length < r) {
    throw new Error(`Orientationd: axcodes ${JSON.stringify(axcodes)} must name ${r} axes for a ${r}D image`);
  }
  const perm: number[] = [];
  const flip: boolean[] = [];
  for (let j = 0; j < r; j++) {
    const i = src.findIndex((o) => o.axis === dst[j]!.axis);
    if (i < 0 || perm.includes(i)) {
      throw new Error(
        `Orientationd: cannot orient a ${aff2axcodes(a, labels)} image to ${JSON.stringify(axcodes)} (axes do not match)`,
      );
    }
    perm.push(i);
    flip.push(src[i]!.flip !== dst[j]!.flip);
  }
  // old voxel = T @ new voxel
  const T = eye(r + 1);
  for (let j = 0; j < r; j++) {
    T[j]![j] = 0;
  }
  for (let j = 0; j < r; j++) {
    const i = perm[j]!;
    T[i]![j] = flip[j] ? -1 : 1;
    T[i]![r] = flip[j] ? spatial[i]! - 1 : 0;
  }
  const affine = embedAffine(t.affine, matmul(a, T));
  const identity = perm.every((p, j) => p === j) && !flip.some(Boolean);
  if (identity) {
    return t.derive({ data: t.data, shape: t.shape, affine });
  }
  const perm3 = [...perm, 0, 1, 2].slice(0, 3).map((p, j) => (j < r ? p : j));
  const flip3 = [0, 1, 2].map((j) => j < r && flip[j]!);
  const out = permuteFlip(t.data, t.channels, pad3(spatial), perm3, flip3);
  return t.derive({ data: out.data, shape: [t.channels, ...out.shape.slice(0, r)], affine });
}

export interface OrientationdOptions extends MapTransformOptions {
  /** Target orientation codes, e.g. "RAS" (default) or "LPS". */
  axcodes?: string;
  /** MONAI's `as_closest_canonical`: orient to RAS whatever `axcodes` says. */
  asClosestCanonical?: boolean;
  /** Axis label pairs (negative, positive), default (L,R), (P,A), (I,S). */
  labels?: AxisLabels;
}

/** MONAI's `Orientationd`; invertible (the inverse re-orients to the recorded original affine's codes). */
export class Orientationd extends MapTransform implements InvertibleTransform {
  readonly axcodes: string;
  readonly labels: AxisLabels;

  constructor(options: OrientationdOptions) {
    super(options);
    this.axcodes = options.asClosestCanonical ? "RAS" : (options.axcodes ?? "RAS");
    this.labels = options.labels ?? DEFAULT_AXIS_LABELS;
    axcodesToOrnt(this.axcodes, this.labels);
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const out = orient(t, this.axcodes, this.labels);
      d[key] = this.trace(out, t.spatialShape, { affine: cloneAffine(t.affine), axcodes: this.axcodes });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const original = item.extraInfo.affine as Affine;
      const r = tensor.spatialShape.length;
      const out = orient(tensor, aff2axcodes(toAffineNd(r, original), this.labels), this.labels);
      out.affine = cloneAffine(original);
      d[key] = out;
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Spacing (resampling to a new voxel size)

/**
 * MONAI's SpatialResample: resamples `t` onto the grid of `dstAffine` ((r+1)x(r+1)) with spatial shape
 * `outShape`. When the two grids agree (within AFFINE_TOL) the data are left as they are.
 */
export function spatialResample(
  t: MetaTensor,
  dstAffine: number[][],
  outShape: number[],
  mode: GridSampleMode,
  padding: GridSamplePadMode,
): MetaTensor {
  const spatial = spatialOf(t, "Spacingd");
  const r = spatial.length;
  const srcA = toAffineNd(r, t.affine);
  const xform = r < 2 ? eye(r + 1) : matmul(invert(srcA), dstAffine);
  const sameShape = outShape.every((s, i) => s === spatial[i]);
  if (sameShape && (allClose(srcA, dstAffine, AFFINE_TOL) || allClose(xform, eye(r + 1), AFFINE_TOL))) {
    return t.derive({ data: t.data, shape: t.shape });
  }
  const x4 = eye(4);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      x4[i]![j] = xform[i]![j]!;
    }
    x4[i]![3] = xform[i]![r]!;
  }
  const data = resampleAffine(t.data, t.channels, pad3(spatial), x4, pad3(outShape), mode, padding);
  return t.derive({ data, shape: [t.channels, ...outShape], affine: embedAffine(t.affine, dstAffine) });
}

/** The grid Spacingd resamples onto: MONAI's zoom_affine + compute_shape_offset. */
export function spacingGrid(
  t: MetaTensor,
  pixdim: readonly number[],
  diagonal = false,
  scaleExtent = false,
): { affine: number[][]; shape: number[] } {
  const spatial = spatialOf(t, "Spacingd");
  const r = spatial.length;
  const a = toAffineNd(r, t.affine);
  const outD = pixdim.slice(0, r);
  while (outD.length < r) {
    outD.push(outD[outD.length - 1] ?? -1);
  }
  const affine = zoomAffine(a, outD, diagonal);
  const { shape, offset } = computeShapeOffset(spatial, a, affine, scaleExtent);
  for (let i = 0; i < r; i++) {
    affine[i]![r] = offset[i]!;
  }
  return { affine, shape };
}

export interface SpacingdOptions extends MapTransformOptions {
  /** Output voxel size; entries <= 0 keep the current size, a shorter list repeats its last value. */
  pixdim: number | number[];
  /** "bilinear" (default) or "nearest" (labels), one or per key. */
  mode?: GridSampleMode | GridSampleMode[];
  /** Outside the input: "border" (default, clamp), "zeros", "reflection"; one or per key. */
  paddingMode?: GridSamplePadMode | GridSamplePadMode[];
  /** Accepted for MONAI compatibility: with grid_sample's matched convention it does not change the result. */
  alignCorners?: boolean | boolean[];
  /** Output directions axis-aligned (MONAI's `diagonal`, default false: keep the input's directions). */
  diagonal?: boolean;
  /** Compute the output shape from the grid's outer extent rather than voxel centres (default false). */
  scaleExtent?: boolean;
}

/** MONAI's `Spacingd`: resamples to `pixdim` (trilinear or nearest); invertible. */
export class Spacingd extends MapTransform implements InvertibleTransform {
  readonly pixdim: number[];
  readonly mode: GridSampleMode[];
  readonly paddingMode: GridSamplePadMode[];
  readonly alignCorners: boolean[];
  readonly diagonal: boolean;
  readonly scaleExtent: boolean;

  constructor(options: SpacingdOptions) {
    super(options);
    this.pixdim = typeof options.pixdim === "number" ? [options.pixdim] : [...options.pixdim];
    if (this.pixdim.length === 0) {
      throw new Error("Spacingd: pixdim must not be empty");
    }
    const n = this.keys.length;
    this.mode = perKey(options.mode ?? "bilinear", n, "Spacingd mode");
    this.paddingMode = perKey(options.paddingMode ?? "border", n, "Spacingd paddingMode");
    this.alignCorners = perKey(options.alignCorners ?? false, n, "Spacingd alignCorners");
    this.diagonal = options.diagonal ?? false;
    this.scaleExtent = options.scaleExtent ?? false;
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, i] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const grid = spacingGrid(t, this.pixdim, this.diagonal, this.scaleExtent);
      const out = spatialResample(t, grid.affine, grid.shape, this.mode[i]!, this.paddingMode[i]!);
      d[key] = this.trace(out, t.spatialShape, {
        affine: cloneAffine(t.affine),
        mode: this.mode[i],
        paddingMode: this.paddingMode[i],
        alignCorners: this.alignCorners[i],
      });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const original = item.extraInfo.affine as Affine;
      const r = tensor.spatialShape.length;
      const out = spatialResample(
        tensor,
        toAffineNd(r, original),
        item.origSize,
        (item.extraInfo.mode as GridSampleMode | undefined) ?? "bilinear",
        (item.extraInfo.paddingMode as GridSamplePadMode | undefined) ?? "border",
      );
      out.affine = cloneAffine(original);
      d[key] = out;
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Resize

/**
 * Resizes the spatial axes of `t` to `size` (torch interpolate) and scales the affine (MONAI's centred
 * `scale_affine`) so the grid keeps its outer extent.
 */
export function resizeTensor(
  t: MetaTensor,
  size: readonly number[],
  mode: InterpolateMode,
  alignCorners?: boolean,
): MetaTensor {
  const spatial = spatialOf(t, "Resized");
  const r = spatial.length;
  if (size.length !== r) {
    throw new Error(`Resized: spatial size [${size.join(", ")}] does not match the image's ${r} spatial axes`);
  }
  if (size.every((s, i) => s === spatial[i])) {
    return t.derive({ data: t.data, shape: t.shape });
  }
  const data = resize(t.data, t.channels, pad3(spatial), pad3([...size]), mode, alignCorners);
  const affine = embedAffine(t.affine, matmul(toAffineNd(r, t.affine), scaleAffine(spatial, size)));
  return t.derive({ data, shape: [t.channels, ...size], affine });
}

export interface ResizedOptions extends MapTransformOptions {
  /** Target spatial size; -1 (or 0) keeps an axis; with sizeMode "longest" a single number. */
  spatialSize: number | number[];
  /** "all" (default): every axis to spatialSize; "longest": scale so the longest axis is spatialSize. */
  sizeMode?: "all" | "longest";
  /** "area" (default), "nearest", "nearest-exact", "linear"/"bilinear"/"trilinear"; one or per key. */
  mode?: InterpolateMode | InterpolateMode[];
  /** torch's align_corners for the linear modes (default false). */
  alignCorners?: boolean | (boolean | undefined)[];
}

/** MONAI's `Resized`; invertible (resizes back to the recorded size). */
export class Resized extends MapTransform implements InvertibleTransform {
  readonly spatialSize: number | number[];
  readonly sizeMode: "all" | "longest";
  readonly mode: InterpolateMode[];
  readonly alignCorners: (boolean | undefined)[];

  constructor(options: ResizedOptions) {
    super(options);
    this.spatialSize = options.spatialSize;
    this.sizeMode = options.sizeMode ?? "all";
    if (this.sizeMode === "longest" && typeof this.spatialSize !== "number") {
      throw new Error("Resized: spatialSize must be one number when sizeMode is 'longest'");
    }
    const n = this.keys.length;
    this.mode = perKey(options.mode ?? "area", n, "Resized mode");
    this.alignCorners = perKey<boolean | undefined>(options.alignCorners, n, "Resized alignCorners");
  }

  /** The output spatial size for an input of spatial size `spatial`. */
  outputSize(spatial: readonly number[]): number[] {
    if (this.sizeMode === "longest") {
      const scale = (this.spatialSize as number) / Math.max(...spatial);
      return spatial.map((s) => roundHalfEven(s * scale));
    }
    const want =
      typeof this.spatialSize === "number" ? spatial.map(() => this.spatialSize as number) : this.spatialSize;
    if (want.length !== spatial.length) {
      throw new Error(
        `Resized: spatialSize [${want.join(", ")}] does not match the image's ${spatial.length} spatial axes`,
      );
    }
    return want.map((s, i) => (s > 0 ? s : spatial[i]!));
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, i] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const out = resizeTensor(t, this.outputSize(spatialOf(t, this.name)), this.mode[i]!, this.alignCorners[i]);
      d[key] = this.trace(out, t.spatialShape, {
        affine: cloneAffine(t.affine),
        mode: this.mode[i],
        alignCorners: this.alignCorners[i],
      });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const out = resizeTensor(
        tensor,
        item.origSize,
        (item.extraInfo.mode as InterpolateMode | undefined) ?? "area",
        item.extraInfo.alignCorners as boolean | undefined,
      );
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}
