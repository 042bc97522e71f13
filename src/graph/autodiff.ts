/**
 * Reverse-mode automatic differentiation over the graph IR. `gradients` walks the nodes that lie between the
 * wanted values and the loss in reverse order and appends, through the builder, the nodes that compute the
 * gradient of the loss with respect to each wanted value. Gradients of values read by several nodes are summed;
 * inputs that no wanted value flows into get no gradient nodes at all.
 *
 * The rules follow reference/onnx-training.md: the input gradient of a stride-1 Conv is a Conv with the flipped,
 * transposed kernel (ORT's stride-1 ConvTranspose is very slow), of a strided Conv a ConvTranspose; weight
 * gradients are one strided Slice + Gemm per kernel offset ("form (b)"); InstanceNormalization has a hand-written
 * rule; MaxPool scatters the output gradient back through its Indices.
 */
import { GraphBuilder } from "./builder.js";
import { type Attr, type DType, formatShape, type Graph, type Node, numel, type TensorData, type Value } from "./ir.js";

/** A gradient cannot be built: an op without a rule, or an attribute a rule does not handle. */
export class GradientError extends Error {
  override readonly name = "GradientError";
}

export interface GradientOptions {
  /** Gradient of the loss itself; default ones shaped like the loss. */
  seed?: Value;
  /** Prefix of the backward nodes' names (default "grad"); each node's gradient is scoped by its name. */
  scope?: string;
}

/** Ops whose outputs carry no gradient (random draws, comparisons, sign ...). */
const nonDifferentiable = new Set([
  "RandomUniformLike",
  "RandomNormalLike",
  "RandomUniform",
  "RandomNormal",
  "Sign",
  "Greater",
  "Less",
  "GreaterOrEqual",
  "LessOrEqual",
  "Equal",
  "Not",
  "Shape",
  "ArgMax",
  "ArgMin",
]);

const isFloat = (dtype: DType) => dtype === "float32" || dtype === "float64";

/** What a rule sees of one forward node. */
class RuleContext {
  constructor(
    readonly g: GraphBuilder,
    readonly node: Node,
    private readonly graph: Graph,
    private readonly constants: ReadonlyMap<string, TensorData>,
    private readonly outGrads: readonly (Value | undefined)[],
    private readonly wanted: readonly boolean[],
  ) {}

  fail(message: string): never {
    throw new GradientError(`${this.node.op} '${this.node.name}': ${message}`);
  }

  has(i: number): boolean {
    const name = this.node.inputs[i];
    return name !== undefined && name !== "";
  }

  x(i: number): Value {
    const name = this.node.inputs[i];
    const v = name ? this.graph.values.get(name) : undefined;
    if (!v) {
      this.fail(`input ${i} is missing`);
    }
    return v;
  }

  y(i = 0): Value {
    const v = this.graph.values.get(this.node.outputs[i] ?? "");
    if (!v) {
      this.fail(`output ${i} is missing`);
    }
    return v;
  }

  /** Gradient of output i, if the loss depends on it. */
  dy(i: number): Value | undefined {
    return this.outGrads[i];
  }

  /** Gradient of output 0. */
  get dY(): Value {
    const d = this.outGrads[0];
    if (!d) {
      this.fail("output 0 has no gradient");
    }
    return d;
  }

  /** Whether input i needs a gradient. */
  needs(i: number): boolean {
    return this.wanted[i] ?? false;
  }

  constant(i: number): TensorData | undefined {
    return this.has(i) ? this.constants.get(this.node.inputs[i]!) : undefined;
  }

