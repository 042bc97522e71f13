import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import type { GraphBuilder } from "../../../src/graph/builder.js";
import type { Value } from "../../../src/graph/ir.js";
import { decodeModel } from "../../../src/graph/serialize.js";
import { BatchNorm, ConvLayer } from "../../../src/nn/layers.js";
import { diceLoss } from "../../../src/nn/losses.js";
import { Network } from "../../../src/nn/module.js";
import { Adam, cosineLR, SGD } from "../../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../../src/nn/train-step.js";
import { UNet } from "../../../src/nn/unet.js";
import { rng } from "../autodiff/gradcheck.js";

const report: string[] = [];
afterAll(() => {
  console.log(report.join("\n"));
});

/** Random filled ellipses (label) plus a bias field and Gaussian noise (image), like the study's task. */
function ellipses(seed: number, batch: number, size: number, noise = 0.6) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const image = new Float32Array(batch * size * size);
  const label = new Float32Array(batch * size * size);
  for (let b = 0; b < batch; b++) {
    const count = 1 + Math.floor(r() * 3);
    const shapes = Array.from({ length: count }, () => ({
      cy: (0.2 + 0.6 * r()) * size,
      cx: (0.2 + 0.6 * r()) * size,
      ry: (0.08 + 0.14 * r()) * size,
      rx: (0.08 + 0.14 * r()) * size,
      angle: r() * Math.PI,
    }));
    const gy = (r() - 0.5) * 0.6;
    const gx = (r() - 0.5) * 0.6;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = shapes.some((e) => {
          const dy = y - e.cy;
          const dx = x - e.cx;
          const u = dx * Math.cos(e.angle) + dy * Math.sin(e.angle);
          const v = -dx * Math.sin(e.angle) + dy * Math.cos(e.angle);
          return (u / e.rx) ** 2 + (v / e.ry) ** 2 <= 1;
        });
        const i = (b * size + y) * size + x;
        label[i] = inside ? 1 : 0;
        image[i] = (inside ? 1 : 0) + gy * (y / size - 0.5) + gx * (x / size - 0.5) + noise * gauss();
      }
    }
  }
  return { image, label };
}

function hardDice(logits: Float32Array, label: Float32Array): number {
  let inter = 0;
  let p = 0;
  let t = 0;
  for (let i = 0; i < logits.length; i++) {
    const on = logits[i]! > 0 ? 1 : 0;
    inter += on * label[i]!;
    p += on;
    t += label[i]!;
  }
  return (2 * inter) / Math.max(1, p + t);
}

