import { aff2axcodes, DEFAULT_AXIS_LABELS, toAffineNd } from "./affine.js";
import {
  type Data,
  type FusibleTransform,
  MapTransform,
  type MapTransformOptions,
  perKey,
  type Transform,
} from "./compose.js";
import { type InterpolateMode, largestComponentsMask } from "./kernels.js";
import { orient, resizeTensor } from "./spatial.js";
import { type Affine, cloneAffine, MetaTensor, pad3, spatialOf, tensorAt } from "./tensor.js";

// ---------------------------------------------------------------------------------------------------
// Type conversions (identity here: tensors are always float32 MetaTensors)

/**
 * MONAI's `ToTensord` / `EnsureTyped`: type conversion for PyTorch. Here every tensor already is a float32
 * MetaTensor, so the data pass unchanged (checked to be tensors); kept so pipelines read as MONAI's.
 */
export class ToTensord extends MapTransform {
  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      tensorAt(d, key, this.name);
    }
    return d;
  }
}

/** MONAI's `EnsureTyped` (see ToTensord). */
export class EnsureTyped extends ToTensord {}

/**
 * MONAI's `ToNumpyd`. MONAI drops the meta here; this keeps the MetaTensor (its `data` is the typed array a
 * NumPy array would be), so later transforms and writers still see the geometry.
 */
export class ToNumpyd extends ToTensord {}

export interface SqueezeDimdOptions extends MapTransformOptions {
  /** The axis to drop; it must have size 1. Only 0 (the channel) is supported (default 0). */
  dim?: number;
}

/** MONAI's `SqueezeDimd` for the channel axis: `[1, X, Y, Z]` becomes `[X, Y, Z]` (no copy). */
export class SqueezeDimd extends MapTransform {
  readonly dim: number;

