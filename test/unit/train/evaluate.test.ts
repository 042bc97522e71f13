import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlidingWindowInferer } from "../../../src/inferers/sliding-window.js";
import type { Inferer } from "../../../src/inferers/types.js";
import { writeImage2d } from "../../../src/io/image2d.js";
import { UNet } from "../../../src/nn/unet.js";
import { BasicTrainTask, type TrainItem } from "../../../src/tasks/train/basic-train-task.js";
import type { Transform } from "../../../src/transforms/compose.js";
import { ScaleIntensityd } from "../../../src/transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../../src/transforms/io.js";
import type { MetaTensor } from "../../../src/transforms/tensor.js";
import { toCOrder } from "../../../src/transforms/tensor.js";

const network = () =>
  new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 5 });

/** A trainer whose val inferer comes from the request: `sw` (window 16) with `sw_batch`, else SimpleInferer. */
class Task extends BasicTrainTask {
  network() {
    return network();
  }
  trainPreTransforms() {
    return this.valPreTransforms();
  }
  valPreTransforms(): Transform[] {
    return [
      new LoadImaged({ keys: ["image", "label"] }),
      new EnsureChannelFirstd({ keys: ["image", "label"] }),
      new ScaleIntensityd({ keys: "image" }),
    ];
  }
  override valInferer(req: Record<string, unknown>): Inferer {
    return req.sw
      ? new SlidingWindowInferer({ roiSize: [16, 16], overlap: 0.25, swBatchSize: Number(req.sw_batch ?? 1) })
      : super.valInferer(req);
  }
}

const identity = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

describe("BasicTrainTask.evaluate (validation)", () => {
  let dir: string;
  const items: TrainItem[] = [];
  const task = () => new Task({ modelDir: join(dir, "m"), publishPath: join(dir, "m.onnx"), description: "t" });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-eval-"));
    // Seven images, two sizes interleaved: a bright disc on a gradient, and its mask.
    const sizes = [32, 32, 24, 32, 32, 24, 32];
    for (const [i, n] of sizes.entries()) {
      const image = new Uint8Array(n * n);
      const mask = new Uint8Array(n * n);
      const cx = 8 + ((i * 5) % 10);
      const cy = 9 + ((i * 3) % 8);
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const inside = (x - cx) ** 2 + (y - cy) ** 2 <= 36;
          mask[x + n * y] = inside ? 1 : 0;
          image[x + n * y] = (inside ? 150 : 40) + x * 2 + ((x * 7 + y * 13 + i) % 17);
        }
      }
      const vol = (data: Uint8Array) => ({
        data,
        shape: [n, n],
        spacing: [1, 1],
        affine: identity,
        dtype: "uint8",
        meta: {},
      });
      await writeImage2d(vol(image), join(dir, `img${i}.png`));
      await writeImage2d(vol(mask), join(dir, `mask${i}.png`));
      items.push({ image: join(dir, `img${i}.png`), label: join(dir, `mask${i}.png`) });
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The reference: each image alone through its own onnxruntime session, logits > 0 against the mask. */
  async function reference(): Promise<number> {
    const net = network();
    const pipe = task().valPreTransforms();
    let sum = 0;
    for (const item of items) {
      let d: Record<string, unknown> = { ...item };
      for (const t of pipe) {
        d = (await t.call(d)) as Record<string, unknown>;
      }
      const image = d.image as MetaTensor;
      const label = d.label as MetaTensor;
      const session = await InferenceSession.create(net.toOnnx({ inputShape: [1, ...image.shape] }));
      const out = await session.run({ image: new Tensor("float32", toCOrder(image), [1, ...image.shape]) });
      await session.release();
      const logits = out.pred!.data as Float32Array;
      const target = toCOrder(label);
      let inter = 0;
      let p = 0;
      let t = 0;
      logits.forEach((v, i) => {
        const a = v > 0 ? 1 : 0;
        const b = target[i]! > 0.5 ? 1 : 0;
        inter += a * b;
        p += a;
        t += b;
      });
      sum += p + t === 0 ? 1 : (2 * inter) / (p + t);
    }
    return sum / items.length;
  }

  it("gives the same mean Dice whatever val_batch_size, mixed image shapes included", async () => {
    const expected = await reference();
    expect(expected).toBeGreaterThan(0.05);
    expect(expected).toBeLessThan(0.95);
    for (const valBatchSize of [1, 2, 4, 10]) {
      const got = await task().evaluate(network(), items, { val_batch_size: valBatchSize });
      expect(got, `val_batch_size ${valBatchSize}`).toBeCloseTo(expected, 4);
    }
  });

  it("sliding-window validation: batches of images and of windows (padded last call) agree", async () => {
    const one = await task().evaluate(network(), items, { sw: true, val_batch_size: 1, sw_batch: 1 });
    expect(one).toBeGreaterThan(0.05);
    for (const [valBatchSize, swBatch] of [
      [3, 1],
      [1, 3],
      [4, 5],
    ]) {
      const got = await task().evaluate(network(), items, {
        sw: true,
        val_batch_size: valBatchSize,
        sw_batch: swBatch,
      });
      expect(got, `val_batch_size ${valBatchSize}, sw_batch_size ${swBatch}`).toBeCloseTo(one, 4);
    }
  });

  it("rejects an unknown device and an empty list", async () => {
    await expect(task().evaluate(network(), items, { device: "tpu" })).rejects.toThrow(/unknown device/);
    await expect(task().evaluate(network(), [], {})).rejects.toThrow(/nothing to evaluate/);
  });
});
