import {
  Activationsd,
  type AnyTransform,
  BasicInferTask,
  ClassificationTrainTask,
  Classifier,
  EnsureChannelFirstd,
  isConstantLabel,
  LabelToClassd,
  LoadImaged,
  loadImage,
  RandFlipd,
  Resized,
  ScaleIntensityRanged,
  type TrainItem,
  type Transform,
} from "labelgraph";

/** MONAI's inbody labels: class indices. */
export const INBODY_LABELS = { in_body: 0, out_body: 1 };
const CLASSES = Object.keys(INBODY_LABELS);

export function inbodyNetwork(): Classifier {
  return new Classifier({
    spatialDims: 2,
    inChannels: 3,
    classes: CLASSES.length,
    channels: [8, 16, 32],
    strides: [2, 2, 2],
    norm: "BATCH",
    act: "RELU",
    seed: 3,
    // [N, 2, 1, 1]: the channel-first form BasicInferTask's classification output takes.
    flatten: false,
  });
}

/** Frames are resized to size x size (the classifier's fixed input), RGB scaled to 0..1. */
const frame = (size: number): Transform[] => [
  new LoadImaged({ keys: "image" }),
  new EnsureChannelFirstd({ keys: "image" }),
  new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 255, bMin: 0, bMax: 1, clip: true }),
  new Resized({ keys: "image", spatialSize: [size, size], mode: "area" }),
];

/** In-body / out-of-body frame classification: MONAI's {prediction: [{idx, label, score}]} JSON, no label file. */
export class InBody extends BasicInferTask {
  size = 64;
  preTransforms(): Transform[] {
    return frame(this.size);
  }
  /** The prediction is per frame: nothing to map back to the image grid. */
  override inverseTransforms(): null {
    return null;
  }
  postTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", softmax: true })];
  }
}

/**
 * Trains inbody on frames whose final label holds one value everywhere: the class index (0 in_body,
 * 1 out_body). Frames labelled with a tool mask are left to tooltracking.
 */
export class InBodyTrainer extends ClassificationTrainTask {
  size = 64;
  network() {
    return inbodyNetwork();
  }
  override async filterDatalist(datalist: TrainItem[]): Promise<TrainItem[]> {
    const out: TrainItem[] = [];
    for (const item of datalist) {
      if (isConstantLabel((await loadImage(item.label)).data)) {
        out.push(item);
      }
    }
    return out;
  }
  valPreTransforms(): Transform[] {
    return [
      ...frame(this.size),
      new LoadImaged({ keys: "label" }),
      new LabelToClassd({ keys: "label", classes: CLASSES.length }),
    ];
  }
  trainPreTransforms(): AnyTransform[] {
    return [...this.valPreTransforms(), new RandFlipd({ keys: "image", prob: 0.5, spatialAxis: 0 })];
  }
}
