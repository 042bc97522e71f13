/**
 * The graph IR: plain objects that the builder writes, shape inference reads, serialization turns into ONNX
 * protobuf, and (later) reverse-mode autodiff walks. Every value has a static shape and a dtype; nodes refer to
 * values by name, and are kept in topological order (a node may only use values that exist when it is added).
 */

export type DType = "float32" | "float64" | "int64" | "int32" | "uint8" | "bool";

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A named tensor in the graph: a graph input, an initializer, or a node output. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** Where a value comes from; autodiff needs to tell parameters from constants and inputs. */
export type ValueSource = "input" | "parameter" | "constant" | "node";

/**
 * A tensor stored in the model. Parameters (`trainable`) are float32; constants (shape operands, axes, norm
 * scales that are not learnt) may have any dtype.
 */
export interface Initializer {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
  readonly trainable: boolean;
}

export type Attr =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "ints"; readonly value: readonly number[] }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "floats"; readonly value: readonly number[] }
  | { readonly kind: "string"; readonly value: string };

export const attr = {
  int: (value: number): Attr => ({ kind: "int", value }),
  ints: (value: readonly number[]): Attr => ({ kind: "ints", value: [...value] }),
  float: (value: number): Attr => ({ kind: "float", value }),
  floats: (value: readonly number[]): Attr => ({ kind: "floats", value: [...value] }),
  string: (value: string): Attr => ({ kind: "string", value }),
};

export interface Node {
  /** ONNX op type in the default domain, e.g. "Conv". */
  readonly op: string;
  /** Unique; by convention the name of the first output, so profiler output reads like the graph. */
  readonly name: string;
  /** Value names; "" marks an omitted optional input (ONNX's convention). */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, Attr>>;
  /**
   * For ops whose forward form depends on the mode (Dropout, BatchNormalization). Inference graphs keep it
   * false; a training transform may flip it and serialization then emits the training form.
   */
  readonly training?: boolean;
}

export interface Graph {
  readonly name: string;
  readonly opset: number;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly nodes: readonly Node[];
  readonly initializers: readonly Initializer[];
  /** Every value by name: inputs, initializers and node outputs. */
  readonly values: ReadonlyMap<string, Value>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
  }
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

export function dtypeOfData(data: TensorData): DType {
  if (data instanceof Float32Array) {
    return "float32";
  }
  if (data instanceof Float64Array) {
    return "float64";
  }
  if (data instanceof BigInt64Array) {
    return "int64";
  }
  if (data instanceof Int32Array) {
    return "int32";
  }
  return "uint8";
}

/** Which typed array holds each dtype; bool is stored one byte per element, like ONNX raw data. */
export function dataMatchesDtype(data: TensorData, dtype: DType): boolean {
  switch (dtype) {
    case "float32":
      return data instanceof Float32Array;
    case "float64":
      return data instanceof Float64Array;
    case "int64":
      return data instanceof BigInt64Array;
    case "int32":
      return data instanceof Int32Array;
    case "uint8":
    case "bool":
      return data instanceof Uint8Array;
  }
}

/** Nodes by the name of each value they produce. */
export function producers(graph: Graph): Map<string, Node> {
  const byOutput = new Map<string, Node>();
  for (const node of graph.nodes) {
    for (const out of node.outputs) {
      if (out !== "") {
        byOutput.set(out, node);
      }
    }
  }
  return byOutput;
}

/** For each value name, the nodes that read it (in graph order); a reverse pass sums gradients over these. */
export function consumers(graph: Graph): Map<string, Node[]> {
  const byInput = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (input === "") {
        continue;
      }
      const list = byInput.get(input);
      if (list) {
        if (list[list.length - 1] !== node) {
          list.push(node);
        }
      } else {
        byInput.set(input, [node]);
      }
    }
  }
  return byInput;
}

/**
 * Drops nodes that no graph output depends on, and initializers that no kept node reads. ONNX Runtime does not
 * prune dead branches by itself, and a generated backward pass leaves some behind.
 */
export function prune(graph: Graph): Graph {
  const needed = new Set(graph.outputs.map((v) => v.name));
  const kept: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i]!;
    if (node.outputs.some((o) => needed.has(o))) {
      kept.push(node);
      for (const input of node.inputs) {
        if (input !== "") {
          needed.add(input);
        }
      }
    }
  }
  kept.reverse();
  const initializers = graph.initializers.filter((init) => needed.has(init.name));
  const inputNames = new Set(graph.inputs.map((v) => v.name));
  const values = new Map<string, Value>();
  for (const [name, value] of graph.values) {
    if (needed.has(name) || inputNames.has(name)) {
      values.set(name, value);
    }
  }
  return { ...graph, nodes: kept, initializers, values };
}
