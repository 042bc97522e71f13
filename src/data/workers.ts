import { Worker } from "node:worker_threads";
import { WorkerSlots } from "../workers/slots.js";
import type { PreparedSample } from "./collate.js";
import type { DataJob, DataReply, DataWorkerInit } from "./protocol.js";

export interface JobResult {
  samples: PreparedSample[];
  deterministic?: unknown;
}

/**
 * The DataLoader's worker threads (started on first use, kept until `close`). Each job goes to the worker
 * with the fewest pending jobs; a worker runs its jobs one at a time. A worker that dies fails its pending
 * jobs and is replaced on the next job. Workers keep the process alive only while they have jobs.
 */
export class DataWorkerPool {
  private readonly workers: WorkerSlots<Omit<DataJob, "id">, DataReply, JobResult>;
  private closed = false;

  constructor(init: DataWorkerInit, size: number) {
    this.workers = new WorkerSlots<Omit<DataJob, "id">, DataReply, JobResult>({
      size,
      create: () => new Worker(new URL("./data-worker-boot.mjs", import.meta.url), { workerData: init }),
      settle: (reply) => {
        if (reply.ok) {
          return { samples: reply.samples, deterministic: reply.deterministic };
        }
        const err = new Error(reply.error.message);
        err.stack = `${reply.error.stack}\n    (in a DataLoader worker)`;
        throw err;
      },
      exitError: (code) => new Error(`DataLoader worker exited with code ${code}`),
    });
  }

  get size(): number {
    return this.workers.size;
  }

  /** Starts every worker now (they build their pipelines while the first items are scheduled). */
  start(): void {
    this.workers.start();
  }

  run(job: Omit<DataJob, "id">): Promise<JobResult> {
    if (this.closed) {
      return Promise.reject(new Error("DataLoader: the worker pool is closed"));
    }
    return this.workers.run(job);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.take().map((w) => w.terminate()));
  }
}
