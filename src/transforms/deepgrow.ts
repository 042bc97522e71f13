import { InvalidInputError } from "../errors.js";
import { type Data, MapTransform, type MapTransformOptions, type Transform } from "./compose.js";
import { type InterpolateMode, labelComponents, resize, type Shape3 } from "./kernels.js";
import { type Randomizable, RandomState } from "./random.js";
import { cloneAffine, MetaTensor, numel, pad3, tensorAt } from "./tensor.js";

/**
 * MONAI's deepgrow transforms (monai.apps.deepgrow.transforms) over `MetaTensor`: simulated clicks for
 * training (AddInitialSeedPointd, FindDiscrepancyRegionsd, AddRandomGuidanced) and the crop / resize /
 * restore steps of the DeepGrow infer tasks (Fetch2DSliced, SpatialCropGuidanced, ResizeGuidanced,
 * RestoreLabeld). AddGuidanceSignald and AddGuidanceFromPointsd live in guidance.ts.
 *
 * Guidance is MONAI's `[positive points, negative points]`. A point's LAST r numbers are voxel coordinates
 * in the tensor's spatial axis order (x, y[, z]); simulated clicks carry one more number in front (the
 * distance to the region border, "for debug" as MONAI puts it), and `[-1, ...]` entries pad the list where
 * an interaction added no click of that kind (every consumer skips points with a negative number).
 */

export type Point = number[];
/** `[pos, neg]` (deepgrow), or `{label: points}` (deepedit). */
export type Guidance = Point[][] | Record<string, Point[]>;

/** The spatial coordinates of a point: its last `r` numbers, truncated to integers. */
export function pointCoords(p: readonly number[], r: number): number[] {
  return p.slice(-r).map((x) => Math.trunc(x));
}

/** Points with no negative entry (MONAI's padding and "no click" markers have -1). */
export function validPoints(points: readonly Point[]): Point[] {
  return points.filter((p) => p.length > 0 && p.every((x) => x >= 0));
}

/** Every real click of a guidance, whatever its form. */
export function allPoints(guidance: unknown): Point[] {
  const g = typeof guidance === "string" ? (JSON.parse(guidance) as unknown) : guidance;
  if (Array.isArray(g)) {
    return validPoints(g.filter((x): x is Point[] => Array.isArray(x)).flat());
  }
  if (g && typeof g === "object") {
    return validPoints(Object.values(g as Record<string, Point[]>).flat());
  }
  return [];
}

/** Maps every point of a guidance (either form) through `f`, padding entries untouched. */
export function mapGuidance(guidance: Guidance, f: (p: Point) => Point): Guidance {
  const one = (ps: Point[]) => ps.map((p) => (p.every((x) => x >= 0) ? f(p) : p));
  if (Array.isArray(guidance)) {
    return guidance.map((g) => (Array.isArray(g) ? one(g) : g));
  }
  return Object.fromEntries(Object.entries(guidance).map(([k, v]) => [k, one(v)]));
}

// ---------------------------------------------------------------------------------------------------
// Distance transform and click sampling

/**
 * scipy's `distance_transform_cdt(mask)` (chessboard metric): for each nonzero voxel, the chessboard distance
 * to the nearest zero voxel (0 on zeros). Outside the array does not count as zero, as in scipy; a mask
 * with no zero gets `size` everywhere (larger than any real distance).
 */
