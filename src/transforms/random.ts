/**
 * MONAI's random dictionary transforms for training pipelines, a seedable random generator, and pipelines
 * whose transforms may return lists of samples (MONAI's multi-sample transforms such as
 * `RandCropByPosNegLabeld`).
 *
 * Randomness. Every random transform owns a `RandomState` (`R`, as MONAI's `Randomizable`), seeded at
 * construction from `Math.random` (so unseeded runs differ, as MONAI's do) and reseeded with
 * `setRandomState(seed)`. `seedTransforms(pipeline, seed)` seeds every random transform of a pipeline from
 * one seed (MONAI's `Compose.set_random_state`): a data loader calls it before each sample with a seed made
 * from (loader seed, epoch, item), which makes each sample's stream reproducible whichever thread runs it.
 *
 * Spatial transforms draw once per call and apply the same draw to every key (image and label stay
 * aligned); intensity transforms draw one factor / offset / noise field per call shared by all keys, as
 * MONAI's dictionary versions do. The order of draws follows MONAI's (the values differ: this is not numpy's
 * generator).
 */
import { embedAffine, eye, matmul, toAffineNd } from "./affine.js";
import {
  Compose,
  type Data,
  type InverseOptions,
  type InvertibleTransform,
  isInvertible,
  MapTransform,
  type MapTransformOptions,
  type Transform,
} from "./compose.js";
import { cropPadTensor } from "./croppad.js";
import { permuteFlip } from "./kernels.js";
import { type Affine, cloneAffine, type MetaTensor, pad3, spatialOf, type TraceItem, tensorAt } from "./tensor.js";

// ---------------------------------------------------------------------------------------------------
// Random generator

const TWO_32 = 4294967296;

/** Any finite number as an unsigned 32-bit seed (integers in [0, 2^32) are kept as they are). */
export function toSeed(seed: number): number {
  if (!Number.isFinite(seed)) {
    throw new Error(`random seed must be a finite number, got ${seed}`);
  }
  const t = Math.trunc(seed);
  return ((t % TWO_32) + TWO_32) % TWO_32;
}

/** A fresh non-deterministic seed (what a transform starts with until `setRandomState`). */
export function randomSeed(): number {
  return Math.floor(Math.random() * TWO_32);
}

/** Mixes numbers into one 32-bit seed (murmur3's finaliser over each), e.g. (loader seed, epoch, index). */
export function mixSeeds(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ toSeed(v), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/**
 * A small deterministic PRNG (xoshiro128**, seeded through splitmix32) with numpy RandomState's methods
 * that the transforms use: `rand`, `randint`, `uniform`, `normal`, `shuffle`.
 */
export class RandomState {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number = randomSeed()) {
    this.seed(seed);
  }

  /** Restarts the stream from `seed` (any finite number; see `toSeed`). */
  seed(seed: number): this {
    let x = toSeed(seed);
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) {
      this.s0 = 1;
    }
    return this;
  }

  /** The generator's state (to save and restore with `setState`). */
  getState(): [number, number, number, number] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: readonly number[]): this {
    if (state.length !== 4) {
      throw new Error("RandomState.setState: expected 4 numbers");
    }
    [this.s0, this.s1, this.s2, this.s3] = state.map((v) => v | 0) as [number, number, number, number];
    return this;
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A seed for another generator (MONAI draws `randint(MAX_SEED)`). */
  nextSeed(): number {
    return this.nextUint32();
  }

  /** Uniform in [0, 1) with 53 random bits (numpy's `rand()`). */
  rand(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** numpy's `randint`: an integer in [0, low) with one argument, in [low, high) with two. */
  randint(low: number, high?: number): number {
    const lo = high === undefined ? 0 : low;
    const hi = high === undefined ? low : high;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) {
      throw new Error(`randint: need integers low < high, got [${lo}, ${hi})`);
    }
    return lo + Math.floor(this.rand() * (hi - lo));
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.rand();
  }

  /** One normal draw (Box-Muller). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.rand();
    const u2 = this.rand();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fills `out` with normal draws (both Box-Muller outputs used). */
  fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1): typeof out {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = 1 - this.rand();
      const u2 = this.rand();
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) {
        out[i + 1] = mean + r * Math.sin(2 * Math.PI * u2);
      }
    }
    return out;
  }

  /** Shuffles `values` in place (Fisher-Yates) and returns it. */
  shuffle<T>(values: T[]): T[] {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.randint(i + 1);
      const tmp = values[i]!;
      values[i] = values[j]!;
      values[j] = tmp;
    }
    return values;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

// ---------------------------------------------------------------------------------------------------
// Randomizable transforms and pipelines of samples

/** A transform with its own random stream (MONAI's `Randomizable`). */
export interface Randomizable {
  setRandomState(seed: number): unknown;
}

/** True for transforms with `setRandomState` (they start the random part of a pipeline). */
export function isRandomizable(t: unknown): t is Randomizable {
  return typeof t === "object" && t !== null && typeof (t as Partial<Randomizable>).setRandomState === "function";
}

