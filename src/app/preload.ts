import type { Logger } from "../logger.js";
import type { SessionPool } from "../runtime/session-pool.js";
import type { LabelApp } from "./label-app.js";

/**
 * `--conf preload true`: creates every served model's ONNX session at start (MONAI loads them onto the
 * device), so the first request does not pay for it. Tasks without a model file path are skipped.
 */
export async function preloadModels(app: LabelApp, pool: SessionPool, log: Logger): Promise<string[]> {
  const loaded: string[] = [];
  for (const [name, task] of Object.entries(app.info().models)) {
    const path = "getPath" in task && typeof task.getPath === "function" ? (task.getPath() as string | null) : null;
    if (!path) {
      continue;
    }
    const session = await pool.get({ path });
    log.info(`preloaded model ${name} (${path}) in ${Math.round(session.loadMs)} ms`);
    loaded.push(name);
  }
  return loaded;
}
