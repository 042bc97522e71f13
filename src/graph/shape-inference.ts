import { type Attr, type DType, formatShape, type Node, numel, type TensorData, type Value } from "./ir.js";

/** A static-shape or dtype mismatch found while adding a node; the message names the node and the shapes. */
export class ShapeError extends Error {
  override readonly name = "ShapeError";
}

export interface InferContext {
  value(name: string): Value | undefined;
  /** The data of an initializer, for ops whose output shape depends on an operand (Reshape, Slice, axes ...). */
  constant(name: string): TensorData | undefined;
}

export interface OutputInfo {
  dtype: DType;
  shape: number[];
}

type NodeSpec = Pick<Node, "op" | "name" | "inputs" | "outputs" | "attrs">;

type Rule = (n: NodeReader) => OutputInfo[];

/** Reads a node's operands and attributes, and raises errors that name the node. */
class NodeReader {
  constructor(
    readonly node: NodeSpec,
    private readonly ctx: InferContext,
  ) {}

  fail(message: string): never {
    throw new ShapeError(`${this.node.op} '${this.node.name}': ${message}`);
  }

  has(index: number): boolean {
    const name = this.node.inputs[index];
    return name !== undefined && name !== "";
  }

  input(index: number): Value {
    const name = this.node.inputs[index];
    if (name === undefined || name === "") {
      this.fail(`input ${index} is required`);
    }
    const value = this.ctx.value(name);
    if (!value) {
      this.fail(`input ${index} ('${name}') is not a value of this graph`);
    }
    return value;
  }

  optional(index: number): Value | undefined {
    return this.has(index) ? this.input(index) : undefined;
  }

  /** Integer operand (axes, shape, starts ...) that must be a constant for static shapes. */
  ints(index: number): number[] {
    const value = this.input(index);
    const data = this.ctx.constant(value.name);
    if (!data) {
      this.fail(`input ${index} ('${value.name}') must be a constant for static shape inference`);
    }
    if (data instanceof BigInt64Array) {
      return Array.from(data, (v) => Number(v));
    }
    if (data instanceof Int32Array) {
      return Array.from(data);
    }
    this.fail(`input ${index} ('${value.name}') must be int64, got ${value.dtype}`);
  }

  floats(index: number): number[] {
    const value = this.input(index);
    const data = this.ctx.constant(value.name);
    if (!(data instanceof Float32Array || data instanceof Float64Array)) {
      this.fail(`input ${index} ('${value.name}') must be a float constant`);
    }
    return Array.from(data);
  }

  attr(name: string): Attr | undefined {
    return this.node.attrs[name];
  }

  int(name: string, fallback: number): number {
    const a = this.attr(name);
    if (a === undefined) {
      return fallback;
    }
    if (a.kind !== "int") {
      this.fail(`attribute ${name} must be an int`);
    }
    return a.value;
  }

  intList(name: string, fallback: readonly number[]): number[] {
    const a = this.attr(name);
    if (a === undefined) {
      return [...fallback];
    }
    if (a.kind !== "ints") {
      this.fail(`attribute ${name} must be a list of ints`);
    }
    return [...a.value];
  }

  string(name: string, fallback: string): string {
    const a = this.attr(name);
    if (a === undefined) {
      return fallback;
    }
    if (a.kind !== "string") {
      this.fail(`attribute ${name} must be a string`);
    }
    return a.value;
  }

  sameDtype(values: readonly Value[]): DType {
    const first = values[0]!;
    for (const v of values) {
      if (v.dtype !== first.dtype) {
        this.fail(`dtype mismatch: '${first.name}' is ${first.dtype}, '${v.name}' is ${v.dtype}`);
      }
    }
    return first.dtype;
  }

  float(value: Value, what: string): void {
    if (value.dtype !== "float32" && value.dtype !== "float64") {
      this.fail(`${what} must be float32 or float64, got ${value.dtype}`);
    }
  }

  /** ONNX Runtime's CPU provider has float32 kernels only for the conv and norm ops. */
  float32(value: Value, what: string): void {
    if (value.dtype !== "float32") {
      this.fail(
        `${what} must be float32 (ONNX Runtime's CPU provider has no ${value.dtype} kernel), got ${value.dtype}`,
      );
    }
  }

