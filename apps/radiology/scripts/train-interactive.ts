/**
 * Reproduces the radiology app's interactive models from Colin27 (shared/reference/data.md):
 *
 *   npx tsx apps/radiology/scripts/train-interactive.ts [--models deepgrow_2d,deepgrow_3d,deepedit]
 *       [--minutes 4] [--data test/fixtures/.cache] [--out apps/radiology/model] [--seed 7]
 *       [--interactions N] [--lr 3e-3] [--click-prob 0.5] [--auto-start 0.5] [--resume] [--threads N]
 *       [--from-deepgrow] [--click-loss W]
 *
 * Each model trains from scratch with its TrainDeepGrow / TrainDeepEdit task (simulated clicks) on the
 * training slices or slabs for --minutes of wall clock, then its best published ONNX is copied (atomically)
 * to --out/pretrained_<name>.onnx (the shipped file names). Runs and data live in a temporary folder that is
 * removed at the end. --resume starts from the model already in --out (BasicTrainTask fine-tunes a published model) instead of from scratch;
 * --interactions overrides max_train_interactions (simulated clicks per batch); DeepEdit only: --click-prob
 * overrides deepgrow_probability_train (share of batches with clicks), --auto-start auto_start_probability
 * (share of those that start from the automatic mode rather than seed clicks from the label).
 *
 * The shipped models came from these stages (2 shared vCPUs, ~110 min of training in all):
 *   --models deepgrow_2d --minutes 8
 *   --models deepgrow_2d --minutes 16 --resume --interactions 5
 *   --models deepgrow_2d --minutes 8 --resume --interactions 5 --lr 1e-3
 *   --models deepgrow_3d --minutes 7
 *   --models deepgrow_3d --minutes 5 --resume --lr 1e-3
 *   --models deepgrow_3d --minutes 13 --resume --interactions 5 --lr 1e-3
 *   --models deepgrow_3d --minutes 40 --resume --lr 1e-3 --interactions 5 --threads 1
 *   --models deepedit --minutes 45 --from-deepgrow --lr 1e-3 --click-prob 0.7 --auto-start 1 --interactions 5
 *       --click-loss 1
 * (the first, second and fourth with labels resized by torch's legacy "nearest"; the trainers now use
 * "nearest-exact", which the later stages fine-tuned to; the seventh picked its best model by the Dice after 5
 * validation clicks, max_val_interactions, as DeepEdit's does, from the automatic mode). DeepEdit starts from the
 * shipped DeepGrow 3D in --out; trained from scratch (the earlier shipped DeepEdit) it learned to ignore its clicks.
 * A further 30 min with --resume --click-loss 3 lowered the held-out click gains (`npm run bench:interactive --
 * --models deepedit --model-dir <its --out>`: 0.9737 at 0 clicks, 0.9739 from 1 on), so it was not kept.
 * Measure them with `npm run bench:interactive`.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { TrainingEvent } from "labelgraph";
import { deepEditFromDeepGrow, interactiveTrainers, shippedModelFile, writeColinItems } from "../lib/interactive.js";

const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "deepgrow_2d,deepgrow_3d,deepedit" },
    minutes: { type: "string", default: "4" },
    data: { type: "string", default: "test/fixtures/.cache" },
    out: { type: "string", default: "apps/radiology/model" },
    seed: { type: "string", default: "7" },
    interactions: { type: "string" },
    lr: { type: "string" },
    /** DeepEdit: share of batches with simulated clicks, and of those that start from the automatic mode. */
    "click-prob": { type: "string" },
    "auto-start": { type: "string" },
    /** DeepEdit: click_loss_weight (cross entropy around the clicks, TrainDeepEdit.lossFunction). */
    "click-loss": { type: "string" },
    resume: { type: "boolean", default: false },
    /** DeepEdit: start from the shipped DeepGrow 3D model (deepEditFromDeepGrow) instead of from scratch. */
    "from-deepgrow": { type: "boolean", default: false },
    /** Intra-op threads per training (default all cores), e.g. to run two side by side. */
    threads: { type: "string" },
  },
});
const minutes = Number(args.minutes);
const seed = Number(args.seed);
const log = (msg: string) => process.stderr.write(`[train-interactive] ${msg}\n`);

const work = await mkdtemp(join(tmpdir(), "labelgraph-interactive-"));
try {
  const split = await writeColinItems(resolve(args.data), join(work, "data"));
  log(
    `Colin27: ${split.train2d.length} train / ${split.test2d.length} test slices, ${split.train3d.length} train / ${split.test3d.length} test slabs`,
  );
  const trainers = interactiveTrainers(join(work, "run"), join(work, "publish"));
  for (const name of args.models.split(",")) {
    const task = trainers[name as keyof typeof trainers];
    if (!task) {
      throw new Error(`--models: unknown model ${name} (deepgrow_2d, deepgrow_3d, deepedit)`);
    }
    const items = name === "deepgrow_2d" ? split.train2d : split.train3d;
    // Interleave so the validation tail (val_split) spans the whole brain, not only its top slices.
    const datalist = [...items].sort((a, b) => ((a.z * 37) % 101) - ((b.z * 37) % 101));
    const target = join(resolve(args.out), shippedModelFile(name));
    if (args.resume && existsSync(target)) {
      await mkdir(dirname(task.publishPath), { recursive: true });
      await copyFile(target, task.publishPath);
      log(`${name}: resuming from ${target}`);
    } else if (name === "deepedit" && args["from-deepgrow"]) {
      const deepgrow = join(resolve(args.out), shippedModelFile("deepgrow_3d"));
      await deepEditFromDeepGrow(deepgrow, task.publishPath);
      log(`${name}: starting from ${deepgrow} (its head split into DeepEdit's two classes)`);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), minutes * 60_000);
    const t0 = Date.now();
    const stats = await task.run(
      {
        datalist,
        params: {
          max_epochs: 10_000,
          seed,
          ...(args.interactions ? { max_train_interactions: Number(args.interactions) } : {}),
          ...(args.lr ? { learning_rate: Number(args.lr) } : {}),
          ...(args.threads ? { threads: Number(args.threads) } : {}),
          ...(args["click-prob"] ? { deepgrow_probability_train: Number(args["click-prob"]) } : {}),
          ...(args["auto-start"] ? { auto_start_probability: Number(args["auto-start"]) } : {}),
          ...(args["click-loss"] ? { click_loss_weight: Number(args["click-loss"]) } : {}),
        },
      },
      {
        signal: controller.signal,
        emit: (e: TrainingEvent) => {
          if (e.kind === "epoch") {
            log(
              `${name} epoch ${e.epoch} it ${e.iteration} train ${e.trainDice?.toFixed(3)} val ${e.valDice?.toFixed(3) ?? "-"} best ${e.bestMetric?.toFixed(3)} (${e.elapsed.toFixed(0)} s)`,
            );
          }
        },
      },
    );
    clearTimeout(timer);
    await copyFile(task.publishPath, `${target}.tmp`);
    await rename(`${target}.tmp`, target);
    const size = (await stat(target)).size;
    log(
      `${name}: ${stats.current_iteration} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s, best ${stats.best_metric.toFixed(3)} -> ${target} (${(size / 1e6).toFixed(2)} MB)`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
