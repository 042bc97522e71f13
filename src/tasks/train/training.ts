import { Worker } from "node:worker_threads";
import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import { ErrorCode as Codes, type ErrorCode, LabelgraphError, NotFoundError } from "../../errors.js";
import type { PubSub } from "../../events/pubsub.js";
import type { JobCatalogue, JobContext } from "../../jobs/catalogue.js";
import type { ObjectStore } from "../../storage/object-store.js";
import type { TrainItem, TrainingEvent, TrainStats } from "./basic-train-task.js";
import type { TrainWorkerData } from "./train.worker.js";

type WorkerMessage =
  | { type: "event"; event: TrainingEvent }
  | { type: "warn"; message: string }
  | { type: "done"; stats: TrainStats }
  | { type: "error"; error: { message: string; code: ErrorCode | null } };

export const trainerNotFound = (name: string) =>
  new NotFoundError(Codes.MODEL_NOT_FOUND, `no trainer ${JSON.stringify(name)}`, { name });

/**
 * The `train` job: MONAI's datalist (final-labeled pairs) as local files, the app's train task, and every
 * iteration and epoch published on `training:progress`. Stopping the job (cancel) stops training within
 * a step; the best model published so far stays.
 */
export async function trainJob(
  deps: {
    app: LabelApp;
    datastore: DatastoreService;
    store: ObjectStore;
    pubsub: PubSub;
    /** Called when a run publishes a new best model (scoring methods that use the model rerun). */
    onPublished?: (model: string) => void;
    /** Set: train on a worker thread loading this app; unset: on this thread. */
    worker?: Omit<TrainWorkerData, "model" | "datalist" | "params"> | null;
  },
  params: JobCatalogue["train"]["params"],
  ctx: JobContext,
): Promise<unknown> {
  const task = deps.app.trainers()[params.model];
  if (!task) {
    throw trainerNotFound(params.model);
  }
  const pairs = await deps.datastore.datalist();
  const held: { release(): Promise<void> }[] = [];
  try {
    const datalist: TrainItem[] = [];
    for (const p of pairs) {
      const image = await deps.store.localPath(p.imageKey);
      const label = await deps.store.localPath(p.labelKey);
      held.push(image, label);
      datalist.push({ image: image.path, label: label.path });
    }
    const maxEpochs = Number({ ...task.config(), ...(params.params ?? {}) }.max_epochs) || 1;
    const history: TrainingEvent[] = [];
    const warnings: string[] = [];
    // The metrics so far (and any warnings) live in the job row, so they outlive the process.
    const report = () => ctx.report(warnings.length > 0 ? { history, warnings } : { history });
    // E.g. CUDA asked for and the CPU used: kept with the job's metrics and shown as its progress message.
    const warn = (message: string) => {
      warnings.push(message);
      report();
      ctx.progress(0, message);
    };
    const emit = (event: TrainingEvent) => {
      history.push(event);
      deps.pubsub.publish("training:progress", { ...event, jobId: ctx.id, model: params.model });
      if (event.kind === "epoch") {
        report();
        if (event.bestEpoch === event.epoch) {
          deps.onPublished?.(params.model);
        }
        const best = event.bestMetric == null ? "" : `, best ${event.bestMetric.toFixed(3)}`;
        ctx.progress(event.epoch / maxEpochs, `epoch ${event.epoch}/${maxEpochs}${best}`);
      }
    };
    if (!deps.worker) {
      return await task.run({ datalist, params: params.params ?? {} }, { signal: ctx.signal, emit, warn });
    }
    // Off the event loop: the same app, loaded on a worker thread, runs the loop.
    const worker = new Worker(new URL("./train-worker-boot.mjs", import.meta.url), {
      workerData: {
        ...deps.worker,
        model: params.model,
        datalist,
        params: params.params ?? {},
      } satisfies TrainWorkerData,
    });
    const onAbort = () => worker.postMessage({ type: "stop" });
    ctx.signal.addEventListener("abort", onAbort);
    try {
      return await new Promise((resolve, reject) => {
        worker.on("message", (msg: WorkerMessage) => {
          if (msg.type === "event") {
            emit(msg.event);
          } else if (msg.type === "warn") {
            warn(msg.message);
          } else if (msg.type === "done") {
            resolve(msg.stats);
          } else {
            reject(
              msg.error.code ? new LabelgraphError(msg.error.code, msg.error.message) : new Error(msg.error.message),
            );
          }
        });
        worker.on("error", reject);
        worker.on("exit", (code) => reject(new Error(`the training worker exited with code ${code}`)));
      });
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      await worker.terminate();
    }
  } finally {
    await Promise.all(held.map((h) => h.release()));
  }
}
