/**
 * A DataLoader worker thread: builds the dataset's transforms from their factory, then runs items (the
 * whole pipeline, or the random part of a cached item) one at a time, each with its own seed, and sends back
 * the samples in C order (their buffers transferred).
 */
import { parentPort, workerData } from "node:worker_threads";
import { decodeData, encodeData, prepareSamples } from "./collate.js";
import { TransformPipeline } from "./pipeline.js";
import type { DataJob, DataReply, DataWorkerInit } from "./protocol.js";

const init = workerData as DataWorkerInit;
const port = parentPort;
if (!port) {
  throw new Error("data.worker.ts must run in a worker thread");
}
const ready = TransformPipeline.from(init.transform);
ready.catch(() => undefined);

async function handle(job: DataJob): Promise<void> {
  let reply: DataReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const pipeline = await ready;
    const input = decodeData(job.input);
    let deterministic: unknown;
    let out: Awaited<ReturnType<TransformPipeline["runRandom"]>>;
    if (job.stage === "full") {
      const pre = await pipeline.runDeterministic(input as Record<string, unknown>);
      if (job.keepDeterministic) {
        deterministic = encodeData(pre);
      }
      out = await pipeline.runRandom(pre, job.seed);
    } else {
      out = await pipeline.runRandom(input, job.seed);
    }
    const samples = prepareSamples(out, job.keys ?? undefined);
    // the C-order arrays are fresh, so their buffers can move instead of being copied
    transfer = samples.flatMap((s) => Object.values(s).map((t) => t.data.buffer as ArrayBuffer));
    reply = { id: job.id, ok: true, samples, ...(job.keepDeterministic ? { deterministic } : {}) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id: job.id, ok: false, error: { message: e.message, stack: e.stack ?? "" } };
  }
  try {
    port!.postMessage(reply, transfer);
  } catch (err) {
    const e = err as Error;
    port!.postMessage({
      id: job.id,
      ok: false,
      error: { message: `DataLoader worker: cannot send the result back: ${e.message}`, stack: e.stack ?? "" },
    } satisfies DataReply);
  }
}

let chain: Promise<void> = Promise.resolve();
port.on("message", (job: DataJob) => {
  chain = chain.then(() => handle(job));
});
