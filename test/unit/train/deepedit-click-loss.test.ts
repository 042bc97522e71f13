import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { Adam } from "../../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../../src/nn/train-step.js";
import { UNet } from "../../../src/nn/unet.js";
import { TrainDeepEdit } from "../../../src/tasks/train/deepedit.js";

/** TrainDeepEdit's click loss (`click_loss_weight`): DiceCE plus the cross entropy weighted by the click channels. */

const S = 8;
const network = () =>
  new UNet({
    spatialDims: 2,
    inChannels: 3,
    outChannels: 2,
    channels: [4, 8],
    strides: [2],
    norm: "INSTANCE",
    seed: 3,
  });
const task = () =>
  new TrainDeepEdit({
    modelDir: "/nonexistent",
    description: "click loss",
    publishPath: "/nonexistent/model.onnx",
    network,
    labelNames: { brain: 1, background: 0 },
    modelSize: [S, S],
  });

/** The loss graph of `req` on pred [1, 2, S, S], target [1, 1, S, S], input [1, 3, S, S]. */
async function lossOf(req: Record<string, unknown>, pred: Float32Array, target: Float32Array, input: Float32Array) {
  const g = new GraphBuilder({ name: "loss" });
  const p = g.input("pred", "float32", [1, 2, S, S]);
  const t = g.input("target", "float32", [1, 1, S, S]);
  const x = g.input("image", "float32", [1, 3, S, S]);
  g.output(task().lossFunction(req)(g, p, t, x), "out");
  const s = await ort.InferenceSession.create(g.serialize(), { logSeverityLevel: 3 });
  try {
    const r = await s.run({
      pred: new ort.Tensor("float32", pred, [1, 2, S, S]),
      target: new ort.Tensor("float32", target, [1, 1, S, S]),
      image: new ort.Tensor("float32", input, [1, 3, S, S]),
    });
    return (r.out!.data as Float32Array)[0]!;
  } finally {
    await s.release();
  }
}

const n = S * S;
const pred = Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(i * 0.7) * 2);
const target = Float32Array.from({ length: n }, (_, i) => (i % S < 4 ? 1 : 0));
/** Image in channel 0; a brain click of height 1 at (2, 3) with a 0.5 ring, and a background click at (6, 6). */
function withClicks(): Float32Array {
  const x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    x[i] = (i % 7) / 7;
  }
  x[n + 3 * S + 2] = 1;
  x[n + 3 * S + 3] = 0.5;
  x[2 * n + 6 * S + 6] = 1;
  return x;
}

describe("TrainDeepEdit click loss", () => {
  it("is MONAI's DiceCE when the weight is 0 or the batch has no clicks", async () => {
    const clicks = withClicks();
    const auto = clicks.slice();
    auto.fill(0, n);
    const plain = await lossOf({}, pred, target, clicks);
    expect(await lossOf({ click_loss_weight: 0 }, pred, target, clicks)).toBe(plain);
    expect(await lossOf({ click_loss_weight: 3 }, pred, target, auto)).toBeCloseTo(plain, 6);
  });

  it("adds weight x the cross entropy at the clicked voxels, weighted by the click channels", async () => {
    const plain = await lossOf({}, pred, target, withClicks());
    // Hand-worked: CE at voxel v = logsumexp(pred[:, v]) - pred[label(v), v].
    const ce = (v: number) => {
      const [a, b] = [pred[v]!, pred[n + v]!];
      const lse = Math.max(a, b) + Math.log(Math.exp(a - Math.max(a, b)) + Math.exp(b - Math.max(a, b)));
      return lse - (target[v] === 1 ? b : a);
    };
    const [v1, v2, v3] = [3 * S + 2, 3 * S + 3, 6 * S + 6];
    const clickCe = (1 * ce(v1) + 0.5 * ce(v2) + 1 * ce(v3)) / 2.5;
    expect(await lossOf({ click_loss_weight: 2 }, pred, target, withClicks())).toBeCloseTo(plain + 2 * clickCe, 4);
  });

  it("refuses a negative or non-numeric weight with a typed error", () => {
    expect(() => task().lossFunction({ click_loss_weight: -1 })).toThrow(InvalidInputError);
    expect(() => task().lossFunction({ click_loss_weight: "lots" })).toThrow(/click_loss_weight/);
  });

  it("trains: the step graph differentiates it, and steps lower the loss on a clicked batch", async () => {
    const step = buildTrainStep({
      network: network(),
      inputShape: [1, 3, S, S],
      targetShape: [1, 1, S, S],
      loss: task().lossFunction({ click_loss_weight: 1 }),
      optimizer: new Adam(),
    });
    const trainer = new Trainer(step);
    try {
      const losses: number[] = [];
      for (let i = 0; i < 15; i++) {
        losses.push((await trainer.step(withClicks(), target, 0.01)).loss);
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.8);
    } finally {
      await trainer.release();
    }
  });
});