  axis(axis: number, rank: number): number {
    const a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      this.fail(`axis ${axis} is out of range for rank ${rank}`);
    }
    return a;
  }

  rankAtLeast(value: Value, rank: number, what: string): void {
    if (value.shape.length < rank) {
      this.fail(`${what} must have rank >= ${rank}, got ${formatShape(value.shape)}`);
    }
  }
}

/** Numpy-style (multidirectional) broadcasting. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      return undefined;
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

function sameShape(x: Value): OutputInfo[] {
  return [{ dtype: x.dtype, shape: [...x.shape] }];
}

function unaryFloat(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float(x, "input");
  return sameShape(x);
}

function broadcasting(n: NodeReader): OutputInfo[] {
  const values = n.node.inputs.map((_, i) => n.input(i));
  if (values.length === 0) {
    n.fail("needs at least one input");
  }
  const dtype = n.sameDtype(values);
  let shape: number[] = [...values[0]!.shape];
  for (const v of values.slice(1)) {
    const next = broadcastShapes(shape, v.shape);
    if (!next) {
      n.fail(`shapes ${values.map((x) => formatShape(x.shape)).join(" and ")} do not broadcast`);
    }
    shape = next;
  }
  return [{ dtype, shape }];
}

/** Per spatial axis: strides, dilations, begin/end pads, with ONNX defaults. */
function windowParams(n: NodeReader, spatial: number) {
  const strides = n.intList("strides", Array(spatial).fill(1));
  const dilations = n.intList("dilations", Array(spatial).fill(1));
  const pads = n.intList("pads", Array(2 * spatial).fill(0));
  if (strides.length !== spatial || dilations.length !== spatial || pads.length !== 2 * spatial) {
    n.fail(`strides/dilations need ${spatial} values and pads ${2 * spatial} for ${spatial} spatial dims`);
  }
  if (strides.some((s) => s < 1) || dilations.some((d) => d < 1) || pads.some((p) => p < 0)) {
    n.fail("strides and dilations must be >= 1, pads >= 0");
  }
  if (n.string("auto_pad", "NOTSET") !== "NOTSET") {
    n.fail("auto_pad is not supported; give explicit pads");
  }
  return { strides, dilations, pads };
}

function windowOutput(
  n: NodeReader,
  input: readonly number[],
  kernel: readonly number[],
  p: ReturnType<typeof windowParams>,
  ceil: boolean,
): number[] {
  const spatial = kernel.length;
  return input.map((size, i) => {
    const span = p.dilations[i]! * (kernel[i]! - 1) + 1;
    const padded = size + p.pads[i]! + p.pads[i + spatial]!;
    if (padded < span) {
      n.fail(
        `spatial axis ${i}: input size ${size} plus padding is smaller than the kernel extent ${span} (input ${formatShape(input)})`,
      );
    }
    const q = (padded - span) / p.strides[i]!;
    return (ceil ? Math.ceil(q) : Math.floor(q)) + 1;
  });
}

function conv(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const w = n.input(1);
  n.float32(x, "X");
  n.float32(w, "W");
  n.rankAtLeast(x, 3, "X");
  if (w.shape.length !== x.shape.length) {
    n.fail(`W ${formatShape(w.shape)} must have the rank of X ${formatShape(x.shape)}`);
  }
  const spatial = x.shape.length - 2;
  const group = n.int("group", 1);
  const [batch, channels] = x.shape as [number, number];
  const [outChannels, inPerGroup] = w.shape as [number, number];
  const kernel = w.shape.slice(2);
  const kernelAttr = n.intList("kernel_shape", kernel);
  if (kernelAttr.join() !== kernel.join()) {
    n.fail(`kernel_shape ${formatShape(kernelAttr)} does not match W ${formatShape(w.shape)}`);
  }
  if (inPerGroup * group !== channels) {
    n.fail(
      `X has ${channels} channels but W ${formatShape(w.shape)} with group ${group} expects ${inPerGroup * group}`,
    );
  }
  if (outChannels % group !== 0) {
    n.fail(`output channels ${outChannels} are not divisible by group ${group}`);
  }
  const b = n.optional(2);
  if (b && (b.shape.length !== 1 || b.shape[0] !== outChannels)) {
    n.fail(`B ${formatShape(b.shape)} must be [${outChannels}]`);
  }
  const p = windowParams(n, spatial);
  return [{ dtype: x.dtype, shape: [batch, outChannels, ...windowOutput(n, x.shape.slice(2), kernel, p, false)] }];
}

