import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { GradientError, gradients, withGradients } from "../../../src/graph/autodiff.js";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { numel, prune, type Value } from "../../../src/graph/ir.js";
import { TrainingGraphBuilder } from "../../../src/graph/training.js";
import { distinctArray, type GradCheckCase, gradCheck } from "./gradcheck.js";

/** Errors measured in this run, printed at the end (the report quotes them). */
const measured: string[] = [];

afterAll(() => {
  console.log(`gradient checks (max rel err per element | along a random direction):\n${measured.join("\n")}`);
});

const TOL = {
  float32: { element: 1e-2, direction: 2e-3 },
  float64: { element: 1e-6, direction: 1e-6 },
};

async function check(c: GradCheckCase, tol = TOL[c.dtype]) {
  const r = await gradCheck(c);
  measured.push(
    `  ${c.name.padEnd(58)} ${c.dtype}  ${r.maxElementError.toExponential(1)} | ${r.directionError.toExponential(1)}`,
  );
  expect(r.maxElementError, `${c.name}: ${JSON.stringify(r.perInput)}`).toBeLessThan(tol.element);
  expect(r.directionError, c.name).toBeLessThan(tol.direction);
  return r;
}

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  strides?: number[];
  pads?: number[];
  dilations?: number[];
  transposed?: boolean;
  outputPadding?: number[];
}

const convCases: ConvCase[] = [
  { name: "Conv2d k3 s1 p1 + bias", x: [2, 3, 6, 5], w: [4, 3, 3, 3], bias: true, pads: [1, 1, 1, 1] },
  {
    name: "Conv2d k3 s2 p1, odd 9x8",
    x: [1, 2, 9, 8],
    w: [3, 2, 3, 3],
    bias: true,
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  },
  { name: "Conv2d k3 s2 p0, border dropped", x: [2, 2, 8, 8], w: [3, 2, 3, 3], strides: [2, 2] },
  { name: "Conv2d k3 s(2,1) asymmetric pads", x: [1, 2, 8, 7], w: [2, 2, 3, 3], strides: [2, 1], pads: [0, 1, 1, 0] },
  { name: "Conv2d k3 dilation 2 p2", x: [1, 2, 7, 7], w: [2, 2, 3, 3], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: "Conv2d k1 s1 (1x1)", x: [2, 3, 4, 4], w: [2, 3, 1, 1], bias: true },
  { name: "Conv3d k3 s1 p1 + bias", x: [1, 2, 5, 4, 4], w: [2, 2, 3, 3, 3], bias: true, pads: [1, 1, 1, 1, 1, 1] },
  {
    name: "Conv3d k3 s2 p1, odd 7x6x5",
    x: [1, 2, 7, 6, 5],
    w: [2, 2, 3, 3, 3],
    strides: [2, 2, 2],
    pads: [1, 1, 1, 1, 1, 1],
  },
  { name: "Conv3d k2 s2 p0, no bias", x: [2, 2, 4, 4, 6], w: [3, 2, 2, 2, 2], strides: [2, 2, 2] },
  {
    name: "ConvTranspose2d k2 s2 + bias",
    x: [2, 3, 3, 4],
    w: [3, 2, 2, 2],
    bias: true,
    strides: [2, 2],
    transposed: true,
  },
  {
    name: "ConvTranspose2d k3 s2 p1 output_padding 1",
    x: [1, 3, 4, 3],
    w: [3, 2, 3, 3],
    bias: true,
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    outputPadding: [1, 1],
    transposed: true,
  },
  { name: "ConvTranspose2d k3 s1 p1", x: [1, 3, 5, 4], w: [3, 2, 3, 3], pads: [1, 1, 1, 1], transposed: true },
  {
    name: "ConvTranspose3d k2 s2",
    x: [1, 2, 3, 2, 3],
    w: [2, 2, 2, 2, 2],
    bias: true,
    strides: [2, 2, 2],
    transposed: true,
  },
  {
    name: "ConvTranspose3d k3 s2 p1 output_padding 1",
    x: [1, 2, 3, 3, 2],
    w: [2, 2, 3, 3, 3],
    strides: [2, 2, 2],
    pads: [1, 1, 1, 1, 1, 1],
    outputPadding: [1, 1, 1],
    transposed: true,
  },
];

