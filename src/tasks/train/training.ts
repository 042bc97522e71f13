import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import { ErrorCode, NotFoundError } from "../../errors.js";
import type { PubSub } from "../../events/pubsub.js";
import type { JobCatalogue, JobContext } from "../../jobs/catalogue.js";
import type { ObjectStore } from "../../storage/object-store.js";
import type { TrainItem } from "./basic-train-task.js";

export const trainerNotFound = (name: string) =>
  new NotFoundError(ErrorCode.MODEL_NOT_FOUND, `no trainer ${JSON.stringify(name)}`, { name });

/**
 * The `train` job: MONAI's datalist (final-labeled pairs) as local files, the app's train task, and every
 * iteration and epoch published on `training:progress`. Stopping the job (cancel) stops training within
 * a step; the best model published so far stays.
 */
export async function trainJob(
  deps: { app: LabelApp; datastore: DatastoreService; store: ObjectStore; pubsub: PubSub },
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
    return await task.run(
      { datalist, params: params.params ?? {} },
      {
        signal: ctx.signal,
        emit: (event) => {
          deps.pubsub.publish("training:progress", { ...event, jobId: ctx.id, model: params.model });
          if (event.kind === "epoch") {
            const best = event.bestMetric == null ? "" : `, best ${event.bestMetric.toFixed(3)}`;
            ctx.progress(event.epoch / maxEpochs, `epoch ${event.epoch}/${maxEpochs}${best}`);
          }
        },
      },
    );
  } finally {
    await Promise.all(held.map((h) => h.release()));
  }
}
