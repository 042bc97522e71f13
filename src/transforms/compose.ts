import { MetaTensor, type TraceItem } from "./tensor.js";

/** The dictionary a pipeline passes along: image paths, tensors, clicks, results ... */
export type Data = Record<string, unknown>;

/** A transform: takes the data dictionary, returns a new one (never mutating tensors of the input). */
export interface Transform {
  call(d: Data): Data | Promise<Data>;
}

export interface InverseOptions {
  /** Skip keys the dictionary lacks, whatever the transform's own `allowMissingKeys` (what Invertd needs). */
  allowMissingKeys?: boolean;
}

/** A transform that records what it did on the tensors (`MetaTensor.applied`) and can undo it. */
export interface InvertibleTransform extends Transform {
  inverse(d: Data, options?: InverseOptions): Data;
}

/**
 * A transform that can stand in for itself followed by `next` in one pass, with a result identical to running
 * both (Compose.call uses it; `inverse` and `flatten` still see the transforms as written).
 */
export interface FusibleTransform extends Transform {
  /** The fused transform, or undefined when `next` cannot be fused with this one. */
  fuseWith(next: Transform): Transform | undefined;
}

function isFusible(t: Transform): t is FusibleTransform {
  return typeof (t as Partial<FusibleTransform>).fuseWith === "function";
}

/** The transforms to run: each fusible transform merged with the ones after it where it can be. */
export function fusedPlan(transforms: readonly Transform[]): Transform[] {
  const plan: Transform[] = [];
  for (const t of transforms) {
    const prev = plan[plan.length - 1];
    const fused = prev !== undefined && isFusible(prev) ? prev.fuseWith(t) : undefined;
    if (fused) {
      plan[plan.length - 1] = fused;
    } else {
      plan.push(t);
    }
  }
  return plan;
}

export function isInvertible(t: Transform): t is InvertibleTransform {
  return typeof (t as Partial<InvertibleTransform>).inverse === "function";
}

/** MONAI's `ensure_tuple_rep`: one value for every key, or one per key. */
export function perKey<T>(value: T | readonly T[], n: number, name: string): T[] {
  if (Array.isArray(value)) {
    if (value.length !== n) {
      throw new Error(`${name}: expected one value or ${n} (one per key), got ${value.length}`);
    }
    return [...value] as T[];
  }
  return Array.from({ length: n }, () => value as T);
}

let nextTransformId = 1;

export interface MapTransformOptions {
  /** A key or keys of the dictionary to transform. */
  keys: string | string[];
  /** Skip missing keys instead of throwing (default false). */
  allowMissingKeys?: boolean;
}

/** Base of the dictionary transforms (MONAI's `MapTransform`). */
export abstract class MapTransform implements Transform {
  readonly keys: string[];
  readonly allowMissingKeys: boolean;
  /** Identifies this instance in the trace items it records. */
  readonly id = nextTransformId++;

  constructor(options: MapTransformOptions) {
    this.keys = typeof options.keys === "string" ? [options.keys] : [...options.keys];
    if (this.keys.length === 0) {
      throw new Error(`${this.name}: keys must not be empty`);
    }
    this.allowMissingKeys = options.allowMissingKeys ?? false;
  }

  /** The class name, as recorded in trace items and error messages. */
  get name(): string {
    return this.constructor.name;
  }

  abstract call(d: Data): Data | Promise<Data>;

  /** The keys present in `d` with their index in `keys` (for per-key options); throws for a missing key. */
  protected *keyIterator(d: Data, allowMissing = this.allowMissingKeys): Generator<[string, number]> {
    for (let i = 0; i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (key in d && d[key] !== undefined) {
        yield [key, i];
      } else if (!allowMissing) {
        throw new Error(`${this.name}: key "${key}" is not in the data (keys: ${Object.keys(d).join(", ")})`);
      }
    }
  }

  /** Records an invertible operation on the output tensor. */
  protected trace(out: MetaTensor, origSize: number[], extraInfo: Record<string, unknown>): MetaTensor {
    out.applied = [...out.applied, { className: this.name, id: this.id, origSize: [...origSize], extraInfo }];
    return out;
  }

  /**
   * The tensor at `key` for an inverse, and its last trace item, which must have been recorded by a transform
   * of this class. The returned tensor no longer carries that item.
   */
  protected popTrace(d: Data, key: string): { tensor: MetaTensor; item: TraceItem } {
    const value = d[key];
    if (!(value instanceof MetaTensor)) {
      throw new TypeError(`${this.name}.inverse: data["${key}"] must be a MetaTensor`);
    }
    const item = value.applied[value.applied.length - 1];
    if (!item) {
      throw new Error(`${this.name}.inverse: data["${key}"] has no recorded operation left to invert`);
    }
    if (item.className !== this.name) {
      throw new Error(
        `${this.name}.inverse: the most recent operation on data["${key}"] was ${item.className}, not ${this.name}; invert in reverse order`,
      );
    }
    const tensor = value.derive({ data: value.data, shape: value.shape, applied: value.applied.slice(0, -1) });
    return { tensor, item };
  }
}

/** Chains transforms (MONAI's `Compose`); `inverse` undoes the invertible ones in reverse order. */
export class Compose implements InvertibleTransform {
  readonly transforms: Transform[];

  constructor(transforms: readonly (Transform | Compose)[]) {
    this.transforms = [...transforms];
  }

  /** Runs the transforms in order; adjacent ones that fuse (FusibleTransform) run as one, with the same result. */
  async call(d: Data): Promise<Data> {
    let out = d;
    for (const t of fusedPlan(this.transforms)) {
      out = await t.call(out);
    }
    return out;
  }

  /** The transforms with nested Composes expanded. */
  flatten(): Transform[] {
    return this.transforms.flatMap((t) => (t instanceof Compose ? t.flatten() : [t]));
  }

  inverse(d: Data, options?: InverseOptions): Data {
    let out = d;
    const invertible = this.flatten().filter(isInvertible);
    for (let i = invertible.length - 1; i >= 0; i--) {
      out = invertible[i]!.inverse(out, options);
    }
    return out;
  }
}