describe("gradient rules against finite differences", () => {
  it.each(convCases)("$name", async (cc) => {
    const outChannels = cc.transposed ? cc.w[1]! : cc.w[0]!;
    const r = await check({
      name: cc.name,
      dtype: "float32",
      h: 0.05, // linear in every operand: a large step only reduces rounding noise
      inputs: {
        x: { shape: cc.x },
        w: { shape: cc.w },
        ...(cc.bias ? { b: { shape: [outChannels] } } : {}),
      },
      build: (g, v) => {
        const options = { strides: cc.strides, pads: cc.pads, dilations: cc.dilations };
        return cc.transposed
          ? g.convTranspose(v.x!, v.w!, v.b, { ...options, outputPadding: cc.outputPadding })
          : g.conv(v.x!, v.w!, v.b, options);
      },
    });
    if (!cc.transposed && (cc.strides ?? [1]).every((s) => s === 1)) {
      // Stride-1 input gradient is a flipped Conv, never ORT's slow stride-1 ConvTranspose.
      expect(r.ops.ConvTranspose ?? 0).toBe(0);
    }
    // Weight gradient form (b): one Gemm per kernel offset.
    expect(r.ops.Gemm).toBe(numel(cc.w.slice(2)));
  });

  it.each([
    { name: "InstanceNorm 2D affine", shape: [2, 3, 5, 4] },
    { name: "InstanceNorm 3D affine", shape: [1, 2, 4, 3, 3] },
  ])("$name", async ({ name, shape }) => {
    await check({
      name,
      dtype: "float32",
      inputs: {
        x: { shape, lo: -2, hi: 2 },
        scale: { shape: [shape[1]!], lo: 0.5, hi: 1.5 },
        b: { shape: [shape[1]!] },
      },
      build: (g, v) => g.instanceNorm(v.x!, v.scale!, v.b!),
    });
  });

  it("InstanceNorm 2D, constant unit scale (MONAI's affine=false)", async () => {
    await check({
      name: "InstanceNorm 2D, scale 1 / bias 0 constants",
      dtype: "float32",
      inputs: { x: { shape: [2, 3, 6, 5], lo: -2, hi: 2 } },
      build: (g, v) => g.instanceNorm(v.x!, g.fill(1, [3]), g.fill(0, [3])),
    });
  });

  it("BatchNorm, inference form", async () => {
    await check({
      name: "BatchNorm inference form (running stats)",
      dtype: "float32",
      inputs: { x: { shape: [2, 3, 4, 4] }, scale: { shape: [3] }, b: { shape: [3] } },
      build: (g, v) =>
        g.batchNorm(v.x!, v.scale!, v.b!, g.constant(Float32Array.from([0.1, -0.2, 0.3]), [3]), g.fill(0.8, [3])),
    });
  });

  it("BatchNorm, training form (TrainingGraphBuilder: batch statistics over [N, spatial])", async () => {
    await check({
      name: "BatchNorm training form (decomposed)",
      dtype: "float32",
      builder: (name) => new TrainingGraphBuilder({ name }),
      inputs: { x: { shape: [3, 2, 3, 4], lo: -2, hi: 2 }, scale: { shape: [2], lo: 0.5, hi: 1.5 }, b: { shape: [2] } },
      build: (g, v) => g.batchNorm(v.x!, v.scale!, v.b!, g.fill(0, [2]), g.fill(1, [2])),
    });
  });

  it.each([
    { name: "MaxPool2d k2 s2, odd 5x4 (MaxUnpool)", shape: [2, 2, 5, 4], k: [2, 2], s: [2, 2], p: [0, 0, 0, 0] },
    { name: "MaxPool3d k2 s2 (MaxUnpool)", shape: [1, 2, 4, 4, 4], k: [2, 2, 2], s: [2, 2, 2], p: [0, 0, 0, 0, 0, 0] },
    {
      name: "MaxPool2d k3 s2 p1, overlapping (ScatterElements)",
      shape: [1, 2, 7, 6],
      k: [3, 3],
      s: [2, 2],
      p: [1, 1, 1, 1],
    },
  ])("$name", async ({ name, shape, k, s, p }) => {
    await check({
      name,
      dtype: "float32",
      h: 1e-3,
      inputs: { x: { shape, data: distinctArray("float32", numel(shape), 5) } },
      build: (g, v) => g.maxPool(v.x!, { kernelShape: k, strides: s, pads: p }),
    });
  });

  it.each([
    { name: "Resize nearest x2 (asymmetric, floor)", shape: [1, 2, 3, 4], mode: "nearest" as const, scales: 2 },
    { name: "Resize nearest x3 3D", shape: [1, 1, 2, 3, 2], mode: "nearest" as const, scales: 3 },
    { name: "Resize linear x2 (pytorch_half_pixel)", shape: [2, 2, 3, 4], mode: "linear" as const, scales: 2 },
    {
      name: "Resize linear x2 align_corners (BasicUNet)",
      shape: [1, 2, 4, 3],
      mode: "linear" as const,
      scales: 2,
      ctm: "align_corners" as const,
    },
    {
      name: "Resize linear x2 3D (half_pixel)",
      shape: [1, 1, 3, 2, 3],
      mode: "linear" as const,
      scales: 2,
      ctm: "half_pixel" as const,
    },
    {
      name: "Resize nearest x2, round_prefer_floor half_pixel",
      shape: [1, 1, 3, 3],
      mode: "nearest" as const,
      scales: 2,
      ctm: "half_pixel" as const,
      nearest: "round_prefer_floor" as const,
    },
  ])("$name", async ({ name, shape, mode, scales, ctm, nearest }) => {
    await check({
      name,
      dtype: "float32",
      h: 0.05,
      inputs: { x: { shape } },
      build: (g, v) => g.resize(v.x!, { scales, mode, coordinateTransformationMode: ctm, nearestMode: nearest }),
    });
  });
});

