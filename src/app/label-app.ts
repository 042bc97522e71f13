import { join } from "node:path";
import type { z } from "zod";
import type { DatastoreService, SaveLabelInput } from "../datastore/datastore.service.js";
import type { LabelRecord } from "../datastore/types.js";
import type { Logger } from "../logger.js";
import { Random } from "../tasks/activelearning/random.js";
import type { Strategy } from "../tasks/activelearning/strategy.js";
import { type InferTask, labelNames } from "../tasks/infer/infer-task.js";
import type { ScoringMethod } from "../tasks/scoring/scoring-method.js";
import type { TrainTask } from "../tasks/train/basic-train-task.js";
import { BatchInferTask } from "./batch-infer.js";
import { type AppConf, appConf, parseConf } from "./conf.js";
import { AppLoadError } from "./errors.js";

export { BatchInferTask } from "./batch-infer.js";
export * from "./conf.js";
export { AppLoadError } from "./errors.js";

export interface AppContext {
  appDir: string;
  studiesDir: string;
  /** `--conf KEY VALUE` pairs, as given; `app.conf` is the parsed form. */
  conf: Record<string, string>;
}

/** How the studies folder is served (MONAI's LocalDatastore arguments); `initDatastore` may change them. */
export interface DatastoreSettings {
  studiesDir: string;
  extensions: string[];
  autoReload: boolean;
  readOnly: boolean;
}

/** What the server hands the app once it is built (MONAI's `self.datastore()`). */
export interface AppServices {
  datastore: DatastoreService;
  log: Logger;
}

export interface AppInfo {
  name: string;
  description: string;
  version: string;
  labels: string[];
  models: Record<string, InferTask>;
  trainers: Record<string, TrainTask>;
  strategies: Record<string, Strategy>;
  scoring: Record<string, ScoringMethod>;
}

/** MONAI's `PUT /datastore/label` response: `{image, label}` plus whatever `onSaveLabel` returned. */
export interface SavedLabel {
  label: LabelRecord;
  response: Record<string, unknown>;
}

/**
 * The app an author writes (MONAI Label's MONAILabelApp). The server calls, in MONAI's order: the conf
 * conf schema, `initDatastore`, `initInfers`, `initTrainers`, `initStrategies`, `initScoringMethods`,
 * `initBatchInfer` (all from `init()`, at start, so a broken app fails before serving), then
 * `onInitComplete()` once everything runs. `conf.models`, `skip_trainers`, `skip_strategies` and
 * `skip_scoring` are applied here, so apps return everything they offer.
 */
export class LabelApp<Conf extends AppConf = AppConf> {
  name = "labelgraph";
  description = "A labelgraph app";
  version = "0.1.0";
  labels: string[] = [];

  constructor(readonly context: AppContext) {}

  /**
   * The schema of this app's `--conf`: `appConf` (MONAI's keys shared by every app: `models`, `preload`,
   * `skip_trainers`, `skip_strategies`, `skip_scoring`, `use_pretrained_model`), which an app extends with its
   * own keys (`appConf.extend({ ... })`).
   */
  confSchema(): z.ZodType<Conf> {
    return appConf as unknown as z.ZodType<Conf>;
  }

  #conf: Conf | null = null;
  /** `--conf`, parsed by `confSchema()`; a value it rejects throws AppConfError (at start: `init()` reads it). */
  get conf(): Conf {
    this.#conf ??= parseConf(this.name, this.confSchema(), this.context.conf);
    return this.#conf;
  }

  get appDir(): string {
    return this.context.appDir;
  }

  get studiesDir(): string {
    return this.context.studiesDir;
  }

  /** `<app>/model`, where MONAI apps keep their weights. */
  get modelDir(): string {
    return join(this.context.appDir, "model");
  }

  /** `<modelDir>/<name>.onnx`. */
  modelPath(name: string): string {
    return join(this.modelDir, `${name}.onnx`);
  }

  initDatastore(settings: DatastoreSettings): DatastoreSettings {
    return settings;
  }

  initInfers(): Record<string, InferTask> {
    return {};
  }

  initTrainers(): Record<string, TrainTask> {
    return {};
  }

  /** MONAI's default: {random}. */
  initStrategies(): Record<string, Strategy> {
    return { random: new Random() };
  }

  initScoringMethods(): Record<string, ScoringMethod> {
    return {};
  }

  /** MONAI's default BatchInferTask; null turns batch inference off. */
  initBatchInfer(): BatchInferTask | null {
    return new BatchInferTask();
  }

  /** Runs once the server is up (MONAI's on_init_complete); the server itself already runs auto-scoring. */
  onInitComplete(): void | Promise<void> {}

