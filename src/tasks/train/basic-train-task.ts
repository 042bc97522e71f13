import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { BatchTensor } from "../../data/collate.js";
import { CacheDataset } from "../../data/dataset.js";
import { type Batch, DataLoader } from "../../data/loader.js";
import { InvalidInputError } from "../../errors.js";
import { type ImportedParameters, importOnnxParameters, matchParameters, parameterRoles } from "../../graph/import.js";
import { SimpleInferer } from "../../inferers/simple.js";
import { resolveRoiSize, SlidingWindowInferer } from "../../inferers/sliding-window.js";
import type { Inferer } from "../../inferers/types.js";
import { saveCheckpoint } from "../../nn/checkpoint.js";
import { diceLoss } from "../../nn/losses.js";
import type { Network } from "../../nn/module.js";
import { Adam, type Optimizer } from "../../nn/optim.js";
import { buildTrainStep, type LossFunction, Trainer } from "../../nn/train-step.js";
import { fixedBatchPredictor, withPredictor } from "../../runtime/predictor.js";
import { type Device, parseDevice } from "../../runtime/providers.js";
import { SessionPool } from "../../runtime/session-pool.js";
import { Compose, type Data, type Transform } from "../../transforms/compose.js";
import type { AnyTransform } from "../../transforms/random.js";
import { fromCOrder, MetaTensor, toCOrder } from "../../transforms/tensor.js";

/** MONAI Label's default train config; it also defines the request parameters. */
export const DEFAULT_TRAIN_CONFIG = {
  name: "train_01",
  pretrained: true,
  device: ["cpu"],
  max_epochs: 50,
  early_stop_patience: -1,
  val_split: 0.2,
  train_batch_size: 1,
  val_batch_size: 1,
  learning_rate: 1e-4,
  val_interval: 1,
};

export interface TrainItem {
  image: string;
  label: string;
}

/** One iteration or epoch of metrics, as streamed on trainingProgress and kept in the job's history. */
export interface TrainingEvent {
  kind: "iteration" | "epoch";
  epoch: number;
  iteration: number;
  loss?: number;
  lr?: number;
  samplesPerSec?: number;
  trainDice?: number;
  valDice?: number | null;
  bestMetric?: number | null;
  bestEpoch?: number | null;
  elapsed: number;
}

export interface TrainContext {
  signal: AbortSignal;
  /** Every iteration and epoch. */
  emit(event: TrainingEvent): void;
  /** Called after a new best model was published. */
  published?(path: string): void;
  /** Something the client should know that does not stop the run (e.g. CUDA asked for, CPU used). */
  warn?(message: string): void;
}

export interface TrainRequest {
  datalist: TrainItem[];
  params: Record<string, unknown>;
}

/** MONAI's train_stats.json shape. */
export interface TrainStats {
  rank: number;
  current_iteration: number;
  current_epoch: number;
  total_epochs: number;
  total_iterations: number;
  epoch: number;
  start_ts: number;
  total_time?: string;
  current_time?: string;
  best_metric: number;
  train: { metrics: Record<string, number>; key_metric_name: string; best_metric: number; best_metric_epoch: number };
  eval: { metrics: Record<string, number>; key_metric_name: string; best_metric: number; best_metric_epoch: number };
  history: TrainingEvent[];
  /** Where the steps ran (labelgraph's addition): the device asked for, the provider used, and why if they differ. */
  device?: TrainPlacement;
}

/** What `BasicTrainTask.evaluation` gives an evaluation to run in. */
export interface EvaluationScope {
  pipe: Compose;
  pool: SessionPool;
  device: Device;
  scratch: string;
}

export interface TrainPlacement {
  device: string;
  provider: string;
  warning?: string;
}

/** What an iteration update gets: the network and the trainer holding its current weights. */
export interface IterationContext {
  network: Network;
  trainer: Trainer;
  /** The step's input shape [N, C, ...spatial] (C: the network's input channels). */
  inputShape: number[];
}

/**
 * MONAI's `train_iteration_update` handler: rewrites each training batch before its step, with the model being
 * trained at hand (deepgrow/deepedit's Interaction simulates clicks with it). The image it returns must have
 * the network's input channels.
 */
export type IterationUpdate = (
  batch: Batch<"image" | "label">,
  ctx: IterationContext,
) => Promise<Batch<"image" | "label">>;

