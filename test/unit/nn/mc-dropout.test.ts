import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { decodeModel, serializeGraph } from "../../../src/graph/serialize.js";
import { BasicUNet } from "../../../src/nn/basic-unet.js";
import { mcDropoutModel } from "../../../src/nn/mc-dropout.js";
import { UNet, type UNetOptions } from "../../../src/nn/unet.js";
import { maxAbsDiff, random } from "../graph/reference.js";

const { onnx } = onnxProto;
const SHAPE = [2, 1, 32, 32];
const unetOptions: UNetOptions = {
  spatialDims: 2,
  inChannels: 1,
  outChannels: 2,
  channels: [4, 8, 16],
  strides: [2, 2],
  numResUnits: 1,
  dropout: 0.3,
  seed: 3,
};

/** A session as the session pool opens them (optimisation "all"), run `n` times on the same input. */
async function runs(bytes: Uint8Array, n: number, input = random(SHAPE, 7), optimizedPath?: string) {
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    ...(optimizedPath ? { optimizedModelFilePath: optimizedPath } : {}),
  });
  try {
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const r = await session.run({ image: new ort.Tensor("float32", input.data, input.shape) });
      out.push(r.pred!.data as Float32Array);
    }
    return out;
  } finally {
    await session.release();
  }
}

