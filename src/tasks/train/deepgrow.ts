import * as ort from "onnxruntime-node";
import type { BatchTensor } from "../../data/collate.js";
import type { Batch } from "../../data/loader.js";
import type { GraphBuilder } from "../../graph/builder.js";
import { prune, type Value } from "../../graph/ir.js";
import { serializeGraph } from "../../graph/serialize.js";
import { TrainingGraphBuilder } from "../../graph/training.js";
import { diceLoss } from "../../nn/losses.js";
import type { Network } from "../../nn/module.js";
import type { Trainer } from "../../nn/train-step.js";
import { createPlacedSession, type Device, parseDevice } from "../../runtime/providers.js";
import { Compose, type Data, type Transform } from "../../transforms/compose.js";
import {
  AddInitialSeedPointd,
  AddRandomGuidanced,
  FindAllValidSlicesd,
  FindDiscrepancyRegionsd,
  RandDepthCropd,
} from "../../transforms/deepgrow.js";
import { AddGuidanceSignald } from "../../transforms/guidance.js";
import { ScaleIntensityd } from "../../transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../transforms/io.js";
import { Activationsd, AsDiscreted } from "../../transforms/post.js";
import { type AnyTransform, isRandomizable, RandFlipd, RandomState } from "../../transforms/random.js";
import { Resized } from "../../transforms/spatial.js";
import { fromCOrder, MetaTensor, toCOrder } from "../../transforms/tensor.js";
import {
  BasicTrainTask,
  type BasicTrainTaskOptions,
  type IterationContext,
  parseThreads,
  type TrainItem,
  thresholdedDice,
} from "./basic-train-task.js";

// ---------------------------------------------------------------------------------------------------
// The model being trained, forward only

/**
 * Forward passes of a network with a trainer's current weights: a graph whose parameters are inputs (as in
 * the step graph), built and opened once per trainer and input shape, fed the trainer's live values. The
 * simplest correct way to run the model mid-training: no export per step, no weights copied into a new file.
 */
class CurrentModel {
  private session: Promise<ort.InferenceSession> | undefined;
  private names: string[] = [];

  constructor(
    private readonly network: Network,
    private readonly inputShape: number[],
  ) {}

  /** Opened on the trainer's device and threads, like its step session. */
  private open(trainer: Trainer): Promise<ort.InferenceSession> {
    if (!this.session) {
      const g = new TrainingGraphBuilder({ name: `${this.network.constructor.name}_forward` });
      const x = g.input("image", "float32", this.inputShape);
      g.output(this.network.build(g, x), "pred");
      this.names = [...g.parameters.keys()];
      this.session = createPlacedSession(serializeGraph(prune(g.graph())), trainer.device, {
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        interOpNumThreads: 1,
        ...(trainer.threads !== undefined ? { intraOpNumThreads: trainer.threads } : {}),
        logSeverityLevel: 3,
        extra: { session: { set_denormal_as_zero: "1" } },
      }).then((placed) => placed.session);
    }
    return this.session;
  }

