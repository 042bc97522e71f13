import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CacheDataset } from "../../data/dataset.js";
import { type Batch, DataLoader } from "../../data/loader.js";
import { InvalidInputError } from "../../errors.js";
import type { GraphBuilder } from "../../graph/builder.js";
import type { Value } from "../../graph/ir.js";
import { saveCheckpoint } from "../../nn/checkpoint.js";
import { crossEntropyLoss } from "../../nn/losses.js";
import type { Network } from "../../nn/module.js";
import { Adam, type Optimizer } from "../../nn/optim.js";
import { buildTrainStep, Trainer } from "../../nn/train-step.js";
import { fixedBatchPredictor, withPredictor } from "../../runtime/predictor.js";
import { type Device, parseDevice } from "../../runtime/providers.js";
import { SessionPool } from "../../runtime/session-pool.js";
import {
  Compose,
  type Data,
  MapTransform,
  type MapTransformOptions,
  type Transform,
} from "../../transforms/compose.js";
import type { AnyTransform } from "../../transforms/random.js";
import { MetaTensor, toCOrder } from "../../transforms/tensor.js";
import {
  DEFAULT_TRAIN_CONFIG,
  hhmmss,
  parseThreads,
  type TrainContext,
  type TrainItem,
  type TrainingEvent,
  type TrainRequest,
  type TrainStats,
  TrainTask,
  trainStats,
} from "./basic-train-task.js";

export interface LabelToClassdOptions extends MapTransformOptions {
  /** Number of classes; a class index outside [0, classes) is an error naming the file. */
  classes: number;
}

/**
 * A frame's class from its label image: the value most of its pixels hold (so an annotator saves a label filled
 * with the class index). The label becomes a one-value tensor [1, 1] holding the index, what the classification
 * trainer's cross-entropy reads.
 */
export class LabelToClassd extends MapTransform {
  readonly classes: number;
  constructor(options: LabelToClassdOptions) {
    super(options);
    this.classes = options.classes;
  }
  call(d: Data): Data {
    const out = { ...d };
    for (const [key] of this.keyIterator(d)) {
      const t = d[key];
      if (!(t instanceof MetaTensor)) {
        throw new InvalidInputError(`LabelToClassd: "${key}" must be a loaded label, got ${typeof t}`);
      }
      const cls = majority(t.data);
      if (!Number.isInteger(cls) || cls < 0 || cls >= this.classes) {
        throw new InvalidInputError(
          `label ${String(t.meta.filename_or_obj ?? key)}: class ${cls} is not an index in [0, ${this.classes})`,
        );
      }
      // [1, 1]: one channel of one element (tensor code wants a spatial axis); the loss reads it as [N, 1].
      out[key] = t.derive({ data: new Float32Array([cls]), shape: [1, 1] });
    }
    return out;
  }
}

/** Whether a label image holds one value only (a classification label rather than a mask). */
export function isConstantLabel(data: ArrayLike<number>): boolean {
  for (let i = 1; i < data.length; i++) {
    if (data[i] !== data[0]) {
      return false;
    }
  }
  return data.length > 0;
}

function majority(data: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  let best = 0;
  let bestN = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    const n = (counts.get(v) ?? 0) + 1;
    counts.set(v, n);
    if (n > bestN) {
      best = v;
      bestN = n;
    }
  }
  return best;
}

export interface ClassificationTrainTaskOptions {
  /** Where runs write (<modelDir>/<name>/). */
  modelDir: string;
  /** The forward-only ONNX model inference reads; the best model is published here. */
  publishPath: string;
  description: string;
  /** Class names in index order. */
  labels: string[];
  config?: Record<string, unknown>;
}

/**
 * MONAI Label's train task for classification models (the endoscopy `inbody` model): cross-entropy on the
 * network's [N, classes] logits against class indices, accuracy as the key metric (train_accuracy,
 * val_accuracy), the best model published to publishPath as forward-only ONNX. Apps override network,
 * trainPreTransforms and valPreTransforms, which must leave a fixed-size "image" [C, ...] and a one-value
 * "label" ([1, 1]) holding the class index (LabelToClassd). The progress events carry the accuracies in trainDice / valDice.
 */
export abstract class ClassificationTrainTask extends TrainTask {
  readonly modelDir: string;
  readonly publishPath: string;
  readonly labels: string[];
  private readonly extraConfig: Record<string, unknown>;

  constructor(opts: ClassificationTrainTaskOptions) {
    super(opts.description);
    if (opts.labels.length < 2) {
      throw new Error("ClassificationTrainTask: give at least two class names");
    }
    this.modelDir = opts.modelDir;
    this.publishPath = opts.publishPath;
    this.labels = opts.labels;
    this.extraConfig = opts.config ?? {};
  }

  config(): Record<string, unknown> {
    return { ...DEFAULT_TRAIN_CONFIG, pretrained: false, ...this.extraConfig };
  }

  abstract network(req: Record<string, unknown>): Network;
  abstract trainPreTransforms(req: Record<string, unknown>): AnyTransform[];
  abstract valPreTransforms(req: Record<string, unknown>): Transform[];

