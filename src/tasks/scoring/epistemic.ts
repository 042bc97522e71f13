import { stat } from "node:fs/promises";
import type { LabelApp } from "../../app/label-app.js";
import { InvalidInputError } from "../../errors.js";
import { withPredictor } from "../../runtime/predictor.js";
import type { Device } from "../../runtime/session-pool.js";
import { Compose, type Data } from "../../transforms/compose.js";
import { MetaTensor, toCOrder } from "../../transforms/tensor.js";
import { BasicInferTask } from "../infer/basic-infer-task.js";
import { type Activation, EntropyAccumulator } from "./metrics.js";
import {
  flag,
  positiveInt,
  type ScoringContext,
  ScoringMethod,
  type ScoringRequest,
  storeImageScore,
} from "./scoring-method.js";

export interface EpistemicScoringOptions {
  /**
   * The app infer task (by name, or the task itself) whose model keeps dropout active at inference. An ONNX
   * Dropout node cannot do that here: onnxruntime removes Dropout at every optimisation level from "basic" up,
   * even with training_mode = 1, and the session pool runs at "all". The model must draw its own mask:
   * `x * Cast(RandomUniformLike(x) >= ratio) / (1 - ratio)`, which onnxruntime keeps and draws anew each run.
   */
  model: string | BasicInferTask;
  /** Stochastic passes per image (MONAI's `simulation_size`, default 5, at least 2). */
  simulationSize?: number;
  /** > 0: score at most this many images per run (MONAI's `max_samples`). */
  maxSamples?: number;
  /** Image info key of the score (default `epistemic_entropy`, what the Epistemic strategy reads). */
  key?: string;
  /** How outputs become probabilities; "auto" (default): softmax over 2+ channels, sigmoid for one. */
  activation?: Activation | "auto";
}

/**
 * MONAI's EpistemicScoring (v2): for each unlabeled image, `simulation_size` stochastic forward passes of an app
 * model (Monte-Carlo dropout), then the mean voxel entropy of the averaged probabilities (MONAI's formula, see
 * EntropyAccumulator) stored as `info.epistemic_entropy` with `epistemic_ts` (the model file's mtime, MONAI's
 * key) and `epistemic_version` (the model version the session pool loaded). An image already scored with the
 * current model version is skipped unless `force`. The passes run in the model's space (after the task's
 * pre-transforms, before any inversion). Returns MONAI's `{total, skipped, executed, latency}`.
 */
export class EpistemicScoring extends ScoringMethod {
  override readonly rescoreOnFinalLabel = false;
  readonly simulationSize: number;
  readonly maxSamples: number;
  readonly key: string;
  readonly activation: Activation | "auto";

  constructor(private readonly options: EpistemicScoringOptions) {
    super("Compute initial score based on dropout");
    this.simulationSize = Math.max(2, options.simulationSize ?? 5);
    this.maxSamples = options.maxSamples ?? 0;
    this.key = options.key ?? "epistemic_entropy";
    this.activation = options.activation ?? "auto";
  }

  override info() {
    return {
      ...super.info(),
      model: typeof this.options.model === "string" ? this.options.model : this.options.model.description,
      simulation_size: this.simulationSize,
      key: this.key,
    };
  }

  override models(): string[] {
    return typeof this.options.model === "string" ? [this.options.model] : [];
  }

  override unavailable(app: LabelApp): string | null {
    const { model } = this.options;
    const task = typeof model === "string" ? app.infers()[model] : model;
    if (!(task instanceof BasicInferTask)) {
      return `its model ${String(model)} is not a BasicInferTask of the app`;
    }
    return task.isValid() ? null : `the model file of ${String(model)} is missing (${task.paths.join(", ")})`;
  }

  private task(ctx: ScoringContext): BasicInferTask {
    const { model } = this.options;
    const task = typeof model === "string" ? ctx.app.infers()[model] : model;
    if (!(task instanceof BasicInferTask)) {
      throw new InvalidInputError(`epistemic scoring needs a BasicInferTask; ${String(model)} is not one of the app's`);
    }
    return task;
  }

  async score(request: ScoringRequest, ctx: ScoringContext) {
    const started = performance.now();
    const task = this.task(ctx);
    const path = task.getPath();
    if (!path) {
      throw new InvalidInputError(`epistemic scoring: model file missing (${task.paths.join(", ")})`);
    }
    const params = request.params;
    const samples = Math.max(2, positiveInt(params.simulation_size, this.simulationSize));
    const maxSamples = positiveInt(params.max_samples, this.maxSamples);
    const force = flag(params.force);
    const device = (typeof params.device === "string" ? params.device : "cpu") as Device;
    const { version } = await ctx.pool.get({ path, device });
    const modelTs = Math.floor((await stat(path)).mtimeMs / 1000);

    let ids = await ctx.datastore.unlabeledImages();
    if (request.imageIds) {
      const wanted = new Set(request.imageIds);
      ids = ids.filter((id) => wanted.has(id));
    }
    if (maxSamples > 0) {
      ids = ids.slice(0, maxSamples);
    }
    let skipped = 0;
    let executed = 0;
    for (const [i, id] of ids.entries()) {
      if (ctx.signal.aborted) {
        break;
      }
      const image = await ctx.datastore.findImage(id);
      if (!image || (!force && image.info.epistemic_version === version)) {
        skipped++;
      } else {
        const local = await ctx.localFile(image.objectKey);
        let scored: { entropy: number; version: string };
        try {
          scored = await this.entropyOf(task, path, device, local.path, samples, params, ctx);
        } finally {
          await local.release();
        }
        await storeImageScore(ctx, id, {
          [this.key]: scored.entropy,
          epistemic_ts: modelTs,
          epistemic_version: scored.version,
          epistemic_samples: samples,
        });
        executed++;
      }
      ctx.progress((i + 1) / ids.length, `${i + 1}/${ids.length} images`);
    }
    return {
      total: ids.length,
      skipped,
      executed,
      latency: Math.round(performance.now() - started) / 1000,
    };
  }

  /** `samples` stochastic passes of the task's model over one image; the pool pins one model version for all. */
  private async entropyOf(
    task: BasicInferTask,
    modelPath: string,
    device: Device,
    imagePath: string,
    samples: number,
    params: Record<string, unknown>,
    ctx: ScoringContext,
  ): Promise<{ entropy: number; version: string }> {
    let data: Data = { ...task.config, ...params, [task.inputKey]: imagePath, image_path: imagePath };
    data = await new Compose(task.preTransforms(data)).call(data);
    const image = data[task.inputKey];
    if (!(image instanceof MetaTensor)) {
      throw new InvalidInputError(`pre-transforms must leave a tensor under "${task.inputKey}"`);
    }
    const inferer = task.inferer(data);
    const input = { data: toCOrder(image), shape: [1, ...image.shape] };
    return withPredictor(ctx.pool, { path: modelPath, device }, async (predictor, model) => {
      let acc: EntropyAccumulator | null = null;
      for (let n = 0; n < samples; n++) {
        const out = await inferer.infer(input, predictor);
        const channels = out.shape[1] ?? 1;
        acc ??= new EntropyAccumulator(
          channels,
          out.data.length / channels,
          this.activation === "auto" ? (channels > 1 ? "softmax" : "sigmoid") : this.activation,
        );
        acc.add(out.data);
      }
      return { entropy: (acc as EntropyAccumulator).entropy(), version: model.version };
    });
  }
}
