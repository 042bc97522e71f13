import { type Data, MapTransform, type MapTransformOptions } from "./compose.js";
import { tensorAt } from "./tensor.js";

export interface ScaleIntensityRangedOptions extends MapTransformOptions {
  aMin: number;
  aMax: number;
  /** Output range; without both, values are only normalised to [0, 1] over [aMin, aMax]. */
  bMin?: number;
  bMax?: number;
  /** Clip the result to [bMin, bMax] (default false). */
  clip?: boolean;
}

/** MONAI's `ScaleIntensityRanged`: `(v - aMin) / (aMax - aMin) * (bMax - bMin) + bMin`, optionally clipped. */
export class ScaleIntensityRanged extends MapTransform {
  readonly aMin: number;
  readonly aMax: number;
  readonly bMin: number | undefined;
  readonly bMax: number | undefined;
  readonly clip: boolean;

  constructor(options: ScaleIntensityRangedOptions) {
    super(options);
    this.aMin = options.aMin;
    this.aMax = options.aMax;
    this.bMin = options.bMin;
    this.bMax = options.bMax;
    this.clip = options.clip ?? false;
  }

  call(data: Data): Data {
    const d = { ...data };
    const { aMin, aMax, bMin, bMax } = this;
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const src = t.data;
      const out = new Float32Array(src.length);
      if (aMax - aMin === 0) {
        // MONAI warns "Divide by zero (a_min == a_max)" and only shifts
        const shift = bMin === undefined ? -aMin : bMin - aMin;
        for (let i = 0; i < src.length; i++) {
          out[i] = src[i]! + shift;
        }
      } else {
        const scaled = bMin !== undefined && bMax !== undefined;
        for (let i = 0; i < src.length; i++) {
          let v = (src[i]! - aMin) / (aMax - aMin);
          if (scaled) {
            v = v * (bMax - bMin) + bMin;
          }
          out[i] = v;
        }
      }
      if (this.clip && bMin !== undefined && bMax !== undefined) {
        const lo = Math.min(bMin, bMax);
        const hi = Math.max(bMin, bMax);
        for (let i = 0; i < out.length; i++) {
          out[i] = Math.min(Math.max(out[i]!, lo), hi);
        }
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}

/** MONAI's `rescale_array`: min-max of `src[from, to)` mapped onto [minv, maxv], in place on `out`. */
function rescale(
  src: Float32Array,
  out: Float32Array,
  from: number,
  to: number,
  minv: number | undefined,
  maxv: number | undefined,
): void {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = from; i < to; i++) {
    const v = src[i]!;
    if (v < lo) {
      lo = v;
    }
    if (v > hi) {
      hi = v;
    }
  }
  if (lo === hi) {
    for (let i = from; i < to; i++) {
      out[i] = minv === undefined ? src[i]! : src[i]! * minv;
    }
    return;
  }
  // The same arithmetic as one expression per voxel, with the branch on minv/maxv taken once.
  const range = hi - lo;
  if (minv === undefined || maxv === undefined) {
    for (let i = from; i < to; i++) {
      out[i] = (src[i]! - lo) / range;
    }
  } else {
    const span = maxv - minv;
    for (let i = from; i < to; i++) {
      out[i] = ((src[i]! - lo) / range) * span + minv;
    }
  }
}

export interface ScaleIntensitydOptions extends MapTransformOptions {
  /** Output minimum (default 0). If only one of minv/maxv is null, values are normalised to [0, 1]. */
  minv?: number | null;
  /** Output maximum (default 1). */
  maxv?: number | null;
  /** With minv and maxv both null: `v * (1 + factor)`. */
  factor?: number;
  /** Rescale each channel on its own (default false). */
  channelWise?: boolean;
}

/** MONAI's `ScaleIntensityd`: min-max rescaling to [minv, maxv] (or scaling by 1 + factor). */
export class ScaleIntensityd extends MapTransform {
  readonly minv: number | undefined;
  readonly maxv: number | undefined;
  readonly factor: number | undefined;
  readonly channelWise: boolean;

