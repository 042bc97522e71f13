import { type Data, MapTransform, type MapTransformOptions, type Transform } from "./compose.js";
import { gaussianKernel1d } from "./kernels.js";
import { MetaTensor, pad3, tensorAt } from "./tensor.js";

/**
 * Click guidance (MONAI's deepgrow and deepedit transforms, as MONAI Label's DeepGrow/DeepEdit infer tasks
 * use them). Clicks arrive in voxel (IJK) coordinates of the image as loaded; these transforms scale them by
 * `current spatial shape / original spatial_shape` into the transformed image's grid (so Spacingd and
 * Resized are accounted for; crops and flips are not, as in MONAI), and turn them into Gaussian signal
 * channels for the network.
 */

type Point = number[];

/** The reference image's meta: from the MetaTensor, else `${ref}_${postfix}`. */
function refMeta(d: Data, ref: string, metaKeys: string | undefined, postfix: string, name: string) {
  const value = d[ref];
  if (value instanceof MetaTensor) {
    return value.meta;
  }
  const meta = d[metaKeys ?? `${ref}_${postfix}`];
  if (meta && typeof meta === "object") {
    return meta as Record<string, unknown>;
  }
  throw new Error(`${name}: no meta for "${ref}" (neither a MetaTensor nor ${metaKeys ?? `${ref}_${postfix}`})`);
}

function shapeFactor(d: Data, ref: string, meta: Record<string, unknown>, name: string): number[] {
  const original = meta.spatial_shape;
  if (!Array.isArray(original)) {
    throw new Error(`${name}: missing "spatial_shape" in the meta of "${ref}"`);
  }
  const current = tensorAt(d, ref, name).spatialShape;
  if (current.length !== original.length) {
    throw new Error(
      `${name}: "${ref}" has ${current.length} spatial axes but its spatial_shape [${original.join(", ")}] has ${original.length}`,
    );
  }
  return current.map((c, i) => c / (original[i] as number));
}

function parsePoints(value: unknown, what: string): Point[] {
  const v = typeof value === "string" ? (JSON.parse(value) as unknown) : value;
  if (v === undefined || v === null) {
    return [];
  }
  if (!Array.isArray(v) || v.some((p) => !Array.isArray(p) || p.some((x: unknown) => typeof x !== "number"))) {
    throw new Error(`${what} must be a list of points (lists of numbers), got ${JSON.stringify(v)}`);
  }
  return v as Point[];
}

/** `np.multiply(points.astype(int), factor).astype(int)`: truncation toward zero, twice. */
function scalePoints(points: Point[], factor: readonly number[]): Point[] {
  return points.map((p) => p.map((x, i) => Math.trunc(Math.trunc(x) * (factor[i] ?? 1))));
}

// ---------------------------------------------------------------------------------------------------

export interface AddGuidanceFromPointsdOptions {
  /** The image whose current vs original spatial shape scales the clicks. */
  refImage: string;
  /** Output key (default "guidance"). */
  guidance?: string;
  /** Key of the foreground clicks (default "foreground"). */
  foreground?: string;
  /** Key of the background clicks (default "background"). */
  background?: string;
  /** The slice axis for 2D (default 0). */
  axis?: number;
  /** The image has depth first now (default true, as MONAI's; false for MONAI Label's 3D deepgrow). */
  depthFirst?: boolean;
  /** 2 (default: the clicks of one slice, the slice index dropped) or 3. */
  spatialDims?: 2 | 3;
  /** Key of the slice to take in 2D (default "slice"; the first clicked slice when absent). */
  sliceKey?: string;
  metaKeys?: string;
  metaKeyPostfix?: string;
}

/**
 * MONAI's deepgrow `AddGuidanceFromPointsd`: foreground/background clicks (IJK of the original image) scaled
 * into the current grid. 3D: `[pos, neg]`; 2D: `[pos, neg, slice]` with the clicks on that slice, minus the
 * slice coordinate.
 */
