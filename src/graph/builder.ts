import {
  type Attr,
  attr,
  type DType,
  dataMatchesDtype,
  dtypeOfData,
  formatShape,
  type Graph,
  type Initializer,
  type Node,
  numel,
  type TensorData,
  type Value,
  type ValueSource,
} from "./ir.js";
import { type ModelProto, type SerializeOptions, serializeGraph, toModelProto } from "./serialize.js";
import { inferNode, onnxDataType, ShapeError } from "./shape-inference.js";

export interface GraphBuilderOptions {
  name?: string;
  /** Default 18, where ReduceMean/ReduceSum take axes as an input; ORT 1.30 runs 13 to 21. */
  opset?: number;
}

/** One value for every spatial axis, or one per axis. */
export type PerAxis = number | readonly number[];

/**
 * Padding: one value for all sides, one per spatial axis (the same at both ends, like PyTorch), or ONNX's
 * [begin_1 .. begin_d, end_1 .. end_d].
 */
export type Padding = number | readonly number[];

export interface OpOptions {
  /** Name of the (first) output and of the node; by default derived from the current scope and the op. */
  name?: string;
}

export interface ConvOptions extends OpOptions {
  strides?: PerAxis;
  pads?: Padding;
  dilations?: PerAxis;
  group?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: PerAxis;
}

export interface PoolOptions extends OpOptions {
  kernelShape: PerAxis;
  /** Defaults to the kernel shape, like PyTorch. */
  strides?: PerAxis;
  pads?: Padding;
  dilations?: PerAxis;
  ceilMode?: boolean;
}

export interface ResizeOptions extends OpOptions {
  /** A number scales every spatial axis (N and C stay); a list gives one scale per axis of x. */
  scales?: number | readonly number[];
  /** Output size of every axis of x. */
  sizes?: readonly number[];
  mode?: "nearest" | "linear";
  /** Defaults match PyTorch: nearest -> "asymmetric" (with nearestMode "floor"), linear -> "pytorch_half_pixel". */
  coordinateTransformationMode?: "half_pixel" | "pytorch_half_pixel" | "align_corners" | "asymmetric";
  nearestMode?: "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil";
}

export interface SliceOptions extends OpOptions {
  starts: readonly number[];
  ends: readonly number[];
  axes?: readonly number[];
  steps?: readonly number[];
}

export interface NormOptions extends OpOptions {
  epsilon?: number;
}

export interface BatchNormOptions extends NormOptions {
  /** ONNX's momentum (weight of the running value), i.e. 1 - PyTorch's momentum. */
  momentum?: number;
}

export interface ReduceOptions extends OpOptions {
  keepdims?: boolean;
}

export interface PadOptions extends OpOptions {
  mode?: "constant" | "reflect" | "edge" | "wrap";
  value?: number;
}

const intAttr = attr.int;
const intsAttr = attr.ints;

/**
 * Builds a typed ONNX graph with static shapes. Every op helper infers its output shape right away and throws a
 * ShapeError naming the node when operands do not fit, so a wrong network fails where it is built.
 */
