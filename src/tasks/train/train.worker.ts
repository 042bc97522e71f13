/**
 * One training run on a worker thread: loads the app (same folder and --conf as the server), runs the
 * trainer, and relays every event to the main thread, which publishes them. "stop" aborts the run after
 * its current step; the best model published so far stays.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadApp } from "../../app/load-app.js";
import { LabelgraphError } from "../../errors.js";
import type { TrainItem } from "./basic-train-task.js";

export interface TrainWorkerData {
  appDir: string | null;
  studiesDir: string;
  conf: Record<string, string>;
  model: string;
  datalist: TrainItem[];
  params: Record<string, unknown>;
}

const data = workerData as TrainWorkerData;
const abort = new AbortController();
parentPort?.on("message", (msg: { type: "stop" }) => {
  if (msg.type === "stop") {
    abort.abort();
  }
});

try {
  const app = await loadApp({ appDir: data.appDir, studiesDir: data.studiesDir, conf: data.conf });
  const task = app.trainers()[data.model];
  if (!task) {
    throw new Error(`the worker's app has no trainer ${data.model}`);
  }
  const stats = await task.run(
    { datalist: data.datalist, params: data.params },
    {
      signal: abort.signal,
      emit: (event) => parentPort?.postMessage({ type: "event", event }),
      warn: (message) => parentPort?.postMessage({ type: "warn", message }),
    },
  );
  parentPort?.postMessage({ type: "done", stats });
} catch (err) {
  const e = err as Error;
  parentPort?.postMessage({
    type: "error",
    error: { message: e.message, code: err instanceof LabelgraphError ? err.code : null },
  });
}