/**
 * A pipeline step: an ordinary `Transform`, or one returning a list of samples (MONAI's multi-sample
 * transforms); the steps after it then apply to each sample.
 */
export interface AnyTransform {
  call(d: Data): Data | Data[] | Promise<Data | Data[]>;
}

/** Something that holds transforms: one transform, a Compose (nested ones too), a MultiSampleCompose, a list. */
export type TransformsLike = AnyTransform | readonly AnyTransform[];

/** The transforms of `t` in order, with Composes (and MultiSampleComposes) expanded. */
export function flattenTransforms(t: TransformsLike): AnyTransform[] {
  if (Array.isArray(t)) {
    return (t as readonly AnyTransform[]).flatMap((x) => flattenTransforms(x));
  }
  if (t instanceof Compose || t instanceof MultiSampleCompose) {
    return t.flatten();
  }
  return [t as AnyTransform];
}

/**
 * MONAI's `Compose.set_random_state`: seeds each random transform of the pipeline with a seed drawn from
 * `RandomState(seed)`, in order. The same seed gives every transform the same stream again.
 */
export function seedTransforms(pipeline: TransformsLike, seed: number): void {
  const master = new RandomState(seed);
  for (const t of flattenTransforms(pipeline)) {
    if (isRandomizable(t)) {
      t.setRandomState(master.nextSeed());
    }
  }
}

/**
 * Splits a pipeline where MONAI's CacheDataset does: `deterministic` is everything before the first random
 * transform (cacheable), `random` the rest.
 */
export function splitAtFirstRandom(pipeline: TransformsLike): {
  deterministic: AnyTransform[];
  random: AnyTransform[];
} {
  const all = flattenTransforms(pipeline);
  const i = all.findIndex((t) => isRandomizable(t));
  return i < 0 ? { deterministic: all, random: [] } : { deterministic: all.slice(0, i), random: all.slice(i) };
}

/**
 * Runs transforms in order (MONAI's `Compose` with `map_items`): when a step returns a list, or the input is
 * one, the following steps apply to each item and their lists are flattened.
 */
export async function applyTransforms(pipeline: TransformsLike, input: Data | readonly Data[]): Promise<Data | Data[]> {
  let out: Data | Data[] = Array.isArray(input) ? [...(input as readonly Data[])] : (input as Data);
  for (const t of flattenTransforms(pipeline)) {
    if (Array.isArray(out)) {
      const next: Data[] = [];
      for (const d of out) {
        const r = await t.call(d);
        if (Array.isArray(r)) {
          next.push(...r);
        } else {
          next.push(r);
        }
      }
      out = next;
    } else {
      out = await t.call(out);
    }
  }
  return out;
}

/**
 * MONAI's `Compose` for pipelines with multi-sample transforms: `call` gives a dictionary, or a list of them
 * once a transform returned a list (the following transforms then apply to each). `setRandomState` seeds
 * every random transform inside (see `seedTransforms`); `inverse` undoes the invertible ones in reverse.
 */
export class MultiSampleCompose implements Randomizable {
  readonly transforms: AnyTransform[];

  constructor(transforms: readonly AnyTransform[]) {
    this.transforms = [...transforms];
  }

  call(d: Data | readonly Data[]): Promise<Data | Data[]> {
    return applyTransforms(this.transforms, d);
  }

  /** `call`, always as a list. */
  async callList(d: Data | readonly Data[]): Promise<Data[]> {
    const out = await this.call(d);
    return Array.isArray(out) ? out : [out];
  }

  flatten(): AnyTransform[] {
    return flattenTransforms(this.transforms);
  }

  setRandomState(seed: number): this {
    seedTransforms(this.transforms, seed);
    return this;
  }

  inverse(d: Data, options?: InverseOptions): Data {
    const invertible = this.flatten().filter((t): t is InvertibleTransform => isInvertible(t as Transform));
    let out = d;
    for (let i = invertible.length - 1; i >= 0; i--) {
      out = invertible[i]!.inverse(out, options);
    }
    return out;
  }
}

/** A MapTransform's key iteration and trace records, for transforms that cannot be MapTransforms. */
class KeyAccess extends MapTransform {
  constructor(
    options: MapTransformOptions,
    private readonly owner: string,
  ) {
    super(options);
  }

  override get name(): string {
    return this.owner ?? "KeyAccess";
  }

  call(d: Data): Data {
    return d;
  }

  keysIn(d: Data, allowMissing?: boolean): Generator<[string, number]> {
    return this.keyIterator(d, allowMissing);
  }

  record(out: MetaTensor, origSize: number[], extraInfo: Record<string, unknown>): MetaTensor {
    return this.trace(out, origSize, extraInfo);
  }

  pop(d: Data, key: string): { tensor: MetaTensor; item: TraceItem } {
    return this.popTrace(d, key);
  }
}

/** Base of the random dictionary transforms: a MapTransform with its own `RandomState` (`R`). */
export abstract class RandomizableMapTransform extends MapTransform implements Randomizable {
  readonly R = new RandomState();

