import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { DatastoreChange } from "../../datastore/types.js";
import { type JobRecord, JobStatus } from "../../db/jobs.repo.js";
import { InvalidInputError } from "../../errors.js";
import type { PubSub } from "../../events/pubsub.js";
import type { JobCatalogue, JobContext } from "../../jobs/catalogue.js";
import type { JobQueue } from "../../jobs/queue.js";
import type { Logger } from "../../logger.js";
import type { SessionPool } from "../../runtime/session-pool.js";
import type { ObjectStore } from "../../storage/object-store.js";
import type { ScoringContext, ScoringMethod, ScoringResult } from "./scoring-method.js";

export type ScoringJobParams = JobCatalogue["scoring"]["params"];
export type ScoringTrigger = NonNullable<ScoringJobParams["trigger"]>;

export const unknownScoringMethod = (name: string, known: string[]) =>
  new InvalidInputError(
    `scoring method ${JSON.stringify(name)} not found (methods: ${known.join(", ") || "none; the app defines none"})`,
    { method: name },
  );

/**
 * Runs the app's scoring methods as `scoring` jobs and decides when they run (the one place scoring
 * follow-ups are queued). With MONAI_LABEL_AUTO_UPDATE_SCORING (default true):
 * - at start, every method over every image (methods skip what is already current);
 * - after a `final` label is saved, the methods whose scores depend on labels (Dice, Sum), for that image;
 * - after training publishes a model, the methods that use it (`onModelPublished`, called by training).
 * MONAI also reruns every method after each next-sample call; that is left out, as it would queue a job per
 * pick while the picks themselves change no score.
 */
export class ScoringService {
  #events: AsyncIterator<DatastoreChange> | null = null;
  #listening: Promise<void> | null = null;

  constructor(
    private readonly deps: {
      app: LabelApp;
      datastore: DatastoreService;
      store: ObjectStore;
      pool: SessionPool;
      pubsub: PubSub;
      /** The queue (built after this service: its handler calls `run`). */
      jobs: () => Pick<JobQueue<JobCatalogue>, "enqueue" | "list">;
      log?: Logger;
      /** Milliseconds since the epoch; default Date.now. */
      clock?: () => number;
    },
  ) {}

  methods(): [string, ScoringMethod][] {
    return Object.entries(this.deps.app.scoringMethods());
  }

  method(name: string): ScoringMethod {
    const method = this.deps.app.scoringMethods()[name];
    if (!method) {
      throw unknownScoringMethod(
        name,
        this.methods().map(([n]) => n),
      );
    }
    return method;
  }

  /** Queues a scoring job; an unknown method, or one that cannot run (no model), fails before any job exists. */
  enqueue(
    method: string,
    opts: { params?: Record<string, unknown> | null; imageIds?: string[] | null; trigger?: ScoringTrigger } = {},
  ): Promise<JobRecord> {
    const why = this.method(method).unavailable(this.deps.app);
    if (why) {
      return Promise.reject(new InvalidInputError(`scoring method ${JSON.stringify(method)} cannot run: ${why}`));
    }
    return this.deps.jobs().enqueue("scoring", {
      method,
      params: opts.params ?? {},
      imageIds: opts.imageIds ?? null,
      trigger: opts.trigger ?? "api",
    });
  }

  /** The `scoring` job handler: runs one method, reporting each stored score as `score:updated`. */
  async run(params: ScoringJobParams, job: JobContext): Promise<ScoringResult> {
    const method = this.method(params.method);
    const clock = this.deps.clock ?? Date.now;
    const ctx: ScoringContext = {
      datastore: this.deps.datastore,
      signal: job.signal,
      progress: (fraction, message) => job.progress(fraction, message),
      report: (u) =>
        this.deps.pubsub.publish("score:updated", {
          method: params.method,
          imageId: u.imageId,
          tag: u.tag ?? null,
          version: u.version ?? null,
          score: u.score,
          jobId: job.id,
          at: new Date(clock()),
        }),
      localFile: (key) => this.deps.store.localPath(key),
      app: this.deps.app,
      pool: this.deps.pool,
      now: () => Math.floor(clock() / 1000),
    };
    return method.score({ method: params.method, params: params.params ?? {}, imageIds: params.imageIds ?? null }, ctx);
  }

  /** Starts the automatic triggers: follows final labels and queues every method once now. */
  async startAutoUpdate(): Promise<void> {
    if (this.deps.datastore.readOnly || this.#events) {
      return; // a read-only datastore cannot take scores
    }
    const events = this.deps.pubsub.subscribe("datastore:changed");
    this.#events = events;
    this.#listening = (async () => {
      for await (const change of events) {
        if (change.kind === "LABEL_SAVED" && change.tag === "final") {
          await this.onFinalLabel(change.imageId).catch((err) =>
            this.deps.log?.error(`queueing scoring after the final label of ${change.imageId} failed`, err),
          );
        }
      }
    })();
    await this.queue(
      this.methods().map(([name]) => name),
      null,
      "start",
    );
  }

  async stop(): Promise<void> {
    const events = this.#events;
    this.#events = null;
    await events?.return?.();
    await this.#listening;
  }

  /** After a final label: the label-based methods, for that image. */
  onFinalLabel(imageId: string): Promise<JobRecord[]> {
    const names = this.methods()
      .filter(([, m]) => m.rescoreOnFinalLabel)
      .map(([n]) => n);
    return this.queue(names, [imageId], "label");
  }

  /**
   * THE HOOK FOR TRAINING: call it when a training job has published a new version of `model`. It queues
   * the methods that use that model (EpistemicScoring over it), which then rescore every image whose score
   * came from an older version. Does nothing with MONAI_LABEL_AUTO_UPDATE_SCORING=false.
   */
  onModelPublished(model: string): Promise<JobRecord[]> {
    if (!this.#events) {
      return Promise.resolve([]);
    }
    const names = this.methods()
      .filter(([, m]) => m.models().includes(model))
      .map(([n]) => n);
    return this.queue(names, null, "model");
  }

  /** Queues each (valid) method unless a queued job of it already covers these images. */
  private async queue(names: string[], imageIds: string[] | null, trigger: ScoringTrigger): Promise<JobRecord[]> {
    const methods = names.filter((n) => this.method(n).unavailable(this.deps.app) === null);
    if (methods.length === 0) {
      return [];
    }
    const waiting = await this.deps.jobs().list({ kind: "scoring", status: [JobStatus.QUEUED] }, 500);
    const covered = (method: string) =>
      waiting.some((j) => {
        const p = j.params as ScoringJobParams;
        return (
          p.method === method && (p.imageIds == null || imageIds?.every((id) => p.imageIds?.includes(id)) === true)
        );
      });
    const queued: JobRecord[] = [];
    for (const method of methods) {
      if (!covered(method)) {
        queued.push(await this.enqueue(method, { imageIds, trigger }));
      }
    }
    return queued;
  }
}
