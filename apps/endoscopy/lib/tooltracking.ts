import {
  Activationsd,
  type AnyTransform,
  AsDiscreted,
  BasicInferTask,
  BasicTrainTask,
  type BasicTrainTaskOptions,
  EnsureChannelFirstd,
  type Inferer,
  isConstantLabel,
  LoadImaged,
  loadImage,
  RandCropByPosNegLabeld,
  RandFlipd,
  ScaleIntensityRanged,
  SlidingWindowInferer,
  type TrainContext,
  type TrainRequest,
  type Transform,
  UNet,
} from "labelgraph";

/** MONAI's endoscopic tool segmentation, small: a 2D UNet on RGB frames, one output (Tool). */
export function toolNetwork(): UNet {
  return new UNet({
    spatialDims: 2,
    inChannels: 3,
    outChannels: 1,
    channels: [16, 32, 64],
    strides: [2, 2],
    norm: "BATCH",
    act: "RELU",
    seed: 5,
  });
}

const load = (keys: string[]): Transform[] => [
  new LoadImaged({ keys }),
  new EnsureChannelFirstd({ keys }),
  new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 255, bMin: 0, bMax: 1, clip: true }),
];

/** Tool segmentation of a frame: a sliding window of the training patch size over the whole frame. */
export class ToolTracking extends BasicInferTask {
  preTransforms(): Transform[] {
    return load(["image"]);
  }
  override inferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: this.roiSize ?? [64, 64], overlap: 0.25 });
  }
  postTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }
}

export interface ToolTrackingTrainerOptions extends BasicTrainTaskOptions {
  /** Patch size, also the published model's window (default [64, 64]). */
  roiSize?: number[];
}

/**
 * Trains tooltracking on final labels that are tool masks. Frames whose final label is a constant non-zero value
 * are `inbody` class labels (an out-of-body frame), not masks, and are left out; all-zero labels stay (frames
 * without a tool).
 */
export class ToolTrackingTrainer extends BasicTrainTask {
  private readonly roi: number[];
  constructor(opts: ToolTrackingTrainerOptions) {
    super(opts);
    this.roi = opts.roiSize ?? [64, 64];
  }
  network() {
    return toolNetwork();
  }
  override async run(request: TrainRequest, ctx: TrainContext) {
    const datalist = [];
    for (const item of request.datalist) {
      const label = await loadImage(item.label);
      if (!isConstantLabel(label.data) || label.data[0] === 0) {
        datalist.push(item);
      }
    }
    return super.run({ ...request, datalist }, ctx);
  }
  trainPreTransforms(): AnyTransform[] {
    return [
      ...this.valPreTransforms(),
      new RandCropByPosNegLabeld({
        keys: ["image", "label"],
        labelKey: "label",
        spatialSize: this.roi,
        pos: 1,
        neg: 1,
        numSamples: 2,
      }),
      new RandFlipd({ keys: ["image", "label"], prob: 0.5, spatialAxis: 0 }),
    ];
  }
  valPreTransforms(): Transform[] {
    return load(["image", "label"]);
  }
  override valInferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: this.roi, overlap: 0.25 });
  }
  override trainPostTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }
}
