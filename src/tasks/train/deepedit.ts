import type { Batch } from "../../data/loader.js";
import { InvalidInputError } from "../../errors.js";
import { crossEntropyLoss, diceCELoss } from "../../nn/losses.js";
import type { Network } from "../../nn/module.js";
import type { LossFunction } from "../../nn/train-step.js";
import type { Device } from "../../runtime/providers.js";
import type { Transform } from "../../transforms/compose.js";
import {
  AddInitialSeedPointMissingLabelsd,
  AddRandomGuidanceDeepEditd,
  DropGuidanceDeepEditd,
  FindAllValidSlicesMissingLabelsd,
  FindDiscrepancyRegionsDeepEditd,
} from "../../transforms/deepedit.js";
import { RandDepthCropd } from "../../transforms/deepgrow.js";
import { AddGuidanceSignalDeepEditd } from "../../transforms/guidance.js";
import { ScaleIntensityd } from "../../transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../transforms/io.js";
import { Activationsd, AsDiscreted } from "../../transforms/post.js";
import { type AnyTransform, RandFlipd } from "../../transforms/random.js";
import { Resized } from "../../transforms/spatial.js";
import {
  BasicTrainTask,
  type BasicTrainTaskOptions,
  type IterationContext,
  type TrainItem,
} from "./basic-train-task.js";
import { Interaction, interactiveEvaluate } from "./deepgrow.js";

export interface TrainDeepEditOptions extends BasicTrainTaskOptions {
  /** Builds the network: inChannels 1 + number of labels, outChannels number of labels (background too). */
  network: () => Network;
  /** `{name: value}` with background 0 and values 0..n-1 (network output channel = label value). */
  labelNames: Record<string, number>;
  /** The network's input spatial size (images and labels are resized to it). */
  modelSize: number[];
  /** Probability that a training batch gets simulated clicks (MONAI Label's deepgrow_probability_train,
   * default 0.5); the others train the automatic mode, with zero guidance. */
  deepgrowProbability?: number;
  maxTrainInteractions?: number;
  /** Clicks added in validation, after the automatic prediction (MONAI Label's max_val_interactions; default 5). */
  maxValInteractions?: number;
  /** Probability that a clicked batch starts from the automatic mode instead of seed clicks from the label
   * (config `auto_start_probability`, default 0: MONAI's seeds always), so that its clicks correct the
   * automatic prediction as an annotator's would. */
  autoStartProbability?: number;
  /** Sigma of the click signals (default 3). */
  sigma?: number;
  /** Weight of the click loss (config `click_loss_weight`, default 0: MONAI's DiceCE alone); see lossFunction. */
  clickLossWeight?: number;
}

/**
 * MONAI Label's TrainDeepEdit: one network for the automatic mode and for clicks. Each batch, with
 * `deepgrowProbability`, gets seed clicks per label (AddInitialSeedPointMissingLabelsd) and rounds of
 * FindDiscrepancyRegionsDeepEditd + AddRandomGuidanceDeepEditd + AddGuidanceSignalDeepEditd on the current
 * model's argmax; otherwise its guidance channels are zero. Loss: DiceCE on the softmax, labels one-hot.
 * Validation starts from the automatic mode and adds `max_val_interactions` clicks where the model errs, as an
 * annotator corrects it; the mean Dice over the labels after the last click picks the published model.
 */
export class TrainDeepEdit extends BasicTrainTask {
  readonly opts: TrainDeepEditOptions;
  private interaction: Interaction | null = null;

  constructor(opts: TrainDeepEditOptions) {
    super(opts);
    this.opts = opts;
    const values = Object.values(opts.labelNames).sort((a, b) => a - b);
    if (opts.labelNames.background !== 0 || values.some((v, i) => v !== i)) {
      throw new Error("TrainDeepEdit: labelNames must map background to 0 and the labels to 1..n-1");
    }
  }

  override config(): Record<string, unknown> {
    return {
      max_train_interactions: this.opts.maxTrainInteractions ?? 5,
      max_val_interactions: this.opts.maxValInteractions ?? 5,
      deepgrow_probability_train: this.opts.deepgrowProbability ?? 0.5,
      auto_start_probability: this.opts.autoStartProbability ?? 0,
      click_loss_weight: this.opts.clickLossWeight ?? 0,
      ...super.config(),
    };
  }

  network(): Network {
    return this.opts.network();
  }