export function distanceTransformCdt(mask: ArrayLike<number>, shape: Shape3): Int32Array {
  const [X, Y, Z] = shape;
  const n = X * Y * Z;
  const big = X + Y + Z + 1;
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = (mask[i] ?? 0) > 0 ? big : 0;
  }
  // Two raster passes over the 3x3x3 neighbourhood (all weights 1) give the exact chessboard distance.
  const pass = (forward: boolean) => {
    for (let k = 0; k < n; k++) {
      const i = forward ? k : n - 1 - k;
      let v = d[i]!;
      if (v === 0) {
        continue;
      }
      const x = i % X;
      const y = Math.floor(i / X) % Y;
      const z = Math.floor(i / (X * Y));
      for (let dz = -1; dz <= 1; dz++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            // Only neighbours already visited in this pass's order.
            const before = dz < 0 || (dz === 0 && (dy < 0 || (dy === 0 && dx < 0)));
            if (before !== forward || (dx === 0 && dy === 0 && dz === 0)) {
              continue;
            }
            const xx = x + dx;
            const yy = y + dy;
            const zz = z + dz;
            if (xx < 0 || yy < 0 || zz < 0 || xx >= X || yy >= Y || zz >= Z) {
              continue;
            }
            const w = d[xx + X * (yy + Y * zz)]! + 1;
            if (w < v) {
              v = w;
            }
          }
        }
      }
      d[i] = v;
    }
  };
  pass(true);
  pass(false);
  for (let i = 0; i < n; i++) {
    if (d[i]! >= big) {
      d[i] = n;
    }
  }
  return d;
}

/**
 * MONAI's `find_guidance` / seed choice: a voxel of `mask` drawn with probability proportional to
 * `exp(distance) - 1` (distance from `distanceTransformCdt`), so clicks land deep inside the region; returned
 * as `[distance, x, y(, z)]` (rank coordinates), or null for an empty mask.
 */
export function sampleClick(mask: ArrayLike<number>, shape: Shape3, rank: number, R: RandomState): Point | null {
  const dist = distanceTransformCdt(mask, shape);
  let max = 0;
  for (let i = 0; i < dist.length; i++) {
    if ((mask[i] ?? 0) > 0 && dist[i]! > max) {
      max = dist[i]!;
    }
  }
  if (max === 0) {
    return null;
  }
  // exp(d) - 1 scaled by exp(-max) keeps the ratios and cannot overflow.
  const weight = (d: number) => Math.exp(d - max) - Math.exp(-max);
  let total = 0;
  for (let i = 0; i < dist.length; i++) {
    if ((mask[i] ?? 0) > 0) {
      total += weight(dist[i]!);
    }
  }
  let u = R.rand() * total;
  let chosen = -1;
  for (let i = 0; i < dist.length; i++) {
    if ((mask[i] ?? 0) > 0) {
      chosen = i;
      u -= weight(dist[i]!);
      if (u < 0) {
        break;
      }
    }
  }
  const [X, Y] = shape;
  const coords = [chosen % X, Math.floor(chosen / X) % Y, Math.floor(chosen / (X * Y))].slice(0, rank);
  return [dist[chosen]!, ...coords];
}

/** The binary (> 0.5) channel 0 of a tensor, with its padded shape and rank. */
function binary(t: MetaTensor): { mask: Uint8Array; shape: Shape3; rank: number } {
  const size = t.channelSize;
  const mask = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    mask[i] = t.data[i]! > 0.5 ? 1 : 0;
  }
  return { mask, shape: pad3(t.spatialShape), rank: t.spatialShape.length };
}

abstract class RandomizableTransform implements Transform, Randomizable {
  readonly R = new RandomState();
  setRandomState(seed: number): this {
    this.R.seed(seed);
    return this;
  }
  abstract call(data: Data): Data;
}

// ---------------------------------------------------------------------------------------------------
// Training: simulated clicks

export interface FindAllValidSlicesdOptions {
  /** The label [1, X, Y, Z] (default "label"). */
  label?: string;
  /** Output key (default "sids"). */
  sids?: string;
}