function convTranspose(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const w = n.input(1);
  n.float32(x, "X");
  n.float32(w, "W");
  n.rankAtLeast(x, 3, "X");
  if (w.shape.length !== x.shape.length) {
    n.fail(`W ${formatShape(w.shape)} must have the rank of X ${formatShape(x.shape)}`);
  }
  const spatial = x.shape.length - 2;
  const group = n.int("group", 1);
  const [batch, channels] = x.shape as [number, number];
  const [inChannels, outPerGroup] = w.shape as [number, number];
  if (inChannels !== channels) {
    n.fail(`X has ${channels} channels but W ${formatShape(w.shape)} expects ${inChannels}`);
  }
  const outChannels = outPerGroup * group;
  const b = n.optional(2);
  if (b && (b.shape.length !== 1 || b.shape[0] !== outChannels)) {
    n.fail(`B ${formatShape(b.shape)} must be [${outChannels}]`);
  }
  if (n.attr("output_shape")) {
    n.fail("output_shape is not supported; give pads and output_padding");
  }
  const kernel = w.shape.slice(2);
  const p = windowParams(n, spatial);
  const outputPadding = n.intList("output_padding", Array(spatial).fill(0));
  if (outputPadding.length !== spatial) {
    n.fail(`output_padding needs ${spatial} values`);
  }
  const spatialOut = x.shape.slice(2).map((size, i) => {
    const op = outputPadding[i]!;
    if (op < 0 || op >= Math.max(p.strides[i]!, p.dilations[i]!)) {
      n.fail(`output_padding ${op} on axis ${i} must be smaller than the stride or the dilation`);
    }
    const out =
      p.strides[i]! * (size - 1) + op + p.dilations[i]! * (kernel[i]! - 1) + 1 - p.pads[i]! - p.pads[i + spatial]!;
    if (out < 1) {
      n.fail(`spatial axis ${i} would have size ${out}`);
    }
    return out;
  });
  return [{ dtype: x.dtype, shape: [batch, outChannels, ...spatialOut] }];
}

function perChannel(n: NodeReader, x: Value, indices: readonly number[], names: readonly string[]): void {
  const channels = x.shape[1]!;
  indices.forEach((index, k) => {
    const v = n.input(index);
    if (v.shape.length !== 1 || v.shape[0] !== channels) {
      n.fail(`${names[k]} ${formatShape(v.shape)} must be [${channels}] for X ${formatShape(x.shape)}`);
    }
    if (v.dtype !== x.dtype) {
      n.fail(`${names[k]} is ${v.dtype} but X is ${x.dtype}`);
    }
  });
}

function instanceNorm(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float32(x, "X");
  n.rankAtLeast(x, 3, "X");
  perChannel(n, x, [1, 2], ["scale", "B"]);
  return sameShape(x);
}

function batchNorm(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float32(x, "X");
  n.rankAtLeast(x, 2, "X");
  perChannel(n, x, [1, 2, 3, 4], ["scale", "B", "input_mean", "input_var"]);
  const outs: OutputInfo[] = sameShape(x);
  for (let i = 1; i < n.node.outputs.length; i++) {
    outs.push({ dtype: x.dtype, shape: [x.shape[1]!] });
  }
  return outs;
}

function prelu(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const slope = n.input(1);
  n.float(x, "X");
  n.sameDtype([x, slope]);
  const b = broadcastShapes(x.shape, slope.shape);
  if (!b || b.join() !== x.shape.join()) {
    n.fail(`slope ${formatShape(slope.shape)} does not broadcast to X ${formatShape(x.shape)}`);
  }
  return sameShape(x);
}

function softmax(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float(x, "input");
  n.axis(n.int("axis", -1), x.shape.length);
  return sameShape(x);
}