  ints(i: number): number[] {
    const data = this.constant(i);
    if (!(data instanceof BigInt64Array || data instanceof Int32Array)) {
      this.fail(`input ${i} must be an integer constant`);
    }
    return Array.from(data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  floats(i: number): number[] {
    const data = this.constant(i);
    if (!(data instanceof Float32Array || data instanceof Float64Array)) {
      this.fail(`input ${i} must be a float constant`);
    }
    return Array.from(data);
  }

  attr(name: string): Attr | undefined {
    return this.node.attrs[name];
  }

  int(name: string, fallback: number): number {
    const a = this.attr(name);
    return a?.kind === "int" ? a.value : fallback;
  }

  intList(name: string, fallback: readonly number[]): number[] {
    const a = this.attr(name);
    return a?.kind === "ints" ? [...a.value] : [...fallback];
  }

  float(name: string, fallback: number): number {
    const a = this.attr(name);
    return a?.kind === "float" ? a.value : fallback;
  }

  string(name: string, fallback: string): string {
    const a = this.attr(name);
    return a?.kind === "string" ? a.value : fallback;
  }

  /** A scalar constant of the dtype of `like`. */
  scalar(value: number, like: Value): Value {
    return this.g.scalar(value, like.dtype === "float64" ? "float64" : "float32");
  }
}

type Rule = (c: RuleContext) => (Value | undefined)[];

// ------------------------------------------------------------------------------------------- shared helpers

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Sums d over the axes that numpy broadcasting expanded, so that it has `shape` again. */
export function unbroadcast(g: GraphBuilder, d: Value, shape: readonly number[]): Value {
  if (d.shape.join() === shape.join()) {
    return d;
  }
  const lead = d.shape.length - shape.length;
  const axes: number[] = [];
  d.shape.forEach((size, i) => {
    const target = i < lead ? undefined : shape[i - lead];
    if (target === undefined || (target === 1 && size !== 1)) {
      axes.push(i);
    }
  });
  const summed = axes.length > 0 ? g.reduceSum(d, axes, { keepdims: true }) : d;
  return summed.shape.join() === shape.join() ? summed : g.reshape(summed, shape);
}

/** Zeros of a shape and float dtype, without a tensor-sized constant. */
function zeros(g: GraphBuilder, shape: readonly number[], dtype: DType): Value {
  return g.expand(g.scalar(0, dtype === "float64" ? "float64" : "float32"), shape);
}

function reshapeIfNeeded(g: GraphBuilder, v: Value, shape: readonly number[]): Value {
  return v.shape.join() === shape.join() ? v : g.reshape(v, shape);
}

/** [1, C, 1, ..., 1] view of a per-channel vector for x of the given rank. */
function channelView(g: GraphBuilder, v: Value, rank: number): Value {
  return g.reshape(v, [1, v.shape[0]!, ...Array(rank - 2).fill(1)]);
}

function isAllOnes(data: TensorData | undefined): boolean {
  return (data instanceof Float32Array || data instanceof Float64Array) && data.every((v) => v === 1);
}

/** Reverses the given axes (a Slice with steps -1). */
function flip(g: GraphBuilder, x: Value, axes: readonly number[]): Value {
  return g.slice(x, {
    starts: axes.map(() => -1),
    ends: axes.map((a) => -(x.shape[a]! + 1)),
    axes,
    steps: axes.map(() => -1),
  });
}

/** Swaps axes 0 and 1 ([N, C, ...] -> [C, N, ...]); a reshape when one of them has size 1. */
function swap01(g: GraphBuilder, x: Value): Value {
  const perm = [1, 0, ...range(2, x.shape.length)];
  const shape = perm.map((p) => x.shape[p]!);
  if (x.shape[0] === 1 || x.shape[1] === 1) {
    return g.reshape(x, shape);
  }
  return g.transpose(x, perm);
}

/** Every multi-index of a kernel shape, row-major. */
function offsets(kernel: readonly number[]): number[][] {
  let out: number[][] = [[]];
  for (const k of kernel) {
    out = out.flatMap((prefix) => range(0, k).map((i) => [...prefix, i]));
  }
  return out;
}

interface Window {
  spatial: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin_1 .. begin_d, end_1 .. end_d] */
  pads: number[];
}

function windowOf(c: RuleContext, x: Value, kernel: readonly number[]): Window {
  const spatial = x.shape.length - 2;
  if (c.string("auto_pad", "NOTSET") !== "NOTSET") {
    c.fail("auto_pad is not supported; give explicit pads");
  }
  return {
    spatial,
    kernel: [...kernel],
    strides: c.intList("strides", Array(spatial).fill(1)),
    dilations: c.intList("dilations", Array(spatial).fill(1)),
    pads: c.intList("pads", Array(2 * spatial).fill(0)),
  };
}

/**
 * Form (b) of the weight gradient: out[a, b, k] = sum over n, i of A[n, a, i] * B[n, b, i * s + k * d], one
 * strided Slice of the padded B and one Gemm per kernel offset k. Returns [A-channels, B-channels, ...kernel].
 */
function correlateForWeights(
  g: GraphBuilder,
  a: Value,
  b: Value,
  w: Window,
  padBegin: readonly number[],
  padEnd: readonly number[],
): Value {
  const { spatial, kernel, strides, dilations } = w;
  const ca = a.shape[1]!;
  const cb = b.shape[1]!;
  const aSpatial = a.shape.slice(2);
  const rows = a.shape[0]! * numel(aSpatial);
  const aMat = g.reshape(swap01(g, a), [ca, rows]);
  let bp = b;
  if (padBegin.some((p) => p > 0) || padEnd.some((p) => p > 0)) {
    bp = g.pad(b, [...padBegin, ...padEnd], { axes: range(2, 2 + spatial) });
  }
  const bt = swap01(g, bp);
  const parts: Value[] = [];
  for (const k of offsets(kernel)) {
    const starts = k.map((ki, i) => ki * dilations[i]!);
    const ends = starts.map((s, i) => s + strides[i]! * (aSpatial[i]! - 1) + 1);
    const whole = starts.every((s, i) => s === 0 && ends[i] === bt.shape[i + 2] && strides[i] === 1);
    const sl = whole
      ? bt
      : g.slice(bt, {
          starts,
          ends,
          axes: range(2, 2 + spatial),
          steps: strides.some((s) => s !== 1) ? strides : undefined,
        });
    const bMat = g.reshape(sl, [cb, rows]);
    parts.push(g.reshape(g.gemm(aMat, bMat, { transB: true }), [ca, cb, 1]));
  }
  const stacked = parts.length === 1 ? parts[0]! : g.concat(parts, 2);
  return g.reshape(stacked, [ca, cb, ...kernel]);
}

// ------------------------------------------------------------------------------------------------ conv

function convRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const wv = c.x(1);
  const dY = c.dY;
  if (c.int("group", 1) !== 1) {
    c.fail(`no gradient rule for grouped convolution (group=${c.int("group", 1)})`);
  }
  const w = windowOf(c, x, wv.shape.slice(2));
  const { spatial, kernel, strides, dilations, pads } = w;
  const ySpatial = dY.shape.slice(2);
  const xSpatial = x.shape.slice(2);
  const grads: (Value | undefined)[] = [];

