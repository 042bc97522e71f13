import { InvalidInputError } from "../../errors.js";
import type { Data, Transform } from "../../transforms/compose.js";
import {
  CheckClicksd,
  Fetch2DSliced,
  ResizeGuidanced,
  RestoreLabeld,
  SpatialCropGuidanced,
} from "../../transforms/deepgrow.js";
import { AddGuidanceFromPointsd, AddGuidanceSignald } from "../../transforms/guidance.js";
import { ScaleIntensityd } from "../../transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../transforms/io.js";
import { Activationsd, AsDiscreted } from "../../transforms/post.js";
import { Resized } from "../../transforms/spatial.js";
import { tensorAt } from "../../transforms/tensor.js";
import { BasicInferTask } from "./basic-infer-task.js";
import type { Labels } from "./infer-task.js";

export interface InferDeepGrowOptions {
  /** The ONNX model (or [pretrained, trained], the last that exists). */
  path: string | string[];
  labels?: Labels;
  description?: string;
  /** The network's input spatial size; the crop is resized to it. */
  modelSize: number[];
  /** The box cropped around the clicks (at least; clamped to the image). Default: the model size. */
  spatialSize?: number[];
  /** Voxels around the clicks' bounding box (default 20). */
  margin?: number;
  /** Sigma of the click signals (default 2, MONAI's). */
  sigma?: number;
  /** Threshold of the restored sigmoid probabilities (default 0.5). */
  threshold?: number;
  config?: Record<string, unknown>;
}

/** Clicks must exist: deepgrow has no automatic mode. */
function requireClicks(data: Data): void {
  const count = (k: string) => {
    const v = typeof data[k] === "string" ? JSON.parse(data[k] as string) : data[k];
    return Array.isArray(v) ? v.length : 0;
  };
  if (count("foreground") + count("background") === 0) {
    throw new InvalidInputError("deepgrow needs at least one click: give foreground and/or background points");
  }
}

/**
 * The guidance of a 2D click request: on a 3D image, the clicks of one slice (`slice`, else the first
 * clicked) and that slice (AddGuidanceFromPointsd + Fetch2DSliced, as MONAI Label's deepgrow 2D); on a 2D
 * image, the clicks as they are.
 */
class AddGuidance2Dd implements Transform {
  private readonly fromPoints = new AddGuidanceFromPointsd({ refImage: "image", spatialDims: 2, depthFirst: true });
  private readonly fetch = new Fetch2DSliced({ keys: "image" });
  call(data: Data): Data {
    requireClicks(data);
    const image = tensorAt(data, "image", "InferDeepGrow2D");
    if (image.spatialShape.length === 3) {
      return this.fetch.call(this.fromPoints.call(data));
    }
    const points = (k: string) =>
      ((typeof data[k] === "string" ? JSON.parse(data[k] as string) : (data[k] ?? [])) as number[][]).map((p) =>
        p.slice(0, 2).map((x) => Math.trunc(x)),
      );
    return { ...data, guidance: [points("foreground"), points("background")] };
  }
}

abstract class InferDeepGrow extends BasicInferTask {
  readonly modelSize: number[];
  readonly spatialSize: number[];
  readonly margin: number;
  readonly sigma: number;
  readonly threshold: number;

  constructor(opts: InferDeepGrowOptions, dimension: 2 | 3, description: string) {
    super({
      path: opts.path,
      type: "deepgrow",
      labels: opts.labels ?? [],
      dimension,
      description: opts.description ?? description,
      config: opts.config,
    });
    if (opts.modelSize.length !== dimension) {
      throw new Error(`${new.target.name}: modelSize must have ${dimension} sizes, got [${opts.modelSize}]`);
    }
    this.modelSize = opts.modelSize;
    this.spatialSize = opts.spatialSize ?? opts.modelSize;
    this.margin = opts.margin ?? 20;
    this.sigma = opts.sigma ?? 2;
    this.threshold = opts.threshold ?? 0.5;
  }

  protected abstract guidanceTransforms(): Transform[];

  preTransforms(): Transform[] {
    return [
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      new CheckClicksd({ refImage: "image" }),
      ...this.guidanceTransforms(),
      new SpatialCropGuidanced({ keys: "image", spatialSize: this.spatialSize, margin: this.margin }),
      new Resized({ keys: "image", spatialSize: this.modelSize, mode: "area" }),
      new ResizeGuidanced({ refImage: "image" }),
      new ScaleIntensityd({ keys: "image" }),
      new AddGuidanceSignald({ image: "image", sigma: this.sigma }),
    ];
  }

  postTransforms(): Transform[] {
    return [
      new Activationsd({ keys: "pred", sigmoid: true }),
      // Probabilities go back to the image grid (linear), then the threshold: a mask resampled with torch's
      // "nearest" shifts by up to a voxel, which costs ~0.04 Dice on Colin27 slices.
      new RestoreLabeld({ keys: "pred", refImage: "image", mode: "linear" }),
      new AsDiscreted({ keys: "pred", threshold: this.threshold }),
    ];
  }

  /** RestoreLabeld puts the result back on the image grid; the pre-transforms are not inverted. */
  override inverseTransforms(): Transform[] | null {
    return null;
  }
}

/**
 * MONAI Label's InferDeepGrow2D: foreground/background clicks (voxel [x, y, z] of a 3D image, or [x, y] of a
 * 2D one) on one slice; the slice is cropped around the clicks, resized to the model, given the image and two
 * Gaussian click channels, and the mask is restored into the image grid (zeros off the slice).
 */
export class InferDeepGrow2D extends InferDeepGrow {
  constructor(opts: InferDeepGrowOptions) {
    super(opts, 2, "2D DeepGrow: segment one slice from foreground/background clicks");
  }
  protected guidanceTransforms(): Transform[] {
    return [new AddGuidance2Dd()];
  }
}

/** MONAI Label's InferDeepGrow3D: the same from [x, y, z] clicks on a 3D box around them. */
export class InferDeepGrow3D extends InferDeepGrow {
  constructor(opts: InferDeepGrowOptions) {
    super(opts, 3, "3D DeepGrow: segment a structure from foreground/background clicks");
  }
  protected guidanceTransforms(): Transform[] {
    return [
      {
        call: (data: Data) => {
          requireClicks(data);
          return data;
        },
      },
      new AddGuidanceFromPointsd({ refImage: "image", spatialDims: 3, depthFirst: false }),
    ];
  }
}