describe("elementwise and shape rules (float64)", () => {
  const unary: [string, (g: GraphBuilder, x: Value) => Value, number?, number?][] = [
    ["Relu", (g, x) => g.relu(x)],
    ["LeakyRelu 0.1", (g, x) => g.leakyRelu(x, 0.1)],
    ["Sigmoid", (g, x) => g.sigmoid(x)],
    ["Tanh", (g, x) => g.tanh(x)],
    ["Softmax axis 1", (g, x) => g.softmax(x, 1)],
    ["LogSoftmax axis 1", (g, x) => g.logSoftmax(x, 1)],
    ["Sqrt", (g, x) => g.sqrt(x), 0.2, 2],
    ["Exp", (g, x) => g.exp(x)],
    ["Log", (g, x) => g.log(x), 0.2, 2],
    ["Neg", (g, x) => g.neg(x)],
    ["Identity", (g, x) => g.identity(x)],
    ["Abs", (g, x) => g.abs(x)],
    ["Reciprocal", (g, x) => g.reciprocal(x), 0.5, 2],
    ["Dropout (inference form: identity)", (g, x) => g.dropout(x, 0.3)],
    ["ReduceSum axes [1, 3] keepdims", (g, x) => g.reduceSum(x, [1, 3])],
    ["ReduceMean axes [2] no keepdims", (g, x) => g.reduceMean(x, [2], { keepdims: false })],
    ["ReduceMean all axes", (g, x) => g.reduceMean(x, undefined, { keepdims: false })],
    ["Reshape", (g, x) => g.reshape(x, [3, -1])],
    ["Transpose [0, 2, 3, 1]", (g, x) => g.transpose(x, [0, 2, 3, 1])],
    ["Unsqueeze + Squeeze", (g, x) => g.squeeze(g.unsqueeze(x, [0]), [0])],
    ["Unsqueeze axis 2", (g, x) => g.unsqueeze(x, [2])],
    [
      "Slice steps 2, negative start",
      (g, x) => g.slice(x, { starts: [1, -4], ends: [3, 5], axes: [1, 3], steps: [1, 2] }),
    ],
    [
      "Slice step -1 (flip) and -2",
      (g, x) => g.slice(x, { starts: [-1, 3], ends: [-100, 0], axes: [2, 3], steps: [-1, -2] }),
    ],
    ["Pad constant, mixed", (g, x) => g.pad(x, [1, 0, 2, 1], { axes: [2, 3] })],
    ["Pad negative (crop) and positive", (g, x) => g.pad(x, [-1, 1, 0, -2], { axes: [2, 3] })],
    ["Pad edge (UpCat's replicate)", (g, x) => g.pad(x, [0, 0, 1, 2], { axes: [2, 3], mode: "edge" })],
    [
      "Split into 3 + Concat (reordered)",
      (g, x) => {
        const [a, b, c] = g.split(x, [1, 1, 1], 1);
        return g.concat([c!, a!, g.mul(b!, b!)], 1);
      },
    ],
    ["Split, one output unused", (g, x) => g.split(x, [2, 1], 1)[1]!],
    ["Concat on axis 3 with itself", (g, x) => g.concat([x, g.sigmoid(x)], 3)],
    ["Expand [1,3,1,5] -> [2,3,4,5]", (g, x) => g.expand(g.reduceMean(x, [0, 2]), [2, 3, 4, 5])],
    ["Value used three times (sums gradients)", (g, x) => g.add(g.mul(x, x), g.exp(x))],
  ];

  it.each(unary)("%s", async (name, op, lo, hi) => {
    await check({
      name,
      dtype: "float64",
      inputs: { x: { shape: [2, 3, 4, 5], lo, hi } },
      build: (g, v) => op(g, v.x!),
    });
  });

  it.each([
    ["Add", [2, 3, 4, 5], [3, 1, 1]],
    ["Sub", [3, 1, 1], [2, 3, 4, 5]],
    ["Mul", [2, 3, 4, 5], [1, 3, 1, 5]],
    ["Div", [2, 3, 4, 5], [3, 1, 1]],
    ["Mul scalar", [2, 3, 4, 5], []],
    ["Sum", [2, 1, 4, 5], [3, 1, 1]],
    ["PRelu per-channel slope", [2, 3, 4, 5], [3, 1, 1]],
    ["PRelu one slope", [2, 3, 4, 5], [1]],
    ["Where", [2, 3, 4, 5], [3, 4, 1]],
  ] as const)("%s broadcasting %j with %j", async (op, a, b) => {
    await check({
      name: `${op} ${JSON.stringify(a)} with ${JSON.stringify(b)}`,
      dtype: "float64",
      inputs: { a: { shape: [...a] }, b: { shape: [...b], lo: op === "Div" ? 0.5 : -1, hi: op === "Div" ? 2 : 1 } },
      build: (g, v) => {
        const x = v.a!;
        const y = v.b!;
        switch (op) {
          case "Add":
            return g.add(x, y);
          case "Sub":
            return g.sub(x, y);
          case "Mul":
          case "Mul scalar":
            return g.mul(x, y);
          case "Div":
            return g.div(x, y);
          case "Sum":
            return g.sum([x, y, x]);
          case "Where":
            return g.where(g.greater(x, g.scalar(0, "float64")), x, y);
          default:
            return g.prelu(x, y);
        }
      },
    });
  });
});

