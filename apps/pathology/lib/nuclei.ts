import {
  Activationsd,
  type AnyTransform,
  AsDiscreted,
  BasicInferTask,
  type BasicInferTaskOptions,
  BasicTrainTask,
  type BasicTrainTaskOptions,
  EnsureChannelFirstd,
  type Inferer,
  LoadImaged,
  RandCropByPosNegLabeld,
  RandFlipd,
  RandRotate90d,
  ScaleIntensityRanged,
  SlidingWindowInferer,
  type Transform,
  UNet,
} from "labelgraph";

/** MONAI's pathology segmentation_nuclei, small enough to train on a CPU in seconds: a 2D UNet on RGB. */
export function nucleiNetwork(): UNet {
  return new UNet({
    spatialDims: 2,
    inChannels: 3,
    outChannels: 1,
    channels: [16, 32, 64],
    strides: [2, 2],
    norm: "BATCH",
    act: "RELU",
    seed: 7,
  });
}

/** RGB 0..255 to 0..1, channels first: what both inference and training read. */
const load = (keys: string[]): Transform[] => [
  new LoadImaged({ keys }),
  new EnsureChannelFirstd({ keys }),
  new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 255, bMin: 0, bMax: 1, clip: true }),
];

export interface SegmentationNucleiOptions extends Omit<BasicInferTaskOptions, "type" | "dimension" | "description"> {
  description?: string;
}

/** Nuclei segmentation on one tile (the WSI service runs it tile by tile and traces the polygons). */
export class SegmentationNuclei extends BasicInferTask {
  constructor(opts: SegmentationNucleiOptions) {
    super({
      ...opts,
      type: "segmentation",
      dimension: 2,
      description: opts.description ?? "Nuclei segmentation on H&E tiles (2D UNet)",
    });
  }
  preTransforms(): Transform[] {
    return load(["image"]);
  }
  /** Always a sliding window: the ONNX model has a static window, and WSI edge tiles are smaller. */
  override inferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: this.roiSize ?? [64, 64], overlap: 0.25 });
  }
  postTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }
}

export interface NucleiTrainerOptions extends BasicTrainTaskOptions {
  /** Training patch size, which is also the published model's window (default [64, 64]). */
  roiSize?: number[];
}

/** Trains segmentation_nuclei on final labels (tile + mask): random patches around nuclei and background, flips. */
export class NucleiTrainer extends BasicTrainTask {
  private readonly roi: number[];
  constructor(opts: NucleiTrainerOptions) {
    super(opts);
    this.roi = opts.roiSize ?? [64, 64];
  }
  network() {
    return nucleiNetwork();
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
      new RandRotate90d({ keys: ["image", "label"], prob: 0.5 }),
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
