import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { GraphBuilder } from "../../src/graph/builder.js";
import type { Value } from "../../src/graph/ir.js";
import { saveImage } from "../../src/io/load.js";
import { Network } from "../../src/nn/module.js";
import { UNet } from "../../src/nn/unet.js";
import type { TrainingEvent } from "../../src/tasks/train/basic-train-task.js";
import { TrainDeepEdit } from "../../src/tasks/train/deepedit.js";
import { Interaction, TrainDeepGrow } from "../../src/tasks/train/deepgrow.js";
import { RandomState } from "../../src/transforms/random.js";
import { fromCOrder } from "../../src/transforms/tensor.js";

const S = 32;
const identity = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

/** 2D images of a bright disk (random centre and radius) on noise, and its mask. */
async function disks(dir: string, n: number) {
  const R = new RandomState(3);
  const items = [];
  for (let k = 0; k < n; k++) {
    const cx = R.uniform(10, 22);
    const cy = R.uniform(10, 22);
    const r = R.uniform(5, 8);
    const image = new Float32Array(S * S);
    const label = new Float32Array(S * S);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
        label[x + S * y] = inside ? 1 : 0;
        image[x + S * y] = (inside ? 1 : 0) + R.normal(0, 0.3);
      }
    }
    const geo = { shape: [S, S], spacing: [1, 1], affine: identity, meta: {} };
    const item = { image: join(dir, `img${k}.nii.gz`), label: join(dir, `lab${k}.nii.gz`) };
    await saveImage({ ...geo, data: image, dtype: "float32" }, item.image);
    await saveImage({ ...geo, data: label, dtype: "uint8" }, item.label);
    items.push(item);
  }
  return items;
}

const net = (out: number) => () =>
  new UNet({ spatialDims: 2, inChannels: 3, outChannels: out, channels: [4, 8], strides: [2], seed: 5 });
const ctx = (events: TrainingEvent[] = []) => ({
  signal: new AbortController().signal,
  emit: (e: TrainingEvent) => events.push(e),
});

/**
 * A "network" that only follows clicks: foreground where the foreground guidance signal is above 0.3 and the
 * background one below it. Its Dice can only come from clicks, so validation with more clicks must score higher.
 */
class ClickFollower extends Network {
  readonly spatialDims = 2;
  readonly inChannels = 3;
  readonly outChannels = 1;
  forward(g: GraphBuilder, x: Value): Value {
    const fg = g.slice(x, { starts: [1], ends: [2], axes: [1] });
    const bg = g.slice(x, { starts: [2], ends: [3], axes: [1] });
    return g.mul(g.sub(g.sub(fg, bg), g.scalar(0.3)), g.scalar(20));
  }
}

