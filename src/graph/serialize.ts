import onnxProto from "onnx-proto";
import type { Attr, DType, Graph, Initializer, Node, TensorData, Value } from "./ir.js";

const { onnx } = onnxProto;

export type ModelProto = onnxProto.onnx.ModelProto;

/** The IR version ONNX Runtime 1.30 is known to load with opset 13 to 21 (see reference/onnx-training.md). */
export const IR_VERSION = 8;

const elemTypes: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX raw_data is little-endian whatever the host is. */
function rawBytes(data: TensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  if (!littleEndian && data.BYTES_PER_ELEMENT > 1) {
    const width = data.BYTES_PER_ELEMENT;
    for (let i = 0; i < bytes.length; i += width) {
      bytes.subarray(i, i + width).reverse();
    }
  }
  return bytes;
}

function tensorProto(init: Pick<Initializer, "name" | "dtype" | "shape" | "data">): onnxProto.onnx.ITensorProto {
  return { name: init.name, dims: [...init.shape], dataType: elemTypes[init.dtype], rawData: rawBytes(init.data) };
}

function valueInfo(value: Value): onnxProto.onnx.IValueInfoProto {
  return {
    name: value.name,
    type: {
      tensorType: {
        elemType: elemTypes[value.dtype],
        shape: { dim: value.shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case "int":
      return { name, type: T.INT, i: a.value };
    case "ints":
      return { name, type: T.INTS, ints: [...a.value] };
    case "float":
      return { name, type: T.FLOAT, f: a.value };
    case "floats":
      return { name, type: T.FLOATS, floats: [...a.value] };
    case "string":
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

/** Mode-dependent ops: the IR keeps a `training` flag, ONNX wants an operand or an attribute. */
function lowerNode(node: Node, extra: onnxProto.onnx.ITensorProto[]): onnxProto.onnx.INodeProto {
  const inputs = [...node.inputs];
  const attrs: Record<string, Attr> = { ...node.attrs };
  if (node.op === "Dropout" && node.training) {
    const name = `${node.name}/training_mode`;
    extra.push(tensorProto({ name, dtype: "bool", shape: [], data: new Uint8Array([1]) }));
    while (inputs.length < 2) {
      inputs.push("");
    }
    inputs[2] = name;
  }
  if (node.op === "BatchNormalization") {
    attrs.training_mode = { kind: "int", value: node.training ? 1 : 0 };
  }
  while (inputs.length > 0 && inputs[inputs.length - 1] === "") {
    inputs.pop();
  }
  return {
    name: node.name,
    opType: node.op,
    domain: "",
    input: inputs,
    output: [...node.outputs],
    attribute: Object.entries(attrs).map(([name, a]) => attributeProto(name, a)),
  };
}

export interface SerializeOptions {
  producerName?: string;
  docString?: string;
}

export function toModelProto(graph: Graph, options: SerializeOptions = {}): ModelProto {
  const outputNames = new Set(graph.outputs.map((v) => v.name));
  const extra: onnxProto.onnx.ITensorProto[] = [];
  const nodes = graph.nodes.map((node) => lowerNode(node, extra));
  const intermediate: Value[] = [];
  for (const node of graph.nodes) {
    for (const out of node.outputs) {
      const value = graph.values.get(out);
      if (value && !outputNames.has(out)) {
        intermediate.push(value);
      }
    }
  }
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: options.producerName ?? "labelgraph",
    docString: options.docString ?? "",
    opsetImport: [{ domain: "", version: graph.opset }],
    graph: {
      name: graph.name,
      node: nodes,
      initializer: [...graph.initializers.map(tensorProto), ...extra],
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
      valueInfo: intermediate.map(valueInfo),
    },
  });
}

export function serializeGraph(graph: Graph, options?: SerializeOptions): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(graph, options)).finish();
}

/** Decodes model bytes, for inspection in tests and tools. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
