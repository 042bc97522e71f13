import { randomUUID } from "node:crypto";
import { FINISHED, type JobFilter, type JobRecord, type JobRepository, JobStatus } from "../db/jobs.repo.js";
import { ErrorCode, LabelgraphError, NotFoundError } from "../errors.js";
import type { PubSub } from "../events/pubsub.js";
import type { CatalogueShape, JobHandlers, JobKindOf } from "./catalogue.js";

/** The queue port: the in-process queue below is the default; a Redis-backed one can implement the same. */
export interface JobQueue<C extends CatalogueShape> {
  enqueue<K extends JobKindOf<C>>(kind: K, params: C[K]["params"]): Promise<JobRecord>;
  cancel(id: string): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | null>;
  list(filter: JobFilter, limit: number, offset?: number): Promise<JobRecord[]>;
  count(filter: JobFilter): Promise<number>;
  /** Picks up jobs a previous process left: queued ones run, running ones are marked failed. */
  start(): Promise<void>;
  /** Aborts running jobs and waits for them to settle. */
  stop(): Promise<void>;
  /** Resolves when nothing is queued or running (for tests and graceful shutdown). */
  idle(): Promise<void>;
}

export const jobNotFound = (id: string) =>
  new NotFoundError(ErrorCode.JOB_NOT_FOUND, `job ${JSON.stringify(id)} not found`, { id });

/** What the queue needs of job persistence; JobRepository (Prisma) is the real one, tests use an in-memory fake. */
export type JobStore = Pick<JobRepository, "create" | "get" | "update" | "list" | "count" | "unfinished">;

interface Options<C extends CatalogueShape> {
  repo: JobStore;
  pubsub: PubSub;
  handlers: JobHandlers<C>;
  /** Jobs of one kind run at most this many at a time (default 1, as MONAI runs one task of a kind). */
  concurrency?: Partial<Record<JobKindOf<C>, number>>;
  /** Minimum milliseconds between progress writes to the database (events are not throttled). */
  progressWriteIntervalMs?: number;
  log?: (msg: string, err?: unknown) => void;
}