export class AddGuidanceFromPointsd implements Transform {
  readonly refImage: string;
  readonly guidance: string;
  readonly foreground: string;
  readonly background: string;
  readonly axis: number;
  readonly depthFirst: boolean;
  readonly spatialDims: 2 | 3;
  readonly sliceKey: string;
  readonly metaKeys: string | undefined;
  readonly metaKeyPostfix: string;

  constructor(options: AddGuidanceFromPointsdOptions) {
    this.refImage = options.refImage;
    this.guidance = options.guidance ?? "guidance";
    this.foreground = options.foreground ?? "foreground";
    this.background = options.background ?? "background";
    this.axis = options.axis ?? 0;
    this.depthFirst = options.depthFirst ?? true;
    this.spatialDims = options.spatialDims ?? 2;
    this.sliceKey = options.sliceKey ?? "slice";
    this.metaKeys = options.metaKeys;
    this.metaKeyPostfix = options.metaKeyPostfix ?? "meta_dict";
    if (this.depthFirst && this.axis !== 0) {
      throw new Error("AddGuidanceFromPointsd: depth first means the depth axis should be 0");
    }
  }

  call(data: Data): Data {
    const name = "AddGuidanceFromPointsd";
    const d = { ...data };
    const meta = refMeta(d, this.refImage, this.metaKeys, this.metaKeyPostfix, name);
    let factor = shapeFactor(d, this.refImage, meta, name);
    const roll = <T>(a: T[]): T[] => (a.length ? [a[a.length - 1]!, ...a.slice(0, -1)] : a);
    if (this.depthFirst) {
      factor = roll(factor);
    }
    const [pos, neg] = [this.foreground, this.background].map((k) => {
      const clicks = parsePoints(d[k], `${name}: data["${k}"]`).map((p) => p.map((x) => Math.trunc(x)));
      return this.depthFirst ? clicks.map(roll) : clicks;
    }) as [Point[], Point[]];
    if (this.spatialDims === 3) {
      d[this.guidance] = [scalePoints(pos, factor), scalePoints(neg, factor)];
      return d;
    }
    const all = [...pos, ...neg];
    if (all.length === 0) {
      throw new Error(`${name}: 2D guidance needs at least one click`);
    }
    const slices = [...new Set(all.map((p) => p[this.axis]!))].sort((a, b) => a - b);
    const wanted = d[this.sliceKey];
    const sliceIdx = wanted === undefined || wanted === null ? slices[0]! : slices.find((s) => s === wanted);
    if (sliceIdx === undefined) {
      throw new Error(`${name}: no click on slice ${JSON.stringify(wanted)}`);
    }
    const onSlice = (points: Point[]) =>
      scalePoints(
        points.filter((p) => p[this.axis] === sliceIdx),
        factor,
      ).map((p) => p.slice(1));
    d[this.guidance] = [onSlice(pos), onSlice(neg), sliceIdx];
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------

export interface AddGuidanceFromPointsDeepEditdOptions {
  refImage: string;
  /** Output key (default "guidance"). */
  guidance?: string;
  /** Label names (and their values), in channel order; each name is also the key of its clicks. */
  labelNames: Record<string, number>;
  metaKeys?: string;
  metaKeyPostfix?: string;
}

/**
 * MONAI's deepedit `AddGuidanceFromPointsDeepEditd`: `{label: clicks}` for each label name (clicks read from
 * `data[label]`, default none), scaled into the current grid.
 */
export class AddGuidanceFromPointsDeepEditd implements Transform {
  readonly refImage: string;
  readonly guidance: string;
  readonly labelNames: Record<string, number>;
  readonly metaKeys: string | undefined;
  readonly metaKeyPostfix: string;

  constructor(options: AddGuidanceFromPointsDeepEditdOptions) {
    this.refImage = options.refImage;
    this.guidance = options.guidance ?? "guidance";
    this.labelNames = options.labelNames;
    this.metaKeys = options.metaKeys;
    this.metaKeyPostfix = options.metaKeyPostfix ?? "meta_dict";
  }

  call(data: Data): Data {
    const name = "AddGuidanceFromPointsDeepEditd";
    const d = { ...data };
    const meta = refMeta(d, this.refImage, this.metaKeys, this.metaKeyPostfix, name);
    const factor = shapeFactor(d, this.refImage, meta, name);
    const all: Record<string, Point[]> = {};
    for (const label of Object.keys(this.labelNames)) {
      all[label] = scalePoints(parsePoints(d[label], `${name}: data["${label}"]`), factor);
    }
    d[this.guidance] = all;
    return d;
  }
}

export interface ResizeGuidanceMultipleLabelDeepEditdOptions {
  guidance: string;
  refImage: string;
}

/**
 * MONAI's deepedit `ResizeGuidanceMultipleLabelDeepEditd`: scales every label's guidance by the reference
 * image's current / original spatial shape (after Resized).
 */
export class ResizeGuidanceMultipleLabelDeepEditd implements Transform {
  readonly guidance: string;
  readonly refImage: string;

  constructor(options: ResizeGuidanceMultipleLabelDeepEditdOptions) {
    this.guidance = options.guidance;
    this.refImage = options.refImage;
  }

  call(data: Data): Data {
    const name = "ResizeGuidanceMultipleLabelDeepEditd";
    const d = { ...data };
    const meta = refMeta(d, this.refImage, undefined, "meta_dict", name);
    const factor = shapeFactor(d, this.refImage, meta, name);
    const guidance = (d[this.guidance] ?? {}) as Record<string, unknown>;
    const out: Record<string, Point[]> = {};
    for (const [label, points] of Object.entries(guidance)) {
      out[label] = parsePoints(points, `${name}: guidance["${label}"]`).map((p) =>
        p.map((x, i) => Math.trunc(x * (factor[i] ?? 1))),
      );
    }
    d[this.guidance] = out;
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------

/**
 * One guidance channel: 1 at each click (clamped into the grid; clicks with a negative coordinate skipped),
 * smoothed with MONAI's GaussianFilter (erf kernel, truncated at 4 sigma, zero padding), then min-max
 * normalised to [0, 1]. All zeros without clicks. `spatial` has 2 or 3 axes; clicks use their last 2 or 3
 * coordinates.
 */
export function guidanceSignal(spatial: readonly number[], points: readonly Point[], sigma: number): Float32Array {
  const shape = pad3(spatial);
  const r = spatial.length;
  const signal = new Float32Array(shape[0] * shape[1] * shape[2]);
  // The smoothed one-hot image is the sum of one separable kernel per distinct click (zero padding cuts it at the
  // border), so only each click's neighbourhood is computed: the same values as convolving the whole grid.
  const seen = new Set<number>();
  const clicks: number[][] = [];
  for (const p of points) {
    if (p.some((x) => x < 0)) {
      continue;
    }
    const c = p.slice(-r).map((x, i) => Math.max(0, Math.min(Math.trunc(x), spatial[i]! - 1)));
    const at = (c[0] ?? 0) + shape[0] * ((c[1] ?? 0) + shape[1] * (c[2] ?? 0));
    if (!seen.has(at)) {
      seen.add(at);
      clicks.push([c[0] ?? 0, c[1] ?? 0, c[2] ?? 0]);
    }
  }
  if (clicks.length === 0) {
    return signal;
  }
  const kernel = gaussianKernel1d(sigma);
  const tail = (kernel.length - 1) / 2;
  const sum = new Float64Array(signal.length);
  const [X, Y, Z] = shape;
  const reach = (a: number) => (a < r ? tail : 0);
  const w = (a: number, d: number) => (a < r ? kernel[d + tail]! : 1);
  for (const [cx, cy, cz] of clicks as [number, number, number][]) {
    for (let z = Math.max(0, cz - reach(2)); z <= Math.min(Z - 1, cz + reach(2)); z++) {
      const wz = w(2, z - cz);
      for (let y = Math.max(0, cy - reach(1)); y <= Math.min(Y - 1, cy + reach(1)); y++) {
        const wyz = wz * w(1, y - cy);
        const row = X * (y + Y * z);
        for (let x = Math.max(0, cx - reach(0)); x <= Math.min(X - 1, cx + reach(0)); x++) {
          sum[row + x] = sum[row + x]! + wyz * w(0, x - cx);
        }
      }
    }
  }
  const smooth = Float32Array.from(sum);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of smooth) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi - lo || 1;
  for (let i = 0; i < smooth.length; i++) {
    smooth[i] = (smooth[i]! - lo) / span;
  }
  return smooth;
}

/** The first `n` channels of `t` followed by `extra` channels, as a new tensor. */
function withChannels(t: MetaTensor, n: number, extra: Float32Array[]): MetaTensor {
  const size = t.channelSize;
  const keep = Math.min(n, t.channels);
  const out = new Float32Array(size * (keep + extra.length));
  out.set(t.data.subarray(0, keep * size));
  extra.forEach((e, i) => {
    out.set(e, (keep + i) * size);
  });
  return t.derive({ data: out, shape: [keep + extra.length, ...t.spatialShape] });
}

export interface AddGuidanceSignalDeepEditdOptions extends MapTransformOptions {
  /** Key of the `{label: clicks}` guidance (default "guidance"). */
  guidance?: string;
  /** Gaussian sigma in voxels (default 3). */
  sigma?: number;
  /** Image channels to keep before the guidance channels (default 1). */
  numberIntensityCh?: number;
}

/**
 * MONAI's deepedit `AddGuidanceSignalDeepEditd`: keeps the first `numberIntensityCh` image channels and
 * appends one guidance channel per label of the guidance dict, in its order.
 */
export class AddGuidanceSignalDeepEditd extends MapTransform {
  readonly guidance: string;
  readonly sigma: number;
  readonly numberIntensityCh: number;

  constructor(options: AddGuidanceSignalDeepEditdOptions) {
    super(options);
    this.guidance = options.guidance ?? "guidance";
    this.sigma = options.sigma ?? 3;
    this.numberIntensityCh = options.numberIntensityCh ?? 1;
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const raw = d[this.guidance];
      const guidance = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? {})) as Record<string, unknown>;
      const spatial = t.spatialShape;
      const signals = Object.entries(guidance).map(([label, points]) =>
        guidanceSignal(spatial, parsePoints(points, `${this.name}: guidance["${label}"]`), this.sigma),
      );
      d[key] = withChannels(t, this.numberIntensityCh, signals);
    }
    return d;
  }
}