  async forward(trainer: Trainer, image: Float32Array): Promise<Float32Array> {
    const session = await this.open(trainer);
    const params = trainer.parameters();
    const feeds: Record<string, ort.Tensor> = { image: new ort.Tensor("float32", image, this.inputShape) };
    for (const name of this.names) {
      const p = params.get(name);
      if (!p) {
        throw new Error(`CurrentModel: the trainer has no parameter '${name}'`);
      }
      feeds[name] = new ort.Tensor("float32", p.data, [...p.shape]);
    }
    const out = await session.run(feeds);
    return out.pred!.data as Float32Array;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) {
      await (await s).release();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Interaction

export interface InteractionOptions {
  /** Per sample, before any forward pass: the first clicks and their signal channels (from the label). */
  initTransforms: Transform[];
  /** Per sample, after each forward pass (`pred` set): new clicks where the prediction is wrong, signals. */
  clickTransforms: Transform[];
  /** Forward passes per batch (each followed by the click transforms). */
  maxInteractions: number;
  /** Probability that a batch gets simulated clicks at all (default 1); otherwise its guidance channels are
   * zeroed (DeepEdit's automatic mode). */
  deepgrowProbability?: number;
  /** Training (the click probability falls from 1 by 1/max per interaction) or validation (always 1). */
  train?: boolean;
  /** Data key of the click probability the click transforms read (default "probability"). */
  keyProbability?: string;
  /** Network output -> what the click transforms read as `pred`: sigmoid probabilities (default) or argmax. */
  output?: "sigmoid" | "argmax";
  /** Intensity channels kept in front of the guidance channels (default 1). */
  numberIntensityCh?: number;
  seed?: number;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * MONAI's deepgrow/deepedit `Interaction` (an iteration update of the trainer): for each batch, the first
 * clicks from the label, then up to `maxInteractions` rounds of a forward pass of the model being trained
 * and a new simulated click where its prediction disagrees with the label; the step trains on the last
 * round's input, so the network learns to use clicks placed where it errs.
 */
export class Interaction {
  readonly init: Compose;
  readonly clicks: Compose;
  readonly R: RandomState;
  private readonly models = new WeakMap<Trainer, CurrentModel>();
  private readonly opened: CurrentModel[] = [];

  constructor(readonly options: InteractionOptions) {
    this.init = new Compose(options.initTransforms);
    this.clicks = new Compose(options.clickTransforms);
    this.R = new RandomState(options.seed ?? 0);
    for (const t of [...options.initTransforms, ...options.clickTransforms]) {
      if (isRandomizable(t)) {
        t.setRandomState(this.R.nextSeed());
      }
    }
  }

  private model(ctx: IterationContext): CurrentModel {
    let m = this.models.get(ctx.trainer);
    if (!m) {
      m = new CurrentModel(ctx.network, ctx.inputShape);
      this.models.set(ctx.trainer, m);
      this.opened.push(m);
    }
    return m;
  }

  /** The update BasicTrainTask calls before each step. */
  async update(batch: Batch<"image" | "label">, ctx: IterationContext): Promise<Batch<"image" | "label">> {
    const n = batch.image.shape[0]!;
    const samples: Data[] = [];
    for (let i = 0; i < n; i++) {
      const image = unstack(batch.image, i);
      const label = unstack(batch.label, i);
      samples.push((await this.init.call({ image, label })) as Data);
    }
    const {
      maxInteractions,
      deepgrowProbability = 1,
      train = true,
      keyProbability = "probability",
      output = "sigmoid",
      numberIntensityCh = 1,
    } = this.options;
    if (this.R.rand() < deepgrowProbability) {
      const model = this.model(ctx);
      for (let j = 0; j < maxInteractions; j++) {
        const logits = await model.forward(ctx.trainer, stack(samples, ctx.inputShape));
        const per = logits.length / n;
        for (let i = 0; i < n; i++) {
          const label = samples[i]!.label as MetaTensor;
          const spatial = label.spatialShape;
          const pred = predFrom(logits.subarray(i * per, (i + 1) * per), spatial, output);
          const d = { ...samples[i]!, pred, [keyProbability]: train ? 1 - j / maxInteractions : 1 };
          samples[i] = (await this.clicks.call(d)) as Data;
        }
      }
    } else {
      for (const s of samples) {
        const t = s.image as MetaTensor;
        const data = t.data.slice();
        data.fill(0, numberIntensityCh * t.channelSize);
        s.image = t.derive({ data, shape: t.shape });
      }
    }
    return { ...batch, image: { data: stack(samples, ctx.inputShape), shape: [...ctx.inputShape] } };
  }

  async release(): Promise<void> {
    await Promise.all(this.opened.splice(0).map((m) => m.release()));
  }
}

export interface InteractiveEvaluation {
  network: Network;
  items: TrainItem[];
  /** Load and resize, then the first clicks and their signals (or none: the automatic mode). */
  pipe: Transform[];
  /** After each forward pass (`pred` set): a new click where the prediction is wrong, signals. */
  clickTransforms: Transform[];
  output: "sigmoid" | "argmax";
  /** The request: `max_val_interactions` (rounds of forward pass + click before the scored prediction), `device`
   * (unless `device` is given) and `threads`. */
  req: Record<string, unknown>;
  device?: Device | undefined;
}

/**
 * MONAI's validation Interaction (max_val_interactions): each item gets its first clicks, then `rounds` rounds of
 * a forward pass of `network` (its current weights) and a new click where that prediction disagrees with the
 * label (always: the click probability is 1 in validation); the Dice of the last prediction counts, mean over
 * the foreground labels (sigmoid: logits > 0; argmax: each channel value >= 1). The click transforms are seeded
 * the same way on every call, so successive validations compare models on the same clicks as far as their
 * predictions allow.
 */
export async function interactiveEvaluate(e: InteractiveEvaluation): Promise<number> {
  if (e.items.length === 0) {
    throw new Error("interactiveEvaluate: no items");
  }
  const rounds = Math.max(0, Number(e.req.max_val_interactions ?? 0) || 0);
  const device = e.device ?? parseDevice(e.req.device);
  const threads = parseThreads(e.req.threads);
  const pipe = new Compose(e.pipe);
  const clicks = new Compose(e.clickTransforms);
  const seeds = new RandomState(4321);
  for (const t of [...e.pipe, ...e.clickTransforms]) {
    if (isRandomizable(t)) {
      t.setRandomState(seeds.nextSeed());
    }
  }
  const sessions = new Map<string, ort.InferenceSession>();
  const forward = async (image: MetaTensor): Promise<Float32Array> => {
    const shape = [1, ...image.shape];
    const key = shape.join("x");
    let session = sessions.get(key);
    if (!session) {
      const placed = await createPlacedSession(e.network.toOnnx({ inputShape: shape }), device, {
        graphOptimizationLevel: "all",
        logSeverityLevel: 3,
        ...(threads !== undefined ? { intraOpNumThreads: threads } : {}),
        extra: { session: { set_denormal_as_zero: "1" } },
      });
      session = placed.session;
      sessions.set(key, session);
    }
    const out = await session.run({ image: new ort.Tensor("float32", toCOrder(image), shape) });
    return out.pred!.data as Float32Array;
  };
  let sum = 0;
  try {
    for (const item of e.items) {
      let d = (await pipe.call({ image: item.image, label: item.label })) as Data;
      const label = d.label as MetaTensor;
      const spatial = label.spatialShape;
      for (let j = 0; j < rounds; j++) {
        const pred = predFrom(await forward(d.image as MetaTensor), spatial, e.output);
        d = (await clicks.call({ ...d, pred, probability: 1 })) as Data;
      }
      const last = predFrom(await forward(d.image as MetaTensor), spatial, e.output);
      sum +=
        e.output === "sigmoid" ? thresholdedDice(last.data, label.data, 0.5) : meanLabelDice(last.data, label.data);
    }
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release()));
  }
  return sum / e.items.length;
}

/** Mean Dice over the label values >= 1 the label holds (1 when it holds none), of an argmax prediction. */
function meanLabelDice(pred: Float32Array, label: Float32Array): number {
  const values = [...new Set(Array.from(label, (v) => Math.round(v)))].filter((v) => v >= 1);
  if (values.length === 0) {
    return 1;
  }
  let sum = 0;
  for (const v of values) {
    let inter = 0;
    let p = 0;
    let t = 0;
    for (let i = 0; i < pred.length; i++) {
      const a = Math.round(pred[i]!) === v;
      const b = Math.round(label[i]!) === v;
      inter += a && b ? 1 : 0;
      p += a ? 1 : 0;
      t += b ? 1 : 0;
    }
    sum += p + t === 0 ? 1 : (2 * inter) / (p + t);
  }
  return sum / values.length;
}

function unstack(t: BatchTensor, i: number): MetaTensor {
  const shape = t.shape.slice(1);
  const per = t.data.length / t.shape[0]!;
  return fromCOrder(t.data.subarray(i * per, (i + 1) * per), shape);
}

function stack(samples: Data[], shape: number[]): Float32Array {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(per * samples.length);
  samples.forEach((s, i) => {
    const t = s.image as MetaTensor;
    if (t.data.length !== per) {
      throw new Error(`Interaction: sample image [${t.shape}] does not fit the step input [${shape}]`);
    }
    out.set(toCOrder(t), i * per);
  });
  return out;
}

/** One sample's logits (C order, [C, ...spatial]) as the `pred` the click transforms read. */
function predFrom(logits: Float32Array, spatial: number[], output: "sigmoid" | "argmax"): MetaTensor {
  const size = spatial.reduce((a, b) => a * b, 1);
  const channels = logits.length / size;
  const t = fromCOrder(logits, [channels, ...spatial]);
  const out = new Float32Array(size);
  if (output === "sigmoid") {
    for (let i = 0; i < size; i++) {
      out[i] = sigmoid(t.data[i]!);
    }
  } else {
    for (let i = 0; i < size; i++) {
      let best = 0;
      for (let c = 1; c < channels; c++) {
        if (t.data[c * size + i]! > t.data[best * size + i]!) {
          best = c;
        }
      }
      out[i] = best;
    }
  }
  return new MetaTensor({ data: out, shape: [1, ...spatial] });
}

// ---------------------------------------------------------------------------------------------------
// TrainDeepGrow

export interface TrainDeepGrowOptions extends BasicTrainTaskOptions {
  /** Builds the network: inChannels 3 (image, foreground, background clicks), outChannels 1. */
  network: () => Network;
  dimension: 2 | 3;
  /** The network's input spatial size: every image and label is resized to it (as the infer task does). */
  modelSize: number[];
  /** Simulated interactions per training batch (MONAI Label's max_train_interactions; default 5). */
  maxTrainInteractions?: number;
  /**
   * Clicks in validation after the first (MONAI Label's max_val_interactions; default 5): the published model
   * is the one that does best after that many corrections. 0 scores the first click alone.
   */
  maxValInteractions?: number;
  /** Sigma of the click signals (default 2). */
  sigma?: number;
}

/**
 * MONAI Label's TrainDeepGrow: a BasicTrainTask whose iteration update is the Interaction with deepgrow's
 * click transforms (AddInitialSeedPointd, then FindDiscrepancyRegionsd, AddRandomGuidanced and
 * AddGuidanceSignald after each forward pass). The network sees the image and two click channels and learns
 * a sigmoid mask with Dice loss (squared prediction). Items are images of the structure with their binary
 * labels (2D slices for dimension 2, volumes for 3).
 */
export class TrainDeepGrow extends BasicTrainTask {
  readonly opts: TrainDeepGrowOptions;
  private interaction: Interaction | null = null;

