import { join, resolve } from "node:path";
import {
  Dice,
  Epistemic,
  EpistemicScoring,
  First,
  type InferTask,
  LabelApp,
  Last,
  Random,
  type ScoringMethod,
  type Strategy,
  Sum,
  type TrainTask,
} from "labelgraph";
import { type RadiologyConf, radiologyConf } from "./lib/conf.js";
import { interactiveInfers, interactiveTrainers } from "./lib/interactive.js";
import { Segmentation, SegmentationTrainer } from "./lib/segmentation.js";

/**
 * The radiology template app (MONAI Label's sample-apps/radiology): `segmentation` of the brain on T1 MRI,
 * shipped with a model trained by labelgraph on Colin27 (scripts/train-segmentation.ts), a trainer that
 * fine-tunes it on your final labels, the interactive models `deepgrow_2d`, `deepgrow_3d` and `deepedit`
 * (clicks; shipped, trained by scripts/train-interactive.ts) with their click-simulating trainers, strategies random / first / last / epistemic and scoring dice / sum /
 * epistemic. See README.md for the `--conf` keys.
 */
export default class RadiologyApp extends LabelApp<RadiologyConf> {
  override name = "radiology";
  override description = "Brain segmentation on T1 MRI";
  override version = "0.2.0";
  override labels = ["brain"];

  override confSchema() {
    return radiologyConf;
  }

  /** Where training writes and publishes (`--conf model_dir`); inference prefers a published model. */
  override get modelDir(): string {
    return resolve(this.appDir, this.conf.model_dir ?? "model");
  }

  /** The model shipped with the app, trained by scripts/train-segmentation.ts. */
  get pretrainedPath(): string {
    return resolve(this.appDir, this.conf.pretrained_path ?? join("model", "pretrained_segmentation.onnx"));
  }

  get publishedPath(): string {
    return this.modelPath("segmentation");
  }

  /** Where the shipped models live. */
  get shippedDir(): string {
    return resolve(this.appDir, "model");
  }

  override initInfers(): Record<string, InferTask> {
    // MONAI's [pretrained, trained]: the last one that exists is served.
    const paths = this.conf.use_pretrained_model ? [this.pretrainedPath, this.publishedPath] : [this.publishedPath];
    const interactive = interactiveInfers(this.conf.use_pretrained_model ? this.shippedDir : null, this.modelDir);
    return {
      segmentation: new Segmentation({
        path: paths,
        labels: ["brain"],
        description: "A pre-trained model for volumetric (3D) segmentation of the brain on T1 MRI",
        targetSpacing: this.conf.target_spacing,
      }),
      ...interactive,
    };
  }

  override initTrainers(): Record<string, TrainTask> {
    return {
      segmentation: new SegmentationTrainer({
        modelDir: join(this.modelDir, "segmentation"),
        publishPath: this.publishedPath,
        loadPath: this.conf.use_pretrained_model ? this.pretrainedPath : undefined,
        description: "Train the brain segmentation model",
        labels: ["brain"],
        targetSpacing: this.conf.target_spacing,
        numSamples: this.conf.num_samples,
        config: {
          max_epochs: this.conf.max_epochs,
          learning_rate: this.conf.learning_rate,
          train_batch_size: 2,
          val_split: 0.2,
          num_samples: this.conf.num_samples,
        },
      }),
      ...interactiveTrainers(
        this.modelDir,
        this.modelDir,
        this.conf.use_pretrained_model ? this.shippedDir : undefined,
      ),
    };
  }

  override initStrategies(): Record<string, Strategy> {
    return {
      random: new Random(),
      first: new First(),
      last: new Last(),
      ...(this.conf.epistemic_enabled ? { epistemic: new Epistemic() } : {}),
    };
  }

  override initScoringMethods(): Record<string, ScoringMethod> {
    return {
      dice: new Dice(),
      sum: new Sum(),
      ...(this.conf.epistemic_enabled
        ? {
            epistemic: new EpistemicScoring({
              model: "segmentation",
              simulationSize: this.conf.epistemic_samples,
              maxSamples: this.conf.epistemic_max_samples,
            }),
          }
        : {}),
    };
  }
}
