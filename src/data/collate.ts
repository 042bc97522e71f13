import type { Data } from "../transforms/compose.js";
import { MetaTensor, toCOrder } from "../transforms/tensor.js";

/** A stacked tensor: C-order values (last axis fastest) of shape `[B, C, ...spatial]`, as onnxruntime takes. */
export interface BatchTensor {
  data: Float32Array;
  shape: number[];
}

/** One sample ready to stack: each key's tensor in C order, shape `[C, ...spatial]`. */
export type PreparedSample = Record<string, BatchTensor>;

/**
 * The samples of one item (a dictionary, or a list of them) in C order. `keys`: the keys to keep (each
 * must hold a MetaTensor); default every key holding one.
 */
export function prepareSamples(value: Data | readonly Data[], keys?: readonly string[]): PreparedSample[] {
  const list = Array.isArray(value) ? (value as readonly Data[]) : [value as Data];
  return list.map((d) => {
    const out: PreparedSample = {};
    const wanted = keys ?? Object.keys(d).filter((k) => d[k] instanceof MetaTensor);
    for (const key of wanted) {
      const t = d[key];
      if (!(t instanceof MetaTensor)) {
        throw new TypeError(
          `DataLoader: data["${key}"] must be a MetaTensor after the transforms, got ${t === undefined ? "nothing" : typeof t}`,
        );
      }
      out[key] = { data: toCOrder(t), shape: [...t.shape] };
    }
    return out;
  });
}

/** Stacks prepared samples along a new first axis; every sample must have the same keys and shapes. */
export function collate(samples: readonly PreparedSample[]): Record<string, BatchTensor> {
  const first = samples[0];
  if (!first) {
    return {};
  }
  const keys = Object.keys(first);
  const out: Record<string, BatchTensor> = {};
  for (const key of keys) {
    const shape = first[key]!.shape;
    const n = first[key]!.data.length;
    const data = new Float32Array(n * samples.length);
    samples.forEach((s, i) => {
      const t = s[key];
      if (!t) {
        throw new Error(`DataLoader: sample ${i} of the batch has no "${key}" (keys differ between samples)`);
      }
      if (t.shape.length !== shape.length || t.shape.some((v, a) => v !== shape[a])) {
        throw new Error(
          `DataLoader: cannot stack "${key}": sample 0 has shape [${shape.join(", ")}], sample ${i} [${t.shape.join(", ")}]; crop, pad or resize to one size`,
        );
      }
      data.set(t.data, i * n);
    });
    out[key] = { data, shape: [samples.length, ...shape] };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Crossing a thread boundary: MetaTensors lose their class in structured cloning

const TAG = "__labelgraph_metatensor__";

interface EncodedTensor {
  [TAG]: 1;
  data: Float32Array;
  shape: number[];
  affine: number[][];
  meta: Record<string, unknown>;
  applied: MetaTensor["applied"];
}

function encodeValue(v: unknown): unknown {
  if (v instanceof MetaTensor) {
    return { [TAG]: 1, data: v.data, shape: v.shape, affine: v.affine, meta: v.meta, applied: v.applied };
  }
  if (Array.isArray(v)) {
    return v.map(encodeValue);
  }
  return v;
}

function decodeValue(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(decodeValue);
  }
  if (typeof v === "object" && v !== null && (v as Partial<EncodedTensor>)[TAG] === 1) {
    const e = v as EncodedTensor;
    return new MetaTensor({ data: e.data, shape: e.shape, affine: e.affine, meta: e.meta, applied: e.applied });
  }
  return v;
}

/** A dictionary (or list) with its MetaTensors (top-level values, or in arrays) made structured-cloneable. */
export function encodeData(value: Data | readonly Data[]): unknown {
  const one = (d: Data) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, encodeValue(v)]));
  return Array.isArray(value) ? (value as readonly Data[]).map(one) : one(value as Data);
}

/** The inverse of `encodeData`. */
export function decodeData(value: unknown): Data | Data[] {
  const one = (d: Data) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, decodeValue(v)]));
  return Array.isArray(value) ? (value as Data[]).map(one) : one(value as Data);
}