  constructor(opts: TrainDeepGrowOptions) {
    super(opts);
    this.opts = opts;
  }

  override config(): Record<string, unknown> {
    return {
      max_train_interactions: this.opts.maxTrainInteractions ?? 5,
      max_val_interactions: this.opts.maxValInteractions ?? 5,
      ...super.config(),
    };
  }

  network(): Network {
    return this.opts.network();
  }

  override lossFunction(): (g: GraphBuilder, pred: Value, target: Value) => Value {
    return (g, pred, target) => diceLoss(g, pred, target, { sigmoid: true, squaredPred: true });
  }

  /** Load, channel first, (a slice or slab of a whole volume), resize to the model, intensity to [0, 1]. */
  loadTransforms(random = false): AnyTransform[] {
    const depth = this.opts.dimension === 2 ? 1 : this.opts.modelSize[2]!;
    return [
      new LoadImaged({ keys: ["image", "label"] }),
      new EnsureChannelFirstd({ keys: ["image", "label"] }),
      new RandDepthCropd({ keys: ["image", "label"], depth, random }),
      new Resized({ keys: ["image", "label"], spatialSize: this.opts.modelSize, mode: ["area", "nearest-exact"] }),
      new ScaleIntensityd({ keys: "image" }),
    ];
  }

  trainPreTransforms(): AnyTransform[] {
    return [...this.loadTransforms(true), new RandFlipd({ keys: ["image", "label"], prob: 0.5, spatialAxis: 0 })];
  }