  if (c.needs(0)) {
    const flipPads: number[] = [];
    for (const end of [0, 1]) {
      for (let i = 0; i < spatial; i++) {
        flipPads.push(dilations[i]! * (kernel[i]! - 1) - pads[i + end * spatial]!);
      }
    }
    if (strides.every((s) => s === 1) && flipPads.every((p) => p >= 0)) {
      // dX = Conv(dY, transpose01(flip(W))): ORT's stride-1 ConvTranspose kernel is very slow (study, Q4.1).
      const wf = swap01(g, flip(g, wv, range(2, 2 + spatial)));
      grads[0] = g.conv(dY, wf, undefined, { pads: flipPads, dilations });
    } else {
      const outputPadding = xSpatial.map(
        (size, i) =>
          size -
          (strides[i]! * (ySpatial[i]! - 1) + dilations[i]! * (kernel[i]! - 1) + 1 - pads[i]! - pads[i + spatial]!),
      );
      if (outputPadding.some((p, i) => p < 0 || p >= Math.max(strides[i]!, dilations[i]!))) {
        c.fail(`cannot express the input gradient as a ConvTranspose (output_padding ${formatShape(outputPadding)})`);
      }
      grads[0] = g.convTranspose(dY, wv, undefined, { strides, pads, dilations, outputPadding });
    }
  }
  if (c.needs(1)) {
    // dW[co, ci, k] = sum_{n, y} dY[n, co, y] * Xpad[n, ci, y * s + k * d]
    const padEnd = pads.slice(spatial);
    grads[1] = correlateForWeights(g, dY, x, w, pads.slice(0, spatial), padEnd);
  }
  if (c.needs(2)) {
    grads[2] = g.reduceSum(dY, [0, ...range(2, 2 + spatial)], { keepdims: false });
  }
  return grads;
}

function convTransposeRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const wv = c.x(1);
  const dY = c.dY;
  if (c.int("group", 1) !== 1) {
    c.fail(`no gradient rule for grouped transposed convolution (group=${c.int("group", 1)})`);
  }
  if (c.attr("output_shape")) {
    c.fail("output_shape is not supported");
  }
  const w = windowOf(c, x, wv.shape.slice(2));
  const { spatial, strides, dilations, pads } = w;
  const outputPadding = c.intList("output_padding", Array(spatial).fill(0));
  const grads: (Value | undefined)[] = [];
  if (c.needs(0)) {
    // The adjoint of a ConvTranspose is the Conv with the same kernel, strides and pads (no flip).
    const dx = g.conv(dY, wv, undefined, { strides, pads, dilations });
    if (dx.shape.join() !== x.shape.join()) {
      c.fail(`input gradient came out ${formatShape(dx.shape)}, expected ${formatShape(x.shape)}`);
    }
    grads[0] = dx;
  }
  if (c.needs(1)) {
    // dW[ci, co, k] = sum_{n, i} X[n, ci, i] * dYpad[n, co, i * s + k * d], dY padded by pads_begin in front.
    const padEnd = pads.slice(spatial).map((p, i) => Math.max(0, p - outputPadding[i]!));
    grads[1] = correlateForWeights(g, x, dY, w, pads.slice(0, spatial), padEnd);
  }
  if (c.needs(2)) {
    grads[2] = g.reduceSum(dY, [0, ...range(2, 2 + spatial)], { keepdims: false });
  }
  return grads;
}

// ---------------------------------------------------------------------------------------- normalization

function instanceNormRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const scale = c.x(1);
  const dY = c.dY;
  const rank = x.shape.length;
  const axes = range(2, rank);
  const eps = c.float("epsilon", 1e-5);
  const mean = g.reduceMean(x, axes);
  const xc = g.sub(x, mean);
  const variance = g.reduceMean(g.mul(xc, xc), axes);
  const inv = g.reciprocal(g.sqrt(g.add(variance, c.scalar(eps, x))));
  const xhat = g.mul(xc, inv);
  const grads: (Value | undefined)[] = [];
  if (c.needs(0)) {
    const dxhat = isAllOnes(c.constant(1)) ? dY : g.mul(dY, channelView(g, scale, rank));
    const m1 = g.reduceMean(dxhat, axes);
    const m2 = g.reduceMean(g.mul(dxhat, xhat), axes);
    grads[0] = g.mul(inv, g.sub(g.sub(dxhat, m1), g.mul(xhat, m2)));
  }
  if (c.needs(1)) {
    grads[1] = g.reduceSum(g.mul(dY, xhat), [0, ...axes], { keepdims: false });
  }
  if (c.needs(2)) {
    grads[2] = g.reduceSum(dY, [0, ...axes], { keepdims: false });
  }
  return grads;
}