function maxPool(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float(x, "X");
  n.rankAtLeast(x, 3, "X");
  const spatial = x.shape.length - 2;
  const kernel = n.intList("kernel_shape", []);
  if (kernel.length !== spatial) {
    n.fail(`kernel_shape ${formatShape(kernel)} needs ${spatial} values for X ${formatShape(x.shape)}`);
  }
  if (n.int("storage_order", 0) !== 0) {
    n.fail("storage_order 1 is not supported");
  }
  const p = windowParams(n, spatial);
  const shape = [
    x.shape[0]!,
    x.shape[1]!,
    ...windowOutput(n, x.shape.slice(2), kernel, p, n.int("ceil_mode", 0) === 1),
  ];
  const outs: OutputInfo[] = [{ dtype: x.dtype, shape }];
  if (n.node.outputs.length > 1) {
    outs.push({ dtype: "int64", shape: [...shape] });
  }
  return outs;
}

function concat(n: NodeReader): OutputInfo[] {
  const values = n.node.inputs.map((_, i) => n.input(i));
  if (values.length === 0) {
    n.fail("needs at least one input");
  }
  const first = values[0]!;
  const dtype = n.sameDtype(values);
  const rank = first.shape.length;
  const axis = n.axis(n.int("axis", 0), rank);
  const shape = [...first.shape];
  shape[axis] = 0;
  for (const v of values) {
    const ok = v.shape.length === rank && v.shape.every((d, i) => i === axis || d === first.shape[i]);
    if (!ok) {
      n.fail(
        `cannot concatenate shapes ${values.map((x) => formatShape(x.shape)).join(", ")} on axis ${axis}: all other axes must match`,
      );
    }
    shape[axis]! += v.shape[axis]!;
  }
  return [{ dtype, shape }];
}

function split(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const axis = n.axis(n.int("axis", 0), x.shape.length);
  const total = x.shape[axis]!;
  const count = n.node.outputs.length;
  let sizes: number[];
  if (n.has(1)) {
    sizes = n.ints(1);
    if (sizes.length !== count) {
      n.fail(`split has ${sizes.length} sizes but the node has ${count} outputs`);
    }
  } else {
    const chunk = Math.ceil(total / count);
    sizes = Array.from({ length: count }, (_, i) => Math.max(0, Math.min(chunk, total - i * chunk)));
  }
  const sum = sizes.reduce((a, b) => a + b, 0);
  if (sum !== total || sizes.some((s) => s < 0)) {
    n.fail(`sizes ${formatShape(sizes)} do not add up to axis ${axis} of ${formatShape(x.shape)}`);
  }
  return sizes.map((s) => {
    const shape = [...x.shape];
    shape[axis] = s;
    return { dtype: x.dtype, shape };
  });
}

function slice(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const rank = x.shape.length;
  const starts = n.ints(1);
  const ends = n.ints(2);
  const axes = n.has(3) ? n.ints(3) : starts.map((_, i) => i);
  const steps = n.has(4) ? n.ints(4) : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    n.fail("starts, ends, axes and steps must have the same length");
  }
  const shape = [...x.shape];
  const seen = new Set<number>();
  starts.forEach((rawStart, i) => {
    const axis = n.axis(axes[i]!, rank);
    if (seen.has(axis)) {
      n.fail(`axis ${axis} is repeated`);
    }
    seen.add(axis);
    const dim = x.shape[axis]!;
    const step = steps[i]!;
    if (step === 0) {
      n.fail("steps must not be 0");
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    let start = rawStart < 0 ? rawStart + dim : rawStart;
    let end = ends[i]! < 0 ? ends[i]! + dim : ends[i]!;
    if (step > 0) {
      start = clamp(start, 0, dim);
      end = clamp(end, 0, dim);
      shape[axis] = Math.max(0, Math.ceil((end - start) / step));
    } else {
      start = clamp(start, 0, dim - 1);
      end = clamp(end, -1, dim - 1);
      shape[axis] = Math.max(0, Math.ceil((start - end) / -step));
    }
  });
  return [{ dtype: x.dtype, shape }];
}

