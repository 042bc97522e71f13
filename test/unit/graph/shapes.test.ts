import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import type { Value } from "../../../src/graph/ir.js";
import { ShapeError } from "../../../src/graph/shape-inference.js";
import { random, runModel } from "./reference.js";

type Case = [string, number[], (g: GraphBuilder, x: Value) => Value | Value[]];

const w = (g: GraphBuilder, shape: number[], seed = 3) => g.initializer(`w${seed}`, random(shape, seed).data, shape);

/** Each case: the builder's inferred output shapes must equal what onnxruntime-node returns. */
const cases: Case[] = [
  ["conv 2d s1 p1", [1, 2, 7, 6], (g, x) => g.conv(x, w(g, [3, 2, 3, 3]), w(g, [3], 4), { pads: 1 })],
  [
    "conv 2d s2 asym pads",
    [2, 2, 9, 8],
    (g, x) => g.conv(x, w(g, [4, 2, 3, 3]), undefined, { strides: 2, pads: [0, 1, 1, 0] }),
  ],
  ["conv 2d dilation 2", [1, 2, 11, 10], (g, x) => g.conv(x, w(g, [3, 2, 3, 3]), undefined, { dilations: 2, pads: 1 })],
  ["conv 2d group 2", [1, 4, 8, 8], (g, x) => g.conv(x, w(g, [6, 2, 3, 3]), undefined, { group: 2 })],
  [
    "conv 3d s2 p1 odd",
    [1, 2, 7, 6, 5],
    (g, x) => g.conv(x, w(g, [3, 2, 3, 3, 3]), w(g, [3], 4), { strides: 2, pads: 1 }),
  ],
  ["conv 3d k1", [1, 2, 4, 4, 4], (g, x) => g.conv(x, w(g, [5, 2, 1, 1, 1]))],
  [
    "convTranspose 2d s2 p1 op1",
    [1, 3, 5, 4],
    (g, x) => g.convTranspose(x, w(g, [3, 2, 3, 3]), w(g, [2], 4), { strides: 2, pads: 1, outputPadding: 1 }),
  ],
  [
    "convTranspose 3d k2 s2",
    [1, 2, 3, 4, 5],
    (g, x) => g.convTranspose(x, w(g, [2, 4, 2, 2, 2]), undefined, { strides: 2 }),
  ],
  ["instanceNorm", [2, 3, 5, 5], (g, x) => g.instanceNorm(x, g.fill(1, [3]), g.fill(0, [3]))],
  [
    "batchNorm",
    [2, 3, 4, 4, 4],
    (g, x) => g.batchNorm(x, g.fill(1, [3]), g.fill(0, [3]), g.fill(0, [3]), g.fill(1, [3])),
  ],
  ["relu", [1, 2, 3], (g, x) => g.relu(x)],
  ["leakyRelu", [1, 2, 3], (g, x) => g.leakyRelu(x, 0.1)],
  ["prelu scalar", [1, 2, 3, 3], (g, x) => g.prelu(x, g.fill(0.25, [1]))],
  ["prelu per channel", [1, 2, 3, 3], (g, x) => g.prelu(x, g.fill(0.25, [2, 1, 1]))],
  [
    "sigmoid, tanh, sqrt, exp, log, neg",
    [2, 3],
    (g, x) => [g.sigmoid(x), g.tanh(x), g.exp(x), g.neg(x), g.log(g.sqrt(g.exp(x)))],
  ],
  ["softmax", [2, 3, 4, 4], (g, x) => [g.softmax(x), g.softmax(x, -1)]],
  ["maxPool k2", [1, 2, 9, 7], (g, x) => g.maxPool(x, { kernelShape: 2 })],
  [
    "maxPool k3 s2 p1 ceil",
    [1, 2, 8, 7, 6],
    (g, x) => g.maxPool(x, { kernelShape: 3, strides: 2, pads: 1, ceilMode: true }),
  ],
  ["maxPool with indices", [1, 2, 6, 6], (g, x) => g.maxPoolWithIndices(x, { kernelShape: 2 })],
  [
    "add/sub/mul/div broadcasting",
    [2, 3, 4, 5],
    (g, x) => [
      g.add(x, g.fill(1, [3, 1, 1])),
      g.sub(g.fill(1, [5]), x),
      g.mul(x, g.fill(2, [2, 1, 4, 1])),
      g.div(x, g.fill(2, [])),
    ],
  ],
  ["sum", [2, 3, 1], (g, x) => g.sum([x, g.fill(1, [1, 4]), g.fill(1, [3, 1])])],
  ["concat", [1, 2, 4, 4], (g, x) => [g.concat([x, g.relu(x), g.fill(0, [1, 3, 4, 4])], 1), g.concat([x, x], -1)]],
  ["split", [1, 6, 4], (g, x) => [...g.split(x, [1, 2, 3], 1), ...g.split(x, [3, 1], -1)]],
  [
    "slice",
    [2, 5, 8, 7],
    (g, x) => [
      g.slice(x, { starts: [1, 0], ends: [8, -1], axes: [2, 3], steps: [2, 3] }),
      g.slice(x, { starts: [-1], ends: [-1000], axes: [3], steps: [-2] }),
      g.slice(x, { starts: [0, 2], ends: [100, 4] }),
    ],
  ],
  ["reshape", [2, 3, 4, 5], (g, x) => [g.reshape(x, [0, -1]), g.reshape(x, [6, 5, 4]), g.reshape(x, [-1])]],
  ["transpose", [2, 3, 4, 5], (g, x) => [g.transpose(x, [1, 0, 3, 2]), g.transpose(x)]],
  [
    "resize",
    [1, 2, 3, 5],
    (g, x) => [
      g.resize(x, { scales: 2 }),
      g.resize(x, { scales: 2, mode: "linear", coordinateTransformationMode: "align_corners" }),
      g.resize(x, { sizes: [1, 2, 7, 4], mode: "linear" }),
      g.resize(x, { scales: [1, 1, 1.5, 0.5] }),
    ],
  ],
  ["resize 3d trilinear", [1, 2, 3, 4, 5], (g, x) => g.resize(x, { scales: 2, mode: "linear" })],
  [
    "reduce",
    [2, 3, 4, 5],
    (g, x) => [
      g.reduceMean(x, [2, 3]),
      g.reduceSum(x, [1], { keepdims: false }),
      g.reduceSum(x),
      g.reduceMean(x, [-1, 0], { keepdims: false }),
    ],
  ],
  ["dropout and identity", [2, 3, 4], (g, x) => [g.dropout(x, 0.3), g.identity(x)]],
  [
    "pad",
    [1, 2, 3, 4],
    (g, x) => [g.pad(x, [0, 0, 1, 0, 0, 0, 2, 1], { mode: "edge" }), g.pad(x, [1, 2], { axes: [3] })],
  ],
  ["unsqueeze/squeeze", [3, 1, 4], (g, x) => [g.unsqueeze(x, [0, -1]), g.squeeze(x, [1])]],
];

