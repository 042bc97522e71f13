import { resolve } from "node:path";
import { appConf, confInt, type InferTask, LabelApp, type TrainTask } from "labelgraph";
import { z } from "zod";
import { NucleiTrainer, SegmentationNuclei } from "./lib/nuclei.js";

export const pathologyConf = appConf.extend({
  /** Where trained models are published and training runs write (default <app>/model). */
  model_dir: z.string().optional(),
  /**
   * The model's window (MONAI's roi_size): training patches are this size, and inference slides a window of it
   * over each WSI tile (the published ONNX model has this static input size).
   */
  roi_size: confInt(64, 16),
});
export type PathologyConf = z.output<typeof pathologyConf>;

/**
 * The pathology template app (MONAI Label's sample-apps/pathology): `segmentation_nuclei`, a 2D UNet on RGB
 * tiles, served through WSI inference (`runWsiInference`, REST `/infer/wsi/{model}`) on regions of large
 * PNG/TIFF slides, with polygons as JSON, DSA or ASAP. No weights ship with it: the model is listed once
 * trained (`startTraining(model: "segmentation_nuclei")` on final labels: tiles and their nuclei masks).
 */
export default class PathologyApp extends LabelApp<PathologyConf> {
  override name = "pathology";
  override description = "Nuclei segmentation on tiles of whole-slide images";
  override version = "0.1.0";
  override labels = ["Nuclei"];

  override confSchema() {
    return pathologyConf;
  }

  override get modelDir(): string {
    return resolve(this.appDir, this.conf.model_dir ?? "model");
  }

  override initInfers(): Record<string, InferTask> {
    return {
      segmentation_nuclei: new SegmentationNuclei({
        path: this.modelPath("segmentation_nuclei"),
        labels: { Nuclei: 1 },
        roiSize: [this.conf.roi_size, this.conf.roi_size],
      }),
    };
  }

  override initTrainers(): Record<string, TrainTask> {
    return {
      segmentation_nuclei: new NucleiTrainer({
        modelDir: resolve(this.modelDir, "train", "segmentation_nuclei"),
        publishPath: this.modelPath("segmentation_nuclei"),
        description: "Trains segmentation_nuclei on final labels (tiles and nuclei masks)",
        roiSize: [this.conf.roi_size, this.conf.roi_size],
        config: { max_epochs: 30, learning_rate: 0.005, train_batch_size: 4, val_split: 0.2 },
      }),
    };
  }
}