function reshape(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const target = n.ints(1);
  if (n.int("allowzero", 0) !== 0) {
    n.fail("allowzero is not supported");
  }
  const shape = target.map((d, i) => {
    if (d === 0) {
      const copied = x.shape[i];
      if (copied === undefined) {
        n.fail(`0 at position ${i} has no input axis to copy`);
      }
      return copied;
    }
    return d;
  });
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1 || shape.some((d) => d < -1)) {
    n.fail(`invalid target shape ${formatShape(target)}`);
  }
  const total = numel(x.shape);
  const known = numel(shape.filter((d) => d !== -1));
  if (inferred === 1) {
    if (known === 0 || total % known !== 0) {
      n.fail(`cannot reshape ${formatShape(x.shape)} to ${formatShape(target)}`);
    }
    shape[shape.indexOf(-1)] = total / known;
  } else if (known !== total) {
    n.fail(`cannot reshape ${formatShape(x.shape)} (${total} elements) to ${formatShape(target)}`);
  }
  return [{ dtype: x.dtype, shape }];
}

function transpose(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const rank = x.shape.length;
  const perm = n.intList(
    "perm",
    x.shape.map((_, i) => rank - 1 - i),
  );
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== rank || sorted.some((p, i) => p !== i)) {
    n.fail(`perm ${formatShape(perm)} is not a permutation of ${rank} axes`);
  }
  return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
}

function resize(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float(x, "X");
  const mode = n.string("mode", "nearest");
  if (!["nearest", "linear", "cubic"].includes(mode)) {
    n.fail(`unknown mode '${mode}'`);
  }
  if (n.attr("axes")) {
    n.fail("the axes attribute is not supported; give scales or sizes for every axis");
  }
  const rank = x.shape.length;
  let shape: number[];
  if (n.has(3)) {
    if (n.has(2)) {
      n.fail("give scales or sizes, not both");
    }
    shape = n.ints(3);
  } else if (n.has(2)) {
    const scales = n.floats(2);
    if (scales.length !== rank) {
      n.fail(`scales needs ${rank} values, got ${scales.length}`);
    }
    shape = x.shape.map((d, i) => Math.floor(d * scales[i]!));
  } else {
    n.fail("needs scales or sizes");
  }
  if (shape.length !== rank || shape.some((d) => d < 1)) {
    n.fail(`invalid output shape ${formatShape(shape)} for X ${formatShape(x.shape)}`);
  }
  return [{ dtype: x.dtype, shape }];
}

function reduce(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const rank = x.shape.length;
  const keepdims = n.int("keepdims", 1) === 1;
  let axes = n.has(1) ? n.ints(1).map((a) => n.axis(a, rank)) : [];
  if (axes.length === 0) {
    if (n.int("noop_with_empty_axes", 0) === 1) {
      return sameShape(x);
    }
    axes = x.shape.map((_, i) => i);
  }
  if (new Set(axes).size !== axes.length) {
    n.fail(`axes ${formatShape(axes)} repeat an axis`);
  }
  const reduced = new Set(axes);
  const shape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!reduced.has(i)) {
      shape.push(d);
    } else if (keepdims) {
      shape.push(1);
    }
  });
  return [{ dtype: x.dtype, shape }];
}

function dropout(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  n.float(x, "data");
  if (n.has(1)) {
    const ratio = n.floats(1)[0];
    if (ratio === undefined || ratio < 0 || ratio >= 1) {
      n.fail(`ratio must be in [0, 1), got ${ratio}`);
    }
  }
  const outs = sameShape(x);
  if (n.node.outputs.length > 1) {
    outs.push({ dtype: "bool", shape: [...x.shape] });
  }
  return outs;
}

function pad(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const rank = x.shape.length;
  const pads = n.ints(1);
  const axes = n.has(3) ? n.ints(3).map((a) => n.axis(a, rank)) : x.shape.map((_, i) => i);
  if (pads.length !== 2 * axes.length) {
    n.fail(`pads needs ${2 * axes.length} values, got ${pads.length}`);
  }
  const mode = n.string("mode", "constant");
  if (!["constant", "reflect", "edge", "wrap"].includes(mode)) {
    n.fail(`unknown mode '${mode}'`);
  }
  const shape = [...x.shape];
  axes.forEach((axis, i) => {
    shape[axis] = x.shape[axis]! + pads[i]! + pads[i + axes.length]!;
    if (shape[axis]! < 0) {
      n.fail(`axis ${axis} would have negative size`);
    }
  });
  return [{ dtype: x.dtype, shape }];
}

