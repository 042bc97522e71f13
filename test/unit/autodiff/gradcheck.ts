/**
 * Gradient checks against central finite differences, run through onnxruntime-node as in
 * reference/onnx-training.md: L = sum(out * R) with R a fixed random tensor, the analytic gradient from the
 * generated backward graph, FD on a few random elements of every input plus a directional derivative along a
 * random direction. L is summed in float64 in JS. Error metric: |a - fd| / max(|a|, |fd|, 0.01 rms(a)).
 */
import * as ort from "onnxruntime-node";
import { gradients } from "../../../src/graph/autodiff.js";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { numel, prune, type Value } from "../../../src/graph/ir.js";
import { serializeGraph } from "../../../src/graph/serialize.js";

export type FloatArray = Float32Array | Float64Array;
export type FloatDType = "float32" | "float64";

/** xorshift32 in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randomArray(dtype: FloatDType, n: number, seed: number, lo = -1, hi = 1): FloatArray {
  const r = rng(seed);
  const a = dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = lo + (hi - lo) * r();
  }
  return a;
}

/** Distinct values at least 2/n apart, shuffled (no ties for max-pooling checks). */
export function distinctArray(dtype: FloatDType, n: number, seed: number): FloatArray {
  const r = rng(seed);
  const a = dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = -1 + (2 * i) / n;
  }
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface InputSpec {
  shape: number[];
  /** Values (default uniform in [lo, hi), lo = -1, hi = 1). */
  data?: FloatArray;
  lo?: number;
  hi?: number;
  /** Not differentiated (a fixed operand, e.g. a target). */
  fixed?: boolean;
}

export interface GradCheckCase {
  name: string;
  dtype: FloatDType;
  inputs: Record<string, InputSpec>;
  build: (g: GraphBuilder, inputs: Record<string, Value>) => Value;
  /** FD step (default 1e-2 in float32, 1e-5 in float64). */
  h?: number;
  /** Elements checked per input (default 10). */
  elements?: number;
  seed?: number;
  /** Builder of both graphs (default a plain GraphBuilder), e.g. a TrainingGraphBuilder. */
  builder?: (name: string) => GraphBuilder;
}

export interface GradCheckResult {
  /** Worst per-element relative error over all inputs. */
  maxElementError: number;
  /** Relative error of the directional derivative. */
  directionError: number;
  perInput: Record<string, number>;
  /** Analytic gradients by input name. */
  grads: Record<string, FloatArray>;
  /** Node count of the gradient graph, by op. */
  ops: Record<string, number>;
}

function tensor(dtype: FloatDType, data: FloatArray, shape: readonly number[]): ort.Tensor {
  return new ort.Tensor(dtype, data, shape);
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    logSeverityLevel: 3,
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    extra: { session: { set_denormal_as_zero: "1" } },
  });
}