export abstract class TrainTask {
  constructor(readonly description: string) {}
  abstract config(): Record<string, unknown>;
  info(): { description: string; config: Record<string, unknown> } {
    return { description: this.description, config: this.config() };
  }
  abstract run(request: TrainRequest, ctx: TrainContext): Promise<TrainStats>;
}

export interface BasicTrainTaskOptions {
  /** Where runs write (<modelDir>/<name>/) */
  modelDir: string;
  /** The forward-only ONNX model inference reads; the best checkpoint is published here. */
  publishPath: string;
  description: string;
  config?: Record<string, unknown>;
  labels?: string[];
  /** Pretrained weights (ONNX) to start from when nothing is published yet and `pretrained` is true. */
  loadPath?: string;
}

/** MONAI's time format in train_stats.json: H:MM:SS. */
export const hhmmss = (ms: number) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};

/** Where a training loop stands, for `trainStats`. */
export interface TrainProgress {
  iteration: number;
  epoch: number;
  maxEpochs: number;
  iterationsPerEpoch: number;
  /** Date.now() at the start. */
  started: number;
  /** Best validation key metric so far (-1 before any) and its epoch. */
  best: number;
  bestEpoch: number;
  train: { name: string; value: number };
  val: { name: string; value: number };
  history: TrainingEvent[];
  placement?: TrainPlacement;
}

/** MONAI's train_stats.json record for a loop at `p`. */
export function trainStats(p: TrainProgress): TrainStats {
  return {
    rank: 0,
    current_iteration: p.iteration,
    current_epoch: p.epoch,
    total_epochs: p.maxEpochs,
    total_iterations: p.iterationsPerEpoch,
    epoch: p.epoch,
    start_ts: Math.floor(p.started / 1000),
    current_time: hhmmss(Date.now() - p.started),
    best_metric: p.best,
    train: {
      metrics: { [p.train.name]: p.train.value },
      key_metric_name: p.train.name,
      best_metric: p.train.value,
      best_metric_epoch: p.epoch,
    },
    eval: {
      metrics: { [p.val.name]: p.val.value },
      key_metric_name: p.val.name,
      best_metric: p.best,
      best_metric_epoch: p.bestEpoch,
    },
    history: p.history,
    ...(p.placement ? { device: p.placement } : {}),
  };
}

/**
 * MONAI Label's BasicTrainTask: an app overrides network, optimizer, lossFunction, trainPreTransforms,
 * valPreTransforms and valInferer; the loop trains with one onnxruntime session.run per step (forward,
 * loss, backward and update), validates every val_interval epochs with mean Dice, and publishes the best
 * model (forward-only ONNX, the network's parameter names) to publishPath, which inference reloads.
 */
export abstract class BasicTrainTask extends TrainTask {
  readonly modelDir: string;
  readonly publishPath: string;
  readonly labels: string[];
  readonly loadPath: string | null;
  /** The config the app gave the constructor (over DEFAULT_TRAIN_CONFIG). */
  protected readonly extraConfig: Record<string, unknown>;

  constructor(opts: BasicTrainTaskOptions) {
    super(opts.description);
    this.modelDir = opts.modelDir;
    this.publishPath = opts.publishPath;
    this.labels = opts.labels ?? [];
    this.loadPath = opts.loadPath ?? null;
    this.extraConfig = opts.config ?? {};
  }

  config(): Record<string, unknown> {
    return { ...DEFAULT_TRAIN_CONFIG, ...this.extraConfig };
  }

  abstract network(req: Record<string, unknown>): Network;
  /**
   * Must give fixed-size "image" [C, ...] and "label" [1, ...] tensors (crop, e.g. RandCropByPosNegLabeld,
   * which may give several samples per image, or resize). The deterministic prefix is cached (CacheDataset).
   */
  abstract trainPreTransforms(req: Record<string, unknown>): AnyTransform[];
  abstract valPreTransforms(req: Record<string, unknown>): Transform[];

  optimizer(_req: Record<string, unknown>): Optimizer {
    return new Adam();
  }

  /** MONAI's default for one-channel segmentation: Dice on sigmoid outputs. */
  lossFunction(_req: Record<string, unknown>): LossFunction {
    return (g, pred, target) => diceLoss(g, pred, target, { sigmoid: true });
  }