/** MONAI's `FindAllValidSlicesd`: the indices along the last (depth) axis of the slices with some label. */
export class FindAllValidSlicesd implements Transform {
  readonly label: string;
  readonly sids: string;
  constructor(options: FindAllValidSlicesdOptions = {}) {
    this.label = options.label ?? "label";
    this.sids = options.sids ?? "sids";
  }
  call(data: Data): Data {
    const t = tensorAt(data, this.label, "FindAllValidSlicesd");
    if (t.spatialShape.length !== 3) {
      throw new Error(`FindAllValidSlicesd: "${this.label}" must be 3D, got [${t.shape.join(", ")}]`);
    }
    const [X, Y, Z] = t.spatialShape as [number, number, number];
    const sids: number[] = [];
    for (let z = 0; z < Z; z++) {
      const plane = t.data.subarray(z * X * Y, (z + 1) * X * Y);
      if (plane.some((v) => v > 0.5)) {
        sids.push(z);
      }
    }
    return { ...data, [this.sids]: sids };
  }
}

export interface AddInitialSeedPointdOptions {
  label?: string;
  /** Output key (default "guidance"). */
  guidance?: string;
  /** Key of the valid slices (default "sids"); 3D labels with sids get their seeds on one random slice. */
  sids?: string;
  /** Key of a fixed slice (default "sid"). */
  sid?: string;
  /** Seeds for at most this many connected regions (2D; default 5). */
  connectedRegions?: number;
}

/**
 * MONAI's `AddInitialSeedPointd`: the first positive clicks from the label. In 2D (or on one slice of a 3D
 * label, chosen among `sids`), one click in each of the first `connectedRegions` connected regions (8-/26-
 * connectivity, scan order); for a whole 3D label, one click. Each click is drawn deep inside its region
 * (see `sampleClick`). Output: `[pos, neg]` with `[-1, ...]` negatives, one per positive.
 */
export class AddInitialSeedPointd extends RandomizableTransform {
  readonly label: string;
  readonly guidance: string;
  readonly sids: string;
  readonly sid: string;
  readonly connectedRegions: number;

  constructor(options: AddInitialSeedPointdOptions = {}) {
    super();
    this.label = options.label ?? "label";
    this.guidance = options.guidance ?? "guidance";
    this.sids = options.sids ?? "sids";
    this.sid = options.sid ?? "sid";
    this.connectedRegions = options.connectedRegions ?? 5;
  }

  call(data: Data): Data {
    const t = tensorAt(data, this.label, "AddInitialSeedPointd");
    const { mask, shape, rank } = binary(t);
    let sid = data[this.sid] as number | undefined;
    const sids = data[this.sids] as number[] | undefined;
    if (rank === 3 && sid === undefined && sids && sids.length > 0) {
      sid = sids[this.R.randint(sids.length)];
    }
    const pos = seedPoints(mask, shape, rank, sid, this.connectedRegions, this.R);
    if (pos.length === 0) {
      throw new InvalidInputError("AddInitialSeedPointd: not a valid label (no foreground)");
    }
    return { ...data, [this.guidance]: [pos, pos.map((p) => p.map(() => -1))] };
  }
}

/** Seeds of a binary mask: per connected region of a 2D mask or slice `sid`, or one for a whole 3D mask. */
export function seedPoints(
  mask: Uint8Array,
  shape: Shape3,
  rank: number,
  sid: number | undefined,
  connectedRegions: number,
  R: RandomState,
): Point[] {
  const [X, Y] = shape;
  const onSlice = rank === 3 && sid !== undefined;
  if (rank === 3 && !onSlice) {
    const p = sampleClick(mask, shape, 3, R);
    return p ? [p] : [];
  }
  const plane = onSlice ? mask.subarray(sid! * X * Y, (sid! + 1) * X * Y) : mask;
  const planeShape: Shape3 = [X, Y, 1];
  const { labels, sizes } = labelComponents(plane, planeShape, 2, 2);
  const out: Point[] = [];
  for (let region = 1; region <= Math.min(connectedRegions, sizes.length); region++) {
    const one = new Uint8Array(plane.length);
    for (let i = 0; i < plane.length; i++) {
      one[i] = labels[i] === region ? 1 : 0;
    }
    const p = sampleClick(one, planeShape, 2, R);
    if (p) {
      out.push(onSlice ? [p[0]!, p[1]!, p[2]!, sid!] : p);
    }
  }
  return out;
}

