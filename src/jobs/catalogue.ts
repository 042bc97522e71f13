/**
 * The typed job catalogue: every job kind, its JSON params and its JSON result. Each kind has exactly
 * one handler (checked when the queue is built); payloads are plain JSON so that a Redis-backed queue
 * can carry them unchanged.
 */
export type JobCatalogue = {
  /** Zip of final-labeled pairs plus metadata.json (MONAI's GET /datastore/dataset). */
  exportDataset: {
    params: { limitCases?: number | null };
    result: { key: string; images: number; size: number };
  };
  /** MONAI's batch inference: one model over a set of images, each result saved as a label. */
  /** MONAI's train task: one model, its request params; the result is MONAI's train_stats plus the history. */
  train: {
    params: { model: string; params?: Record<string, unknown> | null };
    result: unknown;
  };
  batchInference: {
    params: {
      model: string;
      /** "all", "labeled", "unlabeled", or a list of image ids. */
      images: "all" | "labeled" | "unlabeled" | string[];
      labelTag?: string | null;
      params?: Record<string, unknown> | null;
      /** > 0: only the first N images (sorted by id). */
      maxBatchSize?: number | null;
    };
    /** Per image: the saved label's tag and version, or {} when it failed (as MONAI reports it). */
    result: Record<string, { tag?: string; version?: number; error?: string }>;
  };
  /** One of the app's scoring methods (MONAI's POST /scoring/{method}); scores land in image or label info. */
  scoring: {
    params: {
      method: string;
      params?: Record<string, unknown> | null;
      /** Only these images; null: every image the method applies to. */
      imageIds?: string[] | null;
      /** What queued it: a client, the server start, a final label, a new model version. */
      trigger?: "api" | "start" | "label" | "model" | null;
    };
    /** The method's summary (Dice: {id: dice}; Epistemic: {total, skipped, executed, latency} ...). */
    result: Record<string, unknown>;
  };
};

export type JobKindOf<C> = Extract<keyof C, string>;
export type CatalogueShape = Record<string, { params: unknown; result: unknown }>;

export interface JobContext {
  readonly id: string;
  /** Aborted when the job is cancelled or the queue stops. */
  readonly signal: AbortSignal;
  /** Reports progress as a fraction in [0, 1] with an optional message. */
  progress(fraction: number, message?: string): void;
  /** Stores a partial result (e.g. a training run's metrics so far) that survives a restart. */
  report(partial: unknown): void;
}

export type JobHandler<P, R> = (params: P, ctx: JobContext) => Promise<R>;
export type JobHandlers<C extends CatalogueShape> = {
  [K in JobKindOf<C>]: JobHandler<C[K]["params"], C[K]["result"]>;
};