  constructor(options: SqueezeDimdOptions) {
    super(options);
    this.dim = options.dim ?? 0;
    if (this.dim !== 0) {
      throw new Error("SqueezeDimd: only dim 0 (the channel axis) is supported here");
    }
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      if (t.shape[0] !== 1) {
        throw new Error(`${this.name}: can only squeeze a singleton dimension, got shape [${t.shape.join(", ")}]`);
      }
      d[key] = t.derive({ data: t.data, shape: t.shape.slice(1) });
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Activations and discretisation

export interface ActivationsdOptions extends MapTransformOptions {
  /** Apply a sigmoid (one, or per key). */
  sigmoid?: boolean | boolean[];
  /** Apply a softmax over the channel axis (one, or per key). */
  softmax?: boolean | boolean[];
  /** Any other element-wise activation, applied after (MONAI's `other`). */
  other?: ((v: number) => number) | undefined;
}

/** MONAI's `Activationsd`: sigmoid, or softmax over channels (dim 0), then `other`. */
export class Activationsd extends MapTransform implements FusibleTransform {
  readonly sigmoid: boolean[];
  readonly softmax: boolean[];
  readonly other: ((v: number) => number) | undefined;

  constructor(options: ActivationsdOptions) {
    super(options);
    const n = this.keys.length;
    this.sigmoid = perKey(options.sigmoid ?? false, n, "Activationsd sigmoid");
    this.softmax = perKey(options.softmax ?? false, n, "Activationsd softmax");
    this.other = options.other;
    this.sigmoid.forEach((s, i) => {
      if (s && this.softmax[i]) {
        throw new Error("Activationsd: incompatible values: sigmoid=true and softmax=true");
      }
    });
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, k] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const out = new Float32Array(t.data.length);
      const src = t.data;
      if (this.sigmoid[k]) {
        for (let i = 0; i < src.length; i++) {
          out[i] = 1 / (1 + Math.exp(-src[i]!));
        }
      } else if (this.softmax[k]) {
        const C = t.channels;
        const n = t.channelSize;
        for (let v = 0; v < n; v++) {
          let max = Number.NEGATIVE_INFINITY;
          for (let c = 0; c < C; c++) {
            max = Math.max(max, src[c * n + v]!);
          }
          let sum = 0;
          for (let c = 0; c < C; c++) {
            sum += Math.exp(src[c * n + v]! - max);
          }
          for (let c = 0; c < C; c++) {
            out[c * n + v] = Math.exp(src[c * n + v]! - max) / sum;
          }
        }
      } else {
        out.set(src);
      }
      if (this.other) {
        for (let i = 0; i < out.length; i++) {
          out[i] = this.other(out[i]!);
        }
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }

  /**
   * Sigmoid then `AsDiscreted` threshold on the same keys (the usual binary segmentation post-processing) fuse
   * into one pass without `Math.exp` for all but the values next to the cut point (SigmoidThresholdd).
   */
  fuseWith(next: Transform): Transform | undefined {
    if (!(next instanceof AsDiscreted) || this.other !== undefined) {
      return undefined;
    }
    const sameKeys =
      next.keys.length === this.keys.length &&
      next.keys.every((k, i) => k === this.keys[i]) &&
      next.allowMissingKeys === this.allowMissingKeys;
    if (!sameKeys) {
      return undefined;
    }
    const thresholds: number[] = [];
    for (let k = 0; k < this.keys.length; k++) {
      const threshold = next.threshold[k];
      const plainThreshold =
        !next.argmax[k] && next.toOnehot[k] === undefined && next.rounding[k] === undefined && threshold !== undefined;
      if (!plainThreshold || !this.sigmoid[k] || !(threshold > 0 && threshold < 1)) {
        return undefined;
      }
      thresholds.push(threshold);
    }
    return new SigmoidThresholdd({ keys: this.keys, allowMissingKeys: this.allowMissingKeys }, thresholds);
  }
}

/**
 * `Activationsd(sigmoid)` followed by `AsDiscreted(threshold)` in one pass, bit for bit the same result.
 * sigmoid is monotone, so `f32(sigmoid(x)) >= t` is decided by comparing x with logit(t), except within a band
 * around that cut where float rounding could tip it: there the value is computed exactly as the two transforms
 * would. Built by `Activationsd.fuseWith` (Compose does it); not meant to be written in a pipeline.
 */
export class SigmoidThresholdd extends MapTransform {
  readonly thresholds: number[];

  constructor(options: MapTransformOptions, thresholds: number[]) {
    super(options);
    this.thresholds = thresholds;
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, k] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const threshold = this.thresholds[k]!;
      const cut = Math.log(threshold / (1 - threshold));
      // Far wider than any rounding of exp, the division and the float32 store can move the cut.
      const band = 1e-3 * (1 + Math.abs(cut));
      const lo = cut - band;
      const hi = cut + band;
      const src = t.data;
      const out = new Float32Array(src.length);
      const f32 = new Float32Array(1);
      for (let i = 0; i < src.length; i++) {
        const x = src[i]!;
        if (x > hi) {
          out[i] = 1;
        } else if (!(x < lo)) {
          // Near the cut, or NaN (which gives 0, as NaN >= t is false).
          f32[0] = 1 / (1 + Math.exp(-x));
          out[i] = f32[0]! >= threshold ? 1 : 0;
        }
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}

export interface AsDiscretedOptions extends MapTransformOptions {
  /** Argmax over the channel axis, keeping it (shape `[1, ...]`); one or per key. */
  argmax?: boolean | boolean[];
  /** Then one-hot encode into this many channels; one or per key. */
  toOnehot?: number | (number | undefined)[];
  /** Then `v >= threshold` as 0/1; one or per key. */
  threshold?: number | (number | undefined)[];
  /** Then round half to even ("torchrounding"); one or per key. */
  rounding?: "torchrounding" | ("torchrounding" | undefined)[];
}

function roundHalfEvenF(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** MONAI's `AsDiscreted`: argmax (first maximum wins ties), one-hot, threshold, rounding, in that order. */
export class AsDiscreted extends MapTransform {
  readonly argmax: boolean[];
  readonly toOnehot: (number | undefined)[];
  readonly threshold: (number | undefined)[];
  readonly rounding: ("torchrounding" | undefined)[];

  constructor(options: AsDiscretedOptions) {
    super(options);
    const n = this.keys.length;
    this.argmax = perKey(options.argmax ?? false, n, "AsDiscreted argmax");
    this.toOnehot = perKey<number | undefined>(options.toOnehot, n, "AsDiscreted toOnehot");
    this.threshold = perKey<number | undefined>(options.threshold, n, "AsDiscreted threshold");
    this.rounding = perKey<"torchrounding" | undefined>(options.rounding, n, "AsDiscreted rounding");
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, k] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      let values = t.data;
      let shape = [...t.shape];
      if (this.argmax[k]) {
        const C = shape[0]!;
        const n = values.length / Math.max(C, 1);
        const out = new Float32Array(n);
        for (let v = 0; v < n; v++) {
          let best = 0;
          let bestValue = values[v]!;
          for (let c = 1; c < C; c++) {
            const x = values[c * n + v]!;
            if (x > bestValue || (Number.isNaN(x) && !Number.isNaN(bestValue))) {
              best = c;
              bestValue = x;
            }
          }
          out[v] = best;
        }
        values = out;
        shape = [1, ...shape.slice(1)];
      }
      const classes = this.toOnehot[k];
      if (classes !== undefined) {
        if (!Number.isInteger(classes) || classes < 1) {
          throw new Error(`${this.name}: toOnehot must be a positive integer, got ${classes}`);
        }
        if (shape[0] !== 1) {
          throw new Error(`${this.name}: one-hot needs a single-channel input, got shape [${shape.join(", ")}]`);
        }
        const n = values.length;
        const out = new Float32Array(n * classes);
        for (let v = 0; v < n; v++) {
          const label = values[v]!;
          if (!Number.isInteger(label) || label < 0 || label >= classes) {
            throw new Error(`${this.name}: label ${label} is outside 0..${classes - 1} for one-hot encoding`);
          }
          out[label * n + v] = 1;
        }
        values = out;
        shape = [classes, ...shape.slice(1)];
      }
      const threshold = this.threshold[k];
      if (threshold !== undefined) {
        const out = new Float32Array(values.length);
        for (let i = 0; i < values.length; i++) {
          out[i] = values[i]! >= threshold ? 1 : 0;
        }
        values = out;
      }
      if (this.rounding[k] !== undefined) {
        if (this.rounding[k] !== "torchrounding") {
          throw new Error(`${this.name}: rounding must be "torchrounding"`);
        }
        const out = new Float32Array(values.length);
        for (let i = 0; i < values.length; i++) {
          out[i] = roundHalfEvenF(values[i]!);
        }
        values = out;
      }
      d[key] = t.derive({ data: values === t.data ? values.slice() : values, shape });
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Connected components

export interface KeepLargestConnectedComponentdOptions extends MapTransformOptions {
  /** Labels (or one-hot channels) to process; default every nonzero label / nonzero channel but 0. */
  applyToLabels?: number | number[];
  /** One-hot input; default: more than one channel. */
  isOnehot?: boolean;
  /** Each label on its own (default true), or their union as one foreground. */
  independent?: boolean;
  /** skimage connectivity: 1 = faces (6/4), up to the rank; default full (26 in 3D, 8 in 2D). */
  connectivity?: number;
  /** How many of the largest components to keep (default 1). */
  numComponents?: number;
}

/**
 * MONAI's `KeepLargestConnectedComponentd`: zeroes the voxels of each applied label (or one-hot channel) that
 * lie outside its largest connected component(s).
 */
export class KeepLargestConnectedComponentd extends MapTransform {
  readonly applyToLabels: number[] | undefined;
  readonly isOnehot: boolean | undefined;
  readonly independent: boolean;
  readonly connectivity: number | undefined;
  readonly numComponents: number;

  constructor(options: KeepLargestConnectedComponentdOptions) {
    super(options);
    this.applyToLabels =
      options.applyToLabels === undefined
        ? undefined
        : typeof options.applyToLabels === "number"
          ? [options.applyToLabels]
          : [...options.applyToLabels];
    this.isOnehot = options.isOnehot;
    this.independent = options.independent ?? true;
    this.connectivity = options.connectivity;
    this.numComponents = options.numComponents ?? 1;
  }

  private labelsOf(t: MetaTensor, onehot: boolean): number[] {
    if (this.applyToLabels) {
      return this.applyToLabels;
    }
    const n = t.channelSize;
    if (onehot) {
      const out: number[] = [];
      for (let c = 1; c < t.channels; c++) {
        const ch = t.data.subarray(c * n, (c + 1) * n);
        if (ch.some((v) => v !== 0)) {
          out.push(c);
        }
      }
      return out;
    }
    const set = new Set<number>();
    for (let i = 0; i < n; i++) {
      const v = t.data[i]!;
      if (v !== 0) {
        set.add(v);
      }
    }
    return [...set].sort((a, b) => a - b);
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const spatial = spatialOf(t, this.name);
      const shape3 = pad3(spatial);
      const rank = spatial.length;
      const onehot = this.isOnehot ?? t.channels > 1;
      const labels = this.labelsOf(t, onehot);
      const out = t.data.slice();
      const n = t.channelSize;
      const keep = (fg: Uint8Array) => largestComponentsMask(fg, shape3, rank, this.connectivity, this.numComponents);
      if (this.independent) {
        for (const label of labels) {
          const fg = new Uint8Array(n);
          const base = onehot ? label * n : 0;
          if (onehot && (label < 0 || label >= t.channels)) {
            throw new Error(`${this.name}: channel ${label} is out of range for ${t.channels} channels`);
          }
          for (let i = 0; i < n; i++) {
            fg[i] = onehot ? (out[base + i]! > 0 ? 1 : 0) : out[i] === label ? 1 : 0;
          }
          const mask = keep(fg);
          for (let i = 0; i < n; i++) {
            if (fg[i] && !mask[i]) {
              out[base + i] = 0;
            }
          }
        }
      } else {
        const fg = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          fg[i] = labels.some((l) => (onehot ? out[l * n + i] === 1 : out[i] === l)) ? 1 : 0;
        }
        const mask = keep(fg);
        for (let i = 0; i < n; i++) {
          if (fg[i] && !mask[i]) {
            if (onehot) {
              for (const l of labels) {
                out[l * n + i] = 0;
              }
            } else {
              out[i] = 0;
            }
          }
        }
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}

// ---------------------------------------------------------------------------------------------------
// MONAI Label's Restored

export interface RestoredOptions extends MapTransformOptions {
  /** The key of the image whose meta (spatial_shape, original_affine) describes the original file. */
  refImage: string;
  /** The keys' tensors have a channel axis first (default true). */
  hasChannel?: boolean;
  /** Also re-orient to the original affine's axis codes (default false). */
  invertOrient?: boolean;
  /** Resize mode (default "nearest"); one or per key. */
  mode?: InterpolateMode | InterpolateMode[];
  alignCorners?: boolean | (boolean | undefined)[];
  metaKeyPostfix?: string;
}

/**
 * MONAI Label's `Restored`: resizes each key back to the reference image's original `spatial_shape` (when it
 * differs), optionally undoes the orientation, drops a single channel, and gives the result the original
 * affine (also in `${key}_meta_dict.affine`).
 */
export class Restored extends MapTransform {
  readonly refImage: string;
  readonly hasChannel: boolean;
  readonly invertOrient: boolean;
  readonly mode: InterpolateMode[];
  readonly alignCorners: (boolean | undefined)[];
  readonly metaKeyPostfix: string;

  constructor(options: RestoredOptions) {
    super(options);
    this.refImage = options.refImage;
    this.hasChannel = options.hasChannel ?? true;
    this.invertOrient = options.invertOrient ?? false;
    const n = this.keys.length;
    this.mode = perKey(options.mode ?? "nearest", n, "Restored mode");
    this.alignCorners = perKey<boolean | undefined>(options.alignCorners, n, "Restored alignCorners");
    this.metaKeyPostfix = options.metaKeyPostfix ?? "meta_dict";
  }

  call(data: Data): Data {
    const d = { ...data };
    const ref = d[this.refImage];
    const metaDict =
      ref instanceof MetaTensor
        ? ref.meta
        : ((d[`${this.refImage}_${this.metaKeyPostfix}`] as Record<string, unknown> | undefined) ?? {});
    for (const [key, k] of this.keyIterator(d)) {
      let result = tensorAt(d, key, this.name);
      const withChannel = this.hasChannel ? result : result.derive({ data: result.data, shape: [1, ...result.shape] });
      const current = withChannel.spatialShape;
      const spatialShape = (metaDict.spatial_shape as number[] | undefined) ?? current;
      const size = spatialShape.slice(-current.length);
      let restored = withChannel;
      if (size.some((s, i) => s !== current[i])) {
        restored = resizeTensor(restored, size, this.mode[k]!, this.alignCorners[k]);
      }
      const original = metaDict.original_affine as Affine | undefined;
      if (this.invertOrient && original) {
        const r = restored.spatialShape.length;
        restored = orient(restored, aff2axcodes(toAffineNd(r, original), DEFAULT_AXIS_LABELS));
      }
      result = this.hasChannel ? restored : restored.derive({ data: restored.data, shape: restored.shape.slice(1) });
      if (result.shape.length > 3 && result.shape[0] === 1) {
        result = result.derive({ data: result.data, shape: result.shape.slice(1) });
      }
      if (original) {
        result.affine = cloneAffine(original);
      }
      d[key] = result;
      const metaKey = `${key}_${this.metaKeyPostfix}`;
      const meta = (d[metaKey] as Record<string, unknown> | undefined) ?? {};
      d[metaKey] = { ...meta, affine: original ? cloneAffine(original) : undefined };
    }
    return d;
  }
}