  /**
   * Validation as MONAI's: the first click (fixed seed), then `max_val_interactions` rounds of a click where the
   * model errs; the Dice after the last counts.
   */
  override evaluate(
    network: Network,
    items: TrainItem[],
    req: Record<string, unknown>,
    using: { device?: Device } = {},
  ) {
    const [pipe, clickTransforms] = [this.valPreTransforms(), this.clickTransforms()];
    return interactiveEvaluate({ network, items, req, device: using.device, pipe, clickTransforms, output: "sigmoid" });
  }

  /** Load and resize, then the first clicks and their signals: what validation starts from (seeded there). */
  valPreTransforms(): Transform[] {
    return [...(this.loadTransforms() as Transform[]), ...this.initTransforms()];
  }

  initTransforms(): Transform[] {
    return [
      ...(this.opts.dimension === 3 ? [new FindAllValidSlicesd({})] : []),
      new AddInitialSeedPointd({}),
      new AddGuidanceSignald({ sigma: this.opts.sigma ?? 2 }),
    ];
  }

  clickTransforms(): Transform[] {
    return [
      new FindDiscrepancyRegionsd({}),
      new AddRandomGuidanced({}),
      new AddGuidanceSignald({ sigma: this.opts.sigma ?? 2 }),
    ];
  }

  override trainPostTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }

  override trainIterationUpdate(req: Record<string, unknown>) {
    const interaction = new Interaction({
      initTransforms: this.initTransforms(),
      clickTransforms: this.clickTransforms(),
      maxInteractions: Number(req.max_train_interactions),
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