/** Inference form (running statistics are constants). The training form is built decomposed (see training.ts). */
function batchNormRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  if (c.node.training) {
    c.fail(
      "no gradient rule for the training form (ORT's CPU build has no training-mode kernel); build the decomposed form",
    );
  }
  if (c.needs(3) || c.needs(4)) {
    c.fail("running statistics are buffers and get no gradient");
  }
  const x = c.x(0);
  const rank = x.shape.length;
  const dY = c.dY;
  const eps = c.float("epsilon", 1e-5);
  const inv = g.reciprocal(g.sqrt(g.add(c.x(4), c.scalar(eps, x))));
  const reduceAxes = [0, ...range(2, rank)];
  const grads: (Value | undefined)[] = [];
  if (c.needs(0)) {
    grads[0] = g.mul(dY, channelView(g, g.mul(c.x(1), inv), rank));
  }
  if (c.needs(1)) {
    const xhat = g.mul(g.sub(x, channelView(g, c.x(3), rank)), channelView(g, inv, rank));
    grads[1] = g.reduceSum(g.mul(dY, xhat), reduceAxes, { keepdims: false });
  }
  if (c.needs(2)) {
    grads[2] = g.reduceSum(dY, reduceAxes, { keepdims: false });
  }
  return grads;
}

// ------------------------------------------------------------------------------------------------ pooling

function maxPoolRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const dY = c.dY;
  const spatial = x.shape.length - 2;
  const kernel = c.intList("kernel_shape", []);
  const w = windowOf(c, x, kernel);
  let indices: Value;
  if (c.node.outputs.length > 1) {
    indices = c.y(1);
  } else {
    // The forward node has no Indices output: pool again, with it (cheap next to the convolutions).
    const attrs: Record<string, Attr> = { ...c.node.attrs };
    indices = g.op("MaxPool", [x], attrs, { outputs: 2 })[1]!;
  }
  const overlapping = w.strides.some((s, i) => s < kernel[i]!) || w.dilations.some((d) => d !== 1);
  if (!overlapping && w.pads.every((p) => p === 0) && x.dtype === "float32" && c.int("ceil_mode", 0) === 0) {
    const [dx] = g.op(
      "MaxUnpool",
      [dY, indices, g.int64s(x.shape)],
      {
        kernel_shape: { kind: "ints", value: kernel },
        strides: { kind: "ints", value: w.strides },
        pads: { kind: "ints", value: Array(2 * spatial).fill(0) },
      },
      {},
    );
    return [dx];
  }
  // Windows overlap (or pads): several outputs may pick one input, so add the scattered gradients.
  const flat = g.op(
    "ScatterElements",
    [zeros(g, [numel(x.shape)], x.dtype), g.reshape(indices, [-1]), g.reshape(dY, [-1])],
    { axis: { kind: "int", value: 0 }, reduction: { kind: "string", value: "add" } },
    {},
  )[0]!;
  return [g.reshape(flat, x.shape)];
}

// ------------------------------------------------------------------------------------------------- resize

/** ORT's source coordinate of output index i along one axis. */
function sourceCoordinate(mode: string, i: number, scale: number, inSize: number, outSize: number): number {
  switch (mode) {
    case "half_pixel":
      return (i + 0.5) / scale - 0.5;
    case "pytorch_half_pixel":
      return outSize > 1 ? (i + 0.5) / scale - 0.5 : 0;
    case "align_corners":
      return outSize === 1 ? 0 : (i * (inSize - 1)) / (outSize - 1);
    case "asymmetric":
      return i / scale;
    default:
      throw new GradientError(`Resize: coordinate_transformation_mode '${mode}' has no gradient rule`);
  }
}

function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case "round_prefer_floor":
      return x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
    case "round_prefer_ceil":
      return Math.floor(x + 0.5);
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    default:
      throw new GradientError(`Resize: nearest_mode '${mode}' has no gradient rule`);
  }
}

/** The interpolation matrix A [out, in] of one axis: y = A x. */
function resizeMatrix(c: RuleContext, inSize: number, outSize: number, scale: number): Float64Array {
  const mode = c.string("mode", "nearest");
  const ctm = c.string("coordinate_transformation_mode", "half_pixel");
  const a = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const src = sourceCoordinate(ctm, i, scale, inSize, outSize);
    if (mode === "nearest") {
      const j = Math.min(Math.max(nearestIndex(c.string("nearest_mode", "round_prefer_floor"), src), 0), inSize - 1);
      a[i * inSize + j]! += 1;
    } else if (mode === "linear") {
      const s = Math.min(Math.max(src, 0), inSize - 1);
      const j0 = Math.floor(s);
      const j1 = Math.min(j0 + 1, inSize - 1);
      const f = s - j0;
      a[i * inSize + j0]! += 1 - f;
      a[i * inSize + j1]! += f;
    } else {
      c.fail(`mode '${mode}' has no gradient rule`);
    }
  }
  return a;
}

function resizeRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const y = c.y(0);
  const dY = c.dY;
  if (c.int("antialias", 0) !== 0 || c.int("exclude_outside", 0) !== 0) {
    c.fail("antialias and exclude_outside have no gradient rule");
  }
  const rank = x.shape.length;
  const scales = c.has(2) && c.constant(2)?.length ? c.floats(2) : y.shape.map((o, i) => o / x.shape[i]!);
  const axes = range(0, rank).filter((i) => x.shape[i] !== y.shape[i] || scales[i] !== 1);
  if (axes.some((a) => a < 2)) {
    c.fail("resizing the batch or channel axis has no gradient rule");
  }
  const matrices = axes.map((a) => resizeMatrix(c, x.shape[a]!, y.shape[a]!, scales[a]!));
  // Fast path: every resized axis repeats each input element r times in a row (nearest, integer factor).
  const blocks = axes.every((a, k) => {
    const inSize = x.shape[a]!;
    const outSize = y.shape[a]!;
    const r = outSize / inSize;
    if (!Number.isInteger(r)) {
      return false;
    }
    const m = matrices[k]!;
    return range(0, outSize).every((i) => m[i * inSize + Math.floor(i / r)] === 1);
  });
  if (blocks) {
    const split: number[] = [];
    const sumAxes: number[] = [];
    for (let i = 0; i < rank; i++) {
      split.push(x.shape[i]!);
      if (axes.includes(i)) {
        sumAxes.push(split.length);
        split.push(y.shape[i]! / x.shape[i]!);
      }
    }
    return [g.reshape(g.reduceSum(g.reshape(dY, split), sumAxes, { keepdims: false }), x.shape)];
  }
  // General linear map: dX = A^T dY along each resized axis, as a MatMul with a constant matrix.
  let d = dY;
  axes.forEach((axis, k) => {
    const inSize = x.shape[axis]!;
    const outSize = y.shape[axis]!;
    const m = matrices[k]!;
    const before = numel(d.shape.slice(0, axis));
    const after = numel(d.shape.slice(axis + 1));
    const data = d.dtype === "float64" ? new Float64Array(m.length) : new Float32Array(m.length);
    const shapeOut = [...d.shape];
    shapeOut[axis] = inSize;
    if (after === 1) {
      data.set(m);
      const a = g.constant(data, [outSize, inSize]);
      d = g.reshape(g.matMul(g.reshape(d, [before, outSize]), a), shapeOut);
    } else {
      for (let i = 0; i < outSize; i++) {
        for (let j = 0; j < inSize; j++) {
          data[j * outSize + i] = m[i * inSize + j]!;
        }
      }
      const at = g.constant(data, [inSize, outSize]);
      d = g.reshape(g.matMul(at, g.reshape(d, [before, outSize, after])), shapeOut);
    }
  });
  return [d];
}

// ------------------------------------------------------------------------------------------ shape ops

function sliceAdjoint(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const rank = x.shape.length;
  const starts = c.ints(1);
  const axes = c.has(3) ? c.ints(3).map((a) => normAxis(a, rank)) : starts.map((_, i) => i);
  const steps = c.has(4) ? c.ints(4) : starts.map(() => 1);
  let d = c.dY;
  for (let k = 0; k < axes.length; k++) {
    const axis = axes[k]!;
    const dim = x.shape[axis]!;
    const n = d.shape[axis]!;
    let step = steps[k]!;
    if (n === 0) {
      return [zeros(g, x.shape, x.dtype)];
    }
    const raw = starts[k]! < 0 ? starts[k]! + dim : starts[k]!;
    let first = step > 0 ? Math.min(Math.max(raw, 0), dim) : Math.min(Math.max(raw, 0), dim - 1);
    if (step < 0) {
      // Descending picks: flip the gradient so that it lines up with ascending positions.
      d = flip(g, d, [axis]);
      step = -step;
      first -= (n - 1) * step;
    }
    if (step > 1) {
      // Interleave step - 1 zeros after each element: unsqueeze, pad the new axis, merge.
      const withAxis = g.unsqueeze(d, [axis + 1]);
      const padded = g.pad(withAxis, [0, step - 1], { axes: [axis + 1] });
      const merged = [...d.shape];
      merged[axis] = n * step;
      d = g.slice(g.reshape(padded, merged), { starts: [0], ends: [(n - 1) * step + 1], axes: [axis] });
    }
    const len = d.shape[axis]!;
    if (first !== 0 || dim - first - len !== 0) {
      d = g.pad(d, [first, dim - first - len], { axes: [axis] });
    }
  }
  return [d];
}

function padRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const rank = x.shape.length;
  const pads = c.ints(1);
  const axes = c.has(3) ? c.ints(3).map((a) => normAxis(a, rank)) : range(0, rank);
  const mode = c.string("mode", "constant");
  if (mode !== "constant" && mode !== "edge") {
    c.fail(`mode '${mode}' has no gradient rule`);
  }
  let d = c.dY;
  axes.forEach((axis, k) => {
    const begin = pads[k]!;
    const end = pads[k + axes.length]!;
    if (begin === 0 && end === 0) {
      return;
    }
    const dim = x.shape[axis]!;
    const size = d.shape[axis]!;
    // Crop what padding added; pad back what a negative pad removed.
    const from = Math.max(begin, 0);
    const to = size - Math.max(end, 0);
    let core = from === 0 && to === size ? d : g.slice(d, { starts: [from], ends: [to], axes: [axis] });
    if (begin < 0 || end < 0) {
      core = g.pad(core, [Math.max(-begin, 0), Math.max(-end, 0)], { axes: [axis] });
    }
    if (mode === "edge") {
      // Replicated borders: their gradient adds onto the first / last element.
      const parts = [core];
      if (begin > 0) {
        const s = g.reduceSum(g.slice(d, { starts: [0], ends: [begin], axes: [axis] }), [axis]);
        parts.push(dim > 1 ? g.pad(s, [0, dim - 1], { axes: [axis] }) : s);
      }
      if (end > 0) {
        const s = g.reduceSum(g.slice(d, { starts: [size - end], ends: [size], axes: [axis] }), [axis]);
        parts.push(dim > 1 ? g.pad(s, [dim - 1, 0], { axes: [axis] }) : s);
      }
      core = parts.length === 1 ? core : g.sum(parts);
    }
    d = core;
  });
  return [d];
}

function reduceRule(mean: boolean) {
  return (c: RuleContext): (Value | undefined)[] => {
    const { g } = c;
    const x = c.x(0);
    const rank = x.shape.length;
    let axes = c.has(1) ? c.ints(1).map((a) => normAxis(a, rank)) : [];
    if (axes.length === 0) {
      if (c.int("noop_with_empty_axes", 0) === 1) {
        return [c.dY];
      }
      axes = range(0, rank);
    }
    const keep = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
    let d = g.expand(reshapeIfNeeded(g, c.dY, keep), x.shape);
    if (mean) {
      const count = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
      d = g.mul(d, c.scalar(1 / count, x));
    }
    return [d];
  };
}

function concatRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const inputs = c.node.inputs.map((_, i) => c.x(i));
  const rank = inputs[0]!.shape.length;
  const axis = normAxis(c.int("axis", 0), rank);
  const sizes = inputs.map((v) => v.shape[axis]!);
  const wanted = inputs.map((_, i) => c.needs(i));
  if (wanted.filter(Boolean).length > 1) {
    return g.split(c.dY, sizes, axis).map((v, i) => (wanted[i] ? v : undefined));
  }
  let offset = 0;
  return inputs.map((_, i) => {
    const start = offset;
    offset += sizes[i]!;
    return wanted[i] ? g.slice(c.dY, { starts: [start], ends: [offset], axes: [axis] }) : undefined;
  });
}

function splitRule(c: RuleContext): (Value | undefined)[] {
  const { g } = c;
  const x = c.x(0);
  const axis = normAxis(c.int("axis", 0), x.shape.length);
  const parts = c.node.outputs.map((_, i) => c.dy(i) ?? zeros(g, c.y(i).shape, x.dtype));
  return [parts.length === 1 ? parts[0]! : g.concat(parts, axis)];
}

// ------------------------------------------------------------------------------------------------ rules

const binary = (
  fn: (c: RuleContext, a: Value, b: Value, dY: Value) => [Value | undefined, Value | undefined],
): Rule => {
  return (c) => {
    const a = c.x(0);
    const b = c.x(1);
    const [da, db] = fn(c, a, b, c.dY);
    return [da && unbroadcast(c.g, da, a.shape), db && unbroadcast(c.g, db, b.shape)];
  };
};

