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
  KeepLargestConnectedComponentd,
  LoadImaged,
  Orientationd,
  RandCropByPosNegLabeld,
  RandFlipd,
  RandScaleIntensityd,
  RandShiftIntensityd,
  ScaleIntensityd,
  SlidingWindowInferer,
  Spacingd,
  type Transform,
  UNet,
} from "labelgraph";

/** The network's input window (voxels at the target spacing): training patches and sliding-window ROI. */
export const ROI_SIZE = [64, 64, 64];

/**
 * A small MONAI UNet (4 levels, 8..64 channels, instance norm, PReLU) with dropout in every block, so that
 * Monte-Carlo dropout (epistemic scoring) has something to sample. About 0.1 M parameters: a ~0.5 MB ONNX file.
 */
export function segmentationNetwork(seed = 0): UNet {
  return new UNet({
    spatialDims: 3,
    inChannels: 1,
    outChannels: 1,
    channels: [8, 16, 32, 64],
    strides: [2, 2, 2],
    numResUnits: 0,
    norm: "INSTANCE",
    dropout: 0.1,
    seed,
  });
}

/** The deterministic part shared by inference, training and validation: RAS, target spacing, [0, 1] intensities. */
function loadAndResample(keys: string[], spacing: number): Transform[] {
  const labelled = keys.length > 1;
  return [
    new LoadImaged({ keys }),
    new EnsureChannelFirstd({ keys }),
    new Orientationd({ keys, axcodes: "RAS" }),
    new Spacingd({
      keys,
      pixdim: [spacing, spacing, spacing],
      mode: labelled ? ["bilinear", "nearest"] : "bilinear",
    }),
    new ScaleIntensityd({ keys: "image", minv: 0, maxv: 1 }),
  ];
}

export interface SegmentationOptions extends Omit<BasicInferTaskOptions, "type" | "dimension" | "roiSize"> {
  targetSpacing: number;
}

/**
 * MONAI Label radiology's `segmentation` infer task, for the brain on T1 MRI: RAS, resample, scale, a sliding
 * window of 64^3 over the resampled volume, logits resampled back to the image grid (the inverse of the
 * pre-transforms), then sigmoid, threshold and the largest connected component.
 */
export class Segmentation extends BasicInferTask {
  readonly targetSpacing: number;

  constructor(options: SegmentationOptions) {
    super({ ...options, type: "segmentation", dimension: 3, roiSize: ROI_SIZE });
    this.targetSpacing = options.targetSpacing;
  }

  preTransforms(): Transform[] {
    return loadAndResample(["image"], this.targetSpacing);
  }

  override inferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: ROI_SIZE, overlap: 0.25, precision: "float32" });
  }

  postTransforms(): Transform[] {
    return [
      new Activationsd({ keys: "pred", sigmoid: true }),
      new AsDiscreted({ keys: "pred", threshold: 0.5 }),
      new KeepLargestConnectedComponentd({ keys: "pred", applyToLabels: [1] }),
    ];
  }
}

export interface SegmentationTrainerOptions extends BasicTrainTaskOptions {
  targetSpacing: number;
  numSamples: number;
}

/**
 * MONAI Label radiology's segmentation trainer: the cached deterministic prefix, then random 64^3 patches (as
 * many centred in the brain as outside it, in the head), left-right flips and intensity jitter; validation by a sliding
 * window over the whole resampled volume. Sigmoid Dice loss and Adam (BasicTrainTask's defaults).
 */
export class SegmentationTrainer extends BasicTrainTask {
  readonly targetSpacing: number;
  readonly numSamples: number;

  constructor(options: SegmentationTrainerOptions) {
    super(options);
    this.targetSpacing = options.targetSpacing;
    this.numSamples = options.numSamples;
  }

  network() {
    return segmentationNetwork();
  }

  trainPreTransforms(req: Record<string, unknown>): AnyTransform[] {
    const numSamples = Number(req.num_samples ?? this.numSamples);
    return [
      ...this.valPreTransforms(),
      new RandCropByPosNegLabeld({
        keys: ["image", "label"],
        labelKey: "label",
        spatialSize: ROI_SIZE,
        pos: 1,
        neg: 1,
        // Negative centres in the head, not in the air: skull, scalp and neck are what must be told from brain.
        imageKey: "image",
        imageThreshold: 0.05,
        numSamples: Number.isInteger(numSamples) && numSamples > 0 ? numSamples : this.numSamples,
      }),
      new RandFlipd({ keys: ["image", "label"], prob: 0.5, spatialAxis: 0 }),
      new RandScaleIntensityd({ keys: "image", factors: 0.1, prob: 0.5 }),
      new RandShiftIntensityd({ keys: "image", offsets: 0.1, prob: 0.5 }),
    ];
  }

  valPreTransforms(): Transform[] {
    return loadAndResample(["image", "label"], this.targetSpacing);
  }

  override valInferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: ROI_SIZE, overlap: 0.25, precision: "float32" });
  }

  override trainPostTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }
}
