import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { LabelApp } from "../../app/label-app.js";
import { InvalidInputError } from "../../errors.js";
import { mcDropoutModel } from "../../nn/mc-dropout.js";
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

/** The file EpistemicScoring samples for one model file, and that model file's version. */
interface McModel {
  readonly path: string;
  readonly version: string;
  /** Passed to the session pool for a derived copy (its slot is the copy's path, its version the source's). */
  readonly poolVersion: string | undefined;
  readonly dropouts: number;
  readonly stochastic: number;
}

/** A model file's version as the session pool computes it: inode, mtime (ns) and size. */
async function fileVersion(path: string): Promise<string> {
  try {
    const st = await stat(path, { bigint: true });
    return `${st.ino}-${st.mtimeNs}-${st.size}`;
  } catch (err) {
    throw new InvalidInputError(`epistemic scoring: model file ${path} cannot be read (${(err as Error).message})`);
  }
}

export interface EpistemicScoringOptions {
  /**
   * The app infer task (by name, or the task itself) whose model is sampled. Its Dropout nodes (labelgraph's
   * UNet / BasicUNet export them, as does torch.onnx.export in training mode) are made stochastic in a derived
   * copy of the model (see src/nn/mc-dropout.ts): onnxruntime removes Dropout nodes from every optimised
   * session, even with training_mode = 1, so the published file itself stays the deterministic inference model.
   * A model that draws its own mask (RandomUniformLike) is run as it is.
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
 * model with its dropout active (Monte-Carlo dropout; a model with nothing random in it gives identical passes,
 * so it runs once and `epistemic_samples` says 1), then the mean voxel entropy of the averaged probabilities (MONAI's formula, see
 * EntropyAccumulator) stored as `info.epistemic_entropy` with `epistemic_ts` (the model file's mtime, MONAI's
 * key) and `epistemic_version` (the model version the session pool loaded). An image already scored with the
 * current model version is skipped unless `force`. The passes run in the model's space (after the task's
 * pre-transforms, before any inversion). Returns MONAI's `{total, skipped, executed, latency}` and
 * `dropout_layers`, the Dropout nodes made stochastic.
 */
export class EpistemicScoring extends ScoringMethod {
  override readonly rescoreOnFinalLabel = false;
  readonly simulationSize: number;
  readonly maxSamples: number;
  readonly key: string;
  readonly activation: Activation | "auto";
  /** The Monte-Carlo model derived from each model file, by resolved path. */
  private readonly mcModels = new Map<string, McModel>();

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
    const mc = await this.mcModel(path);
    const { version } = mc;
    const passes = mc.stochastic > 0 ? samples : 1;
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
          scored = await this.entropyOf(task, mc, device, local.path, passes, params, ctx);
        } finally {
          await local.release();
        }
        await storeImageScore(ctx, id, {
          [this.key]: scored.entropy,
          epistemic_ts: modelTs,
          epistemic_version: scored.version,
          epistemic_samples: passes,
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
      dropout_layers: mc.dropouts,
    };
  }

  /**
   * The model to sample for the model file at `path`: the file itself when its Dropout nodes are none (it may
   * draw its own mask), else its Monte-Carlo form, written atomically to one file per source path under the
   * OS temp directory and reused while the source keeps its version (inode, mtime and size, as the session
   * pool's). The source is read between two stats, so the copy and the version it carries belong together.
   */
  private async mcModel(path: string): Promise<McModel> {
    const source = resolve(path);
    for (let attempt = 0; ; attempt++) {
      const version = await fileVersion(source);
      const known = this.mcModels.get(source);
      if (known && known.version === version && existsSync(known.path)) {
        return known;
      }
      const bytes = await readFile(source);
      if ((await fileVersion(source)) !== version) {
        if (attempt < 3) {
          continue;
        }
        throw new InvalidInputError(`epistemic scoring: the model file ${source} keeps changing while being read`);
      }
      let derived: ReturnType<typeof mcDropoutModel>;
      try {
        derived = mcDropoutModel(bytes);
      } catch (err) {
        throw new InvalidInputError(
          `epistemic scoring: cannot enable Monte-Carlo dropout in ${source}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      let model: McModel;
      if (derived.dropouts === 0) {
        // Nothing to rewrite: the pool versions the file itself (no explicit version, the same slot as inference).
        model = { path: source, version, poolVersion: undefined, dropouts: 0, stochastic: derived.stochastic };
      } else {
        const dir = join(tmpdir(), "labelgraph-mc");
        await mkdir(dir, { recursive: true });
        const file = join(dir, `${createHash("sha256").update(source).digest("hex").slice(0, 24)}.onnx`);
        const tmp = `${file}.tmp-${randomUUID()}`;
        try {
          await writeFile(tmp, derived.bytes);
          await rename(tmp, file);
        } catch (err) {
          await rm(tmp, { force: true });
          throw err;
        }
        model = {
          path: file,
          version,
          poolVersion: version,
          dropouts: derived.dropouts,
          stochastic: derived.stochastic,
        };
      }
      this.mcModels.set(source, model);
      return model;
    }
  }

  /** `samples` stochastic passes of the task's model over one image; the pool pins one model version for all. */
  private async entropyOf(
    task: BasicInferTask,
    mc: McModel,
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
    const request = { path: mc.path, device, ...(mc.poolVersion === undefined ? {} : { version: mc.poolVersion }) };
    return withPredictor(ctx.pool, request, async (predictor, model) => {
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
      // The pool's version of the sampled file: the source's own (an explicit one for a derived copy).
      return { entropy: (acc as EntropyAccumulator).entropy(), version: model.version };
    });
  }
}
