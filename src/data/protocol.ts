import type { PreparedSample } from "./collate.js";
import type { TransformFactory } from "./pipeline.js";

/** workerData of a DataLoader worker. */
export interface DataWorkerInit {
  transform: TransformFactory;
}

/** One item to process. `input` is `encodeData` output. */
export interface DataJob {
  id: number;
  /** "full": the whole pipeline on a datalist item; "random": only the random part, on a cached item. */
  stage: "full" | "random";
  input: unknown;
  /** The item's seed for the random part. */
  seed: number;
  /** Send the deterministic part's result back (for a CacheDataset). */
  keepDeterministic: boolean;
  /** The keys to collate (default: every MetaTensor). */
  keys: string[] | null;
}

export type DataReply =
  | { id: number; ok: true; samples: PreparedSample[]; deterministic?: unknown }
  | { id: number; ok: false; error: { message: string; stack: string } };
