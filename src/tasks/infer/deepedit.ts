import { InvalidInputError } from "../../errors.js";
import type { Data, Transform } from "../../transforms/compose.js";
import { CheckClicksd, ResizeGuidanced, RestoreLabeld, SpatialCropGuidanced } from "../../transforms/deepgrow.js";
import { AddGuidanceFromPointsDeepEditd, AddGuidanceSignalDeepEditd } from "../../transforms/guidance.js";
import { ScaleIntensityd } from "../../transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../transforms/io.js";
import { Activationsd, AsDiscreted } from "../../transforms/post.js";
import { Resized } from "../../transforms/spatial.js";
import { BasicInferTask } from "./basic-infer-task.js";

/**
 * Clicks per label from the request: MONAI's `{label: points, background: points}` params as they are; the
 * GraphQL `foreground` may also carry `{label: points}`, or a plain list when there is one label; `background`
 * is the background label's clicks.
 */
export function deepEditClicks(data: Data, labelNames: Record<string, number>): Data {
  const d = { ...data };
  const parse = (v: unknown) => {
    try {
      return typeof v === "string" ? (JSON.parse(v) as unknown) : v;
    } catch {
      throw new InvalidInputError(`clicks must be JSON lists of [x, y, z] voxel points, got ${String(v)}`);
    }
  };
  const fg = parse(d.foreground);
  const names = Object.keys(labelNames).filter((k) => k !== "background");
  if (Array.isArray(fg)) {
    if (names.length !== 1) {
      throw new InvalidInputError(`foreground as a list needs a single label; give {label: points} for ${names}`);
    }
    d[names[0]!] = [...((parse(d[names[0]!]) as unknown[]) ?? []), ...fg];
  } else if (fg && typeof fg === "object") {
    for (const [k, v] of Object.entries(fg)) {
      if (!(k in labelNames)) {
        throw new InvalidInputError(`foreground: unknown label ${JSON.stringify(k)} (labels: ${names.join(", ")})`);
      }
      d[k] = v;
    }
  }
  return d;
}

export interface InferDeepEditOptions {
  path: string | string[];
  /** `{name: value}` with `background: 0`; the network's output channel i is label value i. */
  labels: Record<string, number>;
  description?: string;
  /** The network's input spatial size. */
  modelSize: number[];
  /** Crop a box of this size around the clicks first (the centre box without clicks); default: none, the
   * whole image is resized to the model, as MONAI's. */
  spatialSize?: number[];
  margin?: number;
  /** Sigma of the click signals (default 3, MONAI deepedit's). */
  sigma?: number;
  dimension?: 2 | 3;
  config?: Record<string, unknown>;
}

/**
 * MONAI Label's DeepEdit infer task: clicks per label name plus `background` in the request params (voxel
 * coordinates, e.g. `{brain: [[90, 100, 8]], background: []}`); no clicks at all is the automatic mode (zero
 * guidance channels). The image (or a box around the clicks) is resized to the model, given one Gaussian
 * click channel per label, and the argmax of the softmax is restored onto the image grid.
 */
export class InferDeepEdit extends BasicInferTask {
  readonly labelNames: Record<string, number>;
  readonly modelSize: number[];
  readonly spatialSize: number[] | undefined;
  readonly margin: number;
  readonly sigma: number;

  constructor(opts: InferDeepEditOptions) {
    const dimension = opts.dimension ?? 3;
    const foreground = Object.fromEntries(Object.entries(opts.labels).filter(([k]) => k !== "background"));
    super({
      path: opts.path,
      type: "deepedit",
      labels: foreground,
      dimension,
      description: opts.description ?? "DeepEdit: automatic segmentation, corrected with clicks per label",
      config: opts.config,
    });
    if (opts.labels.background !== 0) {
      throw new Error("InferDeepEdit: labels must include background: 0");
    }
    this.labelNames = opts.labels;
    this.modelSize = opts.modelSize;
    this.spatialSize = opts.spatialSize;
    this.margin = opts.margin ?? 20;
    this.sigma = opts.sigma ?? 3;
  }

  preTransforms(): Transform[] {
    const crop = this.spatialSize
      ? [new SpatialCropGuidanced({ keys: "image", spatialSize: this.spatialSize, margin: this.margin })]
      : [];
    return [
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      { call: (d: Data) => deepEditClicks(d, this.labelNames) },
      new CheckClicksd({ refImage: "image", keys: Object.keys(this.labelNames) }),
      new AddGuidanceFromPointsDeepEditd({ refImage: "image", labelNames: this.labelNames }),
      ...crop,
      new Resized({ keys: "image", spatialSize: this.modelSize, mode: "area" }),
      new ResizeGuidanced({ refImage: "image" }),
      new ScaleIntensityd({ keys: "image" }),
      new AddGuidanceSignalDeepEditd({ keys: "image", sigma: this.sigma, numberIntensityCh: 1 }),
    ];
  }

  postTransforms(): Transform[] {
    return [
      new Activationsd({ keys: "pred", softmax: true }),
      // Probabilities restored (linear; zeros outside a crop, so background wins there), then the argmax.
      new RestoreLabeld({ keys: "pred", refImage: "image", mode: "linear" }),
      new AsDiscreted({ keys: "pred", argmax: true }),
    ];
  }

  override inverseTransforms(): Transform[] | null {
    return null;
  }
}