  /**
   * MONAI's start: the published model when it exists, otherwise, with `pretrained`, `loadPath` (e.g. an ONNX
   * model exported from MONAI/PyTorch). Its ops must be ones labelgraph can differentiate; if not, the error
   * names them.
   */
  async initialWeights(req: Record<string, unknown>): Promise<ImportedParameters | null> {
    const candidates = [this.publishPath, ...(req.pretrained === false ? [] : this.loadPath ? [this.loadPath] : [])];
    const path = candidates.find((p) => existsSync(p));
    if (!path) {
      return null;
    }
    const imported = await importOnnxParameters(path);
    if (imported.uncovered.length > 0) {
      throw new InvalidInputError(
        `cannot fine-tune ${path}: no gradient rule for op(s) ${imported.uncovered.join(", ")}`,
      );
    }
    return imported;
  }

  /** Applied to each training batch's prediction before the train metric (MONAI: activations + discretize). */
  trainPostTransforms(_req: Record<string, unknown>): Transform[] {
    return [];
  }

  /** Names of the key metrics in train_stats.json (MONAI's train_key_metric / val_key_metric). */
  trainKeyMetric(): string {
    return "train_mean_dice";
  }
  valKeyMetric(): string {
    return "val_mean_dice";
  }

  /** MONAI's train_iteration_update (default none); see IterationUpdate. */
  trainIterationUpdate(_req: Record<string, unknown>): IterationUpdate | null {
    return null;
  }

  valInferer(_req: Record<string, unknown>): Inferer {
    return new SimpleInferer();
  }

  /** MONAI's partition_datalist: the last val_split of the list, not shuffled. */
  partitionDatalist(datalist: TrainItem[], valSplit: number): { train: TrainItem[]; val: TrainItem[] } {
    if (valSplit <= 0 || datalist.length < 2) {
      return { train: datalist, val: [] };
    }
    const nVal = Math.max(1, Math.round(datalist.length * valSplit));
    return { train: datalist.slice(0, datalist.length - nVal), val: datalist.slice(datalist.length - nVal) };
  }

  /** Keeps the datalist items this task can learn from (default: all). */
  async filterDatalist(datalist: TrainItem[]): Promise<TrainItem[]> {
    return datalist;
  }

  /** Checks what the train transforms give before the step graph is built on its shapes (default: nothing). */
  protected checkFirstBatch(_batch: Batch<"image" | "label">): void {}

  /**
   * The train key metric of one step's batch, from the network's output for it (default: Dice of the
   * trainPostTransforms output, or of logits > 0 without them); the epoch's value is the mean over its steps.
   */
  protected async batchMetric(
    pred: Float32Array,
    batch: Batch<"image" | "label">,
    trainPost: Compose | null,
  ): Promise<number> {
    return trainPost
      ? this.postDice(trainPost, pred, batch.image.shape, batch.label)
      : thresholdedDice(pred, batch.label.data);
  }

  /** An item through `pipeline`, checked to leave tensors under image and label. */
  protected async sample(pipeline: Compose, item: TrainItem): Promise<{ image: MetaTensor; label: MetaTensor }> {
    const d = (await pipeline.call({ image: item.image, label: item.label })) as Data;
    const image = d.image;
    const label = d.label;
    if (!(image instanceof MetaTensor) || !(label instanceof MetaTensor)) {
      throw new InvalidInputError("train/val pre-transforms must leave tensors under image and label");
    }
    return { image, label };
  }