export interface FindDiscrepancyRegionsdOptions {
  label?: string;
  /** The prediction, probabilities (thresholded at 0.5), default "pred". */
  pred?: string;
  /** Output key (default "discrepancy"). */
  discrepancy?: string;
}

/**
 * MONAI's `FindDiscrepancyRegionsd`: `[missed, extra]` where missed = label and not prediction (where a
 * positive click helps) and extra = prediction and not label (a negative click), both thresholded at 0.5.
 */
export class FindDiscrepancyRegionsd implements Transform {
  readonly label: string;
  readonly pred: string;
  readonly discrepancy: string;
  constructor(options: FindDiscrepancyRegionsdOptions = {}) {
    this.label = options.label ?? "label";
    this.pred = options.pred ?? "pred";
    this.discrepancy = options.discrepancy ?? "discrepancy";
  }
  call(data: Data): Data {
    const label = tensorAt(data, this.label, "FindDiscrepancyRegionsd");
    const pred = tensorAt(data, this.pred, "FindDiscrepancyRegionsd");
    if (label.channelSize !== pred.channelSize) {
      throw new Error(
        `FindDiscrepancyRegionsd: label [${label.shape.join(", ")}] and pred [${pred.shape.join(", ")}] differ`,
      );
    }
    return { ...data, [this.discrepancy]: discrepancy(label.data, pred.data, label.channelSize) };
  }
}

/** `[label > pred, label < pred]` of the binarised first channels. */
export function discrepancy(label: ArrayLike<number>, pred: ArrayLike<number>, size: number): [Uint8Array, Uint8Array] {
  const pos = new Uint8Array(size);
  const neg = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const l = (label[i] ?? 0) > 0.5 ? 1 : 0;
    const p = (pred[i] ?? 0) > 0.5 ? 1 : 0;
    pos[i] = l > p ? 1 : 0;
    neg[i] = l < p ? 1 : 0;
  }
  return [pos, neg];
}

export interface AddRandomGuidancedOptions {
  guidance?: string;
  discrepancy?: string;
  /** Key of this sample's click probability (default "probability"; 1 when absent). */
  probability?: string;
  /** The label or image whose spatial shape the discrepancy has (default "label"). */
  refKey?: string;
}

/**
 * MONAI's `AddRandomGuidanced`: with the sample's probability, one new click in the larger of the two
 * discrepancy regions (positive where the prediction missed, negative where it overshot), drawn deep inside
 * as `sampleClick` does; the other list gets a `[-1, ...]` entry, so both keep the same length.
 */
export class AddRandomGuidanced extends RandomizableTransform {
  readonly guidance: string;
  readonly discrepancy: string;
  readonly probability: string;
  readonly refKey: string;
  constructor(options: AddRandomGuidancedOptions = {}) {
    super();
    this.guidance = options.guidance ?? "guidance";
    this.discrepancy = options.discrepancy ?? "discrepancy";
    this.probability = options.probability ?? "probability";
    this.refKey = options.refKey ?? "label";
  }
  call(data: Data): Data {
    const ref = tensorAt(data, this.refKey, "AddRandomGuidanced");
    const [posDiscr, negDiscr] = data[this.discrepancy] as [Uint8Array, Uint8Array];
    const raw = data[this.guidance];
    const [pos = [], neg = []] = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? [[], []])) as Point[][];
    const p = typeof data[this.probability] === "number" ? (data[this.probability] as number) : 1;
    const willInteract = this.R.rand() < p;
    const rank = ref.spatialShape.length;
    const shape = pad3(ref.spatialShape);
    let newPos: Point | null = null;
    let newNeg: Point | null = null;
    if (willInteract) {
      const nPos = sum(posDiscr);
      const nNeg = sum(negDiscr);
      if (nPos >= nNeg && nPos > 0) {
        newPos = sampleClick(posDiscr, shape, rank, this.R);
      } else if (nPos < nNeg && nNeg > 0) {
        newNeg = sampleClick(negDiscr, shape, rank, this.R);
      }
    }
    const pad = Array.from({ length: rank + 1 }, () => -1);
    return {
      ...data,
      [this.guidance]: [
        [...pos, newPos ?? pad],
        [...neg, newNeg ?? pad],
      ],
    };
  }
}

