import type { InferTask } from "../tasks/infer/infer-task.js";

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
  initTrainers(): Record<string, unknown> {
    return {};
  }
  initStrategies(): Record<string, unknown> {
    return {};
  }
  initScoringMethods(): Record<string, unknown> {
    return {};
  }

  info(): AppInfo {
    return {
      name: this.name,
      description: this.description,
      version: this.version,
      labels: this.labels,
      models: Object.fromEntries(Object.entries(this.infers()).filter(([, t]) => t.isValid())),
      trainers: this.initTrainers(),
      strategies: this.initStrategies(),
      scoring: this.initScoringMethods(),
    };
  }
}
