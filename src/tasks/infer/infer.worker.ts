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

parentPort?.on("message", async (msg: WorkerRequest | { type: "close" }) => {
  if (msg.type === "close") {
    await pool.close({ force: true });
    parentPort?.close();
    return;
  }
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
});
