import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { ErrorCode, InvalidImageError, InvalidInputError, LabelgraphError, NotFoundError } from "../../errors.js";
import type { InferRequest, InferResult } from "./infer-task.js";
import type { WorkerData, WorkerReply, WorkerRequest } from "./worker-protocol.js";

/** Typed errors cross the thread boundary as {code, message}; rebuild the matching class. */
function revive(e: Extract<WorkerReply, { ok: false }>["error"]): Error {
  if (e.code === null) {
    const err = new Error(e.message);
    err.stack = e.stack;
    return err;
  }
  if (e.code === ErrorCode.INVALID_INPUT) {
    return new InvalidInputError(e.message);
  }
  if (e.code === ErrorCode.INVALID_IMAGE) {
    return new InvalidImageError(e.message);
  }
  if (e.code.endsWith("_NOT_FOUND")) {
    return new NotFoundError(e.code, e.message);
  }
  return new LabelgraphError(e.code, e.message);
}

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, { resolve: (r: InferResult) => void; reject: (e: Error) => void }>;
}

/**
 * Runs infer tasks on worker threads (LABELGRAPH_INFER_WORKERS, default 1), least busy first. A worker
 * that dies fails its pending requests and is replaced on the next request.
 */
export class InferenceWorkers {
  private readonly slots: (Slot | null)[];
  private nextId = 1;

  constructor(
    private readonly data: WorkerData,
    size = 1,
  ) {
    this.slots = Array.from({ length: Math.max(1, size) }, () => null);
  }

  private spawn(i: number): Slot {
    const threads = this.data.threads ?? Math.max(1, Math.floor(availableParallelism() / this.slots.length));
    const worker = new Worker(new URL("./infer-worker-boot.mjs", import.meta.url), {
      workerData: { ...this.data, threads } satisfies WorkerData,
    });
    const slot: Slot = { worker, busy: 0, pending: new Map() };
    worker.on("message", (reply: WorkerReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) {
        return;
      }
      slot.pending.delete(reply.id);
      slot.busy--;
      if (reply.ok) {
        p.resolve(reply.result);
      } else {
        p.reject(revive(reply.error));
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
    worker.on("exit", (code) => fail(new Error(`inference worker exited with code ${code}`)));
    worker.unref();
    this.slots[i] = slot;
    return slot;
  }

  run(model: string, request: InferRequest): Promise<InferResult> {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.busy ?? 0) < (this.slots[best]?.busy ?? 0)) {
        best = i;
      }
    }
    const slot = this.slots[best] ?? this.spawn(best);
    const id = this.nextId++;
    const msg: WorkerRequest = { type: "infer", id, model, imagePath: request.imagePath, params: request.params };
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage(msg);
    });
  }

  /**
   * Asks each worker to finish its runs and exit; terminates one that has not exited after `graceMs`.
   * Terminating a thread while onnxruntime runs on it aborts the process, so closing waits first.
   */
  async close(graceMs = 60_000): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot, i) => {
        if (!slot) {
          return;
        }
        this.slots[i] = null;
        const exited = new Promise<void>((resolve) => slot.worker.once("exit", () => resolve()));
        slot.worker.postMessage({ type: "close" });
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), graceMs);
        });
        const outcome = await Promise.race([exited, late]);
        clearTimeout(timer);
        if (outcome === "late") {
          await slot.worker.terminate();
        }
      }),
    );
  }
}
