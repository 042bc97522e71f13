import { resolve } from "node:path";
import { appConf, confInt, type InferTask, LabelApp, type TrainTask } from "labelgraph";
import { z } from "zod";
import { INBODY_LABELS, InBody, InBodyTrainer } from "./lib/inbody.js";
import { ToolTracking, ToolTrackingTrainer } from "./lib/tooltracking.js";

export const endoscopyConf = appConf.extend({
  /** Where trained models are published and training runs write (default <app>/model). */
  model_dir: z.string().optional(),
  /** tooltracking's window: training patches are this size and inference slides a window of it over the frame. */
  roi_size: confInt(64, 16),
});
export type EndoscopyConf = z.output<typeof endoscopyConf>;

/**
 * The endoscopy template app (MONAI Label's sample-apps/endoscopy): `tooltracking`, 2D segmentation of surgical
 * instruments in RGB frames, and `inbody`, a frame classifier (in_body / out_body). No weights ship with it:
 * each model is listed once trained on final labels (tool masks for tooltracking; for inbody, a label image
 * filled with the class index). See README.md.
 */
export default class EndoscopyApp extends LabelApp<EndoscopyConf> {
  override name = "endoscopy";
  override description = "Tool segmentation and in-body classification of endoscopy frames";
  override version = "0.1.0";
  override labels = ["Tool"];

  override confSchema() {
    return endoscopyConf;
  }

  override get modelDir(): string {
    return resolve(this.appDir, this.conf.model_dir ?? "model");
  }

  override initInfers(): Record<string, InferTask> {
    const roi = [this.conf.roi_size, this.conf.roi_size];
    return {
      tooltracking: new ToolTracking({
        path: this.modelPath("tooltracking"),
        type: "segmentation",
        labels: { Tool: 1 },
        dimension: 2,
        description: "Segmentation of surgical tools in endoscopy frames (2D UNet)",
        roiSize: roi,
      }),
      inbody: new InBody({
        path: this.modelPath("inbody"),
        type: "classification",
        labels: INBODY_LABELS,
        dimension: 2,
        description: "Whether a frame was taken inside the body (CNN classifier)",
      }),
    };
  }

  override initTrainers(): Record<string, TrainTask> {
    return {
      tooltracking: new ToolTrackingTrainer({
        modelDir: resolve(this.modelDir, "train", "tooltracking"),
        publishPath: this.modelPath("tooltracking"),
        description: "Trains tooltracking on final tool masks",
        roiSize: [this.conf.roi_size, this.conf.roi_size],
        config: { max_epochs: 30, learning_rate: 0.005, train_batch_size: 4, val_split: 0.2 },
      }),
      inbody: new InBodyTrainer({
        modelDir: resolve(this.modelDir, "train", "inbody"),
        publishPath: this.modelPath("inbody"),
        description: "Trains inbody on frames whose final label is the class index (0 in_body, 1 out_body)",
        labels: Object.keys(INBODY_LABELS),
        config: { max_epochs: 30, learning_rate: 0.005, train_batch_size: 4, val_split: 0.2 },
      }),
    };
  }
}
