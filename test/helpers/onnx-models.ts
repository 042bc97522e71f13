/**
 * Tiny ONNX models built directly with onnx-proto (opset 18, IR version 8), for runtime and inferer tests.
 * Every model has one float32 input "x" and one float32 output "y". Shapes are symbolic (or absent), so the
 * same model serves any batch size and spatial size.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** A value_info of float32 type; `rank` gives symbolic dims ("d0", "d1", ...) except where `fixed` names a size. */
function valueInfo(name: string, rank?: number, fixed: Record<number, number> = {}): onnxProto.onnx.IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: FLOAT };
  if (rank !== undefined) {
    tensorType.shape = {
      dim: Array.from({ length: rank }, (_, i) => {
        const size = fixed[i];
        return size === undefined ? { dimParam: `d${i}` } : { dimValue: size };
      }),
    };
  }
  return { name, type: { tensorType } };
}

function floatTensor(name: string, dims: number[], values: readonly number[]): onnxProto.onnx.ITensorProto {
  const data = Float32Array.from(values);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function model(graph: onnxProto.onnx.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "labelgraph-tests",
    opsetImport: [{ domain: "", version: 18 }],
    graph,
  }).finish();
}

/** y = x, any rank. */
export function identityModel(): Uint8Array {
  return model({
    name: "identity",
    node: [{ name: "y", opType: "Identity", input: ["x"], output: ["y"] }],
    input: [valueInfo("x")],
    output: [valueInfo("y")],
  });
}

/** y = factor * x, any rank. */
export function scaleModel(factor = 2): Uint8Array {
  return model({
    name: `scale_${factor}`,
    node: [{ name: "y", opType: "Mul", input: ["x", "k"], output: ["y"] }],
    initializer: [floatTensor("k", [], [factor])],
    input: [valueInfo("x")],
    output: [valueInfo("y")],
  });
}

/** One input channel to two output channels: y[:, 0] = x, y[:, 1] = 2x + 1. Input must have 1 channel. */
export function oneToTwoChannelModel(): Uint8Array {
  return model({
    name: "one_to_two",
    node: [
      { name: "x2", opType: "Mul", input: ["x", "two"], output: ["x2"] },
      { name: "x2p1", opType: "Add", input: ["x2", "one"], output: ["x2p1"] },
      { name: "y", opType: "Concat", input: ["x", "x2p1"], output: ["y"], attribute: [intAttr("axis", 1)] },
    ],
    initializer: [floatTensor("two", [], [2]), floatTensor("one", [], [1])],
    input: [valueInfo("x")],
    output: [valueInfo("y")],
  });
}

function intAttr(name: string, i: number): onnxProto.onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}
function intsAttr(name: string, ints: number[]): onnxProto.onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

/**
 * A single-channel 3x3 (2D) or 3x3x3 (3D) convolution with stride 1 and zero padding 1, so output size = input
 * size. `weights` are in C order (kernel [1, 1, 3, 3] or [1, 1, 3, 3, 3]); `bias` is added to every output.
 */
export function conv3x3Model(weights: readonly number[], options: { dims?: 2 | 3; bias?: number } = {}): Uint8Array {
  const dims = options.dims ?? 2;
  const kernel = new Array<number>(dims).fill(3);
  if (weights.length !== 3 ** dims) {
    throw new Error(`conv3x3Model: ${dims}D needs ${3 ** dims} weights, got ${weights.length}`);
  }
  return model({
    name: `conv${dims}d_3`,
    node: [
      {
        name: "y",
        opType: "Conv",
        input: ["x", "w", "b"],
        output: ["y"],
        attribute: [intsAttr("kernel_shape", kernel), intsAttr("pads", new Array<number>(2 * dims).fill(1))],
      },
    ],
    initializer: [floatTensor("w", [1, 1, ...kernel], weights), floatTensor("b", [1], [options.bias ?? 0])],
    input: [valueInfo("x", dims + 2, { 1: 1 })],
    output: [valueInfo("y", dims + 2, { 1: 1 })],
  });
}

/** Writes model bytes to `path`, creating the folder. */
export function writeModel(path: string, bytes: Uint8Array): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}
