import { Worker } from "node:worker_threads";
import type { PreparedSample } from "./collate.js";
import type { DataJob, DataReply, DataWorkerInit } from "./protocol.js";

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: JobResult) => void; reject: (e: Error) => void }>;
}

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
  private readonly slots: (Slot | null)[];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly init: DataWorkerInit,
    size: number,
  ) {
    this.slots = Array.from({ length: Math.max(1, size) }, () => null);
  }

  get size(): number {
    return this.slots.length;
  }

  private spawn(i: number): Slot {
    const worker = new Worker(new URL("./data-worker-boot.mjs", import.meta.url), { workerData: this.init });
    const slot: Slot = { worker, pending: new Map() };
    worker.on("message", (reply: DataReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) {
        return;
      }
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) {
        worker.unref();
      }
      if (reply.ok) {
        p.resolve({ samples: reply.samples, deterministic: reply.deterministic });
      } else {
        const err = new Error(reply.error.message);
        err.stack = `${reply.error.stack}\n    (in a DataLoader worker)`;
        p.reject(err);
      }
    });
    const fail = (err: Error) => {
      for (const p of slot.pending.values()) {
        p.reject(err);
      }
      slot.pending.clear();
      if (this.slots[i] === slot) {
        this.slots[i] = null;
      }
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`DataLoader worker exited with code ${code}`)));
    worker.unref();
    this.slots[i] = slot;
    return slot;
  }

  /** Starts every worker now (they build their pipelines while the first items are scheduled). */
  start(): void {
    for (let i = 0; i < this.slots.length; i++) {
      if (!this.slots[i]) {
        this.spawn(i);
      }
    }
  }

  run(job: Omit<DataJob, "id">): Promise<JobResult> {
    if (this.closed) {
      return Promise.reject(new Error("DataLoader: the worker pool is closed"));
    }
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) {
        best = i;
      }
    }
    const slot = this.slots[best] ?? this.spawn(best);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) {
        slot.worker.ref();
      }
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id } satisfies DataJob);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot, i) => {
        if (slot) {
          this.slots[i] = null;
          await slot.worker.terminate();
        }
      }),
    );
  }
}