  /** Reseeds this transform's stream; returns the transform. */
  setRandomState(seed: number): this {
    this.R.seed(seed);
    return this;
  }
}

function checkProb(prob: number | undefined, name: string, fallback = 0.1): number {
  const p = prob ?? fallback;
  if (!Number.isFinite(p)) {
    throw new Error(`${name}: prob must be a number, got ${p}`);
  }
  return Math.min(Math.max(p, 0), 1);
}

/** MONAI's `fall_back_tuple`: one size per spatial axis, entries <= 0 taking the image's. */
function fallBackSize(size: number | readonly number[], spatial: readonly number[], name: string): number[] {
  const want = typeof size === "number" ? spatial.map(() => size) : [...size];
  if (want.length !== spatial.length) {
    throw new Error(
      `${name}: size [${want.join(", ")}] does not match the image's ${spatial.length} spatial axes [${spatial.join(", ")}]`,
    );
  }
  return want.map((s, i) => (s > 0 ? Math.floor(s) : spatial[i]!));
}

// ---------------------------------------------------------------------------------------------------
// Geometry helpers

/**
 * Output spatial axis `j` is input spatial axis `perm[j]`, reversed when `flip[j]`; the affine follows so that
 * every voxel keeps its world position.
 */
export function permuteFlipTensor(t: MetaTensor, perm: readonly number[], flip: readonly boolean[]): MetaTensor {
  const spatial = spatialOf(t, "permuteFlip");
  const r = spatial.length;
  const T = eye(r + 1);
  for (let j = 0; j < r; j++) {
    T[j]![j] = 0;
  }
  for (let j = 0; j < r; j++) {
    const i = perm[j]!;
    T[i]![j] = flip[j] ? -1 : 1;
    T[i]![r] = flip[j] ? spatial[i]! - 1 : 0;
  }
  const affine = embedAffine(t.affine, matmul(toAffineNd(r, t.affine), T));
  const perm3 = [0, 1, 2].map((j) => (j < r ? perm[j]! : j));
  const flip3 = [0, 1, 2].map((j) => j < r && Boolean(flip[j]));
  const out = permuteFlip(t.data, t.channels, pad3(spatial), perm3, flip3);
  return t.derive({ data: out.data, shape: [t.channels, ...out.shape.slice(0, r)], affine });
}

/** Flips the given spatial axes (MONAI's `Flip`). */
export function flipTensor(t: MetaTensor, axes: readonly number[]): MetaTensor {
  const r = spatialOf(t, "Flip").length;
  const flip = Array.from({ length: r }, (_, j) => axes.includes(j));
  return permuteFlipTensor(
    t,
    Array.from({ length: r }, (_, j) => j),
    flip,
  );
}

/**
 * `torch.rot90` of the spatial axes `axes` by `k` quarter turns (MONAI's `Rotate90`): for k = 1 output
 * `[i, j] = input[j, n1 - 1 - i]` (from the first axis towards the second), as `np.rot90`.
 */
export function rot90Tensor(t: MetaTensor, k: number, axes: readonly [number, number]): MetaTensor {
  const r = spatialOf(t, "Rotate90").length;
  const [a, b] = axes;
  const perm = Array.from({ length: r }, (_, j) => j);
  const flip = Array.from({ length: r }, () => false);
  const kk = ((k % 4) + 4) % 4;
  if (kk === 0) {
    return t.derive({ data: t.data, shape: t.shape });
  }
  if (kk === 2) {
    flip[a] = true;
    flip[b] = true;
  } else {
    perm[a] = b;
    perm[b] = a;
    flip[kk === 1 ? a : b] = true;
  }
  return permuteFlipTensor(t, perm, flip);
}

function normAxis(axis: number, r: number, name: string): number {
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(a) || a < 0 || a >= r) {
    throw new Error(`${name}: spatial axis ${axis} is out of range for ${r} spatial axes`);
  }
  return a;
}

/** Restores a crop recorded as `{ boxStart, affine }`: zeros around, the original affine. */
function uncrop(t: MetaTensor, boxStart: number[], origSize: number[], affine: Affine): MetaTensor {
  const out = cropPadTensor(
    t,
    boxStart.map((s) => -s),
    origSize,
  );
  out.affine = cloneAffine(affine);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// RandCropByPosNegLabeld

/**
 * MONAI's `map_binary_to_indices`, as voxel indices in this project's memory order (x fastest, see
 * tensor.ts): foreground where any label channel (channel 0 skipped for a one-hot label) is nonzero;
 * background the rest, restricted to where any image channel is above `imageThreshold` when an image is given.
 */
export function mapBinaryToIndices(
  label: MetaTensor,
  image?: MetaTensor,
  imageThreshold = 0,
): { fg: Int32Array; bg: Int32Array } {
  const mask = voxelClasses(label, image, imageThreshold, "mapBinaryToIndices");
  let nf = 0;
  let nb = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 1) {
      nf++;
    } else if (mask[i] === 2) {
      nb++;
    }
  }
  const fg = new Int32Array(nf);
  const bg = new Int32Array(nb);
  nf = 0;
  nb = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 1) {
      fg[nf++] = i;
    } else if (mask[i] === 2) {
      bg[nb++] = i;
    }
  }
  return { fg, bg };
}