const rules: Record<string, Rule> = {
  Identity: (c) => [c.dY],
  Neg: (c) => [c.g.neg(c.dY)],
  Relu: (c) => [c.g.mul(c.dY, c.g.sign(c.y()))],
  LeakyRelu: (c) => {
    const { g } = c;
    const x = c.x(0);
    const alpha = c.float("alpha", 0.01);
    return [g.where(g.greater(x, c.scalar(0, x)), c.dY, g.mul(c.dY, c.scalar(alpha, x)))];
  },
  PRelu: (c) => {
    const { g } = c;
    const x = c.x(0);
    const slope = c.x(1);
    const dY = c.dY;
    return [
      c.needs(0) ? g.where(g.greater(x, c.scalar(0, x)), dY, g.mul(dY, slope)) : undefined,
      c.needs(1) ? unbroadcast(g, g.mul(dY, g.min([x, c.scalar(0, x)])), slope.shape) : undefined,
    ];
  },
  Sigmoid: (c) => {
    const { g } = c;
    const y = c.y();
    return [g.mul(c.dY, g.mul(y, g.sub(c.scalar(1, y), y)))];
  },
  Tanh: (c) => {
    const { g } = c;
    const y = c.y();
    return [g.mul(c.dY, g.sub(c.scalar(1, y), g.mul(y, y)))];
  },
  Softmax: (c) => {
    const { g } = c;
    const y = c.y();
    const axis = normAxis(c.int("axis", -1), y.shape.length);
    return [g.mul(y, g.sub(c.dY, g.reduceSum(g.mul(c.dY, y), [axis])))];
  },
  LogSoftmax: (c) => {
    const { g } = c;
    const y = c.y();
    const axis = normAxis(c.int("axis", -1), y.shape.length);
    return [g.sub(c.dY, g.mul(g.exp(y), g.reduceSum(c.dY, [axis])))];
  },
  Sqrt: (c) => [c.g.div(c.g.mul(c.dY, c.scalar(0.5, c.y())), c.y())],
  Exp: (c) => [c.g.mul(c.dY, c.y())],
  Log: (c) => [c.g.div(c.dY, c.x(0))],
  Abs: (c) => [c.g.mul(c.dY, c.g.sign(c.x(0)))],
  Reciprocal: (c) => [c.g.neg(c.g.mul(c.dY, c.g.mul(c.y(), c.y())))],
  Softplus: (c) => [c.g.mul(c.dY, c.g.sigmoid(c.x(0)))],
  Add: binary((c, _a, _b, d) => [c.needs(0) ? d : undefined, c.needs(1) ? d : undefined]),
  Sub: binary((c, _a, _b, d) => [c.needs(0) ? d : undefined, c.needs(1) ? c.g.neg(d) : undefined]),
  Mul: binary((c, a, b, d) => [c.needs(0) ? c.g.mul(d, b) : undefined, c.needs(1) ? c.g.mul(d, a) : undefined]),
  Div: binary((c, _a, b, d) => [
    c.needs(0) ? c.g.div(d, b) : undefined,
    c.needs(1) ? c.g.neg(c.g.div(c.g.mul(d, c.y()), b)) : undefined,
  ]),
  Sum: (c) => c.node.inputs.map((_, i) => (c.needs(i) ? unbroadcast(c.g, c.dY, c.x(i).shape) : undefined)),
  Where: (c) => {
    const { g } = c;
    const cond = c.x(0);
    const zero = c.scalar(0, c.dY);
    return [
      undefined,
      c.needs(1) ? unbroadcast(g, g.where(cond, c.dY, zero), c.x(1).shape) : undefined,
      c.needs(2) ? unbroadcast(g, g.where(cond, zero, c.dY), c.x(2).shape) : undefined,
    ];
  },
  Cast: (c) => {
    const x = c.x(0);
    return isFloat(x.dtype) ? [x.dtype === c.dY.dtype ? c.dY : c.g.cast(c.dY, x.dtype)] : [];
  },
  Expand: (c) => [unbroadcast(c.g, c.dY, c.x(0).shape)],
  ReduceSum: reduceRule(false),
  ReduceMean: reduceRule(true),
  Reshape: (c) => [c.g.reshape(c.dY, c.x(0).shape)],
  Squeeze: (c) => [c.g.reshape(c.dY, c.x(0).shape)],
  Unsqueeze: (c) => [c.g.reshape(c.dY, c.x(0).shape)],
  Flatten: (c) => [c.g.reshape(c.dY, c.x(0).shape)],
  Transpose: (c) => {
    const rank = c.x(0).shape.length;
    const perm = c.intList("perm", range(0, rank).reverse());
    const inverse = Array<number>(rank);
    perm.forEach((p, i) => {
      inverse[p] = i;
    });
    return [c.g.transpose(c.dY, inverse)];
  },
  Concat: concatRule,
  Split: splitRule,
  Slice: sliceAdjoint,
  Pad: padRule,
  Resize: resizeRule,
  MaxPool: maxPoolRule,
  Conv: convRule,
  ConvTranspose: convTransposeRule,
  InstanceNormalization: instanceNormRule,
  BatchNormalization: batchNormRule,
  Dropout: (c) => {
    if (!c.node.training) {
      return [c.dY];
    }
    if (c.node.outputs.length < 2) {
      c.fail("the training form needs its mask output; use mask-based dropout (see training.ts)");
    }
    const ratio = c.has(1) ? (c.floats(1)[0] ?? 0.5) : 0.5;
    const mask = c.g.cast(c.y(1), c.dY.dtype === "float64" ? "float64" : "float32");
    return [c.g.mul(c.g.mul(c.dY, mask), c.scalar(1 / (1 - ratio), c.dY))];
  },
};

/** Ops with a gradient rule. */
export function differentiableOps(): string[] {
  return Object.keys(rules);
}

/**
 * Appends to `g` the backward pass of `loss` and returns the gradient of each name in `wrt` that the loss
 * depends on (names the loss does not depend on are left out of the map). `loss` is usually a scalar; any
 * shape works with an explicit `seed`.
 */
