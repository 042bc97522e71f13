/**
 * A worker thread that runs infer tasks, so that onnxruntime's synchronous session.run and the
 * transforms never block the server's event loop. It loads the same app (folder and --conf) as the
 * main thread and keeps its own session pool.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { LabelApp } from "../../app/label-app.js";
import { loadApp } from "../../app/load-app.js";
import { LabelgraphError } from "../../errors.js";
import { SessionPool } from "../../runtime/session-pool.js";
import type { WorkerData, WorkerReply, WorkerRequest } from "./worker-protocol.js";

const data = workerData as WorkerData;
const pool = new SessionPool({ threads: data.threads });
let app: Promise<LabelApp> | null = null;
/** Runs in flight. Closing waits for them: freeing a session (or ending the thread) while onnxruntime still runs
 * on it aborts the whole process. */
const inFlight = new Set<Promise<void>>();

parentPort?.on("message", (msg: WorkerRequest | { type: "close" }) => {
  if (msg.type === "close") {
    void (async () => {
      await Promise.allSettled([...inFlight]);
      await pool.close({ force: true });
      process.exit(0); // in a worker thread this ends the thread, not the process
    })();
    return;
  }
  const run = handle(msg).finally(() => inFlight.delete(run));
  inFlight.add(run);
});

async function handle(msg: WorkerRequest): Promise<void> {
  let reply: WorkerReply;
  try {
    app ??= loadApp({ appDir: data.appDir, studiesDir: data.studiesDir, conf: data.conf });
    const task = (await app).infers()[msg.model];
    if (!task) {
      throw new Error(`the worker's app has no model ${msg.model}`);
    }
    const result = await task.run({ imagePath: msg.imagePath, params: msg.params }, { pool });
    reply = { id: msg.id, ok: true, result };
  } catch (err) {
    const e = err as Error;
    reply = {
      id: msg.id,
      ok: false,
      error: {
        message: e.message,
        code: err instanceof LabelgraphError ? err.code : null,
        className: e.constructor?.name ?? "Error",
        stack: e.stack ?? "",
      },
    };
  }
  parentPort?.postMessage(reply);
}