  async run(request: TrainRequest, ctx: TrainContext): Promise<TrainStats> {
    const req = { ...this.config(), ...request.params };
    const maxEpochs = Number(req.max_epochs);
    const batchSize = Math.max(1, Number(req.train_batch_size));
    const lr = Number(req.learning_rate);
    const valInterval = Math.max(1, Number(req.val_interval));
    const patience = Number(req.early_stop_patience);
    const device = parseDevice(req.device);
    const threads = parseThreads(req.threads);
    if (!Number.isInteger(maxEpochs) || maxEpochs < 1) {
      throw new InvalidInputError(`max_epochs must be a positive integer, got ${req.max_epochs}`);
    }
    const usable = await this.filterDatalist(request.datalist);
    const { train, val } = this.partitionDatalist(usable, Number(req.val_split));
    if (train.length === 0) {
      throw new InvalidInputError("nothing to train on: no image has a final label this task can read");
    }
    // MONAI's CacheDataset + DataLoader: the deterministic prefix runs once per image, the random part per
    // epoch, and the next batches are prepared while the current step runs.
    const seed = typeof req.seed === "number" ? req.seed : Math.floor(Math.random() * 2 ** 31);
    const dataset = new CacheDataset(
      train.map((t) => ({ ...t })),
      this.trainPreTransforms(req),
      { cacheRate: Number(req.cache_rate ?? 1) },
    );
    const loader = new DataLoader<"image" | "label">(dataset, {
      batchSize,
      shuffle: true,
      seed,
      dropLast: dataset.length >= batchSize,
      keys: ["image", "label"],
    });
    const post = this.trainPostTransforms(req);
    const trainPost = post.length > 0 ? new Compose(post) : null;
    const firstBatch = (await loader.epoch(0)[Symbol.asyncIterator]().next()).value as
      | Batch<"image" | "label">
      | undefined;
    if (!firstBatch) {
      throw new InvalidInputError("the train transforms gave no sample");
    }
    this.checkFirstBatch(firstBatch);
    const network = this.network(req);
    const update = this.trainIterationUpdate(req);
    const inputShape = update
      ? [firstBatch.image.shape[0]!, network.inChannels, ...firstBatch.image.shape.slice(2)]
      : firstBatch.image.shape;
    const start = await this.initialWeights(req);
    if (start) {
      // By the network's own names (labelgraph's published models, MONAI exports), then by role for the ones an
      // exporter renamed (torch's reshaped PReLU slopes); other initializers of the file are graph constants. A
      // parameter found neither way is an error that names it.
      const own = network.parameters();
      const renamed = [...own.keys()].some((name) => !start.parameters.has(name));
      // Roles need the network's graph: built only when some name is missing from the file.
      const roles = renamed ? parameterRoles(network.toGraph({ inputShape }).nodes, own.keys()) : new Map();
      network.loadParameters(matchParameters(start, own, roles), { strict: true });
    }
    const step = buildTrainStep({
      network,
      inputShape,
      targetShape: firstBatch.label.shape,
      loss: this.lossFunction(req),
      optimizer: this.optimizer(req),
    });
    const trainer = new Trainer(step, { device, ...(threads === undefined ? {} : { threads }) });
    const placement = await trainer.placement();
    if (placement.warning) {
      ctx.warn?.(placement.warning);
    }
    const pool = new SessionPool(threads === undefined ? {} : { threads });
    const started = Date.now();
    const history: TrainingEvent[] = [];
    const emit = (e: TrainingEvent) => {
      history.push(e);
      ctx.emit(e);
    };
    let best = -1;
    let bestEpoch = -1;
    let lastTrainDice = 0;
    let lastValDice = 0;
    let iteration = 0;
    let epoch = 0;
    const stats = (): TrainStats =>
      trainStats({
        iteration,
        epoch,
        maxEpochs,
        iterationsPerEpoch: Math.ceil(train.length / batchSize),
        started,
        best,
        bestEpoch,
        train: { name: this.trainKeyMetric(), value: lastTrainDice },
        val: { name: this.valKeyMetric(), value: lastValDice },
        history,
        placement,
      });
    try {
      for (epoch = 1; epoch <= maxEpochs && !ctx.signal.aborted; epoch++) {
        let diceSum = 0;
        let diceN = 0;
        let t0 = performance.now();
        for await (const batch of loader.epoch(epoch)) {
          if (ctx.signal.aborted) {
            break;
          }
          if (batch.image.shape[0] !== firstBatch.image.shape[0]) {
            continue; // the static step graph takes full batches only
          }
          const b = update ? await update(batch, { network, trainer, inputShape }) : batch;
          const out = await trainer.step(b.image.data, b.label.data, lr);
          iteration++;
          const d = await this.batchMetric(out.pred, b, trainPost);
          diceSum += d;
          diceN++;
          const n = batch.image.shape[0] ?? 1;
          emit({
            kind: "iteration",
            epoch,
            iteration,
            loss: out.loss,
            lr: out.lr,
            samplesPerSec: n / ((performance.now() - t0) / 1000),
            elapsed: (Date.now() - started) / 1000,
          });
          t0 = performance.now();
        }
        lastTrainDice = diceN ? diceSum / diceN : 0;
        let valDice: number | null = null;
        if ((val.length > 0 && epoch % valInterval === 0) || ctx.signal.aborted) {
          if (val.length > 0) {
            network.loadParameters(trainer.parameters());
            valDice = await this.evaluate(network, val, req, { pool, device });
          }
        }
        const metric = valDice ?? lastTrainDice;
        lastValDice = valDice ?? lastValDice;
        if (metric > best) {
          best = metric;
          bestEpoch = epoch;
          await this.publish(network, trainer, inputShape.slice(1));
          ctx.published?.(this.publishPath);
        }
        emit({
          kind: "epoch",
          epoch,
          iteration,
          trainDice: lastTrainDice,
          valDice,
          bestMetric: best,
          bestEpoch,
          elapsed: (Date.now() - started) / 1000,
        });
        await this.writeStats(stats());
        if (patience > 0 && epoch - bestEpoch >= patience) {
          break;
        }
      }
      epoch = Math.min(epoch, maxEpochs);
      // MONAI's checkpoint_final: weights and optimizer state, to resume or inspect the run.
      await mkdir(join(this.modelDir, String(req.name)), { recursive: true });
      await saveCheckpoint(join(this.modelDir, String(req.name), "checkpoint_final.lgckpt"), trainer.state());
      const final = { ...stats(), total_time: hhmmss(Date.now() - started) };
      delete final.current_time;
      await this.writeStats(final);
      return final;
    } finally {
      await loader.close();
      trainer.release();
      await pool.close({ force: true });
    }
  }