async function forward(net: Network, shape: number[], image: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(net.toOnnx({ inputShape: shape }), {
    logSeverityLevel: 3,
    intraOpNumThreads: 2,
  });
  try {
    return (await s.run({ image: new ort.Tensor("float32", image, shape) })).pred!.data as Float32Array;
  } finally {
    await s.release();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sigmoidDice = (g: GraphBuilder, pred: Value, target: Value) => diceLoss(g, pred, target, { sigmoid: true });

describe("training step: forward, loss, backward and update in one session.run", () => {
  it("trains a 2D UNet on synthetic ellipses to held-out Dice > 0.8 in 60 steps", { timeout: 60_000 }, async () => {
    const size = 64;
    const shape = [4, 1, size, size];
    const net = new UNet({
      spatialDims: 2,
      inChannels: 1,
      outChannels: 1,
      channels: [16, 32, 64],
      strides: [2, 2],
      seed: 0,
    });
    const t0 = performance.now();
    const step = buildTrainStep({
      network: net,
      inputShape: shape,
      targetShape: shape,
      loss: sigmoidDice,
      optimizer: new Adam(),
    });
    const buildMs = performance.now() - t0;
    const steps = 60;
    const trainer = new Trainer(step, { threads: 2, schedule: cosineLR(1e-2, { totalSteps: steps, minLr: 1e-3 }) });
    const held = [ellipses(9001, 4, size), ellipses(9002, 4, size)];
    const evaluate = async () => {
      net.loadParameters(trainer.parameters());
      let sum = 0;
      for (const h of held) {
        sum += hardDice(await forward(net, shape, h.image), h.label);
      }
      return sum / held.length;
    };
    const before = await evaluate();
    const times: number[] = [];
    const losses: number[] = [];
    for (let k = 0; k < steps; k++) {
      const batch = ellipses(k + 1, 4, size);
      const s = performance.now();
      const { loss } = await trainer.step(batch.image, batch.label);
      times.push(performance.now() - s);
      losses.push(loss);
    }
    const after = await evaluate();
    await trainer.release();
    const params = [...net.parameters().values()].reduce((a, p) => a + p.data.length, 0);
    report.push(
      `UNet 2D [16,32,64], ${params} params, batch 4x1x${size}x${size}, Adam + cosine lr 1e-2 -> 1e-3, Dice loss:\n` +
        `  model ${(step.model.length / 1024).toFixed(0)} KB, built in ${buildMs.toFixed(0)} ms; first step (session creation included) ${times[0]!.toFixed(0)} ms\n` +
        `  ms/step median ${median(times.slice(1)).toFixed(1)} (steps 1-19 ${median(times.slice(1, 20)).toFixed(1)}, steps 40-59 ${median(times.slice(40)).toFixed(1)}), 2 threads\n` +
        `  loss ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}; held-out Dice ${before.toFixed(3)} before, ${after.toFixed(3)} after ${steps} steps`,
    );
    expect(after).toBeGreaterThan(0.8);
    expect(losses.at(-1)!).toBeLessThan(losses[0]!);
  });

  it("checkpoint round trip: a fresh trainer loaded from state() continues identically", async () => {
    const shape = [2, 1, 32, 32];
    const make = () =>
      new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [8, 16], strides: [2], seed: 3 });
    const net = make();
    const step = buildTrainStep({
      network: net,
      inputShape: shape,
      targetShape: shape,
      loss: sigmoidDice,
      optimizer: new Adam(),
    });
    const a = new Trainer(step, { threads: 1 });
    for (let k = 0; k < 5; k++) {
      const b = ellipses(100 + k, 2, 32);
      await a.step(b.image, b.label, 5e-3);
    }
    const saved = a.state();
    expect(saved.step).toBe(5);
    expect([...saved.optimizer.keys()]).toEqual(step.stateNames);
    const next = ellipses(200, 2, 32);
    const ra = await a.step(next.image, next.label, 5e-3);

    // A fresh network and a fresh trainer, from the checkpoint only.
    const other = make();
    other.resetParameters(99);
    const stepB = buildTrainStep({
      network: other,
      inputShape: shape,
      targetShape: shape,
      loss: sigmoidDice,
      optimizer: new Adam(),
    });
    const b = new Trainer(stepB, { threads: 1 });
    b.loadState(saved);
    expect(b.stepCount).toBe(5);
    const rb = await b.step(next.image, next.label, 5e-3);
    expect(rb.loss).toBe(ra.loss);
    const pa = a.parameters();
    const pb = b.parameters();
    for (const [name, p] of pa) {
      expect(Array.from(pb.get(name)!.data), name).toEqual(Array.from(p.data));
    }
    const sa = a.state().optimizer;
    for (const [name, s] of b.state().optimizer) {
      expect(Array.from(s), name).toEqual(Array.from(sa.get(name)!));
    }

    // The step's pred is the network's forward output with the pre-step weights, under the network's names.
    other.loadParameters(saved.parameters);
    const fwd = await forward(other, shape, next.image);
    let worst = 0;
    fwd.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - rb.pred[i]!));
    });
    expect(worst).toBeLessThan(1e-4);
    await a.release();
    await b.release();
    expect(() => b.loadState({ ...saved, optimizer: new Map() })).toThrow(/missing optimizer state/);
  });

  it("BatchNorm trains on batch statistics and updates running statistics like PyTorch", async () => {
    class ConvBN extends Network {
      readonly spatialDims = 2;
      readonly inChannels = 1;
      readonly outChannels = 2;
      constructor() {
        super();
        this.addModule(
          "conv",
          new ConvLayer({ spatialDims: 2, inChannels: 1, outChannels: 2, kernelSize: 1, bias: false }),
        );
        this.addModule("bn", new BatchNorm(2));
        this.resetParameters(1);
      }
      forward(g: GraphBuilder, x: Value, prefix: string): Value {
        return this.child(g, prefix, "bn", this.child(g, prefix, "conv", x));
      }
    }
    const net = new ConvBN();
    const shape = [3, 1, 4, 4];
    const step = buildTrainStep({
      network: net,
      inputShape: shape,
      targetShape: [3, 2, 4, 4],
      loss: sigmoidDice,
      optimizer: new SGD({ momentum: 0.9 }),
    });
    expect(step.bufferNames).toEqual(["bn.running_mean", "bn.running_var"]);
    expect(step.paramNames).toEqual(["conv.weight", "bn.weight", "bn.bias"]);
    const ops = decodeModel(step.model).graph!.node!.map((n) => n.opType);
    expect(ops).not.toContain("BatchNormalization");
    const trainer = new Trainer(step, { threads: 1 });
    const r = rng(4);
    const image = Float32Array.from({ length: 48 }, () => r() * 2 - 1);
    const label = Float32Array.from({ length: 96 }, () => (r() < 0.5 ? 1 : 0));
    const w = net.parameters().get("conv.weight")!.data;
    await trainer.step(image, label, 0.1);
    const p = trainer.parameters();
    const mean = [0, 1].map((c) => (image.reduce((a, v) => a + v, 0) * w[c]!) / 48);
    const variance = [0, 1].map((c) => image.reduce((a, v) => a + (v * w[c]! - mean[c]!) ** 2, 0) / 47);
    [0, 1].forEach((c) => {
      expect(p.get("bn.running_mean")!.data[c]).toBeCloseTo(0.1 * mean[c]!, 6);
      expect(p.get("bn.running_var")!.data[c]).toBeCloseTo(0.9 + 0.1 * variance[c]!, 6);
    });
    expect(p.get("conv.weight")!.data[0]).not.toBe(w[0]);
    await trainer.release();
  });

  it("dropout is mask-based in the step model (ORT would drop a Dropout node) and differs between steps", async () => {
    const shape = [1, 1, 16, 16];
    const net = new UNet({
      spatialDims: 2,
      inChannels: 1,
      outChannels: 1,
      channels: [4, 8],
      strides: [2],
      dropout: 0.3,
      seed: 5,
    });
    const step = buildTrainStep({
      network: net,
      inputShape: shape,
      targetShape: shape,
      loss: sigmoidDice,
      optimizer: new Adam(),
    });
    const ops = decodeModel(step.model).graph!.node!.map((n) => n.opType);
    expect(ops).not.toContain("Dropout");
    expect(ops).toContain("RandomUniformLike");
    const trainer = new Trainer(step, { threads: 1 });
    const b = ellipses(7, 1, 16);
    const first = await trainer.step(b.image, b.label, 0);
    const second = await trainer.step(b.image, b.label, 0);
    // lr 0 keeps the weights: only the masks change the output.
    expect(Array.from(second.pred)).not.toEqual(Array.from(first.pred));
    expect(Number.isFinite(first.loss)).toBe(true);
    await trainer.release();
  });

  it("rejects a loss that is not one value, and a step without learning rate", async () => {
    const shape = [1, 1, 8, 8];
    const net = new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [2, 2], strides: [2] });
    expect(() =>
      buildTrainStep({
        network: net,
        inputShape: [2, 1, 8, 8],
        targetShape: [2, 1, 8, 8],
        loss: (g, p, t) => diceLoss(g, p, t, { reduction: "none" }),
        optimizer: new Adam(),
      }),
    ).toThrow(/one float32 value/);
    const step = buildTrainStep({
      network: net,
      inputShape: shape,
      targetShape: shape,
      loss: sigmoidDice,
      optimizer: new Adam(),
    });
    const trainer = new Trainer(step);
    await expect(trainer.step(new Float32Array(64), new Float32Array(64))).rejects.toThrow(/learning rate/);
    await expect(trainer.step(new Float32Array(3), new Float32Array(64), 1e-3)).rejects.toThrow(/image has 3 values/);
  });
});
