import type { Worker } from "node:worker_threads";

export interface WorkerSlotsOptions<Reply extends { id: number }, Result> {
  /** How many worker threads at most. */
  size: number;
  /** Starts worker `i` (called on first use, and again after that worker died). */
  create(i: number): Worker;
  /** The result a reply carries; throws the error it carries instead. */
  settle(reply: Reply): Result;
  /** The error pending requests get when their worker exits. */
  exitError(code: number): Error;
}

interface Slot<Result> {
  worker: Worker;
  pending: Map<number, { resolve: (r: Result) => void; reject: (e: unknown) => void }>;
}

/**
 * Worker threads that answer requests by id: each request goes to the worker with the fewest pending requests
 * (started on first use), its reply settles it, and a worker that errors or exits fails its pending requests and
 * is started afresh on the next request. A worker keeps the process alive only while it has requests.
 * (The DataLoader's workers and the inference workers; closing is each pool's own business: see `take`.)
 */
export class WorkerSlots<Request extends object, Reply extends { id: number }, Result> {
  private readonly slots: (Slot<Result> | null)[];
  private nextId = 1;

  constructor(private readonly options: WorkerSlotsOptions<Reply, Result>) {
    this.slots = Array.from({ length: Math.max(1, options.size) }, () => null);
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every worker that is not running. */
  start(): void {
    for (let i = 0; i < this.slots.length; i++) {
      if (!this.slots[i]) {
        this.spawn(i);
      }
    }
  }

  /** Sends `request` with a fresh `id` to the least busy worker; resolves with its reply's result. */
  run(request: Request): Promise<Result> {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) {
        best = i;
      }
    }
    const slot = this.slots[best] ?? this.spawn(best);
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      if (slot.pending.size === 0) {
        slot.worker.ref();
      }
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...request, id });
    });
  }

  /** Removes every running worker from the pool and returns them (to close); later requests start new ones. */
  take(): Worker[] {
    const workers: Worker[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (slot) {
        this.slots[i] = null;
        workers.push(slot.worker);
      }
    }
    return workers;
  }

  private spawn(i: number): Slot<Result> {
    const worker = this.options.create(i);
    const slot: Slot<Result> = { worker, pending: new Map() };
    worker.on("message", (reply: Reply) => {
      const p = slot.pending.get(reply.id);
      if (!p) {
        return;
      }
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) {
        worker.unref();
      }
      try {
        p.resolve(this.options.settle(reply));
      } catch (err) {
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
    worker.on("exit", (code) => fail(this.options.exitError(code)));
    worker.unref();
    this.slots[i] = slot;
    return slot;
  }
}
