/**
 * Reproduces the radiology app's shipped model, model/pretrained_segmentation.onnx, with labelgraph's own trainer
 * (the app's SegmentationTrainer, i.e. what `startTraining(model: "segmentation")` runs), from scratch:
 *
 *   npx tsx apps/radiology/scripts/train-segmentation.ts [--epochs 80] [--samples 8] [--lr 3e-3] [--seed 0] [--spacing 2]
 *       [--val-interval 1] [--data test/fixtures/.cache] [--out apps/radiology/model/pretrained_segmentation.onnx]
 *
 * Data: Colin27 (Debian mricron-data: ch2.nii.gz, label ch2bet.nii.gz > 0). The trainer learns on colin27 and
 * validates on its left-right mirror (colin27_lr, the demo's second study) every --val-interval epochs; the best
 * epoch is kept (BasicTrainTask ranks epochs without validation by train Dice, hence the default of 1). Training
 * dropout masks are drawn by onnxruntime without a seed, so two runs are alike, not bit-identical.
 * Both are ONE subject: the validation Dice says the pipeline learns, not that the model generalises.
 * Progress (loss per iteration, train/val Dice per epoch) goes to stderr; at the end the published model runs
 * through the app's `segmentation` infer task at full resolution and the Dice on both images is printed.
 */
import { copyFile, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadImage, SessionPool, type TrainingEvent } from "labelgraph";
import { maskDice, prepareColin27 } from "../lib/colin27.js";
import { Segmentation, SegmentationTrainer } from "../lib/segmentation.js";

const appDir = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    epochs: { type: "string", default: "80" },
    samples: { type: "string", default: "8" },
    lr: { type: "string", default: "3e-3" },
    seed: { type: "string", default: "0" },
    "val-interval": { type: "string", default: "1" },
    spacing: { type: "string", default: "2" },
    data: { type: "string", default: resolve(appDir, "../../test/fixtures/.cache") },
    out: { type: "string", default: join(appDir, "model", "pretrained_segmentation.onnx") },
  },
});

function positive(name: keyof typeof args, integer: boolean): number {
  const v = Number(args[name]);
  if (!(v > 0) || (integer && !Number.isInteger(v))) {
    throw new Error(`--${name}: expected a positive ${integer ? "integer" : "number"}, got ${String(args[name])}`);
  }
  return v;
}
const epochs = positive("epochs", true);
const samples = positive("samples", true);
const lr = positive("lr", false);
const valInterval = positive("val-interval", true);
const spacing = positive("spacing", false);
const seed = Number(args.seed);
const out = resolve(String(args.out));

const work = await mkdtemp(join(tmpdir(), "radiology-train-"));
const log = (line: string) => process.stderr.write(`${line}\n`);
try {
  const files = await prepareColin27(resolve(String(args.data)), join(work, "data"));
  const trainer = new SegmentationTrainer({
    modelDir: join(work, "run"),
    publishPath: join(work, "segmentation.onnx"),
    description: "radiology segmentation (from scratch)",
    labels: ["brain"],
    targetSpacing: spacing,
    numSamples: samples,
  });
  log(
    `train-segmentation: ${epochs} epochs, ${samples} patches of 64^3 per epoch at ${spacing} mm, lr ${lr}, ` +
      `train colin27, validate on colin27_lr every ${valInterval} epochs`,
  );
  const started = Date.now();
  const ctx = {
    signal: new AbortController().signal,
    emit(e: TrainingEvent) {
      if (e.kind === "iteration") {
        log(`  epoch ${e.epoch} iter ${e.iteration}: loss ${e.loss?.toFixed(4)} (${e.elapsed.toFixed(0)} s)`);
      } else {
        const val = e.valDice == null ? "" : ` val dice ${e.valDice.toFixed(4)}`;
        log(
          `epoch ${e.epoch}/${epochs}: train dice ${e.trainDice?.toFixed(4)}${val} ` +
            `best ${e.bestMetric?.toFixed(4)} @${e.bestEpoch} (${e.elapsed.toFixed(0)} s)`,
        );
      }
    },
  };
  const stats = await trainer.run(
    {
      datalist: [
        { image: files.image, label: files.label },
        { image: files.imageLr, label: files.labelLr },
      ],
      params: {
        max_epochs: epochs,
        learning_rate: lr,
        num_samples: samples,
        val_split: 0.5,
        val_interval: valInterval,
        train_batch_size: 2,
        seed,
        pretrained: false,
      },
    },
    ctx,
  );
  const minutes = (Date.now() - started) / 60_000;
  log(
    `trained in ${minutes.toFixed(1)} min: best val dice ${stats.best_metric.toFixed(4)} at epoch ` +
      `${stats.eval.best_metric_epoch} (at ${spacing} mm)`,
  );

  const tmp = `${out}.tmp-${process.pid}`;
  await copyFile(join(work, "segmentation.onnx"), tmp);
  await rename(tmp, out);
  log(`wrote ${out} (${((await stat(out)).size / 1e6).toFixed(2)} MB)`);

  // The shipped model through the app's own infer task, at the images' 1 mm resolution.
  const task = new Segmentation({ path: out, labels: ["brain"], description: "eval", targetSpacing: spacing });
  const pool = new SessionPool({});
  try {
    for (const [name, image, label] of [
      ["colin27", files.image, files.label],
      ["colin27_lr", files.imageLr, files.labelLr],
    ] as const) {
      const t0 = performance.now();
      const result = await task.run({ imagePath: image, params: {} }, { pool });
      const seconds = (performance.now() - t0) / 1000;
      if (!result.labelPath) {
        throw new Error("the infer task wrote no label");
      }
      const pred = await loadImage(result.labelPath);
      const truth = await loadImage(label);
      await rm(result.labelPath, { force: true });
      console.log(`dice ${name}: ${maskDice(pred.data, truth.data).toFixed(4)} (inference ${seconds.toFixed(1)} s)`);
    }
  } finally {
    await pool.close({ force: true });
  }
  console.log(`model: ${out}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
