import { createPubSub, SlidingBuffer } from "@graphql-yoga/subscription";
import type { DatastoreChange } from "../datastore/types.js";
import type { JobRecord } from "../db/jobs.repo.js";
import type { TrainingEvent } from "../tasks/train/basic-train-task.js";

/** One training iteration or epoch, with the job and model it belongs to. */
export type TrainingProgress = TrainingEvent & { jobId: string; model: string };

import type { ScoreUpdate } from "../tasks/scoring/scoring-method.js";

/**
 * Every realtime topic and its payload. Services publish; GraphQL subscription fields only subscribe.
 * The default event target is in-process; a Redis event target can replace it for several servers.
 */
export type Topics = {
  "datastore:changed": [DatastoreChange];
  "job:updated": [JobRecord];
  "training:progress": [TrainingProgress];
  /** One image's (or label's) new score, as each lands during a scoring job. */
  "score:updated": [ScoreUpdate];
};

export type PubSub = ReturnType<typeof createEventBus>;

export function createEventBus() {
  // A slow subscriber drops its oldest events instead of failing the publisher.
  return createPubSub<Topics>({ repeaterBuffer: new SlidingBuffer(1024) });
}