export class GraphBuilder {
  readonly name: string;
  readonly opset: number;
  private readonly inputs: Value[] = [];
  private readonly outputs: Value[] = [];
  private readonly nodes: Node[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly initByName = new Map<string, Initializer>();
  private readonly values = new Map<string, Value>();
  private readonly sources = new Map<string, ValueSource>();
  private readonly taken = new Set<string>();
  private readonly scopes: string[] = [];
  /** Every name claimed, in order, so a failed op can be rolled back. */
  private readonly claimed: string[] = [];

  constructor(options: GraphBuilderOptions = {}) {
    this.name = options.name ?? "graph";
    this.opset = options.opset ?? 18;
    if (this.opset < 18) {
      throw new Error(`opset ${this.opset} is not supported: the builder emits opset-18 forms (axes as inputs)`);
    }
  }

  /** Continue building on an existing graph (e.g. to append a backward pass). */
  static fromGraph(graph: Graph): GraphBuilder {
    const g = new GraphBuilder({ name: graph.name, opset: graph.opset });
    for (const v of graph.inputs) {
      g.register(v, "input");
      g.inputs.push(v);
    }
    for (const init of graph.initializers) {
      g.register(graph.values.get(init.name) ?? init, init.trainable ? "parameter" : "constant");
      g.initializers.push(init);
      g.initByName.set(init.name, init);
    }
    for (const node of graph.nodes) {
      g.taken.add(node.name);
      for (const out of node.outputs) {
        const v = graph.values.get(out);
        if (!v) {
          throw new Error(`graph value '${out}' (output of node '${node.name}') has no value info`);
        }
        g.register(v, "node");
      }
      g.nodes.push(node);
    }
    g.outputs.push(...graph.outputs);
    return g;
  }

  // ---------------------------------------------------------------- values

  input(name: string, dtype: DType, shape: readonly number[]): Value {
    checkShape(shape, `input '${name}'`);
    const value: Value = { name: this.claim(name), dtype, shape: [...shape] };
    this.register(value, "input");
    this.inputs.push(value);
    return value;
  }

  /**
   * A float32 parameter, trainable unless `trainable: false` (buffers such as BatchNorm running statistics).
   * Adding the same name with the same array again returns the existing value, so a module may be applied twice
   * in one graph (shared weights).
   */
  initializer(
    name: string,
    data: Float32Array,
    shape: readonly number[],
    options: { trainable?: boolean } = {},
  ): Value {
    const trainable = options.trainable ?? true;
    const existing = this.initByName.get(name);
    if (existing && existing.data === data && existing.shape.join() === shape.join()) {
      if (existing.trainable !== trainable) {
        throw new Error(`initializer '${name}' was added as ${existing.trainable ? "trainable" : "a buffer"} before`);
      }
      return this.values.get(name)!;
    }
    return this.addInitializer(name, data, shape, "float32", trainable);
  }

  /** A non-trainable tensor; dtype follows the array (Uint8Array is uint8 unless dtype says "bool"). */
  constant(data: TensorData, shape: readonly number[], options: { name?: string; dtype?: DType } = {}): Value {
    const dtype = options.dtype ?? dtypeOfData(data);
    let name = options.name;
    if (name === undefined) {
      name = this.autoName("const");
      this.taken.delete(name);
    }
    return this.addInitializer(name, data, shape, dtype, false);
  }

  /** An int64 constant, as used for shapes and axes. */
  int64s(values: readonly number[], name?: string): Value {
    return this.constant(
      BigInt64Array.from(values, (v) => BigInt(v)),
      [values.length],
      { name },
    );
  }

  /** A float32 constant shaped like `shape`, every element `value` (norm scales that are not learnt ...). */
  fill(value: number, shape: readonly number[], name?: string): Value {
    return this.constant(new Float32Array(numel(shape)).fill(value), shape, { name });
  }

  value(name: string): Value | undefined {
    return this.values.get(name);
  }

  source(value: Value): ValueSource | undefined {
    return this.sources.get(value.name);
  }

  /** Prefix auto-generated names with `prefix/` while `fn` runs (profiler output then reads like the network). */
  scope<T>(prefix: string, fn: () => T): T {
    if (prefix === "") {
      return fn();
    }
    this.scopes.push(prefix);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  // ------------------------------------------------------------- generic op

  /**
   * Adds any op that has a shape rule. Inputs may be undefined for omitted optional operands. Returns one value
   * per output (`outputs`, default 1).
   */
  op(
    op: string,
    inputs: readonly (Value | undefined)[],
    attrs: Record<string, Attr> = {},
    options: OpOptions & { outputs?: number; training?: boolean } = {},
  ): Value[] {
    return this.atomic(() => this.addNode(op, inputs, attrs, options));
  }

  private addNode(
    op: string,
    inputs: readonly (Value | undefined)[],
    attrs: Record<string, Attr>,
    options: OpOptions & { outputs?: number; training?: boolean },
  ): Value[] {
    const first = options.name !== undefined ? this.claim(options.name) : this.autoName(op);
    const count = options.outputs ?? 1;
    const outputs = [first];
    for (let i = 1; i < count; i++) {
      outputs.push(this.claim(`${first}:${i}`));
    }
    const inputNames = inputs.map((v) => (v === undefined ? "" : this.use(v)));
    while (inputNames.length > 0 && inputNames[inputNames.length - 1] === "") {
      inputNames.pop();
    }
    const node: Node = {
      op,
      name: first,
      inputs: inputNames,
      outputs,
      attrs,
      ...(options.training !== undefined ? { training: options.training } : {}),
    };
    const infos = inferNode(node, {
      value: (name) => this.values.get(name),
      constant: (name) => this.initByName.get(name)?.data,
    });
    this.nodes.push(node);
    return outputs.map((name, i) => {
      const value: Value = { name, dtype: infos[i]!.dtype, shape: infos[i]!.shape };
      this.register(value, "node");
      return value;
    });
  }

  private one(op: string, inputs: readonly (Value | undefined)[], attrs: Record<string, Attr>, o?: OpOptions): Value {
    return this.op(op, inputs, attrs, { name: o?.name })[0]!;
  }

  // ------------------------------------------------------------ convolution

  conv(x: Value, w: Value, b?: Value, options: ConvOptions = {}): Value {
    const spatial = spatialRank(x, "conv");
    return this.one(
      "Conv",
      [x, w, b],
      {
        kernel_shape: intsAttr(w.shape.slice(2)),
        strides: intsAttr(perAxis(options.strides ?? 1, spatial, "strides")),
        pads: intsAttr(padding(options.pads ?? 0, spatial)),
        dilations: intsAttr(perAxis(options.dilations ?? 1, spatial, "dilations")),
        group: intAttr(options.group ?? 1),
      },
      options,
    );
  }

  convTranspose(x: Value, w: Value, b?: Value, options: ConvTransposeOptions = {}): Value {
    const spatial = spatialRank(x, "convTranspose");
    return this.one(
      "ConvTranspose",
      [x, w, b],
      {
        kernel_shape: intsAttr(w.shape.slice(2)),
        strides: intsAttr(perAxis(options.strides ?? 1, spatial, "strides")),
        pads: intsAttr(padding(options.pads ?? 0, spatial)),
        dilations: intsAttr(perAxis(options.dilations ?? 1, spatial, "dilations")),
        output_padding: intsAttr(perAxis(options.outputPadding ?? 0, spatial, "outputPadding")),
        group: intAttr(options.group ?? 1),
      },
      options,
    );
  }

  maxPool(x: Value, options: PoolOptions): Value {
    return this.op("MaxPool", [x], this.poolAttrs(x, options), { name: options.name })[0]!;
  }

  /** MaxPool with its Indices output (int64, flat index into x), which a MaxUnpool-based gradient needs. */
  maxPoolWithIndices(x: Value, options: PoolOptions): [Value, Value] {
    const [y, indices] = this.op("MaxPool", [x], this.poolAttrs(x, options), { name: options.name, outputs: 2 });
    return [y!, indices!];
  }

  private poolAttrs(x: Value, options: PoolOptions): Record<string, Attr> {
    const spatial = spatialRank(x, "maxPool");
    const kernel = perAxis(options.kernelShape, spatial, "kernelShape");
    return {
      kernel_shape: intsAttr(kernel),
      strides: intsAttr(perAxis(options.strides ?? kernel, spatial, "strides")),
      pads: intsAttr(padding(options.pads ?? 0, spatial)),
      dilations: intsAttr(perAxis(options.dilations ?? 1, spatial, "dilations")),
      ceil_mode: intAttr(options.ceilMode ? 1 : 0),
    };
  }

  // ------------------------------------------------------------ normalization

  instanceNorm(x: Value, scale: Value, bias: Value, options: NormOptions = {}): Value {
    return this.one(
      "InstanceNormalization",
      [x, scale, bias],
      { epsilon: attr.float(options.epsilon ?? 1e-5) },
      options,
    );
  }

  /** Inference form (running statistics); the node carries training: false for a later training transform. */
  batchNorm(x: Value, scale: Value, bias: Value, mean: Value, variance: Value, options: BatchNormOptions = {}): Value {
    return this.op(
      "BatchNormalization",
      [x, scale, bias, mean, variance],
      { epsilon: attr.float(options.epsilon ?? 1e-5), momentum: attr.float(options.momentum ?? 0.9) },
      { name: options.name, training: false },
    )[0]!;
  }

  // ------------------------------------------------------------- activations

  relu(x: Value, options?: OpOptions): Value {
    return this.one("Relu", [x], {}, options);
  }

  leakyRelu(x: Value, alpha = 0.01, options?: OpOptions): Value {
    return this.one("LeakyRelu", [x], { alpha: attr.float(alpha) }, options);
  }

  /** slope broadcasts to x: shape [1] for one shared slope, [C, 1, ..., 1] for one per channel. */
  prelu(x: Value, slope: Value, options?: OpOptions): Value {
    return this.one("PRelu", [x, slope], {}, options);
  }

  sigmoid(x: Value, options?: OpOptions): Value {
    return this.one("Sigmoid", [x], {}, options);
  }

  tanh(x: Value, options?: OpOptions): Value {
    return this.one("Tanh", [x], {}, options);
  }

  /** axis defaults to 1 (channels), as MONAI applies it, not ONNX's -1. */
  softmax(x: Value, axis = 1, options?: OpOptions): Value {
    return this.one("Softmax", [x], { axis: intAttr(axis) }, options);
  }

  sqrt(x: Value, options?: OpOptions): Value {
    return this.one("Sqrt", [x], {}, options);
  }

  exp(x: Value, options?: OpOptions): Value {
    return this.one("Exp", [x], {}, options);
  }

  log(x: Value, options?: OpOptions): Value {
    return this.one("Log", [x], {}, options);
  }

  neg(x: Value, options?: OpOptions): Value {
    return this.one("Neg", [x], {}, options);
  }

  identity(x: Value, options?: OpOptions): Value {
    return this.one("Identity", [x], {}, options);
  }

  /** Identity at inference; the node keeps training: false and the ratio for a later training transform. */
  dropout(x: Value, ratio: number, options?: OpOptions): Value {
    return this.atomic(() => {
      const name = this.reserve(options?.name, "Dropout");
      const r = this.constant(new Float32Array([ratio]), [], { name: `${name}/ratio` });
      this.taken.delete(name);
      return this.op("Dropout", [x, r], {}, { name, training: false })[0]!;
    });
  }

  // ------------------------------------------------------------- arithmetic

  add(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Add", [a, b], {}, options);
  }

  sub(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Sub", [a, b], {}, options);
  }

  mul(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Mul", [a, b], {}, options);
  }

  div(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Div", [a, b], {}, options);
  }

  /** Elementwise sum of any number of operands (with broadcasting). */
  sum(values: readonly Value[], options?: OpOptions): Value {
    return this.one("Sum", values, {}, options);
  }

  reduceMean(x: Value, axes?: readonly number[], options: ReduceOptions = {}): Value {
    return this.reduce("ReduceMean", x, axes, options);
  }

  reduceSum(x: Value, axes?: readonly number[], options: ReduceOptions = {}): Value {
    return this.reduce("ReduceSum", x, axes, options);
  }

  private reduce(op: string, x: Value, axes: readonly number[] | undefined, options: ReduceOptions): Value {
    return this.withConstants(op, options, (name) => [
      [x, axes === undefined ? undefined : this.int64s(axes, `${name}/axes`)],
      { keepdims: intAttr(options.keepdims === false ? 0 : 1) },
    ]);
  }

  /** Elementwise minimum / maximum (with broadcasting). */
  min(values: readonly Value[], options?: OpOptions): Value {
    return this.one("Min", values, {}, options);
  }

  max(values: readonly Value[], options?: OpOptions): Value {
    return this.one("Max", values, {}, options);
  }

  pow(x: Value, exponent: Value, options?: OpOptions): Value {
    return this.one("Pow", [x, exponent], {}, options);
  }

  abs(x: Value, options?: OpOptions): Value {
    return this.one("Abs", [x], {}, options);
  }

  sign(x: Value, options?: OpOptions): Value {
    return this.one("Sign", [x], {}, options);
  }

  reciprocal(x: Value, options?: OpOptions): Value {
    return this.one("Reciprocal", [x], {}, options);
  }

  /** axis defaults to 1 (channels), like softmax. */
  logSoftmax(x: Value, axis = 1, options?: OpOptions): Value {
    return this.one("LogSoftmax", [x], { axis: intAttr(axis) }, options);
  }

  greater(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Greater", [a, b], {}, options);
  }

  less(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Less", [a, b], {}, options);
  }

  equal(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Equal", [a, b], {}, options);
  }

  /** cond ? a : b, elementwise with broadcasting. */
  where(cond: Value, a: Value, b: Value, options?: OpOptions): Value {
    return this.one("Where", [cond, a, b], {}, options);
  }

  cast(x: Value, to: DType, options?: OpOptions): Value {
    return this.one("Cast", [x], { to: intAttr(onnxDataType[to]) }, options);
  }

  /** Broadcasts x to `shape` (numpy rules). */
  expand(x: Value, shape: readonly number[], options?: OpOptions): Value {
    return this.withConstants("Expand", options, (name) => [[x, this.int64s(shape, `${name}/shape`)], {}]);
  }

  gemm(a: Value, b: Value, options: OpOptions & { transA?: boolean; transB?: boolean; c?: Value } = {}): Value {
    const attrs: Record<string, Attr> = {};
    if (options.transA) {
      attrs.transA = intAttr(1);
    }
    if (options.transB) {
      attrs.transB = intAttr(1);
    }
    return this.one("Gemm", options.c ? [a, b, options.c] : [a, b], attrs, options);
  }

  matMul(a: Value, b: Value, options?: OpOptions): Value {
    return this.one("MatMul", [a, b], {}, options);
  }

  /** Uniform random values in [low, high) shaped like x (a fresh draw on every run unless seeded). */
  randomUniformLike(x: Value, options: OpOptions & { low?: number; high?: number; seed?: number } = {}): Value {
    const attrs: Record<string, Attr> = { low: attr.float(options.low ?? 0), high: attr.float(options.high ?? 1) };
    if (options.seed !== undefined) {
      attrs.seed = attr.float(options.seed);
    }
    return this.one("RandomUniformLike", [x], attrs, options);
  }

  /** A scalar (shape []) constant of a float dtype, for arithmetic with values of that dtype. */
  scalar(value: number, dtype: "float32" | "float64" = "float32", name?: string): Value {
    const data = dtype === "float64" ? new Float64Array([value]) : new Float32Array([value]);
    return this.constant(data, [], { name });
  }

  // ------------------------------------------------------------------ shape

  concat(values: readonly Value[], axis = 1, options?: OpOptions): Value {
    return this.one("Concat", values, { axis: intAttr(axis) }, options);
  }

  split(x: Value, sizes: readonly number[], axis = 1, options: OpOptions = {}): Value[] {
    return this.atomic(() => {
      const name = this.reserve(options.name, "Split");
      const s = this.int64s(sizes, `${name}/split`);
      this.taken.delete(name);
      return this.op("Split", [x, s], { axis: intAttr(axis) }, { name, outputs: sizes.length });
    });
  }

  slice(x: Value, options: SliceOptions): Value {
    return this.withConstants("Slice", options, (name) => [
      [
        x,
        this.int64s(options.starts, `${name}/starts`),
        this.int64s(options.ends, `${name}/ends`),
        options.axes ? this.int64s(options.axes, `${name}/axes`) : undefined,
        options.steps ? this.int64s(options.steps, `${name}/steps`) : undefined,
      ],
      {},
    ]);
  }

  /** ONNX semantics: 0 copies the input axis, -1 is inferred. */
  reshape(x: Value, shape: readonly number[], options?: OpOptions): Value {
    return this.withConstants("Reshape", options, (name) => [[x, this.int64s(shape, `${name}/shape`)], {}]);
  }

  transpose(x: Value, perm?: readonly number[], options?: OpOptions): Value {
    return this.one("Transpose", [x], perm ? { perm: intsAttr(perm) } : {}, options);
  }

  unsqueeze(x: Value, axes: readonly number[], options?: OpOptions): Value {
    return this.withConstants("Unsqueeze", options, (name) => [[x, this.int64s(axes, `${name}/axes`)], {}]);
  }

  squeeze(x: Value, axes: readonly number[], options?: OpOptions): Value {
    return this.withConstants("Squeeze", options, (name) => [[x, this.int64s(axes, `${name}/axes`)], {}]);
  }

  /** pads in ONNX order over the given axes (default all): [begin_1 .. begin_k, end_1 .. end_k]. */
  pad(x: Value, pads: readonly number[], options: PadOptions & { axes?: readonly number[] } = {}): Value {
    const mode = options.mode ?? "constant";
    return this.withConstants("Pad", options, (name) => [
      [
        x,
        this.int64s(pads, `${name}/pads`),
        mode === "constant" && options.value
          ? this.constant(new Float32Array([options.value]), [], { name: `${name}/value` })
          : undefined,
        options.axes ? this.int64s(options.axes, `${name}/axes`) : undefined,
      ],
      { mode: attr.string(mode) },
    ]);
  }

  resize(x: Value, options: ResizeOptions): Value {
    const mode = options.mode ?? "nearest";
    const spatial = spatialRank(x, "resize");
    const ctm = options.coordinateTransformationMode ?? (mode === "nearest" ? "asymmetric" : "pytorch_half_pixel");
    const attrs: Record<string, Attr> = {
      mode: attr.string(mode),
      coordinate_transformation_mode: attr.string(ctm),
    };
    if (mode === "nearest") {
      attrs.nearest_mode = attr.string(options.nearestMode ?? "floor");
    }
    if ((options.scales === undefined) === (options.sizes === undefined)) {
      throw new Error("resize: give exactly one of scales and sizes");
    }
    return this.withConstants("Resize", options, (name) => {
      let scales: Value | undefined;
      let sizes: Value | undefined;
      if (options.scales !== undefined) {
        const list =
          typeof options.scales === "number" ? [1, 1, ...Array(spatial).fill(options.scales)] : [...options.scales];
        scales = this.constant(new Float32Array(list), [list.length], { name: `${name}/scales` });
      } else if (options.sizes !== undefined) {
        sizes = this.int64s(options.sizes, `${name}/sizes`);
      }
      return [[x, undefined, scales, sizes], attrs];
    });
  }

  // ---------------------------------------------------------------- outputs

  /** Marks `value` as a graph output called `name` (an Identity is added when the names differ). */
  output(value: Value, name: string = value.name): Value {
    let out = value;
    if (name !== value.name) {
      out = this.identity(value, { name });
    } else {
      this.use(value);
    }
    if (this.outputs.some((o) => o.name === out.name)) {
      throw new Error(`'${out.name}' is already a graph output`);
    }
    this.outputs.push(out);
    return out;
  }

  /** A snapshot of the IR (arrays copied; tensors shared). */
  graph(): Graph {
    return {
      name: this.name,
      opset: this.opset,
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: [...this.nodes],
      initializers: [...this.initializers],
      values: new Map(this.values),
    };
  }

  toModelProto(options?: SerializeOptions): ModelProto {
    return toModelProto(this.checkedGraph(), options);
  }

  serialize(options?: SerializeOptions): Uint8Array {
    return serializeGraph(this.checkedGraph(), options);
  }

  private checkedGraph(): Graph {
    if (this.outputs.length === 0) {
      throw new Error(`graph '${this.name}' has no outputs; call output() first`);
    }
    return this.graph();
  }

  // ---------------------------------------------------------------- naming

  private addInitializer(
    name: string,
    data: TensorData,
    shape: readonly number[],
    dtype: DType,
    trainable: boolean,
  ): Value {
    checkShape(shape, `initializer '${name}'`);
    if (!dataMatchesDtype(data, dtype)) {
      throw new Error(`initializer '${name}': a ${data.constructor.name} cannot hold ${dtype}`);
    }
    if (data.length !== numel(shape)) {
      throw new Error(`initializer '${name}': ${data.length} elements do not fill shape ${formatShape(shape)}`);
    }
    const init: Initializer = { name: this.claim(name), dtype, shape: [...shape], data, trainable };
    this.initializers.push(init);
    this.initByName.set(name, init);
    this.register({ name, dtype, shape: init.shape }, trainable ? "parameter" : "constant");
    return this.values.get(name)!;
  }

  /** Reserves the node name first so that helper constants can be named after it. */
  private withConstants(
    op: string,
    options: OpOptions | undefined,
    make: (name: string) => [(Value | undefined)[], Record<string, Attr>],
  ): Value {
    return this.atomic(() => {
      const name = this.reserve(options?.name, op);
      const [inputs, attrs] = make(name);
      this.taken.delete(name);
      return this.op(op, inputs, attrs, { name })[0]!;
    });
  }

  /** Runs fn; if it throws, removes every node, initializer and name it added, so the graph stays consistent. */
  private atomic<T>(fn: () => T): T {
    const claimedMark = this.claimed.length;
    const initMark = this.initializers.length;
    const nodeMark = this.nodes.length;
    try {
      return fn();
    } catch (err) {
      for (const name of this.claimed.splice(claimedMark)) {
        this.taken.delete(name);
        this.values.delete(name);
        this.sources.delete(name);
        this.initByName.delete(name);
      }
      this.initializers.length = initMark;
      this.nodes.length = nodeMark;
      throw err;
    }
  }

  private reserve(explicit: string | undefined, op: string): string {
    return explicit !== undefined ? this.claim(explicit) : this.autoName(op);
  }

  private autoName(base: string): string {
    const prefix = this.scopes.length > 0 ? `${this.scopes.join("/")}/` : "";
    let name = `${prefix}${base}`;
    for (let i = 1; this.taken.has(name); i++) {
      name = `${prefix}${base}_${i}`;
    }
    this.taken.add(name);
    this.claimed.push(name);
    return name;
  }

  private claim(name: string): string {
    if (name === "") {
      throw new Error("value names must not be empty");
    }
    if (this.taken.has(name)) {
      throw new Error(`name '${name}' is already used in graph '${this.name}'`);
    }
    this.taken.add(name);
    this.claimed.push(name);
    return name;
  }

  private register(value: Value, source: ValueSource): void {
    this.taken.add(value.name);
    this.values.set(value.name, value);
    this.sources.set(value.name, source);
  }

  private use(value: Value): string {
    const known = this.values.get(value.name);
    if (!known || known.dtype !== value.dtype || known.shape.join() !== value.shape.join()) {
      throw new ShapeError(`value '${value.name}' ${formatShape(value.shape)} does not belong to graph '${this.name}'`);
    }
    return value.name;
  }
}

function checkShape(shape: readonly number[], what: string): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${what}: shape ${formatShape(shape)} must be static (non-negative integers)`);
  }
}

function spatialRank(x: Value, op: string): number {
  if (x.shape.length < 3) {
    throw new ShapeError(`${op}: '${x.name}' ${formatShape(x.shape)} needs [N, C, ...spatial]`);
  }
  return x.shape.length - 2;
}

function perAxis(v: PerAxis, spatial: number, what: string): number[] {
  if (typeof v === "number") {
    return Array(spatial).fill(v);
  }
  if (v.length !== spatial) {
    throw new ShapeError(`${what} ${formatShape(v)} needs ${spatial} values`);
  }
  return [...v];
}

function padding(v: Padding, spatial: number): number[] {
  if (typeof v === "number") {
    return Array(2 * spatial).fill(v);
  }
  if (v.length === spatial) {
    return [...v, ...v];
  }
  if (v.length === 2 * spatial) {
    return [...v];
  }
  throw new ShapeError(`pads ${formatShape(v)} needs 1, ${spatial} or ${2 * spatial} values`);
}