export class InProcessJobQueue<C extends CatalogueShape> implements JobQueue<C> {
  private readonly waiting = new Map<string, string[]>();
  private readonly running = new Map<string, { kind: string; abort: AbortController; done: Promise<void> }>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly opts: Options<C>) {
    for (const [kind, handler] of Object.entries(opts.handlers)) {
      if (typeof handler !== "function") {
        throw new Error(`job kind ${kind} has no handler`);
      }
    }
  }

  private handler(kind: string) {
    const h = (this.opts.handlers as Record<string, ((p: unknown, ctx: unknown) => Promise<unknown>) | undefined>)[
      kind
    ];
    if (!h) {
      throw new LabelgraphError(ErrorCode.INVALID_INPUT, `unknown job kind ${JSON.stringify(kind)}`);
    }
    return h;
  }

  async enqueue<K extends JobKindOf<C>>(kind: K, params: C[K]["params"]): Promise<JobRecord> {
    this.handler(kind);
    const job = await this.opts.repo.create(randomUUID(), kind, params ?? {});
    this.publish(job);
    this.push(job);
    return job;
  }

  private push(job: JobRecord) {
    const list = this.waiting.get(job.kind) ?? [];
    list.push(job.id);
    this.waiting.set(job.kind, list);
    this.pump(job.kind);
  }

  private pump(kind: string) {
    if (this.stopped) {
      return;
    }
    const limit = (this.opts.concurrency as Record<string, number | undefined> | undefined)?.[kind] ?? 1;
    const active = [...this.running.values()].filter((r) => r.kind === kind).length;
    const list = this.waiting.get(kind) ?? [];
    for (let i = active; i < limit && list.length > 0; i++) {
      const id = list.shift() as string;
      const abort = new AbortController();
      const entry = { kind, abort, done: Promise.resolve() };
      this.running.set(id, entry);
      entry.done = this.run(id, abort).finally(() => {
        this.running.delete(id);
        this.pump(kind);
        this.checkIdle();
      });
    }
  }

  private async run(id: string, abort: AbortController): Promise<void> {
    const queued = await this.opts.repo.get(id);
    if (!queued || queued.status !== JobStatus.QUEUED) {
      return;
    }
    let job = await this.opts.repo.update(id, { status: JobStatus.RUNNING, startedAt: new Date(), progress: 0 });
    this.publish(job);
    let lastWrite = 0;
    let pendingWrite: Promise<unknown> = Promise.resolve();
    const interval = this.opts.progressWriteIntervalMs ?? 250;
    const ctx = {
      id,
      signal: abort.signal,
      progress: (fraction: number, message?: string) => {
        const progress = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
        job = { ...job, progress, message: message ?? job.message, updatedAt: new Date() };
        this.publish(job);
        const now = Date.now();
        if (now - lastWrite >= interval) {
          lastWrite = now;
          const snapshot = { progress: job.progress, message: job.message };
          pendingWrite = pendingWrite.then(() => this.opts.repo.update(id, snapshot)).catch((e) => this.log(id, e));
        }
      },
      report: (partial: unknown) => {
        job = { ...job, result: partial };
        pendingWrite = pendingWrite
          .then(() => this.opts.repo.update(id, { result: partial }))
          .catch((e) => this.log(id, e));
      },
    };
    try {
      const result = await this.handler(job.kind)(job.params, ctx);
      await pendingWrite;
      job = await this.opts.repo.update(id, {
        status: abort.signal.aborted ? JobStatus.CANCELLED : JobStatus.SUCCEEDED,
        progress: abort.signal.aborted ? job.progress : 1,
        result: result ?? null,
        finishedAt: new Date(),
      });
    } catch (err) {
      await pendingWrite;
      const cancelled = abort.signal.aborted;
      if (!cancelled) {
        this.log(id, err);
      }
      job = await this.opts.repo.update(id, {
        status: cancelled ? JobStatus.CANCELLED : JobStatus.FAILED,
        error: cancelled ? "cancelled" : err instanceof Error ? err.message : String(err),
        finishedAt: new Date(),
      });
    }
    this.publish(job);
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = await this.opts.repo.get(id);
    if (!job) {
      throw jobNotFound(id);
    }
    if (FINISHED.includes(job.status)) {
      return job;
    }
    const running = this.running.get(id);
    if (running) {
      running.abort.abort();
      await running.done;
      return (await this.opts.repo.get(id)) as JobRecord;
    }
    const list = this.waiting.get(job.kind);
    if (list?.includes(id)) {
      list.splice(list.indexOf(id), 1);
    }
    const cancelled = await this.opts.repo.update(id, {
      status: JobStatus.CANCELLED,
      error: "cancelled",
      finishedAt: new Date(),
    });
    this.publish(cancelled);
    this.checkIdle();
    return cancelled;
  }

  get(id: string) {
    return this.opts.repo.get(id);
  }
  list(filter: JobFilter, limit: number, offset = 0) {
    return this.opts.repo.list(filter, limit, offset);
  }
  count(filter: JobFilter) {
    return this.opts.repo.count(filter);
  }

  async start(): Promise<void> {
    this.stopped = false;
    for (const job of await this.opts.repo.unfinished()) {
      if (job.status === JobStatus.RUNNING) {
        const failed = await this.opts.repo.update(job.id, {
          status: JobStatus.FAILED,
          error: "interrupted: the server stopped while this job was running",
          finishedAt: new Date(),
        });
        this.publish(failed);
      } else if (job.kind in this.opts.handlers) {
        this.push(job);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const running = [...this.running.values()];
    for (const r of running) {
      r.abort.abort();
    }
    await Promise.allSettled(running.map((r) => r.done));
  }

  idle(): Promise<void> {
    if (this.isIdle()) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle() {
    return this.running.size === 0 && [...this.waiting.values()].every((l) => l.length === 0);
  }

  private checkIdle() {
    if (this.isIdle()) {
      for (const w of this.idleWaiters.splice(0)) {
        w();
      }
    }
  }

  private publish(job: JobRecord) {
    this.opts.pubsub.publish("job:updated", job);
  }

  private log(id: string, err: unknown) {
    (this.opts.log ?? ((m, e) => console.error(m, e)))(`job ${id} failed`, err);
  }
}