function sum(a: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]!;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Inference: clicks in, crop around them, restore

export interface CheckClicksdOptions {
  /** The image the clicks refer to, as loaded (default "image"). */
  refImage?: string;
  /** Keys holding lists of clicks (default foreground, background). */
  keys?: string[];
}

/**
 * Rejects clicks that are not lists of integers-ish voxel coordinates inside the image (IJK, one per spatial
 * axis) with an InvalidInputError that names the click; MONAI would fail later with an index error.
 */
export class CheckClicksd implements Transform {
  readonly refImage: string;
  readonly keys: string[];
  constructor(options: CheckClicksdOptions = {}) {
    this.refImage = options.refImage ?? "image";
    this.keys = options.keys ?? ["foreground", "background"];
  }
  call(data: Data): Data {
    const t = tensorAt(data, this.refImage, "CheckClicksd");
    const spatial = t.spatialShape;
    for (const key of this.keys) {
      const v = parseJson(data[key], key);
      if (v === undefined || v === null) {
        continue;
      }
      if (!Array.isArray(v)) {
        throw new InvalidInputError(`${key} must be a list of [x, y, z] voxel points`, { key });
      }
      for (const p of v) {
        const ok =
          Array.isArray(p) &&
          (p.length === spatial.length || (spatial.length === 2 && p.length === 3 && p[2] === 0)) &&
          p.every((x: unknown) => typeof x === "number" && Number.isFinite(x));
        if (!ok) {
          throw new InvalidInputError(
            `${key}: click ${JSON.stringify(p)} must have ${spatial.length} numeric voxel coordinates`,
            { key, point: p },
          );
        }
        const outside = spatial.some((s, i) => Math.trunc(p[i] as number) < 0 || Math.trunc(p[i] as number) >= s);
        if (outside) {
          throw new InvalidInputError(
            `${key}: click ${JSON.stringify(p)} is outside the image (voxel shape [${spatial.join(", ")}])`,
            { key, point: p, shape: spatial },
          );
        }
      }
    }
    return data;
  }
}

function parseJson(raw: unknown, key: string): unknown {
  if (typeof raw !== "string") {
    return raw;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new InvalidInputError(`${key} must be a list of [x, y, z] voxel points (JSON), got ${raw}`, { key });
  }
}

export interface Fetch2DSlicedOptions extends MapTransformOptions {
  /** `[pos, neg, slice]` from AddGuidanceFromPointsd (default "guidance"). */
  guidance?: string;
}

/**
 * MONAI's `Fetch2DSliced`: the guidance's slice of a 3D image (along the last, depth axis here), recorded
 * in the tensor's meta as `slice_idx` with the 3D `foreground_volume_shape`, for RestoreLabeld.
 */
