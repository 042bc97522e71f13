import { existsSync } from "node:fs";
import { InvalidInputError } from "../../errors.js";
import { SimpleInferer } from "../../inferers/simple.js";
import { SlidingWindowInferer } from "../../inferers/sliding-window.js";
import type { Inferer } from "../../inferers/types.js";
import { withPredictor } from "../../runtime/predictor.js";
import { Compose, type Data, type Transform } from "../../transforms/compose.js";
import { Invertd } from "../../transforms/inverse.js";
import { fromCOrder, MetaTensor, toCOrder } from "../../transforms/tensor.js";
import {
  type InferRequest,
  type InferResult,
  type InferServices,
  InferTask,
  type InferType,
  type Labels,
  labelNames,
} from "./infer-task.js";
import { writeLabel } from "./writer.js";

export interface BasicInferTaskOptions {
  /** The ONNX model; with a list, the last path that exists is used (e.g. [pretrained.onnx, model.onnx]). */
  path: string | string[];
  type: InferType;
  labels: Labels;
  dimension: number;
  description: string;
  config?: Record<string, unknown>;
  inputKey?: string;
  outputLabelKey?: string;
  outputJsonKey?: string;
  /** Window size for the default inferer: a sliding window when the image is larger. */
  roiSize?: number[];
  skipWriter?: boolean;
}

/**
 * MONAI Label's BasicInferTask: pre-transforms -> inferer (an onnxruntime session) -> inverse of the
 * pre-transforms -> post-transforms -> writer, with each stage's latency in the result. An app
 * overrides preTransforms, inferer, inverseTransforms, postTransforms and writer as in MONAI.
 */
export abstract class BasicInferTask extends InferTask {
  readonly paths: string[];
  readonly inputKey: string;
  readonly outputLabelKey: string;
  readonly outputJsonKey: string;
  readonly roiSize: number[] | undefined;
  readonly skipWriter: boolean;

  constructor(opts: BasicInferTaskOptions) {
    super(opts);
    this.paths = Array.isArray(opts.path) ? opts.path : [opts.path];
    this.inputKey = opts.inputKey ?? "image";
    this.outputLabelKey = opts.outputLabelKey ?? "pred";
    this.outputJsonKey = opts.outputJsonKey ?? "result";
    this.roiSize = opts.roiSize;
    this.skipWriter = opts.skipWriter ?? false;
  }

  /** The last configured model path that exists (MONAI's get_path). */
  getPath(): string | null {
    return [...this.paths].reverse().find((p) => existsSync(p)) ?? null;
  }

  isValid(): boolean {
    return this.getPath() !== null;
  }

  abstract preTransforms(data: Data): Transform[];
  abstract postTransforms(data: Data): Transform[];

  /** MONAI's default: a sliding window of roiSize (overlap 0.25, batch 1) when the image is larger, else simple. */
  inferer(data: Data): Inferer {
    const image = data[this.inputKey];
    const roi = (data.roi_size as number[] | undefined) ?? this.roiSize;
    if (roi && image instanceof MetaTensor && image.spatialShape.some((s, i) => s > (roi[i] ?? s))) {
      return new SlidingWindowInferer({
        roiSize: roi,
        overlap: typeof data.sw_overlap === "number" ? data.sw_overlap : 0.25,
        swBatchSize: typeof data.sw_batch_size === "number" ? data.sw_batch_size : 1,
        // MONAI accumulates windows in float32; float64 costs memory and time for no visible gain.
        precision: "float32",
      });
    }
    return new SimpleInferer();
  }

  /** null: no inversion; [] (default): invert every invertible pre-transform. */
  inverseTransforms(_data: Data): Transform[] | null {
    return [];
  }