  optimizer(_req: Record<string, unknown>): Optimizer {
    return new Adam();
  }

  lossFunction(_req: Record<string, unknown>): (g: GraphBuilder, pred: Value, target: Value) => Value {
    // Class indices [N, 1, (1 ...)] against logits [N, classes] or [N, classes, 1, ...].
    return (g, pred, target) =>
      crossEntropyLoss(g, pred, g.reshape(target, [target.shape[0]!, 1, ...pred.shape.slice(2).map(() => 1)]));
  }

  /** Keeps the datalist items this task can learn from (default: all). */
  async filterDatalist(datalist: TrainItem[]): Promise<TrainItem[]> {
    return datalist;
  }

  /** MONAI's partition_datalist: the last val_split of the list, not shuffled. */
  partitionDatalist(datalist: TrainItem[], valSplit: number): { train: TrainItem[]; val: TrainItem[] } {
    if (valSplit <= 0 || datalist.length < 2) {
      return { train: datalist, val: [] };
    }
    const nVal = Math.max(1, Math.round(datalist.length * valSplit));
    return { train: datalist.slice(0, datalist.length - nVal), val: datalist.slice(datalist.length - nVal) };
  }

  async run(request: TrainRequest, ctx: TrainContext): Promise<TrainStats> {
    const req = { ...this.config(), ...request.params };
    const maxEpochs = Number(req.max_epochs);
    const batchSize = Math.max(1, Number(req.train_batch_size));
    const lr = Number(req.learning_rate);
    const valInterval = Math.max(1, Number(req.val_interval));
    const device = parseDevice(req.device);
    const threads = parseThreads(req.threads);
    if (!Number.isInteger(maxEpochs) || maxEpochs < 1) {
      throw new InvalidInputError(`max_epochs must be a positive integer, got ${req.max_epochs}`);
    }
    const usable = await this.filterDatalist(request.datalist);
    const { train, val } = this.partitionDatalist(usable, Number(req.val_split));
    if (train.length === 0) {
      throw new InvalidInputError("nothing to train on: no image has a final label this classifier can read");
    }
    const seed = typeof req.seed === "number" ? req.seed : Math.floor(Math.random() * 2 ** 31);
    const dataset = new CacheDataset(
      train.map((t) => ({ ...t })),
      this.trainPreTransforms(req),
      { cacheRate: Number(req.cache_rate ?? 1) },
    );
    const loader = new DataLoader<"image" | "label">(dataset, {
      batchSize,
      shuffle: true,
      seed,
      dropLast: dataset.length >= batchSize,
      keys: ["image", "label"],
    });
    const valPipe = new Compose(this.valPreTransforms(req));
    const pool = new SessionPool(threads === undefined ? {} : { threads });
    const scratch = await mkdtemp(join(tmpdir(), "labelgraph-train-cls-"));
    let trainer: Trainer | null = null;
    try {
      const firstBatch = (await loader.epoch(0)[Symbol.asyncIterator]().next()).value as
        | Batch<"image" | "label">
        | undefined;
      if (!firstBatch) {
        throw new InvalidInputError("the train transforms gave no sample");
      }
      if (firstBatch.label.shape.slice(1).some((d) => d !== 1)) {
        throw new InvalidInputError(
          `train transforms must leave a one-value class index label; got [${firstBatch.label.shape.slice(1).join(", ")}] (use LabelToClassd)`,
        );
      }
      const network = this.network(req);
      const imageShape = firstBatch.image.shape.slice(1);
      const step = buildTrainStep({
        network,
        inputShape: firstBatch.image.shape,
        targetShape: firstBatch.label.shape,
        loss: this.lossFunction(req),
        optimizer: this.optimizer(req),
      });
      trainer = new Trainer(step, { device, ...(threads === undefined ? {} : { threads }) });
      const placement = await trainer.placement();
      if (placement.warning) {
        ctx.warn?.(placement.warning);
      }
      const started = Date.now();
      const history: TrainingEvent[] = [];
      const emit = (e: TrainingEvent) => {
        history.push(e);
        ctx.emit(e);
      };
      let best = -1;
      let bestEpoch = -1;
      let trainAcc = 0;
      let valAcc = 0;
      let iteration = 0;
      let epoch = 0;
      const stats = (): TrainStats =>
        trainStats({
          iteration,
          epoch,
          maxEpochs,
          iterationsPerEpoch: Math.ceil(train.length / batchSize),
          started,
          best,
          bestEpoch,
          train: { name: "train_accuracy", value: trainAcc },
          val: { name: "val_accuracy", value: valAcc },
          history,
          placement,
        });
      for (epoch = 1; epoch <= maxEpochs && !ctx.signal.aborted; epoch++) {
        let correct = 0;
        let seen = 0;
        let t0 = performance.now();
        for await (const batch of loader.epoch(epoch)) {
          if (ctx.signal.aborted) {
            break;
          }
          if (batch.image.shape[0] !== firstBatch.image.shape[0]) {
            continue; // the static step graph takes full batches only
          }
          const out = await trainer.step(batch.image.data, batch.label.data, lr);
          iteration++;
          const n = batch.image.shape[0] ?? 1;
          correct += countCorrect(out.pred, batch.label.data, this.labels.length);
          seen += n;
          emit({
            kind: "iteration",
            epoch,
            iteration,
            loss: out.loss,
            lr: out.lr,
            samplesPerSec: n / ((performance.now() - t0) / 1000),
            elapsed: (Date.now() - started) / 1000,
          });
          t0 = performance.now();
        }
        trainAcc = seen ? correct / seen : 0;
        let epochVal: number | null = null;
        if (val.length > 0 && (epoch % valInterval === 0 || ctx.signal.aborted)) {
          network.loadParameters(trainer.parameters());
          epochVal = await this.validate(network, imageShape, valPipe, val, pool, scratch, req, device);
          valAcc = epochVal;
        }
        const metric = epochVal ?? trainAcc;
        if (metric > best) {
          best = metric;
          bestEpoch = epoch;
          network.loadParameters(trainer.parameters());
          await this.publish(network, imageShape);
          ctx.published?.(this.publishPath);
        }
        emit({
          kind: "epoch",
          epoch,
          iteration,
          trainDice: trainAcc,
          valDice: epochVal,
          bestMetric: best,
          bestEpoch,
          elapsed: (Date.now() - started) / 1000,
        });
        await this.writeStats(stats());
      }
      epoch = Math.min(epoch, maxEpochs);
      await mkdir(join(this.modelDir, String(req.name)), { recursive: true });
      await saveCheckpoint(join(this.modelDir, String(req.name), "checkpoint_final.lgckpt"), trainer.state());
      const final = { ...stats(), total_time: hhmmss(Date.now() - started) };
      delete final.current_time;
      await this.writeStats(final);
      return final;
    } finally {
      await loader.close();
      await trainer?.release();
      await pool.close({ force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** Accuracy over the val items, `val_batch_size` images per forward run. */
  private async validate(
    network: Network,
    imageShape: number[],
    pipe: Compose,
    val: TrainItem[],
    pool: SessionPool,
    scratch: string,
    req: Record<string, unknown>,
    device: Device,
  ): Promise<number> {
    const valBatchSize = Math.max(1, Number(req.val_batch_size) || 1);
    const path = join(scratch, `val-${Date.now()}-${Math.random().toString(36).slice(2)}.onnx`);
    await writeFile(path, network.toOnnx({ inputShape: [valBatchSize, ...imageShape] }));
    const per = imageShape.reduce((a, b) => a * b, 1);
    let correct = 0;
    for (let start = 0; start < val.length; start += valBatchSize) {
      const items = val.slice(start, start + valBatchSize);
      const input = new Float32Array(per * items.length);
      const labels = new Float32Array(items.length);
      for (const [b, item] of items.entries()) {
        const d = (await pipe.call({ image: item.image, label: item.label })) as Data;
        const image = d.image;
        const label = d.label;
        if (!(image instanceof MetaTensor) || !(label instanceof MetaTensor)) {
          throw new InvalidInputError("val pre-transforms must leave tensors under image and label");
        }
        if (image.shape.join() !== imageShape.join()) {
          throw new InvalidInputError(
            `val image shape [${image.shape.join(", ")}] differs from training's [${imageShape.join(", ")}]; resize both`,
          );
        }
        input.set(toCOrder(image), b * per);
        labels[b] = label.data[0]!;
      }
      const logits = await withPredictor(pool, { path, version: path, device }, (predictor) =>
        fixedBatchPredictor(predictor, valBatchSize)({ data: input, shape: [items.length, ...imageShape] }),
      );
      correct += countCorrect(logits.data, labels, this.labels.length);
    }
    await rm(path, { force: true });
    return correct / val.length;
  }

  /** Writes the forward-only model atomically: inference sees the old file or the new one, never half. */
  private async publish(network: Network, imageShape: number[]): Promise<void> {
    await mkdir(dirname(this.publishPath), { recursive: true });
    const tmp = `${this.publishPath}.tmp-${process.pid}-${Date.now()}`;
    await writeFile(tmp, network.toOnnx({ inputShape: [1, ...imageShape] }));
    await rename(tmp, this.publishPath);
  }

  private async writeStats(stats: TrainStats): Promise<void> {
    const path = join(this.modelDir, "train_stats.json");
    await mkdir(this.modelDir, { recursive: true });
    const { history: _history, ...rest } = stats;
    await writeFile(`${path}.tmp`, JSON.stringify(rest, null, 2));
    await rename(`${path}.tmp`, path);
  }
}

/** Argmax of each row of [N, classes] (or [N, classes, 1, ...]) logits against [N] class indices. */
function countCorrect(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let arg = 0;
    for (let k = 1; k < classes; k++) {
      if ((logits[i * classes + k] ?? 0) > (logits[i * classes + arg] ?? 0)) {
        arg = k;
      }
    }
    correct += arg === labels[i] ? 1 : 0;
  }
  return correct;
}