export class Fetch2DSliced extends MapTransform {
  readonly guidance: string;
  constructor(options: Fetch2DSlicedOptions) {
    super(options);
    this.guidance = options.guidance ?? "guidance";
  }
  call(data: Data): Data {
    const d = { ...data };
    const g = d[this.guidance] as unknown[];
    const sliceIdx = g[2];
    if (typeof sliceIdx !== "number") {
      throw new Error("Fetch2DSliced: the guidance has no slice index (AddGuidanceFromPointsd with spatialDims 2)");
    }
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const [X, Y, Z] = t.spatialShape as [number, number, number];
      if (t.spatialShape.length !== 3 || sliceIdx < 0 || sliceIdx >= Z) {
        throw new InvalidInputError(`Fetch2DSliced: slice ${sliceIdx} not in image [${t.shape.join(", ")}]`);
      }
      const out = new Float32Array(t.channels * X * Y);
      for (let c = 0; c < t.channels; c++) {
        out.set(t.data.subarray(c * X * Y * Z + sliceIdx * X * Y, c * X * Y * Z + (sliceIdx + 1) * X * Y), c * X * Y);
      }
      d[key] = t.derive({
        data: out,
        shape: [t.channels, X, Y],
        meta: { ...t.meta, slice_idx: sliceIdx, foreground_volume_shape: [X, Y, Z] },
      });
    }
    return d;
  }
}

export interface SpatialCropGuidancedOptions extends MapTransformOptions {
  guidance?: string;
  /** At least this box (clamped to the image); default the image. */
  spatialSize?: number[];
  /** Voxels added around the clicks' bounding box (default 20). */
  margin?: number;
}

/**
 * MONAI's `SpatialCropGuidanced`: crops the keys to a box around the clicks (their bounding box plus
 * `margin`, grown to `spatialSize` around its centre, kept inside the image); without clicks, the centre box.
 * Moves the clicks into the crop and records `foreground_start_coord`, `foreground_end_coord`,
 * `foreground_original_shape` and `foreground_cropped_shape` in each tensor's meta (for RestoreLabeld).
 */
export class SpatialCropGuidanced extends MapTransform {
  readonly guidance: string;
  readonly spatialSize: number[] | undefined;
  readonly margin: number;
  constructor(options: SpatialCropGuidancedOptions) {
    super(options);
    this.guidance = options.guidance ?? "guidance";
    this.spatialSize = options.spatialSize;
    this.margin = options.margin ?? 20;
  }

  /** [start, end) of the crop box for an image of `spatial` shape. */
  box(spatial: readonly number[], guidance: unknown): { start: number[]; end: number[] } {
    const r = spatial.length;
    const points = allPoints(guidance).map((p) => pointCoords(p, r));
    const start: number[] = [];
    const end: number[] = [];
    for (let a = 0; a < r; a++) {
      const size = spatial[a]!;
      const want = Math.min(size, Math.max(1, this.spatialSize?.[a] ?? size));
      let lo: number;
      let hi: number;
      if (points.length > 0) {
        lo = Math.max(0, Math.min(...points.map((p) => p[a]!)) - this.margin);
        hi = Math.min(size, Math.max(...points.map((p) => p[a]!)) + this.margin + 1);
      } else {
        lo = Math.floor(size / 2);
        hi = lo + 1;
      }
      if (hi - lo < want) {
        const centre = Math.floor((lo + hi) / 2);
        lo = centre - Math.floor(want / 2);
        hi = lo + want;
      }
      if (lo < 0) {
        hi -= lo;
        lo = 0;
      }
      if (hi > size) {
        lo = Math.max(0, lo - (hi - size));
        hi = size;
      }
      start.push(lo);
      end.push(hi);
    }
    return { start, end };
  }

  call(data: Data): Data {
    const d = { ...data };
    let moved = false;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const spatial = t.spatialShape;
      const { start, end } = this.box(spatial, d[this.guidance]);
      const size = end.map((e, i) => e - start[i]!);
      d[key] = t.derive({
        data: cropBox(t, start, size),
        shape: [t.channels, ...size],
        meta: {
          ...t.meta,
          foreground_start_coord: start,
          foreground_end_coord: end,
          foreground_original_shape: [...spatial],
          foreground_cropped_shape: size,
        },
      });
      if (!moved && d[this.guidance] !== undefined) {
        const r = spatial.length;
        d[this.guidance] = mapGuidance(guidanceOf(d[this.guidance]), (p) => {
          const lead = p.slice(0, p.length - r);
          return [...lead, ...pointCoords(p, r).map((x, i) => x - start[i]!)];
        });
        moved = true;
      }
    }
    return d;
  }
}