function squeezeLike(n: NodeReader, unsqueeze: boolean): OutputInfo[] {
  const x = n.input(0);
  if (unsqueeze) {
    const listed = n.ints(1);
    const rank = x.shape.length + listed.length;
    const axes = new Set(listed.map((a) => n.axis(a, rank)));
    if (axes.size !== listed.length) {
      n.fail(`axes ${formatShape(listed)} repeat an axis`);
    }
    const rest = [...x.shape];
    const shape = Array.from({ length: rank }, (_, i) => (axes.has(i) ? 1 : rest.shift()!));
    return [{ dtype: x.dtype, shape }];
  }
  const axes = n.has(1) ? new Set(n.ints(1).map((a) => n.axis(a, x.shape.length))) : undefined;
  const shape = x.shape.filter((d, i) => {
    const drop = axes ? axes.has(i) : d === 1;
    if (drop && d !== 1) {
      n.fail(`cannot squeeze axis ${i} of size ${d}`);
    }
    return !drop;
  });
  return [{ dtype: x.dtype, shape }];
}

// ------------------------------------------------------------------------------------------------------------
// Ops that a generated backward pass, a training transform or a loss adds (comparisons, masks, matrix products).

/** ONNX TensorProto.DataType numbers of the dtypes the IR knows. */
export const onnxDataType: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

function dtypeFromOnnx(n: NodeReader, code: number): DType {
  const found = (Object.entries(onnxDataType) as [DType, number][]).find(([, c]) => c === code);
  if (!found) {
    n.fail(`data type ${code} is not supported`);
  }
  return found[0];
}

function compare(n: NodeReader): OutputInfo[] {
  const [out] = broadcasting(n);
  return [{ dtype: "bool", shape: out!.shape }];
}

function where(n: NodeReader): OutputInfo[] {
  const cond = n.input(0);
  const a = n.input(1);
  const b = n.input(2);
  if (cond.dtype !== "bool") {
    n.fail(`condition must be bool, got ${cond.dtype}`);
  }
  const dtype = n.sameDtype([a, b]);
  const ab = broadcastShapes(a.shape, b.shape);
  const shape = ab && broadcastShapes(cond.shape, ab);
  if (!shape) {
    n.fail(`shapes ${[cond, a, b].map((v) => formatShape(v.shape)).join(", ")} do not broadcast`);
  }
  return [{ dtype, shape }];
}

function cast(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  return [{ dtype: dtypeFromOnnx(n, n.int("to", 1)), shape: [...x.shape] }];
}

function expand(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const target = n.ints(1);
  const shape = broadcastShapes(x.shape, target);
  if (!shape) {
    n.fail(`${formatShape(x.shape)} does not expand to ${formatShape(target)}`);
  }
  return [{ dtype: x.dtype, shape }];
}

function maxUnpool(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const indices = n.input(1);
  n.float32(x, "X");
  if (indices.dtype !== "int64" || indices.shape.join() !== x.shape.join()) {
    n.fail(`I must be int64 shaped like X ${formatShape(x.shape)}`);
  }
  if (!n.has(2)) {
    n.fail("give output_shape (the static shape of the pooled input)");
  }
  const shape = n.ints(2);
  if (shape.length !== x.shape.length || shape[0] !== x.shape[0] || shape[1] !== x.shape[1]) {
    n.fail(`output_shape ${formatShape(shape)} does not fit X ${formatShape(x.shape)}`);
  }
  return [{ dtype: x.dtype, shape }];
}

function scatterElements(n: NodeReader): OutputInfo[] {
  const data = n.input(0);
  const indices = n.input(1);
  const updates = n.input(2);
  if (indices.shape.join() !== updates.shape.join() || indices.shape.length !== data.shape.length) {
    n.fail(`indices ${formatShape(indices.shape)} and updates ${formatShape(updates.shape)} must match in shape`);
  }
  n.sameDtype([data, updates]);
  return sameShape(data);
}

function gemm(n: NodeReader): OutputInfo[] {
  const a = n.input(0);
  const b = n.input(1);
  const dtype = n.sameDtype([a, b]);
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    n.fail(`A ${formatShape(a.shape)} and B ${formatShape(b.shape)} must be matrices`);
  }
  const [m, ka] = n.int("transA", 0) ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, cols] = n.int("transB", 0) ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (ka !== kb) {
    n.fail(`inner sizes differ: A ${formatShape(a.shape)}, B ${formatShape(b.shape)}`);
  }
  const c = n.optional(2);
  if (c) {
    const s = broadcastShapes(c.shape, [m, cols]);
    if (!s || s.join() !== [m, cols].join()) {
      n.fail(`C ${formatShape(c.shape)} does not broadcast to [${m}, ${cols}]`);
    }
  }
  return [{ dtype, shape: [m, cols] }];
}