describe("autodiff engine", () => {
  it("names the op without a rule", () => {
    const g = new GraphBuilder();
    const a = g.input("a", "float32", [2, 3]);
    const b = g.input("b", "float32", [3, 2]);
    const y = g.reduceSum(g.matMul(a, b), undefined, { keepdims: false });
    expect(() => gradients(g, y, ["a"])).toThrow(GradientError);
    expect(() => gradients(g, y, ["a"])).toThrow(/no gradient rule for op MatMul/);
  });

  it("names unsupported attributes (grouped conv)", () => {
    const g = new GraphBuilder();
    const x = g.input("x", "float32", [1, 4, 5, 5]);
    const w = g.input("w", "float32", [4, 2, 3, 3]);
    const y = g.reduceSum(g.conv(x, w, undefined, { group: 2 }), undefined, { keepdims: false });
    expect(() => gradients(g, y, ["w"])).toThrow(/Conv .*group=2/);
  });

  it("builds no nodes for inputs that need no gradient, and prunes dead forward nodes", () => {
    const g = new GraphBuilder();
    const x = g.input("x", "float32", [1, 2, 6, 6]);
    const w = g.input("w", "float32", [3, 2, 3, 3]);
    const unused = g.input("u", "float32", [1, 2, 6, 6]);
    g.relu(unused); // dead branch
    const loss = g.reduceSum(g.conv(x, w, undefined, { pads: 1 }), undefined, { keepdims: false });
    const grads = gradients(g, loss, ["x"]);
    g.output(grads.get("x")!, "dx");
    const graph = prune(g.graph());
    const ops = graph.nodes.map((n) => n.op);
    expect(ops).not.toContain("Gemm"); // no weight gradient
    expect(ops).not.toContain("Relu");
    expect(ops.filter((o) => o === "Conv")).toHaveLength(1); // the input gradient only; the forward conv is dead
    expect(grads.has("w")).toBe(false);
  });

  it("withGradients continues a finished graph", async () => {
    const g = new GraphBuilder({ name: "fwd" });
    const x = g.input("x", "float64", [4]);
    g.output(g.reduceSum(g.mul(x, x), undefined, { keepdims: false }), "loss");
    const { builder, grads } = withGradients(g.graph(), "loss", ["x"]);
    builder.output(grads.get("x")!, "dx");
    const s = await ort.InferenceSession.create(builder.serialize(), { logSeverityLevel: 3 });
    const out = await s.run({ x: new ort.Tensor("float64", Float64Array.from([1, -2, 3, 0.5]), [4]) });
    await s.release();
    expect(Array.from(out.dx!.data as Float64Array)).toEqual([2, -4, 6, 1]);
  });

  it("leaves out values the loss does not depend on", () => {
    const g = new GraphBuilder();
    const x = g.input("x", "float64", [3]);
    const z = g.input("z", "float64", [3]);
    const loss = g.reduceSum(g.mul(x, x), undefined, { keepdims: false });
    g.sigmoid(z);
    const grads = gradients(g, loss, ["x", "z"]);
    expect([...grads.keys()]).toEqual(["x"]);
  });

  it("mask-based dropout: dX = dY * mask / (1 - p), about 1 - p kept", async () => {
    const g = new TrainingGraphBuilder();
    const n = 4000;
    const x = g.input("x", "float32", [1, 1, n]);
    const y = g.dropout(g.relu(x), 0.25);
    const rData = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
    const loss = g.reduceSum(g.mul(y, g.constant(rData, [1, 1, n])), undefined, { keepdims: false });
    const dx = gradients(g, loss, ["x"]).get("x")!;
    g.output(y, "y");
    g.output(dx, "dx");
    // Optimization "all": a Dropout node after Relu would be removed (study, Q4); the mask-based form survives.
    const s = await ort.InferenceSession.create(g.serialize(), { graphOptimizationLevel: "all", logSeverityLevel: 3 });
    const xData = Float32Array.from({ length: n }, (_, i) => 0.5 + (i % 7) / 7);
    const out = await s.run({ x: new ort.Tensor("float32", xData, [1, 1, n]) });
    await s.release();
    const yv = out.y!.data as Float32Array;
    const dv = out.dx!.data as Float32Array;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      if (yv[i] !== 0) {
        kept++;
        expect(yv[i]).toBeCloseTo(xData[i]! / 0.75, 5);
        expect(dv[i]).toBeCloseTo(rData[i]! / 0.75, 5);
      } else {
        expect(Math.abs(dv[i]!)).toBe(0);
      }
    }
    expect(kept / n).toBeGreaterThan(0.72);
    expect(kept / n).toBeLessThan(0.78);
  });
});