  /**
   * Mean Dice of `network` (its current weights) over `items` run through valPreTransforms and the val inferer,
   * output thresholded at 0.5 after a sigmoid: the validation of each val_interval, public so that scripts can
   * score held-out data the same way. `val_batch_size` images of the same shape go through the inferer together
   * (MONAI's val DataLoader batch); the forward graph, static in shape, is written once per image shape, with the
   * sliding window's `swBatchSize` or the batch as its batch size (a smaller last call is zero-padded).
   */
  async evaluate(
    network: Network,
    items: TrainItem[],
    req: Record<string, unknown>,
    using: { pool?: SessionPool; device?: Device } = {},
  ): Promise<number> {
    return this.evaluation(items, req, using, (scope) => this.evaluateIn(network, items, req, scope));
  }

  /**
   * What an `evaluate` runs in: valPreTransforms as one Compose, the session pool (the caller's, or one of its
   * own closed afterwards), the device, and a scratch folder for the forward graphs, removed afterwards.
   */
  protected async evaluation<T>(
    items: TrainItem[],
    req: Record<string, unknown>,
    using: { pool?: SessionPool; device?: Device },
    fn: (scope: EvaluationScope) => Promise<T>,
  ): Promise<T> {
    if (items.length === 0) {
      throw new InvalidInputError("nothing to evaluate: no items");
    }
    const pipe = new Compose(this.valPreTransforms(req));
    const pool = using.pool ?? new SessionPool({});
    const device = using.device ?? parseDevice(req.device);
    const scratch = await mkdtemp(join(tmpdir(), "labelgraph-val-"));
    try {
      return await fn({ pipe, pool, device, scratch });
    } finally {
      if (!using.pool) {
        await pool.close({ force: true });
      }
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private async evaluateIn(
    network: Network,
    val: TrainItem[],
    req: Record<string, unknown>,
    { pipe, pool, device, scratch }: EvaluationScope,
  ): Promise<number> {
    const valBatchSize = Math.max(1, Number(req.val_batch_size) || 1);
    const version = `${Date.now()}-${Math.random()}`;
    const models = new Map<string, string>();
    let sum = 0;
    let pending: { image: MetaTensor; label: MetaTensor }[] = [];
    const flush = async () => {
      if (pending.length === 0) {
        return;
      }
      const batch = pending;
      pending = [];
      const first = batch[0]!.image;
      const inferer = this.valInferer(req);
      // The forward graph has static shapes: the window for a sliding window, else the whole image.
      const sliding = inferer instanceof SlidingWindowInferer;
      const spatial = sliding ? resolveRoiSize(inferer.roiSize, first.spatialShape) : first.spatialShape;
      const graphBatch = sliding ? inferer.swBatchSize : batch.length;
      const inputShape = [graphBatch, first.channels, ...spatial];
      const key = inputShape.join("x");
      let path = models.get(key);
      if (!path) {
        path = join(scratch, `val-${key}.onnx`);
        await writeFile(path, network.toOnnx({ inputShape }));
        models.set(key, path);
      }
      const per = first.data.length;
      const input = new Float32Array(per * batch.length);
      for (const [b, { image }] of batch.entries()) {
        input.set(toCOrder(image), b * per);
      }
      const out = await withPredictor(pool, { path, version: `${key}-${version}`, device }, (predictor) =>
        inferer.infer(
          { data: input, shape: [batch.length, ...first.shape] },
          fixedBatchPredictor(predictor, graphBatch),
        ),
      );
      const perOut = out.data.length / batch.length;
      batch.forEach(({ label }, b) => {
        sum += thresholdedDice(out.data.subarray(b * perOut, (b + 1) * perOut), toCOrder(label));
      });
    };
    for (const item of val) {
      const sample = await this.sample(pipe, item);
      const head = pending[0]?.image;
      if (
        head &&
        (head.shape.length !== sample.image.shape.length || head.shape.some((v, i) => v !== sample.image.shape[i]))
      ) {
        await flush();
      }
      pending.push(sample);
      if (pending.length >= valBatchSize) {
        await flush();
      }
    }
    await flush();
    return sum / val.length;
  }

  /** Train Dice after the app's post-transforms (their output counts as foreground where > 0). */
  private async postDice(
    post: Compose,
    logits: Float32Array,
    imageShape: number[],
    label: BatchTensor,
  ): Promise<number> {
    const n = imageShape[0] ?? 1;
    const per = logits.length / n;
    const perLabel = label.data.length / n;
    const spatial = imageShape.slice(2);
    const channels = per / spatial.reduce((a, b) => a * b, 1);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const pred = fromCOrder(logits.subarray(i * per, (i + 1) * per), [channels, ...spatial]);
      const target = fromCOrder(label.data.subarray(i * perLabel, (i + 1) * perLabel), label.shape.slice(1));
      const d = (await post.call({ pred, label: target })) as Data;
      const p = d.pred instanceof MetaTensor ? d.pred.data : pred.data;
      sum += thresholdedDice(p, target.data, 0);
    }
    return sum / n;
  }

  /** Writes the forward-only model atomically: inference sees the old file or the new one, never half. */
  private async publish(network: Network, trainer: Trainer, imageShape: number[]): Promise<void> {
    network.loadParameters(trainer.parameters());
    await mkdir(dirname(this.publishPath), { recursive: true });
    const tmp = `${this.publishPath}.tmp-${process.pid}-${Date.now()}`;
    await writeFile(tmp, network.toOnnx({ inputShape: [1, ...imageShape] }));
    await rename(tmp, this.publishPath);
  }

  private async writeStats(stats: TrainStats): Promise<void> {
    const path = join(this.modelDir, "train_stats.json");
    await mkdir(this.modelDir, { recursive: true });
    const { history: _history, ...rest } = stats;
    await writeFile(`${path}.tmp`, JSON.stringify(rest, null, 2));
    await rename(`${path}.tmp`, path);
  }
}

/**
 * The `threads` request parameter (labelgraph's, not MONAI's): intra-op threads for the step and validation
 * sessions, e.g. to run two trainings side by side; default onnxruntime's (all cores).
 */
export function parseThreads(value: unknown): number | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidInputError(`threads must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * Dice of `pred > threshold` (default 0: sigmoid(logits) > 0.5) against a 0/1 target (one channel), as MONAI's
 * DiceMetric on thresholded output; 1 when both are empty.
 */
export function thresholdedDice(pred: ArrayLike<number>, target: ArrayLike<number>, threshold = 0): number {
  let inter = 0;
  let p = 0;
  let t = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = (pred[i] ?? 0) > threshold ? 1 : 0;
    const b = (target[i] ?? 0) > 0.5 ? 1 : 0;
    inter += a * b;
    p += a;
    t += b;
  }
  return p + t === 0 ? 1 : (2 * inter) / (p + t);
}