const ops = (bytes: Uint8Array) => (decodeModel(bytes).graph?.node ?? []).map((n) => n.opType ?? "");
const countOf = (list: string[], op: string) => list.filter((o) => o === op).length;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mc-dropout-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("exported networks and Monte-Carlo dropout", () => {
  it("onnxruntime removes Dropout even with training_mode = true, so a Dropout node cannot do MC dropout", async () => {
    // The reason for the random-mask form: the same graph with every Dropout in its training form.
    const graph = new UNet(unetOptions).toGraph({ inputShape: SHAPE });
    const training = { ...graph, nodes: graph.nodes.map((n) => (n.op === "Dropout" ? { ...n, training: true } : n)) };
    const bytes = serializeGraph(training);
    expect(countOf(ops(bytes), "Dropout")).toBeGreaterThan(0);
    const [a, b] = await runs(bytes, 2);
    expect(maxAbsDiff(a!, b!)).toBe(0);
  });

  it("plain inference keeps Dropout nodes in the file, is identical run to run and costs no extra node", async () => {
    const net = new UNet(unetOptions);
    const plain = net.toOnnx({ inputShape: SHAPE });
    expect(countOf(ops(plain), "Dropout")).toBe(6);
    const withoutDropout = new UNet({ ...unetOptions, dropout: 0 }).toOnnx({ inputShape: SHAPE });
    const optimized = join(dir, "plain.opt.onnx");
    const [a, b, c] = await runs(plain, 3, undefined, optimized);
    expect(maxAbsDiff(a!, b!)).toBe(0);
    expect(maxAbsDiff(a!, c!)).toBe(0);
    // Same weights without dropout: the same numbers, and after optimisation the same graph node for node.
    const optimizedRef = join(dir, "ref.opt.onnx");
    const [ref] = await runs(withoutDropout, 1, undefined, optimizedRef);
    expect(maxAbsDiff(a!, ref!)).toBe(0);
    const optOps = ops(await readFile(optimized));
    expect(countOf(optOps, "Dropout")).toBe(0);
    expect(optOps.sort()).toEqual(ops(await readFile(optimizedRef)).sort());
  });

  it("the MC form of UNet draws a fresh mask every run; its mean approaches the plain output", async () => {
    const net = new UNet(unetOptions);
    const mc = mcDropoutModel(net.toOnnx({ inputShape: SHAPE }));
    expect(mc.dropouts).toBe(6);
    expect(mc.stochastic).toBe(6);
    expect(countOf(ops(mc.bytes), "Dropout")).toBe(0);
    expect(countOf(ops(mc.bytes), "RandomUniformLike")).toBe(6);
    const passes = await runs(mc.bytes, 40);
    const [plain] = await runs(net.toOnnx({ inputShape: SHAPE }), 1);
    for (let i = 1; i < passes.length; i++) {
      expect(maxAbsDiff(passes[0]!, passes[i]!)).toBeGreaterThan(1e-3);
    }
    // Unbiased (inverted) dropout: the MC mean is much closer to the deterministic output than one pass is.
    const mean = new Float32Array(plain!.length);
    for (const p of passes) {
      p.forEach((v, i) => {
        mean[i] = mean[i]! + v / passes.length;
      });
    }
    const rms = (x: Float32Array, y: Float32Array) =>
      Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / x.length);
    expect(rms(mean, plain!)).toBeLessThan(0.5 * rms(passes[0]!, plain!));
    // toOnnx({ mcDropout: true }) is the same transform.
    expect(countOf(ops(net.toOnnx({ inputShape: SHAPE, mcDropout: true })), "RandomUniformLike")).toBe(6);
  });

  it("BasicUNet: two MC passes differ, plain passes do not", async () => {
    const net = new BasicUNet({
      spatialDims: 2,
      inChannels: 1,
      outChannels: 2,
      features: [4, 4, 8, 8, 16, 4],
      dropout: 0.2,
    });
    const [p1, p2] = await runs(net.toOnnx({ inputShape: SHAPE }), 2);
    expect(maxAbsDiff(p1!, p2!)).toBe(0);
    const [m1, m2] = await runs(net.toOnnx({ inputShape: SHAPE, mcDropout: true }), 2);
    expect(maxAbsDiff(m1!, m2!)).toBeGreaterThan(1e-3);
  });

  it("drops the ratio's share of values, scales the rest by 1 / (1 - ratio), and exposes the mask", async () => {
    const g = new GraphBuilder({ name: "drop", opset: 18 });
    const x = g.input("x", "float32", [1, 20000]);
    g.output(g.dropout(x, 0.25), "y");
    const model = decodeModel(g.serialize());
    const node = model.graph!.node!.find((n) => n.opType === "Dropout")!;
    node.output = [...node.output!, "mask"];
    model.graph!.output!.push({ name: "mask", type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL } } });
    const mc = mcDropoutModel(onnx.ModelProto.encode(model).finish());
    const session = await ort.InferenceSession.create(mc.bytes, { graphOptimizationLevel: "all", logSeverityLevel: 3 });
    try {
      const ones = new Float32Array(20000).fill(1);
      const out = await session.run({ x: new ort.Tensor("float32", ones, [1, 20000]) });
      const y = out.y!.data as Float32Array;
      const mask = out.mask!.data as Uint8Array;
      let zeros = 0;
      for (let i = 0; i < y.length; i++) {
        if (y[i] === 0) {
          zeros++;
          expect(mask[i]).toBe(0);
        } else {
          expect(y[i]).toBeCloseTo(4 / 3, 6);
          expect(mask[i]).toBe(1);
        }
      }
      // 20000 Bernoulli(0.25) draws: sd 61, so 5000 +- 400 is over 6 sd.
      expect(Math.abs(zeros - 5000)).toBeLessThan(400);
    } finally {
      await session.release();
    }
  });

  it("reads ONNX's default ratio and an opset-7 ratio attribute; rejects what it cannot rewrite", () => {
    const g = new GraphBuilder({ name: "drop", opset: 18 });
    const x = g.input("x", "float32", [1, 4]);
    g.output(g.dropout(x, 0.1), "y");
    const model = decodeModel(g.serialize());
    const node = model.graph!.node!.find((n) => n.opType === "Dropout")!;
    const ratioOf = (bytes: Uint8Array) => {
      const m = decodeModel(bytes);
      const name = m.graph!.node!.find((n) => n.opType === "Greater")!.input![1];
      const t = m.graph!.initializer!.find((i) => i.name === name)!;
      return new Float32Array(new Uint8Array(t.rawData!).buffer)[0];
    };
    expect(ratioOf(mcDropoutModel(onnx.ModelProto.encode(model).finish()).bytes)).toBeCloseTo(0.1, 7);
    node.input = [node.input![0]!];
    expect(ratioOf(mcDropoutModel(onnx.ModelProto.encode(model).finish()).bytes)).toBe(0.5);
    node.attribute = [{ name: "ratio", type: onnx.AttributeProto.AttributeType.FLOAT, f: 0.75 }];
    expect(ratioOf(mcDropoutModel(onnx.ModelProto.encode(model).finish()).bytes)).toBe(0.75);
    node.attribute = [];
    node.input = [node.input[0]!, "x"];
    expect(() => mcDropoutModel(onnx.ModelProto.encode(model).finish())).toThrow(/ratio x is computed/);
    expect(() => mcDropoutModel(new Uint8Array([1, 2, 3, 255]))).toThrow(InvalidInputError);
    // No dropout at all: nothing to rewrite, nothing random.
    const none = new UNet({ ...unetOptions, dropout: 0 }).toOnnx({ inputShape: SHAPE });
    expect(mcDropoutModel(none)).toMatchObject({ dropouts: 0, stochastic: 0 });
  });
});