function guidanceOf(raw: unknown): Guidance {
  return (typeof raw === "string" ? JSON.parse(raw) : raw) as Guidance;
}

/** The box [start, start + size) of every channel. */
function cropBox(t: MetaTensor, start: readonly number[], size: readonly number[]): Float32Array {
  const [X, Y, Z] = pad3(t.spatialShape);
  const [sx = 0, sy = 0, sz = 0] = start;
  const [nx, ny = 1, nz = 1] = pad3(size);
  const out = new Float32Array(t.channels * nx * ny * nz);
  let o = 0;
  for (let c = 0; c < t.channels; c++) {
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        const from = c * X * Y * Z + sx + X * (sy + y + Y * (sz + z));
        out.set(t.data.subarray(from, from + nx), o);
        o += nx;
      }
    }
  }
  return out;
}

export interface ResizeGuidancedOptions {
  guidance?: string;
  /** The resized image; its spatial shape over its meta's `foreground_cropped_shape` scales the clicks. */
  refImage?: string;
}

/** MONAI's `ResizeGuidanced`: clicks scaled from the cropped grid into the resized one (truncated). */
export class ResizeGuidanced implements Transform {
  readonly guidance: string;
  readonly refImage: string;
  constructor(options: ResizeGuidancedOptions = {}) {
    this.guidance = options.guidance ?? "guidance";
    this.refImage = options.refImage ?? "image";
  }
  call(data: Data): Data {
    const t = tensorAt(data, this.refImage, "ResizeGuidanced");
    const spatial = t.spatialShape;
    const r = spatial.length;
    const cropped = beforeResize(t.meta, r) ?? spatial;
    const factor = spatial.map((s, i) => s / cropped[i]!);
    const g = mapGuidance(guidanceOf(data[this.guidance]), (p) => [
      ...p.slice(0, p.length - r),
      ...pointCoords(p, r).map((x, i) => Math.min(spatial[i]! - 1, Math.trunc(x * factor[i]!))),
    ]);
    return { ...data, [this.guidance]: g };
  }
}

export interface RestoreLabeldOptions extends MapTransformOptions {
  /** The image whose meta has the crop / slice record (default "image"). */
  refImage?: string;
  /** Interpolation back to the cropped size (default "nearest"). */
  mode?: InterpolateMode;
}

/**
 * MONAI's deepgrow `RestoreLabeld`: undoes the model-size resize (to `foreground_cropped_shape`), the crop
 * (zeros outside the box, in `foreground_original_shape`) and the 2D slice fetch (the slice put back into a
 * zero volume at `slice_idx`), so the prediction lies on the image grid with the image's affine.
 */
export class RestoreLabeld extends MapTransform {
  readonly refImage: string;
  readonly mode: InterpolateMode;
  constructor(options: RestoreLabeldOptions) {
    super(options);
    this.refImage = options.refImage ?? "image";
    this.mode = options.mode ?? "nearest";
  }
  call(data: Data): Data {
    const d = { ...data };
    const ref = tensorAt(d, this.refImage, this.name);
    const meta = ref.meta;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const C = t.channels;
      let spatial = t.spatialShape;
      let values = t.data;
      const cropped = beforeResize(meta, spatial.length);
      if (cropped?.some((s, i) => s !== spatial[i])) {
        values = resize(values, C, pad3(spatial), pad3(cropped), this.mode);
        spatial = [...cropped];
      }
      const original = meta.foreground_original_shape as number[] | undefined;
      const start = meta.foreground_start_coord as number[] | undefined;
      if (original && start) {
        values = pasteBox(values, C, spatial, original, start);
        spatial = [...original];
      }
      const sliceIdx = meta.slice_idx as number | undefined;
      const volume = meta.foreground_volume_shape as number[] | undefined;
      if (sliceIdx !== undefined && volume) {
        values = pasteBox(values, C, [...spatial, 1], volume, [0, 0, sliceIdx]);
        spatial = [...volume];
      }
      const affine = (meta.original_affine as number[][] | undefined) ?? ref.affine;
      d[key] = new MetaTensor({
        data: values,
        shape: [C, ...spatial],
        affine: cloneAffine(affine),
        meta: { ...meta, spatial_shape: [...spatial] },
      });
    }
    return d;
  }
}