export interface AddGuidanceSignaldOptions {
  /** The image key (default "image"). */
  image?: string;
  /** Key of the `[pos, neg]` guidance (default "guidance"). */
  guidance?: string;
  /** Gaussian sigma in voxels (default 2). */
  sigma?: number;
  /** Image channels to keep (default 1). */
  numberIntensityCh?: number;
}

/**
 * MONAI's deepgrow `AddGuidanceSignald`: keeps the first `numberIntensityCh` channels and appends one signal
 * channel per guidance group (foreground, background).
 */
export class AddGuidanceSignald implements Transform {
  readonly image: string;
  readonly guidance: string;
  readonly sigma: number;
  readonly numberIntensityCh: number;

  constructor(options: AddGuidanceSignaldOptions = {}) {
    this.image = options.image ?? "image";
    this.guidance = options.guidance ?? "guidance";
    this.sigma = options.sigma ?? 2;
    this.numberIntensityCh = options.numberIntensityCh ?? 1;
  }

  call(data: Data): Data {
    const name = "AddGuidanceSignald";
    const d = { ...data };
    const t = tensorAt(d, this.image, name);
    const raw = d[this.guidance];
    const guidance = (typeof raw === "string" ? JSON.parse(raw) : raw) as unknown;
    if (!Array.isArray(guidance)) {
      throw new Error(`${name}: data["${this.guidance}"] must be [foreground points, background points]`);
    }
    const groups = guidance.filter((g) => Array.isArray(g));
    const signals = groups.map((g, i) =>
      guidanceSignal(t.spatialShape, parsePoints(g, `${name}: guidance[${i}]`), this.sigma),
    );
    d[this.image] = withChannels(t, this.numberIntensityCh, signals);
    return d;
  }
}
