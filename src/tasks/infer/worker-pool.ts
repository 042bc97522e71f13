import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { ErrorCode, InvalidImageError, InvalidInputError, LabelgraphError, NotFoundError } from "../../errors.js";
import { WorkerSlots } from "../../workers/slots.js";
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

/**
 * Runs infer tasks on worker threads (LABELGRAPH_INFER_WORKERS, default 1), least busy first. A worker
 * that dies fails its pending requests and is replaced on the next request.
 */
export class InferenceWorkers {
  private readonly workers: WorkerSlots<Omit<WorkerRequest, "id">, WorkerReply, InferResult>;

  constructor(data: WorkerData, size = 1) {
    const threads = data.threads ?? Math.max(1, Math.floor(availableParallelism() / Math.max(1, size)));
    this.workers = new WorkerSlots({
      size,
      create: () =>
        new Worker(new URL("./infer-worker-boot.mjs", import.meta.url), {
          workerData: { ...data, threads } satisfies WorkerData,
        }),
      settle: (reply) => {
        if (reply.ok) {
          return reply.result;
        }
        throw revive(reply.error);
      },
      exitError: (code) => new Error(`inference worker exited with code ${code}`),
    });
  }

  run(model: string, request: InferRequest): Promise<InferResult> {
    return this.workers.run({ type: "infer", model, imagePath: request.imagePath, params: request.params });
  }

  /**
   * Asks each worker to finish its runs and exit; terminates one that has not exited after `graceMs`.
   * Terminating a thread while onnxruntime runs on it aborts the process, so closing waits first.
   */
  async close(graceMs = 60_000): Promise<void> {
    await Promise.all(
      this.workers.take().map(async (worker) => {
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        worker.postMessage({ type: "close" });
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), graceMs);
        });
        const outcome = await Promise.race([exited, late]);
        clearTimeout(timer);
        if (outcome === "late") {
          await worker.terminate();
        }
      }),
    );
  }
}