/** The spatial shape the model-size resize started from: the crop's, else the image's as loaded. */
function beforeResize(meta: Record<string, unknown>, r: number): number[] | undefined {
  const cropped = meta.foreground_cropped_shape as number[] | undefined;
  if (cropped) {
    return cropped;
  }
  const loaded = meta.spatial_shape as number[] | undefined;
  return loaded && loaded.length === r ? loaded : undefined;
}

/** `values` [C, ...size] placed at `start` inside a zero [C, ...shape]. */
function pasteBox(
  values: Float32Array,
  C: number,
  size: readonly number[],
  shape: readonly number[],
  start: readonly number[],
): Float32Array {
  const [X, Y, Z] = pad3(shape);
  const [nx, ny, nz] = pad3(size);
  const [sx = 0, sy = 0, sz = 0] = start;
  const out = new Float32Array(C * numel(shape));
  let i = 0;
  for (let c = 0; c < C; c++) {
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        out.set(values.subarray(i, i + nx), c * X * Y * Z + sx + X * (sy + y + Y * (sz + z)));
        i += nx;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Training items from whole volumes

export interface RandDepthCropdOptions extends MapTransformOptions {
  /** The label whose slices the window must hold (default "label"). */
  labelKey?: string;
  /** Slices along the last (depth) axis: 1 gives a 2D item (the depth axis dropped). */
  depth: number;
  /** false: the window centred on the label's middle slice (validation); default true. */
  random?: boolean;
}

/**
 * A window of `depth` axial slices of 3D keys centred on a slice that holds label (chosen at random, or the
 * middle one), so DeepGrow 2D trains on slices and DeepGrow 3D / DeepEdit on slabs of the datastore's volumes,
 * as their infer tasks see them (MONAI Label builds a per-slice dataset for deepgrow 2D instead). Items that
 * are already 2D, or no deeper than the window, pass through.
 */
export class RandDepthCropd extends MapTransform implements Randomizable {
  readonly R = new RandomState();
  readonly labelKey: string;
  readonly depth: number;
  readonly random: boolean;
  constructor(options: RandDepthCropdOptions) {
    super(options);
    this.labelKey = options.labelKey ?? "label";
    this.depth = options.depth;
    this.random = options.random ?? true;
  }
  setRandomState(seed: number): this {
    this.R.seed(seed);
    return this;
  }
  call(data: Data): Data {
    const label = tensorAt(data, this.labelKey, this.name);
    if (label.spatialShape.length !== 3 || (label.spatialShape[2]! <= this.depth && this.depth > 1)) {
      return data;
    }
    const [X, Y, Z] = label.spatialShape as [number, number, number];
    const valid: number[] = [];
    for (let z = 0; z < Z; z++) {
      if (label.data.subarray(z * X * Y, (z + 1) * X * Y).some((v) => v > 0.5)) {
        valid.push(z);
      }
    }
    if (valid.length === 0) {
      throw new InvalidInputError(`${this.name}: the label has no foreground slice`);
    }
    const centre = this.random ? valid[this.R.randint(valid.length)]! : valid[valid.length >> 1]!;
    const z0 = Math.max(0, Math.min(Z - this.depth, centre - Math.floor(this.depth / 2)));
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const size = this.depth === 1 ? [X, Y] : [X, Y, this.depth];
      d[key] = t.derive({ data: cropBox(t, [0, 0, z0], [X, Y, this.depth]), shape: [t.channels, ...size] });
    }
    return d;
  }
}