  /** Its result is merged into the save response (MONAI's on_save_label). */
  onSaveLabel(_imageId: string, _labelId: string): Record<string, unknown> | Promise<Record<string, unknown>> {
    return {};
  }

  #allInfers: Record<string, InferTask> | null = null;
  #infers: Record<string, InferTask> | null = null;
  /** initInfers(), once, restricted to `conf.models`; a model missing from the app is an error. */
  infers(): Record<string, InferTask> {
    if (!this.#infers) {
      this.#allInfers = this.initInfers();
      const selected = this.conf.models;
      if (selected !== "all") {
        const unknown = selected.filter((m) => !(m in (this.#allInfers as Record<string, InferTask>)));
        if (unknown.length > 0) {
          const offered = Object.keys(this.#allInfers);
          throw new AppLoadError(
            `--conf models: ${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not a model of app ${this.name}` +
              ` (it offers ${offered.length ? offered.join(", ") : "none"}; or use all)`,
          );
        }
      }
      this.#infers = this.#selected(this.#allInfers);
    }
    return this.#infers;
  }

  /** Keeps what belongs to a selected model, and what is named after no model at all. */
  #selected<T>(tasks: Record<string, T>): Record<string, T> {
    const selected = this.conf.models;
    if (selected === "all") {
      return tasks;
    }
    const models = this.#allInfers ?? {};
    return Object.fromEntries(Object.entries(tasks).filter(([name]) => !(name in models) || selected.includes(name)));
  }

  #trainers: Record<string, TrainTask> | null = null;
  /** initTrainers(), once; none with `skip_trainers`, and only the selected models' trainers. */
  trainers(): Record<string, TrainTask> {
    if (!this.#trainers) {
      this.infers();
      this.#trainers = this.conf.skip_trainers ? {} : this.#selected(this.initTrainers());
    }
    return this.#trainers;
  }

  #strategies: Record<string, Strategy> | null = null;
  /** initStrategies(), once; with `skip_strategies` only MONAI's default random remains. */
  strategies(): Record<string, Strategy> {
    this.#strategies ??= this.conf.skip_strategies ? { random: new Random() } : this.initStrategies();
    return this.#strategies;
  }

  #scoringMethods: Record<string, ScoringMethod> | null = null;
  /** initScoringMethods(), once; none with `skip_scoring`. */
  scoringMethods(): Record<string, ScoringMethod> {
    this.#scoringMethods ??= this.conf.skip_scoring ? {} : this.initScoringMethods();
    return this.#scoringMethods;
  }

  #batchInfer: BatchInferTask | null | undefined;
  batchInfer(): BatchInferTask | null {
    if (this.#batchInfer === undefined) {
      this.#batchInfer = this.initBatchInfer();
    }
    return this.#batchInfer;
  }

  /** Parses the conf and runs every init method, in MONAI's order; the loader calls it at start. */
  init(): void {
    void this.conf;
    this.infers();
    this.trainers();
    this.strategies();
    this.scoringMethods();
    this.batchInfer();
  }

  #services: AppServices | null = null;
  /** Called by the server once the datastore is built. */
  attach(services: AppServices): void {
    this.#services = services;
  }

  /** The datastore (MONAI's `self.datastore()`); available once the server has started the app. */
  datastore(): DatastoreService {
    if (!this.#services) {
      throw new Error(`app ${this.name}: the datastore is available once the server has started the app`);
    }
    return this.#services.datastore;
  }

  /**
   * Saves a label and runs `onSaveLabel`: what GraphQL's saveLabel and REST's PUT /datastore/label call. The
   * label is stored before the hook runs; a hook that throws is logged and adds nothing to the response.
   */
  async saveLabel(input: SaveLabelInput): Promise<SavedLabel> {
    const label = await this.datastore().saveLabel(input);
    // MONAI's local datastore names a label after its image.
    const response: Record<string, unknown> = { image: label.imageId, label: label.imageId };
    try {
      Object.assign(response, await this.onSaveLabel(label.imageId, label.imageId));
    } catch (err) {
      this.#services?.log.error(`app ${this.name}: onSaveLabel(${label.imageId}) failed`, err);
    }
    return { label, response };
  }

  info(): AppInfo {
    return {
      name: this.name,
      description: this.description,
      version: this.version,
      // MONAI: with no labels of its own, the app's labels are its models'.
      labels:
        this.labels.length > 0
          ? this.labels
          : [...new Set(Object.values(this.infers()).flatMap((t) => labelNames(t.labels)))],
      // MONAI lists only the models whose weights exist.
      models: Object.fromEntries(Object.entries(this.infers()).filter(([, t]) => t.isValid())),
      trainers: this.trainers(),
      strategies: this.strategies(),
      scoring: this.scoringMethods(),
    };
  }
}