describe("shape inference matches onnxruntime-node", () => {
  it.each(cases)("%s", async (_, inputShape, make) => {
    const g = new GraphBuilder({ name: "case" });
    const x = g.input("x", "float32", inputShape);
    const made = make(g, x);
    const outs = Array.isArray(made) ? made : [made];
    outs.forEach((v, i) => {
      g.output(v, `out${i}`);
    });
    const result = await runModel(g.serialize(), { x: random(inputShape, 7, 0.1, 2) });
    for (const [i, v] of outs.entries()) {
      expect(result[`out${i}`]!.dims, `output ${i} (${v.name})`).toEqual(v.shape);
    }
  });
});

describe("shape errors are raised when a node is added", () => {
  const g = new GraphBuilder({ name: "errors" });
  const x = g.input("x", "float32", [1, 2, 8, 8]);
  const y = g.input("y", "float32", [1, 3, 7, 8]);

  it("concat of incompatible shapes names the shapes", () => {
    expect(() => g.concat([x, y], 1)).toThrow(ShapeError);
    expect(() => g.concat([x, y], 1, { name: "skip" })).toThrow(
      "Concat 'skip': cannot concatenate shapes [1, 2, 8, 8], [1, 3, 7, 8] on axis 1: all other axes must match",
    );
  });

  it("conv with the wrong channel count", () => {
    expect(() => g.conv(x, g.fill(0, [4, 3, 3, 3]))).toThrow(/X has 2 channels but W \[4, 3, 3, 3\]/);
  });

  it("conv whose kernel does not fit the input", () => {
    expect(() => g.conv(g.input("tiny", "float32", [1, 2, 2, 2]), g.fill(0, [1, 2, 3, 3]))).toThrow(
      /smaller than the kernel extent 3/,
    );
  });

  it("conv on float64, which ORT's CPU provider cannot run", () => {
    const d = g.input("d", "float64", [1, 2, 4, 4]);
    expect(() => g.conv(d, g.fill(0, [1, 2, 3, 3]))).toThrow(/must be float32/);
  });

  it("convTranspose output_padding not below the stride", () => {
    expect(() => g.convTranspose(x, g.fill(0, [2, 2, 3, 3]), undefined, { strides: 2, outputPadding: 2 })).toThrow(
      /output_padding 2 on axis 0 must be smaller than the stride/,
    );
  });

  it("broadcasting failure", () => {
    expect(() => g.add(x, y)).toThrow(/do not broadcast/);
  });

  it("reshape to a different element count", () => {
    expect(() => g.reshape(x, [5, -1])).toThrow(/cannot reshape \[1, 2, 8, 8\]/);
    expect(() => g.reshape(x, [2, 2])).toThrow(/128 elements/);
  });

  it("split sizes that do not add up", () => {
    expect(() => g.split(x, [1, 2], 1)).toThrow(/do not add up/);
  });

  it("prelu slope that does not broadcast per channel", () => {
    expect(() => g.prelu(x, g.fill(0.25, [2]))).toThrow(/slope \[2\] does not broadcast/);
  });

  it("axis out of range", () => {
    expect(() => g.softmax(x, 4)).toThrow(/axis 4 is out of range for rank 4/);
  });

  it("values from another graph, and duplicate names", () => {
    const other = new GraphBuilder().input("x", "float32", [1, 2, 9, 9]);
    expect(() => g.relu(other)).toThrow(/does not belong to graph/);
    expect(() => g.input("x", "float32", [1])).toThrow(/already used/);
    expect(() => g.initializer("p", new Float32Array(3), [2, 2])).toThrow(/3 elements do not fill shape \[2, 2\]/);
  });

  it("a failed node leaves the graph unchanged and its name free", () => {
    const before = g.graph();
    expect(() => g.concat([x, y], 1, { name: "retry" })).toThrow();
    expect(() => g.reshape(x, [3, -1], { name: "retry" })).toThrow();
    const after = g.graph();
    expect(after.nodes.length).toBe(before.nodes.length);
    expect(after.initializers.length).toBe(before.initializers.length);
    expect(after.values.size).toBe(before.values.size);
    expect(g.reshape(x, [2, -1], { name: "retry/shape" }).shape).toEqual([2, 64]);
    expect(g.concat([x, x], 1, { name: "retry" }).shape).toEqual([1, 4, 8, 8]);
  });
});
