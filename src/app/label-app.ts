import type { Strategy } from "../tasks/activelearning/strategy.js";
import type { InferTask } from "../tasks/infer/infer-task.js";
import type { ScoringMethod } from "../tasks/scoring/scoring-method.js";
import type { TrainTask } from "../tasks/train/basic-train-task.js";

/**
 * The app an author writes (MONAI Label's MONAILabelApp). The inference, training, active-learning
 * and scoring issues add the task types; until then an app declares its identity and labels, and
 * every init method returns nothing.
 */
export interface AppContext {
  appDir: string;
  studiesDir: string;
  /** `--conf KEY VALUE` pairs. */
  conf: Record<string, string>;
}

export interface AppInfo {
  name: string;
  description: string;
  version: string;
  labels: string[];
  models: Record<string, unknown>;
  trainers: Record<string, unknown>;
  strategies: Record<string, unknown>;
  scoring: Record<string, unknown>;
}

export class LabelApp {
  name = "labelgraph";
  description = "A labelgraph app";
  version = "0.1.0";
  labels: string[] = [];

  constructor(readonly context: AppContext) {}

  initInfers(): Record<string, InferTask> {
    return {};
  }

  #infers: Record<string, InferTask> | null = null;
  /** initInfers(), called once and kept (tasks hold state such as their model path). */
  infers(): Record<string, InferTask> {
    this.#infers ??= this.initInfers();
    return this.#infers;
  }
  initTrainers(): Record<string, TrainTask> {
    return {};
  }

  #trainers: Record<string, TrainTask> | null = null;
  /** initTrainers(), called once and kept. */
  trainers(): Record<string, TrainTask> {
    this.#trainers ??= this.initTrainers();
    return this.#trainers;
  }
  /** MONAI's default is {random: Random()}; an app names its strategies here (see tasks/activelearning). */
  initStrategies(): Record<string, Strategy> {
    return {};
  }

  #strategies: Record<string, Strategy> | null = null;
  /** initStrategies(), called once and kept. */
  strategies(): Record<string, Strategy> {
    this.#strategies ??= this.initStrategies();
    return this.#strategies;
  }
  initScoringMethods(): Record<string, ScoringMethod> {
    return {};
  }

  #scoringMethods: Record<string, ScoringMethod> | null = null;
  /** initScoringMethods(), called once and kept. */
  scoringMethods(): Record<string, ScoringMethod> {
    this.#scoringMethods ??= this.initScoringMethods();
    return this.#scoringMethods;
  }

  info(): AppInfo {
    return {
      name: this.name,
      description: this.description,
      version: this.version,
      labels: this.labels,
      models: Object.fromEntries(Object.entries(this.infers()).filter(([, t]) => t.isValid())),
      trainers: this.trainers(),
      strategies: this.strategies(),
      scoring: this.scoringMethods(),
    };
  }
}