  constructor(options: ScaleIntensitydOptions) {
    super(options);
    this.minv = options.minv === null ? undefined : (options.minv ?? 0);
    this.maxv = options.maxv === null ? undefined : (options.maxv ?? 1);
    this.factor = options.factor;
    this.channelWise = options.channelWise ?? false;
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const out = new Float32Array(t.data.length);
      if (this.minv !== undefined || this.maxv !== undefined) {
        if (this.channelWise) {
          const n = t.channelSize;
          for (let c = 0; c < t.channels; c++) {
            rescale(t.data, out, c * n, (c + 1) * n, this.minv, this.maxv);
          }
        } else {
          rescale(t.data, out, 0, t.data.length, this.minv, this.maxv);
        }
      } else {
        const f = 1 + (this.factor ?? 0);
        for (let i = 0; i < out.length; i++) {
          out[i] = t.data[i]! * f;
        }
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}

export interface NormalizeIntensitydOptions extends MapTransformOptions {
  /** Subtract this instead of the mean (one number, or one per channel with channelWise). */
  subtrahend?: number | number[];
  /** Divide by this instead of the (population) standard deviation. */
  divisor?: number | number[];
  /** Only normalise nonzero voxels, from their own statistics (default false). */
  nonzero?: boolean;
  /** Normalise each channel on its own (default false). */
  channelWise?: boolean;
}

/** MONAI's `NormalizeIntensityd`: `(v - mean) / std` (std 0 counts as 1), or with the given constants. */
export class NormalizeIntensityd extends MapTransform {
  readonly subtrahend: number | number[] | undefined;
  readonly divisor: number | number[] | undefined;
  readonly nonzero: boolean;
  readonly channelWise: boolean;

  constructor(options: NormalizeIntensitydOptions) {
    super(options);
    this.subtrahend = options.subtrahend;
    this.divisor = options.divisor;
    this.nonzero = options.nonzero ?? false;
    this.channelWise = options.channelWise ?? false;
  }

  private normalize(src: Float32Array, out: Float32Array, from: number, to: number, sub?: number, div?: number): void {
    const use = (v: number) => !this.nonzero || v !== 0;
    let count = 0;
    let sum = 0;
    for (let i = from; i < to; i++) {
      const v = src[i]!;
      if (use(v)) {
        count += 1;
        sum += v;
      }
    }
    if (count === 0) {
      out.set(src.subarray(from, to), from);
      return;
    }
    const mean = sub ?? sum / count;
    let std = div;
    if (std === undefined) {
      const m = sum / count;
      let ss = 0;
      for (let i = from; i < to; i++) {
        const v = src[i]!;
        if (use(v)) {
          ss += (v - m) * (v - m);
        }
      }
      std = Math.sqrt(ss / count);
    }
    if (std === 0) {
      std = 1;
    }
    for (let i = from; i < to; i++) {
      const v = src[i]!;
      out[i] = use(v) ? (v - mean) / std : v;
    }
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const t = tensorAt(d, key, this.name);
      const out = new Float32Array(t.data.length);
      if (this.channelWise) {
        const n = t.channelSize;
        const pick = (v: number | number[] | undefined, c: number, what: string) => {
          if (!Array.isArray(v)) {
            return v;
          }
          if (v.length !== t.channels) {
            throw new Error(`${this.name}: ${what} has ${v.length} values for ${t.channels} channels`);
          }
          return v[c];
        };
        for (let c = 0; c < t.channels; c++) {
          this.normalize(
            t.data,
            out,
            c * n,
            (c + 1) * n,
            pick(this.subtrahend, c, "subtrahend"),
            pick(this.divisor, c, "divisor"),
          );
        }
      } else {
        if (Array.isArray(this.subtrahend) || Array.isArray(this.divisor)) {
          throw new Error(`${this.name}: per-channel subtrahend/divisor need channelWise`);
        }
        this.normalize(t.data, out, 0, t.data.length, this.subtrahend, this.divisor);
      }
      d[key] = t.derive({ data: out, shape: t.shape });
    }
    return d;
  }
}