describe("training with simulated clicks", () => {
  let dir: string;
  let items: { image: string; label: string }[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-interactive-train-"));
    items = await disks(dir, 6);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("TrainDeepGrow: every step trains on clicks placed by the current model's errors, and publishes a 3-channel model", async () => {
    const task = new TrainDeepGrow({
      modelDir: join(dir, "dg"),
      publishPath: join(dir, "dg", "deepgrow.onnx"),
      description: "test",
      network: net(1),
      dimension: 2,
      modelSize: [S, S],
      config: { learning_rate: 1e-2, train_batch_size: 2, val_split: 0.34, max_train_interactions: 3 },
    });
    const events: TrainingEvent[] = [];
    const stats = await task.run({ datalist: items, params: { max_epochs: 2, seed: 1 } }, ctx(events));
    expect(stats.current_iteration).toBe(4);
    expect(events.filter((e) => e.kind === "epoch").map((e) => e.valDice)).toHaveLength(2);
    expect(existsSync(task.publishPath)).toBe(true);
    const session = await ort.InferenceSession.create(task.publishPath);
    const meta = session.inputMetadata[0] as { shape?: number[] };
    expect(meta.shape).toEqual([1, 3, S, S]);
    await session.release();
  }, 60_000);

  it("validation scores the prediction after max_val_interactions clicks where the model errs (MONAI's val Interaction)", async () => {
    const task = new TrainDeepGrow({
      modelDir: join(dir, "dgv"),
      publishPath: join(dir, "dgv", "deepgrow.onnx"),
      description: "test",
      network: net(1),
      dimension: 2,
      modelSize: [S, S],
    });
    expect(task.config()).toMatchObject({ max_val_interactions: 5 });
    const scores: number[] = [];
    for (const rounds of [0, 2, 6]) {
      scores.push(await task.evaluate(new ClickFollower(), items, { max_val_interactions: rounds }));
    }
    // One click covers a small part of each disk; every further click lands in what is still missed.
    expect(scores[0]).toBeGreaterThan(0.05);
    expect(scores[1]).toBeGreaterThan(scores[0]! + 0.05);
    expect(scores[2]).toBeGreaterThan(scores[1]! + 0.05);
    // The clicks are seeded: the same call scores the same.
    expect(await task.evaluate(new ClickFollower(), items, { max_val_interactions: 2 })).toBe(scores[1]);
  });

  it("Interaction: positive clicks land in the label, negative ones outside, from the model's own mistakes", async () => {
    const task = new TrainDeepGrow({
      modelDir: join(dir, "dg2"),
      publishPath: join(dir, "dg2", "deepgrow.onnx"),
      description: "test",
      network: net(1),
      dimension: 2,
      modelSize: [S, S],
      config: { learning_rate: 1e-2, train_batch_size: 2, val_split: 0, max_train_interactions: 4 },
    });
    const outputs: { image: Float32Array; label: Float32Array; shape: number[] }[] = [];
    const original = Interaction.prototype.update;
    const spy = vi.spyOn(Interaction.prototype, "update").mockImplementation(async function (this: Interaction, b, c) {
      const out = await original.call(this, b, c);
      outputs.push({ image: out.image.data, label: out.label.data, shape: out.image.shape });
      return out;
    });
    try {
      await task.run({ datalist: items, params: { max_epochs: 1, seed: 2 } }, ctx());
    } finally {
      spy.mockRestore();
    }
    expect(outputs).toHaveLength(3);
    let negatives = 0;
    for (const { image, label, shape } of outputs) {
      expect(shape).toEqual([2, 3, S, S]);
      for (let n = 0; n < 2; n++) {
        const t = fromCOrder(image.subarray(n * 3 * S * S, (n + 1) * 3 * S * S), [3, S, S]);
        const l = fromCOrder(label.subarray(n * S * S, (n + 1) * S * S), [1, S, S]);
        // Every click is a peak (value 1) of its channel: foreground peaks in the label, background ones outside.
        for (let i = 0; i < S * S; i++) {
          if (t.data[S * S + i]! > 0.999) {
            expect(l.data[i]).toBe(1);
          }
          if (t.data[2 * S * S + i]! > 0.999) {
            expect(l.data[i]).toBe(0);
            negatives++;
          }
        }
        expect(Math.max(...t.data.subarray(S * S, 2 * S * S))).toBeCloseTo(1);
      }
    }
    // An untrained network overshoots somewhere, so some batches got background clicks.
    expect(negatives).toBeGreaterThan(0);
  }, 60_000);

  it("TrainDeepEdit: automatic and click batches, softmax over background and label", async () => {
    const task = new TrainDeepEdit({
      modelDir: join(dir, "de"),
      publishPath: join(dir, "de", "deepedit.onnx"),
      description: "test",
      network: net(2),
      labelNames: { blob: 1, background: 0 },
      modelSize: [S, S],
      config: {
        learning_rate: 1e-2,
        train_batch_size: 2,
        max_train_interactions: 2,
        deepgrow_probability_train: 0.5,
        val_split: 0.34,
      },
    });
    const zeroGuidance: boolean[] = [];
    const events: TrainingEvent[] = [];
    const original = Interaction.prototype.update;
    const spy = vi.spyOn(Interaction.prototype, "update").mockImplementation(async function (this: Interaction, b, c) {
      const out = await original.call(this, b, c);
      const t = fromCOrder(out.image.data.subarray(0, 3 * S * S), [3, S, S]);
      zeroGuidance.push(t.data.subarray(S * S).every((v) => v === 0));
      return out;
    });
    try {
      const stats = await task.run({ datalist: items, params: { max_epochs: 4, seed: 3 } }, ctx(events));
      // 6 items, 2 for validation: 2 batches of 2 per epoch.
      expect(stats.current_iteration).toBe(8);
    } finally {
      spy.mockRestore();
    }
    // Validation (automatic mode, then max_val_interactions clicks) gives a Dice every epoch.
    const val = events.filter((e) => e.kind === "epoch").map((e) => e.valDice);
    expect(val).toHaveLength(4);
    expect(val.every((v) => typeof v === "number" && v >= 0 && v <= 1)).toBe(true);
    // Both modes occur (p = 0.5 over 8 batches).
    expect(zeroGuidance).toContain(true);
    expect(zeroGuidance).toContain(false);
    const session = await ort.InferenceSession.create(task.publishPath);
    const out = await session.run({ image: new ort.Tensor("float32", new Float32Array(3 * S * S), [1, 3, S, S]) });
    expect(out.pred!.dims).toEqual([1, 2, S, S]);
    await session.release();
  }, 60_000);
});
