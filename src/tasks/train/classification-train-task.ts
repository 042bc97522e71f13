import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Batch } from "../../data/loader.js";
import { InvalidInputError } from "../../errors.js";
import type { GraphBuilder } from "../../graph/builder.js";
import type { Value } from "../../graph/ir.js";
import { crossEntropyLoss } from "../../nn/losses.js";
import type { Network } from "../../nn/module.js";
import { fixedBatchPredictor, withPredictor } from "../../runtime/predictor.js";
import type { Device } from "../../runtime/providers.js";
import type { SessionPool } from "../../runtime/session-pool.js";
import { type Data, MapTransform, type MapTransformOptions } from "../../transforms/compose.js";
import { MetaTensor, toCOrder } from "../../transforms/tensor.js";
import { BasicTrainTask, DEFAULT_TRAIN_CONFIG, type TrainItem } from "./basic-train-task.js";

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
 * MONAI Label's train task for classification models (the endoscopy `inbody` model): BasicTrainTask's loop with
 * cross-entropy on the network's [N, classes] logits against class indices, accuracy as the key metric
 * (train_accuracy, val_accuracy), the best model published to publishPath as forward-only ONNX. Apps override
 * network, trainPreTransforms and valPreTransforms, which must leave a fixed-size "image" [C, ...] and a one-value
 * "label" ([1, 1]) holding the class index (LabelToClassd). The progress events carry the accuracies in trainDice /
 * valDice.
 */
export abstract class ClassificationTrainTask extends BasicTrainTask {
  constructor(opts: ClassificationTrainTaskOptions) {
    if (opts.labels.length < 2) {
      throw new Error("ClassificationTrainTask: give at least two class names");
    }
    super(opts);
  }

  /** MONAI's defaults, but a fresh classifier by default (pretrained false); the app's config wins. */
  override config(): Record<string, unknown> {
    return { ...DEFAULT_TRAIN_CONFIG, pretrained: false, ...this.extraConfig };
  }

  override lossFunction(_req: Record<string, unknown>): (g: GraphBuilder, pred: Value, target: Value) => Value {
    // Class indices [N, 1, (1 ...)] against logits [N, classes] or [N, classes, 1, ...].
    return (g, pred, target) =>
      crossEntropyLoss(g, pred, g.reshape(target, [target.shape[0]!, 1, ...pred.shape.slice(2).map(() => 1)]));
  }

  override trainKeyMetric(): string {
    return "train_accuracy";
  }

  override valKeyMetric(): string {
    return "val_accuracy";
  }

  protected override checkFirstBatch(batch: Batch<"image" | "label">): void {
    if (batch.label.shape.slice(1).some((d) => d !== 1)) {
      throw new InvalidInputError(
        `train transforms must leave a one-value class index label; got [${batch.label.shape.slice(1).join(", ")}] (use LabelToClassd)`,
      );
    }
  }

  /** The batch's accuracy: argmax of each row of logits against the class index. */
  protected override async batchMetric(pred: Float32Array, batch: Batch<"image" | "label">): Promise<number> {
    const n = batch.image.shape[0] ?? 1;
    return countCorrect(pred, batch.label.data, this.labels.length) / n;
  }

  /** Accuracy over `items` (valPreTransforms, images of one shape), `val_batch_size` images per forward run. */
  override evaluate(
    network: Network,
    items: TrainItem[],
    req: Record<string, unknown>,
    using: { pool?: SessionPool; device?: Device } = {},
  ): Promise<number> {
    const valBatchSize = Math.max(1, Number(req.val_batch_size) || 1);
    return this.evaluation(items, req, using, async ({ pipe, pool, device, scratch }) => {
      const path = join(scratch, "val.onnx");
      let imageShape: number[] | null = null;
      let correct = 0;
      for (let start = 0; start < items.length; start += valBatchSize) {
        const batch = items.slice(start, start + valBatchSize);
        const images: Float32Array[] = [];
        const labels = new Float32Array(batch.length);
        for (const [b, item] of batch.entries()) {
          const { image, label } = await this.sample(pipe, item);
          if (imageShape === null) {
            imageShape = image.shape;
            await writeFile(path, network.toOnnx({ inputShape: [valBatchSize, ...imageShape] }));
          } else if (image.shape.join() !== imageShape.join()) {
            throw new InvalidInputError(
              `val image shape [${image.shape.join(", ")}] differs from [${imageShape.join(", ")}]; resize them to one size`,
            );
          }
          images.push(toCOrder(image));
          labels[b] = label.data[0]!;
        }
        const per = images[0]!.length;
        const input = new Float32Array(per * batch.length);
        images.forEach((x, b) => {
          input.set(x, b * per);
        });
        const shape = [batch.length, ...(imageShape as number[])];
        const logits = await withPredictor(pool, { path, version: path, device }, (predictor) =>
          fixedBatchPredictor(predictor, valBatchSize)({ data: input, shape }),
        );
        correct += countCorrect(logits.data, labels, this.labels.length);
      }
      return correct / items.length;
    });
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
