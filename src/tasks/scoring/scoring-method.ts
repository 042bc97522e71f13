import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { Info, LabelRecord } from "../../datastore/types.js";
import { loadImage } from "../../io/load.js";
import type { Volume } from "../../io/types.js";
import type { SessionPool } from "../../runtime/session-pool.js";

/**
 * MONAI Label's ScoringMethod (interfaces/tasks/scoring.py): given a request and the datastore, computes
 * scores and writes them into image or label info, returning a JSON summary. Built-in ones: Dice, Sum,
 * EpistemicScoring; an app adds its own through `LabelApp.initScoringMethods()`. Methods run as `scoring`
 * jobs; each stored score is reported at once (`score:updated`), so a cancelled job keeps what it finished.
 */
export interface ScoringRequest {
  /** The name the app registered the method under. */
  method: string;
  /** MONAI's request params (`y`, `y_pred`, `simulation_size`, `max_samples`, `force` ...). */
  params: Record<string, unknown>;
  /** Only these images (the trigger after a final label); null: every image the method applies to. */
  imageIds: string[] | null;
}

/** One stored score, as `score:updated` carries it. */
export interface ScoreUpdate {
  method: string;
  imageId: string;
  /** Set for scores stored in label info (Sum): the label's tag and version. */
  tag: string | null;
  version: number | null;
  /** The entries written into the info. */
  score: Info;
  /** The scoring job that computed it. */
  jobId: string | null;
  at: Date;
}

export interface ScoringContext {
  readonly datastore: DatastoreService;
  /** Aborted when the job is cancelled: stop between images and return what is done. */
  readonly signal: AbortSignal;
  progress(fraction: number, message?: string): void;
  /** Publishes a score that has just been stored. */
  report(update: { imageId: string; tag?: string | null; version?: number | null; score: Info }): void;
  /** A stored object (image or label) as a local file for readers and infer tasks. */
  localFile(objectKey: string): Promise<{ path: string; release(): Promise<void> }>;
  /** The app, for methods that run one of its models. */
  readonly app: LabelApp;
  readonly pool: SessionPool;
  /** Seconds since the epoch. */
  now(): number;
}

export type ScoringResult = Record<string, unknown>;

export interface ScoringInfo {
  description: string;
  [key: string]: unknown;
}

export abstract class ScoringMethod {
  /** Whether saving a `final` label should rescore that image with this method (labels changed). */
  readonly rescoreOnFinalLabel: boolean = true;

  constructor(readonly description: string) {}

  info(): ScoringInfo {
    return { description: this.description };
  }

  /** Why it cannot run in this app now (EpistemicScoring: its model is missing), or null when it can. */
  unavailable(_app: LabelApp): string | null {
    return null;
  }

  /** The app models whose new versions make this method's scores stale (rescored after training). */
  models(): string[] {
    return [];
  }

  abstract score(request: ScoringRequest, ctx: ScoringContext): Promise<ScoringResult>;
}

/** Reads a stored label (or image) into a volume. */
export async function loadStored(
  ctx: Pick<ScoringContext, "localFile">,
  record: Pick<LabelRecord, "objectKey" | "extension" | "imageId">,
): Promise<Volume> {
  const local = await ctx.localFile(record.objectKey);
  try {
    return await loadImage(local.path, `${record.imageId}${record.extension}`);
  } finally {
    await local.release();
  }
}

/** Writes `score` into the image info and reports it. */
export async function storeImageScore(ctx: ScoringContext, imageId: string, score: Info): Promise<void> {
  await ctx.datastore.updateImageInfo(imageId, score);
  ctx.report({ imageId, score });
}

/** A boolean request param the way MONAI's clients send them (true, "true", 1). */
export function flag(value: unknown): boolean {
  return value === true || value === 1 || (typeof value === "string" && ["true", "1", "yes"].includes(value));
}

/** A positive integer request param, or the default. */
export function positiveInt(value: unknown, fallback: number): number {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : fallback;
}
