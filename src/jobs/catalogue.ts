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
};

export type JobKindOf<C> = Extract<keyof C, string>;
export type CatalogueShape = Record<string, { params: unknown; result: unknown }>;

export interface JobContext {
  readonly id: string;
  /** Aborted when the job is cancelled or the queue stops. */
  readonly signal: AbortSignal;
  /** Reports progress as a fraction in [0, 1] with an optional message. */
  progress(fraction: number, message?: string): void;
}

export type JobHandler<P, R> = (params: P, ctx: JobContext) => Promise<R>;
export type JobHandlers<C extends CatalogueShape> = {
  [K in JobKindOf<C>]: JobHandler<C[K]["params"], C[K]["result"]>;
};