  /**
   * DiceCE on the softmax, labels one-hot (MONAI's), plus, with `click_loss_weight` w > 0, w times the cross
   * entropy around the clicks: each voxel's CE weighted by the sum of the click channels the network saw (a
   * Gaussian of height 1 at each click, zero in the automatic mode), as a weighted mean. A correction click's
   * neighbourhood is a few hundred voxels of a slab's 146k, so in the plain loss fixing it is worth little
   * against refining the whole automatic prediction, and the network learns to ignore clicks; this term makes
   * the region around each click count as much as the whole volume.
   */
  override lossFunction(req: Record<string, unknown>): LossFunction {
    const weight = Number(req.click_loss_weight ?? 0);
    if (!(weight >= 0)) {
      throw new InvalidInputError(`click_loss_weight must be a number >= 0, got ${String(req.click_loss_weight)}`);
    }
    return (g, pred, target, input) => {
      const diceCe = diceCELoss(g, pred, target, { softmax: true, toOnehotY: true });
      if (weight === 0) {
        return diceCe;
      }
      return g.scope("click_ce", () => {
        const channels = input.shape[1]!;
        const clicks = g.reduceSum(g.slice(input, { starts: [1], ends: [channels], axes: [1] }), [1], {
          keepdims: false,
        });
        const ce = crossEntropyLoss(g, pred, target, { reduction: "none" });
        const weighted = g.reduceSum(g.mul(clicks, ce), undefined, { keepdims: false });
        const total = g.add(g.reduceSum(clicks, undefined, { keepdims: false }), g.scalar(1e-6));
        return g.add(diceCe, g.mul(g.div(weighted, total), g.scalar(weight)));
      });
    };
  }

  /** Load, channel first, (a slab of a whole volume), resize to the model, intensity to [0, 1]. */
  loadTransforms(random = false): AnyTransform[] {
    const depth = this.opts.modelSize[2];
    return [
      new LoadImaged({ keys: ["image", "label"] }),
      new EnsureChannelFirstd({ keys: ["image", "label"] }),
      ...(depth === undefined ? [] : [new RandDepthCropd({ keys: ["image", "label"], depth, random })]),
      new Resized({ keys: ["image", "label"], spatialSize: this.opts.modelSize, mode: ["area", "nearest-exact"] }),
      new ScaleIntensityd({ keys: "image" }),
    ];
  }

  trainPreTransforms(): AnyTransform[] {
    return [...this.loadTransforms(true), new RandFlipd({ keys: ["image", "label"], prob: 0.5, spatialAxis: 0 })];
  }

  /** Load and resize, then the automatic mode (no clicks): what validation starts from. */
  valPreTransforms(): Transform[] {
    return [...(this.loadTransforms() as Transform[]), ...this.initTransforms(1)];
  }

  override evaluate(
    network: Network,
    items: TrainItem[],
    req: Record<string, unknown>,
    using: { device?: Device } = {},
  ) {
    const [pipe, clickTransforms] = [this.valPreTransforms(), this.clickTransforms()];
    return interactiveEvaluate({ network, items, req, device: using.device, pipe, clickTransforms, output: "argmax" });
  }

  initTransforms(autoStart = 0): Transform[] {
    const labelNames = this.opts.labelNames;
    const sigma = this.opts.sigma ?? 3;
    const is3d = this.opts.modelSize.length === 3;
    return [
      ...(is3d ? [new FindAllValidSlicesMissingLabelsd({ labelNames })] : []),
      new AddInitialSeedPointMissingLabelsd({ labelNames }),
      ...(autoStart > 0 ? [new DropGuidanceDeepEditd({ labelNames, prob: autoStart })] : []),
      new AddGuidanceSignalDeepEditd({ keys: "image", sigma }),
    ];
  }

  clickTransforms(): Transform[] {
    const labelNames = this.opts.labelNames;
    return [
      new FindDiscrepancyRegionsDeepEditd({ labelNames }),
      new AddRandomGuidanceDeepEditd({ labelNames }),
      new AddGuidanceSignalDeepEditd({ keys: "image", sigma: this.opts.sigma ?? 3 }),
    ];
  }

  override trainPostTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", softmax: true }), new AsDiscreted({ keys: "pred", argmax: true })];
  }

  override trainIterationUpdate(req: Record<string, unknown>) {
    const interaction = new Interaction({
      initTransforms: this.initTransforms(Number(req.auto_start_probability ?? 0)),
      clickTransforms: this.clickTransforms(),
      maxInteractions: Number(req.max_train_interactions),
      deepgrowProbability: Number(req.deepgrow_probability_train),
      output: "argmax",
      train: true,
      seed: typeof req.seed === "number" ? req.seed : undefined,
    });
    this.interaction = interaction;
    return (batch: Batch<"image" | "label">, ctx: IterationContext) => interaction.update(batch, ctx);
  }

  override async run(...args: Parameters<BasicTrainTask["run"]>) {
    try {
      return await super.run(...args);
    } finally {
      await this.interaction?.release();
      this.interaction = null;
    }
  }
}