export async function gradCheck(c: GradCheckCase): Promise<GradCheckResult> {
  const { dtype } = c;
  const seed = c.seed ?? 7;
  const h = c.h ?? (dtype === "float32" ? 1e-2 : 1e-5);
  const names = Object.keys(c.inputs);
  const wrt = names.filter((n) => !c.inputs[n]!.fixed);
  const data: Record<string, FloatArray> = {};
  names.forEach((name, i) => {
    const spec = c.inputs[name]!;
    data[name] = spec.data ?? randomArray(dtype, numel(spec.shape), seed * 31 + i, spec.lo ?? -1, spec.hi ?? 1);
  });

  // Forward graph: out.
  const make = c.builder ?? ((name: string) => new GraphBuilder({ name }));
  const fwd = make(`${c.name}_fwd`);
  const fIn: Record<string, Value> = {};
  for (const name of names) {
    fIn[name] = fwd.input(name, dtype, c.inputs[name]!.shape);
  }
  const fOut = c.build(fwd, fIn);
  fwd.output(fOut, "out");
  const rData = randomArray(dtype, numel(fOut.shape), seed + 1000);

  // Gradient graph: loss = sum(out * R), d loss / d inputs.
  const bwd = make(`${c.name}_grad`);
  const bIn: Record<string, Value> = {};
  for (const name of names) {
    bIn[name] = bwd.input(name, dtype, c.inputs[name]!.shape);
  }
  const out = c.build(bwd, bIn);
  const r = bwd.constant(rData, out.shape, { name: "R" });
  const loss = bwd.reduceSum(bwd.mul(out, r), undefined, { keepdims: false });
  const grads = gradients(bwd, loss, wrt);
  for (const name of wrt) {
    const d = grads.get(name);
    if (!d) {
      throw new Error(`${c.name}: no gradient for '${name}'`);
    }
    bwd.output(d, `grad:${name}`);
  }
  const graph = prune(bwd.graph());
  const ops: Record<string, number> = {};
  for (const node of graph.nodes) {
    ops[node.op] = (ops[node.op] ?? 0) + 1;
  }

  const fs = await session(fwd.serialize());
  const bs = await session(serializeGraph(graph));
  try {
    const feeds = (overrides: Record<string, FloatArray> = {}) => {
      const f: Record<string, ort.Tensor> = {};
      for (const name of names) {
        f[name] = tensor(dtype, overrides[name] ?? data[name]!, c.inputs[name]!.shape);
      }
      return f;
    };
    const L = async (overrides: Record<string, FloatArray>) => {
      const o = (await fs.run(feeds(overrides))).out!.data as FloatArray;
      let s = 0;
      for (let i = 0; i < o.length; i++) {
        s += o[i]! * rData[i]!;
      }
      return s;
    };
    const res = await bs.run(feeds());
    const analytic: Record<string, FloatArray> = {};
    for (const name of wrt) {
      analytic[name] = res[`grad:${name}`]!.data as FloatArray;
    }

    const metric = (a: number, fd: number, rms: number) =>
      Math.abs(a - fd) / Math.max(Math.abs(a), Math.abs(fd), 0.01 * rms, 1e-30);
    const perInput: Record<string, number> = {};
    const pick = rng(seed + 2000);
    for (const name of wrt) {
      const a = analytic[name]!;
      let sq = 0;
      for (let i = 0; i < a.length; i++) {
        sq += a[i]! * a[i]!;
      }
      const rms = Math.sqrt(sq / a.length);
      const count = Math.min(c.elements ?? 10, a.length);
      const idx =
        a.length <= count ? [...Array(a.length).keys()] : [...Array(count)].map(() => Math.floor(pick() * a.length));
      let worst = 0;
      for (const i of idx) {
        const plus = data[name]!.slice();
        const minus = data[name]!.slice();
        plus[i]! += h;
        minus[i]! -= h;
        // The step as stored (float32 rounds x + h).
        const fd = ((await L({ [name]: plus })) - (await L({ [name]: minus }))) / (plus[i]! - minus[i]!);
        worst = Math.max(worst, metric(a[i]!, fd, rms));
      }
      perInput[name] = worst;
    }

    // Directional derivative along a random direction in all inputs at once.
    const plus: Record<string, FloatArray> = {};
    const minus: Record<string, FloatArray> = {};
    let along = 0;
    wrt.forEach((name, k) => {
      const dir = randomArray(dtype, data[name]!.length, seed + 3000 + k);
      const p = data[name]!.slice();
      const m = data[name]!.slice();
      for (let i = 0; i < dir.length; i++) {
        p[i]! += h * dir[i]!;
        m[i]! -= h * dir[i]!;
        along += analytic[name]![i]! * dir[i]!;
      }
      plus[name] = p;
      minus[name] = m;
    });
    const fdAlong = ((await L(plus)) - (await L(minus))) / (2 * h);
    const directionError = Math.abs(along - fdAlong) / Math.max(Math.abs(along), Math.abs(fdAlong), 1e-30);
    return {
      maxElementError: Math.max(0, ...Object.values(perInput)),
      directionError,
      perInput,
      grads: analytic,
      ops,
    };
  } finally {
    await fs.release();
    await bs.release();
  }
}