function matMul(n: NodeReader): OutputInfo[] {
  const a = n.input(0);
  const b = n.input(1);
  const dtype = n.sameDtype([a, b]);
  if (a.shape.length === 0 || b.shape.length === 0) {
    n.fail("operands must have rank >= 1");
  }
  const as = a.shape.length === 1 ? [1, a.shape[0]!] : [...a.shape];
  const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : [...b.shape];
  if (as[as.length - 1] !== bs[bs.length - 2]) {
    n.fail(`inner sizes differ: ${formatShape(a.shape)} x ${formatShape(b.shape)}`);
  }
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
  if (!batch) {
    n.fail(`batch axes of ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
  }
  const shape = [...batch];
  if (a.shape.length > 1) {
    shape.push(as[as.length - 2]!);
  }
  if (b.shape.length > 1) {
    shape.push(bs[bs.length - 1]!);
  }
  return [{ dtype, shape }];
}

function randomLike(n: NodeReader): OutputInfo[] {
  const x = n.input(0);
  const a = n.attr("dtype");
  const dtype = a === undefined ? x.dtype : dtypeFromOnnx(n, n.int("dtype", 1));
  if (dtype !== "float32" && dtype !== "float64") {
    n.fail(`dtype must be float32 or float64, got ${dtype}`);
  }
  return [{ dtype, shape: [...x.shape] }];
}

const rules: Record<string, Rule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  InstanceNormalization: instanceNorm,
  BatchNormalization: batchNorm,
  Relu: unaryFloat,
  LeakyRelu: unaryFloat,
  Sigmoid: unaryFloat,
  Tanh: unaryFloat,
  Sqrt: unaryFloat,
  Exp: unaryFloat,
  Log: unaryFloat,
  Neg: (n) => sameShape(n.input(0)),
  Abs: (n) => sameShape(n.input(0)),
  Sign: (n) => sameShape(n.input(0)),
  Identity: (n) => sameShape(n.input(0)),
  PRelu: prelu,
  Softmax: softmax,
  MaxPool: maxPool,
  Add: broadcasting,
  Sub: broadcasting,
  Mul: broadcasting,
  Div: broadcasting,
  Sum: broadcasting,
  Concat: concat,
  Split: split,
  Slice: slice,
  Reshape: reshape,
  Transpose: transpose,
  Resize: resize,
  ReduceMean: reduce,
  ReduceSum: reduce,
  Dropout: dropout,
  Pad: pad,
  Unsqueeze: (n) => squeezeLike(n, true),
  Squeeze: (n) => squeezeLike(n, false),
  LogSoftmax: softmax,
  Reciprocal: unaryFloat,
  Softplus: unaryFloat,
  Pow: broadcasting,
  Min: broadcasting,
  Max: broadcasting,
  Greater: compare,
  Less: compare,
  GreaterOrEqual: compare,
  LessOrEqual: compare,
  Equal: compare,
  Not: (n) => sameShape(n.input(0)),
  Where: where,
  Cast: cast,
  Expand: expand,
  MaxUnpool: maxUnpool,
  ScatterElements: scatterElements,
  Gemm: gemm,
  MatMul: matMul,
  RandomUniformLike: randomLike,
  RandomNormalLike: randomLike,
};

export function supportedOps(): string[] {
  return Object.keys(rules);
}

/** The dtype and static shape of each output of `node`; throws ShapeError when the operands do not fit. */
export function inferNode(node: NodeSpec, ctx: InferContext): OutputInfo[] {
  const rule = rules[node.op];
  if (!rule) {
    throw new ShapeError(`${node.op} '${node.name}': no shape inference rule for op ${node.op}`);
  }
  const outs = rule(new NodeReader(node, ctx));
  if (outs.length < node.outputs.length) {
    throw new ShapeError(`${node.op} '${node.name}': has ${node.outputs.length} outputs, the op gives ${outs.length}`);
  }
  return outs.slice(0, node.outputs.length);
}