/** Per voxel: 1 foreground, 2 background (sampleable), 0 neither. */
function voxelClasses(label: MetaTensor, image: MetaTensor | undefined, threshold: number, name: string): Uint8Array {
  spatialOf(label, name);
  const n = label.channelSize;
  if (image && image.channelSize !== n) {
    throw new Error(
      `${name}: image spatial shape [${image.spatialShape.join(", ")}] differs from the label's [${label.spatialShape.join(", ")}]`,
    );
  }
  const mask = new Uint8Array(n);
  const first = label.channels > 1 ? 1 : 0;
  for (let c = first; c < label.channels; c++) {
    const ch = label.channel(c);
    for (let i = 0; i < n; i++) {
      if (ch[i] !== 0) {
        mask[i] = 1;
      }
    }
  }
  if (image) {
    // background: not foreground, and above the threshold in any image channel
    for (let c = 0; c < image.channels; c++) {
      const ch = image.channel(c);
      for (let i = 0; i < n; i++) {
        if (mask[i] === 0 && ch[i]! > threshold) {
          mask[i] = 2;
        }
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      if (mask[i] === 0) {
        mask[i] = 2;
      }
    }
  }
  return mask;
}

/** The voxel (x, y, z...) of a memory-order index. */
function unravel(index: number, spatial: readonly number[]): number[] {
  const out: number[] = [];
  let rest = index;
  for (const s of spatial) {
    out.push(rest % s);
    rest = Math.floor(rest / s);
  }
  return out;
}

/**
 * MONAI's `correct_crop_centers` followed by `SpatialCrop(roi_center, roi_size)`: the crop box `[start,
 * start + size)` for a centre, shifted so that it lies inside the image. On an axis where the image is
 * smaller than the ROI the box covers the whole axis: with `allowSmaller` the crop is smaller there (MONAI),
 * otherwise it is padded symmetrically to the ROI size (MONAI would raise).
 */
export function cropBoxForCenter(
  center: readonly number[],
  roi: readonly number[],
  spatial: readonly number[],
  allowSmaller = false,
): { start: number[]; size: number[]; center: number[] } {
  const start: number[] = [];
  const size: number[] = [];
  const corrected: number[] = [];
  for (let i = 0; i < spatial.length; i++) {
    const n = spatial[i]!;
    const want = roi[i]!;
    if (n < want) {
      const s = allowSmaller ? 0 : -Math.floor((want - n) / 2);
      start.push(s);
      size.push(allowSmaller ? n : want);
      corrected.push(Math.floor(n / 2));
      continue;
    }
    const validStart = Math.floor(want / 2);
    let validEnd = Math.floor(n + 1 - want / 2);
    if (validStart === validEnd) {
      validEnd += 1;
    }
    const c = Math.min(Math.max(center[i]!, validStart), validEnd - 1);
    corrected.push(c);
    start.push(Math.max(c - Math.floor(want / 2), 0));
    size.push(want);
  }
  return { start, size, center: corrected };
}

export interface RandCropByPosNegLabeldOptions extends MapTransformOptions {
  /** The label whose foreground (nonzero; channels 1.. of a one-hot label) gives the positive centres. */
  labelKey: string;
  /** Crop size; one number for every axis, entries <= 0 take the image's size. */
  spatialSize: number | number[];
  /** Weight of positive (foreground-centred) samples (default 1). */
  pos?: number;
  /** Weight of negative (background-centred) samples (default 1). */
  neg?: number;
  /** Crops per call (default 1): the transform returns a list of that many dictionaries. */
  numSamples?: number;
  /** With an image, negative centres are only taken where the image is above `imageThreshold`. */
  imageKey?: string;
  imageThreshold?: number;
  /**
   * Keys holding precomputed foreground / background voxel indices (memory order, see `mapBinaryToIndices`);
   * taken out of the dictionary, as MONAI's.
   */
  fgIndicesKey?: string;
  bgIndicesKey?: string;
  /**
   * Where the image is smaller than `spatialSize`: true, the crop is smaller (MONAI's allow_smaller); false
   * (default), the crop is padded with zeros to `spatialSize` (MONAI raises), so samples stack into batches.
   */
  allowSmaller?: boolean;
}

/**
 * MONAI's `RandCropByPosNegLabeld`: `numSamples` crops of `spatialSize`, each centred on a foreground voxel
 * of the label with probability pos / (pos + neg), else on a background voxel, the centre moved so that the
 * crop stays inside the image. Returns a LIST of dictionaries (the other keys shallow-copied into each),
 * each cropped tensor's meta holding `patch_index` and `crop_center`. When the label has no foreground
 * (or no background) every sample takes the other kind, as MONAI's. Invertible (zeros around the crop).
 */
export class RandCropByPosNegLabeld implements AnyTransform, Randomizable {
  readonly R = new RandomState();
  readonly keys: string[];
  readonly allowMissingKeys: boolean;
  /** Key iteration and trace records of a MapTransform (this one returns lists, which a MapTransform cannot). */
  private readonly map: KeyAccess;
  readonly labelKey: string;
  readonly spatialSize: number | number[];
  readonly posRatio: number;
  readonly numSamples: number;
  readonly imageKey: string | undefined;
  readonly imageThreshold: number;
  readonly fgIndicesKey: string | undefined;
  readonly bgIndicesKey: string | undefined;
  readonly allowSmaller: boolean;
  /** The centres (corrected) of the last call, as MONAI's `centers`. */
  centers: number[][] = [];

  constructor(options: RandCropByPosNegLabeldOptions) {
    this.map = new KeyAccess(options, "RandCropByPosNegLabeld");
    this.keys = this.map.keys;
    this.allowMissingKeys = this.map.allowMissingKeys;
    const pos = options.pos ?? 1;
    const neg = options.neg ?? 1;
    if (!(pos >= 0) || !(neg >= 0) || pos + neg === 0) {
      throw new Error(`RandCropByPosNegLabeld: pos and neg must be >= 0 and not both 0, got ${pos} and ${neg}`);
    }
    this.labelKey = options.labelKey;
    this.spatialSize = options.spatialSize;
    this.posRatio = pos / (pos + neg);
    this.numSamples = options.numSamples ?? 1;
    if (!Number.isInteger(this.numSamples) || this.numSamples < 1) {
      throw new Error(`RandCropByPosNegLabeld: numSamples must be a positive integer, got ${this.numSamples}`);
    }
    this.imageKey = options.imageKey;
    this.imageThreshold = options.imageThreshold ?? 0;
    this.fgIndicesKey = options.fgIndicesKey;
    this.bgIndicesKey = options.bgIndicesKey;
    this.allowSmaller = options.allowSmaller ?? false;
  }

  get name(): string {
    return "RandCropByPosNegLabeld";
  }

  setRandomState(seed: number): this {
    this.R.seed(seed);
    return this;
  }

  /**
   * MONAI's `generate_pos_neg_label_crop_centers`: per sample one `rand()` (positive or not), one
   * `randint(count)` (which voxel); returns the chosen voxels (uncorrected).
   */
  randomize(
    label: MetaTensor,
    image?: MetaTensor,
    fgIndices?: ArrayLike<number>,
    bgIndices?: ArrayLike<number>,
  ): number[][] {
    const spatial = spatialOf(label, this.name);
    let mask: Uint8Array | undefined;
    let nf: number;
    let nb: number;
    if (fgIndices && bgIndices) {
      nf = fgIndices.length;
      nb = bgIndices.length;
    } else {
      mask = voxelClasses(label, image, this.imageThreshold, this.name);
      nf = 0;
      nb = 0;
      for (let i = 0; i < mask.length; i++) {
        if (mask[i] === 1) {
          nf++;
        } else if (mask[i] === 2) {
          nb++;
        }
      }
    }
    if (nf === 0 && nb === 0) {
      throw new Error(`${this.name}: no sampling location available (no foreground and no background voxel)`);
    }
    const ratio = nf === 0 ? 0 : nb === 0 ? 1 : this.posRatio;
    const picks: { fg: boolean; rank: number }[] = [];
    for (let s = 0; s < this.numSamples; s++) {
      const fg = this.R.rand() < ratio;
      picks.push({ fg, rank: this.R.randint(fg ? nf : nb) });
    }
    const indices = new Array<number>(picks.length).fill(-1);
    if (mask) {
      // resolve the ranks in one pass instead of listing every index
      const order = picks.map((_, i) => i).sort((i, j) => picks[i]!.rank - picks[j]!.rank);
      const fgOrder = order.filter((i) => picks[i]!.fg);
      const bgOrder = order.filter((i) => !picks[i]!.fg);
      let fi = 0;
      let bi = 0;
      let cf = 0;
      let cb = 0;
      for (let v = 0; v < mask.length && (fi < fgOrder.length || bi < bgOrder.length); v++) {
        const m = mask[v];
        if (m === 1) {
          while (fi < fgOrder.length && picks[fgOrder[fi]!]!.rank === cf) {
            indices[fgOrder[fi++]!] = v;
          }
          cf++;
        } else if (m === 2) {
          while (bi < bgOrder.length && picks[bgOrder[bi]!]!.rank === cb) {
            indices[bgOrder[bi++]!] = v;
          }
          cb++;
        }
      }
    } else {
      picks.forEach((p, i) => {
        indices[i] = Number((p.fg ? fgIndices! : bgIndices!)[p.rank]);
      });
    }
    return indices.map((i) => unravel(i, spatial));
  }

  call(data: Data): Data[] {
    const d = { ...data };
    const fgIndices = this.fgIndicesKey !== undefined ? d[this.fgIndicesKey] : undefined;
    const bgIndices = this.bgIndicesKey !== undefined ? d[this.bgIndicesKey] : undefined;
    if (this.fgIndicesKey !== undefined) {
      delete d[this.fgIndicesKey];
    }
    if (this.bgIndicesKey !== undefined) {
      delete d[this.bgIndicesKey];
    }
    const label = tensorAt(d, this.labelKey, this.name);
    const image = this.imageKey !== undefined ? tensorAt(d, this.imageKey, this.name) : undefined;
    const spatial = label.spatialShape;
    const roi = fallBackSize(this.spatialSize, spatial, this.name);
    const voxels = this.randomize(
      label,
      image,
      fgIndices as ArrayLike<number> | undefined,
      bgIndices as ArrayLike<number> | undefined,
    );
    const boxes = voxels.map((v) => cropBoxForCenter(v, roi, spatial, this.allowSmaller));
    this.centers = boxes.map((b) => b.center);
    const out: Data[] = boxes.map(() => ({ ...d }));
    for (const [key] of this.map.keysIn(d)) {
      const t = tensorAt(d, key, this.name);
      boxes.forEach((box, i) => {
        const cropped = cropPadTensor(t, box.start, box.size);
        cropped.meta = { ...cropped.meta, patch_index: i, crop_center: [...box.center] };
        out[i]![key] = this.map.record(cropped, t.spatialShape, { affine: cloneAffine(t.affine), boxStart: box.start });
      });
    }
    return out;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.map.keysIn(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.map.pop(d, key);
      d[key] = uncrop(tensor, item.extraInfo.boxStart as number[], item.origSize, item.extraInfo.affine as Affine);
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// RandSpatialCropd

export interface RandSpatialCropdOptions extends MapTransformOptions {
  /** Crop size (the minimum with randomSize); entries <= 0 take the image's size. */
  roiSize: number | number[];
  /** With randomSize, the maximum size (default the image's). */
  maxRoiSize?: number | number[];
  /** A random position (default true); false: the centre. */
  randomCenter?: boolean;
  /** A random size in [roiSize, maxRoiSize] per axis (default false, MONAI's current default). */
  randomSize?: boolean;
}

/**
 * MONAI's `RandSpatialCropd`: a `roiSize` crop at a random position (or the centre), the same box for all
 * keys (drawn from the first key's shape). Like MONAI's it never pads: a ROI larger than the image keeps
 * the whole axis. Invertible (zeros around the crop).
 */
export class RandSpatialCropd extends RandomizableMapTransform implements InvertibleTransform {
  readonly roiSize: number | number[];
  readonly maxRoiSize: number | number[] | undefined;
  readonly randomCenter: boolean;
  readonly randomSize: boolean;

  constructor(options: RandSpatialCropdOptions) {
    super(options);
    this.roiSize = options.roiSize;
    this.maxRoiSize = options.maxRoiSize;
    this.randomCenter = options.randomCenter ?? true;
    this.randomSize = options.randomSize ?? false;
  }

  /** The crop box for an image of spatial size `spatial` (draws: sizes, then the corner, as MONAI). */
  randomize(spatial: readonly number[]): { start: number[]; size: number[] } {
    let size = fallBackSize(this.roiSize, spatial, this.name);
    if (this.randomSize) {
      const max = this.maxRoiSize === undefined ? [...spatial] : fallBackSize(this.maxRoiSize, spatial, this.name);
      if (size.some((s, i) => s > max[i]!)) {
        throw new Error(`${this.name}: roiSize [${size.join(", ")}] exceeds maxRoiSize [${max.join(", ")}]`);
      }
      size = size.map((s, i) => this.R.randint(s, max[i]! + 1));
    }
    const valid = size.map((s, i) => Math.min(s, spatial[i]!));
    if (this.randomCenter) {
      const start = valid.map((v, i) => this.R.randint(0, spatial[i]! - v + 1));
      return { start, size: valid };
    }
    const start = size.map((s, i) => Math.max(Math.floor(spatial[i]! / 2) - Math.floor(s / 2), 0));
    return { start, size: start.map((s, i) => Math.min(s + size[i]!, spatial[i]!) - s) };
  }

  call(data: Data): Data {
    const d = { ...data };
    let box: { start: number[]; size: number[] } | undefined;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      box ??= this.randomize(spatialOf(t, this.name));
      const out = cropPadTensor(t, box.start, box.size);
      d[key] = this.trace(out, t.spatialShape, { affine: cloneAffine(t.affine), boxStart: box.start });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      d[key] = uncrop(tensor, item.extraInfo.boxStart as number[], item.origSize, item.extraInfo.affine as Affine);
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// RandFlipd, RandRotate90d

export interface RandFlipdOptions extends MapTransformOptions {
  /** Probability of flipping (default 0.1). */
  prob?: number;
  /** Spatial axis or axes to flip (negative counts from the end); null/undefined: all of them. */
  spatialAxis?: number | number[] | null;
}

/** MONAI's `RandFlipd`: with probability `prob`, flips the spatial axes (all keys alike); invertible. */
export class RandFlipd extends RandomizableMapTransform implements InvertibleTransform {
  readonly prob: number;
  readonly spatialAxis: number[] | null;

  constructor(options: RandFlipdOptions) {
    super(options);
    this.prob = checkProb(options.prob, "RandFlipd");
    const a = options.spatialAxis;
    this.spatialAxis = a === undefined || a === null ? null : typeof a === "number" ? [a] : [...a];
  }

  private axes(r: number): number[] {
    return this.spatialAxis === null
      ? Array.from({ length: r }, (_, i) => i)
      : this.spatialAxis.map((a) => normAxis(a, r, this.name));
  }

  call(data: Data): Data {
    const d = { ...data };
    const doTransform = this.R.rand() < this.prob;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const axes = this.axes(spatialOf(t, this.name).length);
      const out = doTransform ? flipTensor(t, axes) : t.derive({ data: t.data, shape: t.shape });
      d[key] = this.trace(out, t.spatialShape, { doTransform, axes, affine: cloneAffine(t.affine) });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const out = item.extraInfo.doTransform ? flipTensor(tensor, item.extraInfo.axes as number[]) : tensor;
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}

export interface RandRotate90dOptions extends MapTransformOptions {
  /** Probability of rotating (default 0.1). */
  prob?: number;
  /** The number of quarter turns is drawn from 1..maxK (default 3). */
  maxK?: number;
  /** The two spatial axes of the rotation plane (default [0, 1]), from the first towards the second. */
  spatialAxes?: [number, number];
}

/**
 * MONAI's `RandRotate90d`: with probability `prob`, `k` quarter turns (k uniform in 1..maxK) in the plane
 * of `spatialAxes`, as `torch.rot90` (see `rot90Tensor`); all keys alike. Invertible.
 */
export class RandRotate90d extends RandomizableMapTransform implements InvertibleTransform {
  readonly prob: number;
  readonly maxK: number;
  readonly spatialAxes: [number, number];
  /** The k of the last call. */
  k = 0;

  constructor(options: RandRotate90dOptions) {
    super(options);
    this.prob = checkProb(options.prob, "RandRotate90d");
    this.maxK = options.maxK ?? 3;
    if (!Number.isInteger(this.maxK) || this.maxK < 1) {
      throw new Error(`RandRotate90d: maxK must be a positive integer, got ${this.maxK}`);
    }
    this.spatialAxes = options.spatialAxes ? [...options.spatialAxes] : [0, 1];
  }

  private plane(r: number): [number, number] {
    const a = normAxis(this.spatialAxes[0], r, this.name);
    const b = normAxis(this.spatialAxes[1], r, this.name);
    if (a === b) {
      throw new Error(`${this.name}: spatialAxes must be two different axes, got [${this.spatialAxes.join(", ")}]`);
    }
    return [a, b];
  }

  call(data: Data): Data {
    const d = { ...data };
    // MONAI's order: k first, then whether to rotate
    this.k = this.R.randint(this.maxK) + 1;
    const doTransform = this.R.rand() < this.prob;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const axes = this.plane(spatialOf(t, this.name).length);
      const out = doTransform ? rot90Tensor(t, this.k, axes) : t.derive({ data: t.data, shape: t.shape });
      d[key] = this.trace(out, t.spatialShape, { doTransform, k: this.k, axes, affine: cloneAffine(t.affine) });
    }
    return d;
  }

  inverse(data: Data, options?: InverseOptions): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d, options?.allowMissingKeys || this.allowMissingKeys)) {
      const { tensor, item } = this.popTrace(d, key);
      const out = item.extraInfo.doTransform
        ? rot90Tensor(tensor, -(item.extraInfo.k as number), item.extraInfo.axes as [number, number])
        : tensor;
      out.affine = cloneAffine(item.extraInfo.affine as Affine);
      d[key] = out;
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Intensity

/** A symmetric range for one number (`[-|v|, |v|]`), or the sorted pair. */
function rangeOf(v: number | readonly [number, number], name: string): [number, number] {
  if (typeof v === "number") {
    return [Math.min(-v, v), Math.max(-v, v)];
  }
  if (v.length !== 2) {
    throw new Error(`${name}: expected one number or a [min, max] pair, got [${v.join(", ")}]`);
  }
  return [Math.min(v[0], v[1]), Math.max(v[0], v[1])];
}

/** Applies `f(value, channel)` to every voxel of every key, sharing one draw across keys. */
function mapVoxels(name: string, d: Data, keys: Iterable<[string, number]>, f: (v: number, c: number) => number): void {
  for (const [key] of keys) {
    const t = tensorAt(d, key, name);
    const out = new Float32Array(t.data.length);
    const n = t.channelSize;
    for (let c = 0; c < t.channels; c++) {
      const base = c * n;
      for (let i = 0; i < n; i++) {
        out[base + i] = f(t.data[base + i]!, c);
      }
    }
    d[key] = t.derive({ data: out, shape: t.shape });
  }
}

export interface RandScaleIntensitydOptions extends MapTransformOptions {
  /** The factor range: one number f for [-f, f], or [min, max]; values become `v * (1 + factor)`. */
  factors: number | [number, number];
  /** Probability of scaling (default 0.1). */
  prob?: number;
  /** One factor per channel (default false: one for all). */
  channelWise?: boolean;
}

/** MONAI's `RandScaleIntensityd`: with probability `prob`, `v * (1 + factor)`, the factor shared by all keys. */
export class RandScaleIntensityd extends RandomizableMapTransform {
  readonly factors: [number, number];
  readonly prob: number;
  readonly channelWise: boolean;
  /** The factor(s) of the last applied call. */
  factor: number[] = [];

  constructor(options: RandScaleIntensitydOptions) {
    super(options);
    this.factors = rangeOf(options.factors, "RandScaleIntensityd factors");
    this.prob = checkProb(options.prob, "RandScaleIntensityd");
    this.channelWise = options.channelWise ?? false;
  }

  call(data: Data): Data {
    const d = { ...data };
    const keys = [...this.keyIterator(d)];
    if (!(this.R.rand() < this.prob) || keys.length === 0) {
      return d;
    }
    const channels = this.channelWise ? tensorAt(d, keys[0]![0], this.name).channels : 1;
    this.factor = Array.from({ length: channels }, () => this.R.uniform(this.factors[0], this.factors[1]));
    const f = this.factor;
    mapVoxels(this.name, d, keys, (v, c) => v * (1 + (f[this.channelWise ? c : 0] ?? 0)));
    return d;
  }
}

export interface RandShiftIntensitydOptions extends MapTransformOptions {
  /** The offset range: one number o for [-o, o], or [min, max]; values become `v + offset`. */
  offsets: number | [number, number];
  /** Probability of shifting (default 0.1). */
  prob?: number;
  /** One offset per channel (default false). */
  channelWise?: boolean;
}

/**
 * MONAI's `RandShiftIntensityd`: with probability `prob`, `v + offset`, the offset shared by all keys
 * (MONAI's `safe` and `factor_key` are not supported).
 */
export class RandShiftIntensityd extends RandomizableMapTransform {
  readonly offsets: [number, number];
  readonly prob: number;
  readonly channelWise: boolean;
  /** The offset(s) of the last applied call. */
  offset: number[] = [];

  constructor(options: RandShiftIntensitydOptions) {
    super(options);
    this.offsets = rangeOf(options.offsets, "RandShiftIntensityd offsets");
    this.prob = checkProb(options.prob, "RandShiftIntensityd");
    this.channelWise = options.channelWise ?? false;
  }

  call(data: Data): Data {
    const d = { ...data };
    const keys = [...this.keyIterator(d)];
    if (!(this.R.rand() < this.prob) || keys.length === 0) {
      return d;
    }
    const channels = this.channelWise ? tensorAt(d, keys[0]![0], this.name).channels : 1;
    this.offset = Array.from({ length: channels }, () => this.R.uniform(this.offsets[0], this.offsets[1]));
    const o = this.offset;
    mapVoxels(this.name, d, keys, (v, c) => v + (o[this.channelWise ? c : 0] ?? 0));
    return d;
  }
}

export interface RandGaussianNoisedOptions extends MapTransformOptions {
  /** Probability of adding noise (default 0.1). */
  prob?: number;
  /** Mean of the noise (default 0). */
  mean?: number;
  /** Standard deviation (default 0.1); with sampleStd the std is drawn uniformly in [0, std]. */
  std?: number;
  /** Draw the std in [0, std] each call (MONAI's default since 1.2: true). */
  sampleStd?: boolean;
}

/**
 * MONAI's `RandGaussianNoised`: with probability `prob`, adds normal noise N(mean, std) of the first key's
 * shape; every key gets the same noise field (so they must have the same number of values).
 */
export class RandGaussianNoised extends RandomizableMapTransform {
  readonly prob: number;
  readonly mean: number;
  readonly std: number;
  readonly sampleStd: boolean;

  constructor(options: RandGaussianNoisedOptions) {
    super(options);
    this.prob = checkProb(options.prob, "RandGaussianNoised");
    this.mean = options.mean ?? 0;
    this.std = options.std ?? 0.1;
    if (!(this.std >= 0)) {
      throw new Error(`RandGaussianNoised: std must be >= 0, got ${this.std}`);
    }
    this.sampleStd = options.sampleStd ?? true;
  }

  call(data: Data): Data {
    const d = { ...data };
    const keys = [...this.keyIterator(d)];
    if (!(this.R.rand() < this.prob) || keys.length === 0) {
      return d;
    }
    const first = tensorAt(d, keys[0]![0], this.name);
    const std = this.sampleStd ? this.R.uniform(0, this.std) : this.std;
    const noise = this.R.fillNormal(new Float32Array(first.data.length), this.mean, std);
    for (const [key] of keys) {
      const t = tensorAt(d, key, this.name);
      if (t.data.length !== noise.length) {
        throw new Error(
          `${this.name}: data["${key}"] has shape [${t.shape.join(", ")}], the noise [${first.shape.join(", ")}]`,
        );
      }
      const out = new Float32Array(noise.length);
      for (let i = 0; i < out.length; i++) {
        out[i] = t.data[i]! + noise[i]!;
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}
