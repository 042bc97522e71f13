import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { Classifier } from "../../../src/nn/classifier.js";
import { crossEntropyLoss } from "../../../src/nn/losses.js";
import { Adam } from "../../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../../src/nn/train-step.js";
import { isConstantLabel, LabelToClassd } from "../../../src/tasks/train/classification-train-task.js";
import { MetaTensor } from "../../../src/transforms/tensor.js";
import { gradCheck, rng } from "../autodiff/gradcheck.js";

describe("Classifier", () => {
  it("maps [N, C, H, W] to [N, classes] logits whatever the input size", async () => {
    const net = new Classifier({ spatialDims: 2, inChannels: 3, classes: 4, channels: [4, 8], strides: [2, 2] });
    expect([...net.parameters().keys()]).toEqual(
      expect.arrayContaining(["layer_0.conv.weight", "layer_1.conv.bias", "final.conv.weight", "final.conv.bias"]),
    );
    for (const [h, w] of [
      [16, 16],
      [23, 9],
    ] as const) {
      const session = await ort.InferenceSession.create(net.toOnnx({ inputShape: [2, 3, h, w] }));
      const out = await session.run({
        image: new ort.Tensor("float32", new Float32Array(2 * 3 * h * w), [2, 3, h, w]),
      });
      expect(out.pred?.dims).toEqual([2, 4]);
      await session.release();
    }
    const spatial = new Classifier({
      spatialDims: 2,
      inChannels: 3,
      classes: 4,
      channels: [4],
      strides: [2],
      flatten: false,
    });
    const session = await ort.InferenceSession.create(spatial.toOnnx({ inputShape: [1, 3, 8, 8] }));
    const out = await session.run({ image: new ort.Tensor("float32", new Float32Array(3 * 64), [1, 3, 8, 8]) });
    expect(out.pred?.dims).toEqual([1, 4, 1, 1]);
    await session.release();
  });

  it("LabelToClassd reads a frame's class as its labels' majority value and rejects out-of-range classes", () => {
    const label = (values: number[]) => new MetaTensor({ data: values, shape: [1, values.length, 1] });
    const t = new LabelToClassd({ keys: "label", classes: 3 });
    const d = t.call({ label: label([2, 2, 1, 2, 0]) });
    expect((d.label as MetaTensor).shape).toEqual([1, 1]);
    expect(Array.from((d.label as MetaTensor).data)).toEqual([2]);
    expect(() => t.call({ label: label([3, 3, 3]) })).toThrow(InvalidInputError);
    expect(() => t.call({ label: "x.png" })).toThrow(/must be a loaded label/);
    expect(isConstantLabel([1, 1, 1])).toBe(true);
    expect(isConstantLabel([0, 1])).toBe(false);
    expect(isConstantLabel([])).toBe(false);
  });

  it("rejects bad options and inputs with clear errors", () => {
    expect(() => new Classifier({ spatialDims: 2, inChannels: 1, classes: 0, channels: [4], strides: [2] })).toThrow(
      /classes/,
    );
    expect(() => new Classifier({ spatialDims: 2, inChannels: 1, classes: 2, channels: [4, 8], strides: [2] })).toThrow(
      /one stride per channel block/,
    );
    const net = new Classifier({ spatialDims: 2, inChannels: 1, classes: 2, channels: [4], strides: [2] });
    expect(() => net.toOnnx({ inputShape: [1, 3, 8, 8] })).toThrow(/3 channels/);
  });

  it("head gradient (global average pool, 1x1 conv, reshape, cross-entropy) matches finite differences", async () => {
    const r = await gradCheck({
      name: "classifier head",
      dtype: "float32",
      h: 1e-2,
      inputs: {
        x: { shape: [3, 4, 5, 6] },
        w: { shape: [3, 4, 1, 1] },
        b: { shape: [3] },
        t: { shape: [3, 1], data: Float32Array.from([2, 0, 1]), fixed: true },
      },
      build: (g, v) => {
        const pooled = g.reduceMean(v.x!, [2, 3], { keepdims: true });
        const logits = g.reshape(g.conv(pooled, v.w!, v.b), [3, 3]);
        return crossEntropyLoss(g, logits, v.t!);
      },
    });
    expect(r.maxElementError, JSON.stringify(r.perInput)).toBeLessThan(1e-2);
    expect(r.directionError).toBeLessThan(2e-3);
  });

  it("learns a colour cue in a few dozen steps (cross-entropy falls, accuracy 1)", async () => {
    const net = new Classifier({
      spatialDims: 2,
      inChannels: 3,
      classes: 2,
      channels: [8, 16],
      strides: [2, 2],
      norm: "BATCH",
      act: "RELU",
      seed: 1,
    });
    const N = 8;
    const S = 16;
    const step = buildTrainStep({
      network: net,
      inputShape: [N, 3, S, S],
      targetShape: [N, 1],
      loss: (g, p, t) => crossEntropyLoss(g, p, t),
      optimizer: new Adam(),
    });
    const trainer = new Trainer(step);
    const r = rng(5);
    const batch = () => {
      const image = new Float32Array(N * 3 * S * S);
      const label = new Float32Array(N);
      for (let n = 0; n < N; n++) {
        const cls = r() < 0.5 ? 0 : 1;
        label[n] = cls;
        // class 0 reddish, class 1 greyish; both noisy.
        const base = cls === 0 ? [0.8, 0.3, 0.2] : [0.5, 0.5, 0.5];
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < S * S; i++) {
            image[(n * 3 + c) * S * S + i] = base[c]! + (r() - 0.5) * 0.4;
          }
        }
      }
      return { image, label };
    };
    const losses: number[] = [];
    let correct = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const { image, label } = batch();
        const out = await trainer.step(image, label, 0.01);
        losses.push(out.loss);
        if (i >= 35) {
          for (let n = 0; n < N; n++) {
            correct += (out.pred[2 * n + 1]! > out.pred[2 * n]! ? 1 : 0) === label[n] ? 1 : 0;
          }
        }
      }
    } finally {
      await trainer.release();
    }
    expect(losses.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan(losses[0]! * 0.3);
    expect(correct).toBe(5 * N);
  });
});