  async run(request: InferRequest, services: InferServices): Promise<InferResult> {
    const path = this.getPath();
    if (!path) {
      throw new InvalidInputError(`model file missing: none of ${this.paths.join(", ")} exists`);
    }
    const latencies: Record<string, number> = {};
    const t0 = performance.now();
    let t = t0;
    const lap = (name: string) => {
      const now = performance.now();
      latencies[name] = Math.round(now - t) / 1000;
      t = now;
    };

    let data: Data = {
      ...this.config,
      ...request.params,
      [this.inputKey]: request.imagePath,
      image_path: request.imagePath,
    };
    const pre = new Compose(this.preTransforms(data));
    data = await pre.call(data);
    lap("pre");

    const image = data[this.inputKey];
    if (!(image instanceof MetaTensor)) {
      throw new InvalidInputError(`pre-transforms must leave a tensor under "${this.inputKey}"`);
    }
    if (image.spatialShape.length !== this.dimension) {
      throw new InvalidInputError(
        `model expects ${this.dimension}D images; this one is ${image.spatialShape.length}D after pre-transforms`,
      );
    }
    const inferer = this.inferer(data);
    const device = typeof request.params.device === "string" ? request.params.device : "cpu";
    const warnings: string[] = [];
    const output = await withPredictor(services.pool, { path, device: device as "cpu" }, async (predictor, model) => {
      if (model.warning) {
        warnings.push(model.warning);
      }
      return inferer.infer({ data: toCOrder(image), shape: [1, ...image.shape] }, predictor);
    });
    data[this.outputLabelKey] = fromCOrder(output.data, output.shape.slice(1), image);
    lap("infer");

    const inverse = this.inverseTransforms(data);
    if (inverse !== null) {
      data = await new Invertd({ keys: this.outputLabelKey, transform: pre, origKey: this.inputKey }).call(data);
    }
    lap("invert");

    data = await new Compose(this.postTransforms(data)).call(data);
    lap("post");

    let labelPath: string | null = null;
    const pred = data[this.outputLabelKey];
    const classification = this.type === "classification";
    if (!this.skipWriter && !classification && pred instanceof MetaTensor) {
      labelPath = await writeLabel(pred, data);
    }
    const found = pred instanceof MetaTensor && !classification ? centroids(pred, this.labelMap()) : null;
    lap("write");
    latencies.total = Math.round(performance.now() - t0) / 1000;
    latencies.transform = (latencies.pre ?? 0) + (latencies.post ?? 0);

    const extra = data[this.outputJsonKey];
    if (classification) {
      // MONAI's ClassificationWriter: JSON only, one score per label.
      return { labelPath: null, json: { prediction: this.predictions(pred), label_names: this.labelMap(), latencies } };
    }
    return {
      labelPath,
      json: {
        label_names: this.labelMap(),
        latencies,
        ...(found ? { centroids: found } : {}),
        ...(warnings.length ? { warnings } : {}),
        ...(extra && typeof extra === "object" ? (extra as Record<string, unknown>) : {}),
      },
    };
  }

  /** Classification output (one value per label, after post-transforms) as MONAI's [{idx, label, score}]. */
  private predictions(pred: unknown): { idx: number; label: string; score: number }[] {
    const values = pred instanceof MetaTensor ? Array.from(pred.data) : [];
    const names = labelNames(this.labels);
    return values
      .map((score, idx) => ({ idx, label: names[idx] ?? String(idx), score }))
      .sort((a, b) => b.score - a.score);
  }

  /** {name: index} with indices from 1 in label order, or as the app gave them. */
  labelMap(): Record<string, number> {
    if (typeof this.labels === "object" && !Array.isArray(this.labels)) {
      return this.labels;
    }
    return Object.fromEntries(labelNames(this.labels).map((n, i) => [n, i + 1]));
  }
}

/** MONAI Label's centroids: for each label present, the voxel centre of mass, as [x, y, z] strings. */
export function centroids(pred: MetaTensor, labels: Record<string, number>): Record<string, string[]> {
  const [X = 1, Y = 1, Z = 1] = pred.spatialShape;
  const d = pred.data;
  const idx = Object.values(labels);
  const maxLabel = Math.max(0, ...idx);
  // Per label value: sum x, sum y, sum z, count.
  const acc = new Float64Array((maxLabel + 1) * 4);
  const only = new Set(idx).size === 1 ? (idx[0] as number) : 0;
  if (only > 0 && Number.isInteger(only)) {
    // One label (the usual binary segmentation): only its voxels are read back below, so only they are summed, a
    // row at a time with a 0/1 mask instead of a branch per voxel (bench/infer times it: the centroids row). Sums of
    // integers, exact in float64: the same result as the general loop.
    const o = only * 4;
    let i = 0;
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        let n = 0;
        let sx = 0;
        for (let x = 0; x < X; x++, i++) {
          const m = d[i] === only ? 1 : 0;
          n += m;
          sx += m * x;
        }
        acc[o] = (acc[o] as number) + sx;
        acc[o + 1] = (acc[o + 1] as number) + y * n;
        acc[o + 2] = (acc[o + 2] as number) + z * n;
        acc[o + 3] = (acc[o + 3] as number) + n;
      }
    }
  } else {
    let i = 0;
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        for (let x = 0; x < X; x++, i++) {
          const v = d[i] ?? 0;
          if (v > 0 && v <= maxLabel && Number.isInteger(v)) {
            const o = v * 4;
            acc[o] = (acc[o] ?? 0) + x;
            acc[o + 1] = (acc[o + 1] ?? 0) + y;
            acc[o + 2] = (acc[o + 2] ?? 0) + z;
            acc[o + 3] = (acc[o + 3] ?? 0) + 1;
          }
        }
      }
    }
  }
  const out: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(labels)) {
    const n = acc[v * 4 + 3] ?? 0;
    if (n > 0) {
      out[name] = [0, 1, 2]
        .slice(0, pred.spatialShape.length)
        .map((a) => String(Math.round((acc[v * 4 + a] ?? 0) / n)));
    }
  }
  return out;
}
