import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importOnnxParameters, matchParameters, parameterRoles } from "../../../src/graph/import.js";
import { writeImage2d } from "../../../src/io/image2d.js";
import { UNet } from "../../../src/nn/unet.js";
import { BasicTrainTask, type TrainItem, type TrainingEvent } from "../../../src/tasks/train/basic-train-task.js";
import type { Transform } from "../../../src/transforms/compose.js";
import { ScaleIntensityd } from "../../../src/transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../../src/transforms/io.js";
import { greyImage2d } from "../../helpers/fixtures.js";

const PYTHON = "/usr/bin/python3";
const torchAvailable = () => spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;

/** The network torch exported, as labelgraph builds it (MONAI's UNet, the same parameter names). */
const network = () =>
  new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8, 16], strides: [2, 2], seed: 99 });

class FineTune extends BasicTrainTask {
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
}

/** Optional like the torch cross-check: skipped where Debian's python3-torch is not installed. */
describe.skipIf(!torchAvailable())(
  "fine-tuning a model exported from PyTorch (torch.onnx.export of a MONAI-structured UNet)",
  () => {
    let dir: string;
    const items: TrainItem[] = [];
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "labelgraph-torch-import-"));
      const r = spawnSync(PYTHON, [join(import.meta.dirname, "../../fixtures/torch/export_unet.py"), dir], {
        encoding: "utf8",
      });
      if (r.status !== 0) {
        throw new Error(`export_unet.py failed: ${r.stderr}`);
      }
      for (let i = 0; i < 4; i++) {
        const image = new Uint8Array(32 * 32);
        const mask = new Uint8Array(32 * 32);
        for (let p = 0; p < 32 * 32; p++) {
          const inside = ((p % 32) - 10 - i * 3) ** 2 + (Math.floor(p / 32) - 16) ** 2 < 40;
          mask[p] = inside ? 1 : 0;
          image[p] = inside ? 200 : 30 + ((p * 7) % 23);
        }
        await writeImage2d(greyImage2d(image, 32), join(dir, `i${i}.png`));
        await writeImage2d(greyImage2d(mask, 32), join(dir, `m${i}.png`));
        items.push({ image: join(dir, `i${i}.png`), label: join(dir, `m${i}.png`) });
      }
    });
    afterAll(async () => {
      if (dir) {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("reads its weights (by state-dict name, or by role where torch renamed them), and computes what PyTorch did", async () => {
      const imported = await importOnnxParameters(join(dir, "unet.onnx"));
      expect(imported.uncovered).toEqual([]);
      const net = network();
      const own = net.parameters();
      // torch.onnx.export keeps the conv weights' names but renames the PReLU slopes it reshapes.
      expect(imported.parameters.has("model.0.conv.weight")).toBe(true);
      expect(imported.parameters.has("model.0.adn.A.weight")).toBe(false);
      const roles = parameterRoles(net.toGraph({ inputShape: [1, 1, 32, 32] }).nodes, own.keys());
      const matched = matchParameters(imported, own, roles);
      expect([...matched.keys()].sort()).toEqual([...own.keys()].sort());
      net.loadParameters(matched, { strict: true });
      const input = new Float32Array((await readFile(join(dir, "input.f32"))).buffer.slice(0));
      const expected = new Float32Array((await readFile(join(dir, "output.f32"))).buffer.slice(0));
      const session = await InferenceSession.create(net.toOnnx({ inputShape: [1, 1, 32, 32] }));
      const out = (await session.run({ image: new Tensor("float32", input, [1, 1, 32, 32]) })).pred!
        .data as Float32Array;
      await session.release();
      let maxErr = 0;
      out.forEach((v, i) => {
        maxErr = Math.max(maxErr, Math.abs(v - expected[i]!));
      });
      expect(maxErr).toBeLessThan(1e-4);
      // The export script set the slopes to 0.1, 0.2, ... in module order: each reached its own layer.
      const slopes = [...net.parameters()].filter(([k]) => k.endsWith("adn.A.weight")).map(([, p]) => p.data[0]!);
      expect(slopes.map((v) => Math.round(v * 10) / 10)).toEqual([0.1, 0.2, 0.3, 0.4]);
    });

    it("BasicTrainTask starts from it (pretrained, loadPath) and fine-tunes it", async () => {
      const task = (publish: string) =>
        new FineTune({
          modelDir: join(dir, "runs"),
          publishPath: join(dir, publish),
          loadPath: join(dir, "unet.onnx"),
          description: "fine-tune",
          config: { val_split: 0, train_batch_size: 2 },
        });
      const ctx = (events: TrainingEvent[]) => ({
        signal: new AbortController().signal,
        emit: (e: TrainingEvent) => events.push(e),
      });
      // Learning rate 0: the published model holds exactly the torch weights.
      await task("lr0.onnx").run({ datalist: items, params: { max_epochs: 1, learning_rate: 0, seed: 1 } }, ctx([]));
      const own = network().parameters();
      const torchWeights = matchParameters(
        await importOnnxParameters(join(dir, "unet.onnx")),
        own,
        parameterRoles(network().toGraph({ inputShape: [1, 1, 32, 32] }).nodes, own.keys()),
      );
      const published = (await importOnnxParameters(join(dir, "lr0.onnx"))).parameters;
      for (const name of own.keys()) {
        expect(Array.from(published.get(name)!.data), name).toEqual(Array.from(torchWeights.get(name)!.data));
      }
      // And training moves them, with a finite loss.
      const events: TrainingEvent[] = [];
      await task("tuned.onnx").run(
        { datalist: items, params: { max_epochs: 3, learning_rate: 1e-2, seed: 1 } },
        ctx(events),
      );
      const tuned = (await importOnnxParameters(join(dir, "tuned.onnx"))).parameters;
      const w = "model.0.conv.weight";
      expect(Array.from(tuned.get(w)!.data)).not.toEqual(Array.from(torchWeights.get(w)!.data));
      expect(events.filter((e) => e.kind === "iteration").every((e) => Number.isFinite(e.loss))).toBe(true);
    });

    it("pretrained false ignores the foreign model", async () => {
      const t = new FineTune({
        modelDir: join(dir, "runs2"),
        publishPath: join(dir, "none.onnx"),
        loadPath: join(dir, "unet.onnx"),
        description: "fine-tune",
      });
      expect(await t.initialWeights({ pretrained: false })).toBeNull();
      expect((await t.initialWeights({ pretrained: true }))?.parameters.has("model.0.conv.weight")).toBe(true);
    });
  },
);