export function gradients(
  g: GraphBuilder,
  loss: Value,
  wrt: readonly string[],
  options: GradientOptions = {},
): Map<string, Value> {
  const graph = g.graph();
  const constants = new Map<string, TensorData>();
  for (const init of graph.initializers) {
    constants.set(init.name, init.data);
  }
  for (const name of wrt) {
    if (!graph.values.has(name)) {
      throw new GradientError(`'${name}' is not a value of graph '${graph.name}'`);
    }
  }
  if (!graph.values.has(loss.name)) {
    throw new GradientError(`loss '${loss.name}' is not a value of graph '${graph.name}'`);
  }

  // Forward sweep: the values a wanted value flows into.
  const requires = new Set<string>(wrt.filter((n) => isFloat(graph.values.get(n)!.dtype)));
  let lossIndex = -1;
  graph.nodes.forEach((node, index) => {
    if (node.outputs.includes(loss.name)) {
      lossIndex = index;
    }
    if (nonDifferentiable.has(node.op) || !node.inputs.some((i) => requires.has(i))) {
      return;
    }
    for (const out of node.outputs) {
      const v = graph.values.get(out);
      if (v && isFloat(v.dtype)) {
        requires.add(out);
      }
    }
  });
  // Backward sweep over the structure: the nodes the pass will differentiate. Missing rules fail here, before
  // anything is added to the graph.
  const reaches = new Set<string>([loss.name]);
  const active: boolean[] = [];
  for (let index = lossIndex; index >= 0; index--) {
    const node = graph.nodes[index]!;
    if (nonDifferentiable.has(node.op) || !node.outputs.some((o) => reaches.has(o))) {
      continue;
    }
    const wanted = node.inputs.filter((i) => i !== "" && requires.has(i));
    if (wanted.length === 0) {
      continue;
    }
    if (!rules[node.op]) {
      throw new GradientError(
        `no gradient rule for op ${node.op} (node '${node.name}'); ops with rules: ${differentiableOps().join(", ")}`,
      );
    }
    active[index] = true;
    for (const i of wanted) {
      reaches.add(i);
    }
  }

  const contributions = new Map<string, Value[]>();
  const totals = new Map<string, Value>();
  const seed =
    options.seed ??
    g.constant(
      loss.dtype === "float64"
        ? new Float64Array(numel(loss.shape)).fill(1)
        : new Float32Array(numel(loss.shape)).fill(1),
      loss.shape,
      { name: `${options.scope ?? "grad"}/${loss.name}/seed` },
    );
  if (seed.shape.join() !== loss.shape.join()) {
    throw new GradientError(`seed ${formatShape(seed.shape)} does not match loss ${formatShape(loss.shape)}`);
  }
  contributions.set(loss.name, [seed]);

  const total = (name: string): Value | undefined => {
    const done = totals.get(name);
    if (done) {
      return done;
    }
    const list = contributions.get(name);
    if (!list || list.length === 0) {
      return undefined;
    }
    const v = list.length === 1 ? list[0]! : g.scope(`${options.scope ?? "grad"}/${name}`, () => g.sum(list));
    totals.set(name, v);
    return v;
  };

  for (let index = lossIndex; index >= 0; index--) {
    if (!active[index]) {
      continue;
    }
    const node = graph.nodes[index]!;
    const wanted = node.inputs.map((i) => i !== "" && requires.has(i));
    const outGrads = node.outputs.map((o) => total(o));
    if (!outGrads.some((d) => d !== undefined)) {
      continue;
    }
    const rule = rules[node.op]!;
    const context = new RuleContext(g, node, graph, constants, outGrads, wanted);
    const grads = g.scope(`${options.scope ?? "grad"}/${node.name}`, () => rule(context));
    node.inputs.forEach((name, i) => {
      const d = grads[i];
      if (!wanted[i] || d === undefined) {
        return;
      }
      const x = graph.values.get(name)!;
      if (d.shape.join() !== x.shape.join()) {
        throw new GradientError(
          `${node.op} '${node.name}': gradient of input ${i} is ${formatShape(d.shape)}, the input is ${formatShape(x.shape)}`,
        );
      }
      const list = contributions.get(name);
      if (list) {
        list.push(d);
      } else {
        contributions.set(name, [d]);
      }
    });
  }

  const out = new Map<string, Value>();
  for (const name of wrt) {
    const d = total(name);
    if (d) {
      out.set(name, d);
    }
  }
  return out;
}

/**
 * `gradients` on a finished graph: continues it in a new builder (GraphBuilder.fromGraph), appends the backward
 * pass, and returns the builder (to add outputs) with the gradients.
 */
export function withGradients(
  graph: Graph,
  loss: Value | string,
  wrt: readonly string[],
  options: GradientOptions = {},
): { builder: GraphBuilder; grads: Map<string, Value> } {
  const builder = GraphBuilder.fromGraph(graph);
  const lossValue = typeof loss === "string" ? graph.values.get(loss) : loss;
  if (!lossValue) {
    throw new GradientError(`loss '${String(loss)}' is not a value of graph '${graph.name}'`);
  }
  return { builder, grads: gradients(builder, lossValue, wrt, options) };
}
