import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { JobCatalogue, JobContext } from "../../jobs/catalogue.js";
import type { InferenceService } from "./inference.service.js";

type Params = JobCatalogue["batchInference"]["params"];
type Result = JobCatalogue["batchInference"]["result"];

/** Runs one model over many images, one at a time, reporting progress per image; a failure skips the image. */
export async function batchInference(
  deps: { inference: InferenceService; datastore: DatastoreService },
  params: Params,
  ctx: JobContext,
): Promise<Result> {
  deps.inference.task(params.model);
  let ids =
    params.images === "all"
      ? await deps.datastore.listImageIds()
      : params.images === "labeled"
        ? await deps.datastore.labeledImages()
        : params.images === "unlabeled"
          ? await deps.datastore.unlabeledImages()
          : [...params.images].sort();
  if (params.maxBatchSize && params.maxBatchSize > 0) {
    ids = ids.slice(0, params.maxBatchSize);
  }
  const result: Result = {};
  for (const [i, imageId] of ids.entries()) {
    if (ctx.signal.aborted) {
      break;
    }
    try {
      const out = await deps.inference.runInference({
        model: params.model,
        imageId,
        params: params.params ?? {},
        saveLabel: true,
        labelTag: params.labelTag ?? "original",
      });
      result[imageId] = out.label ? { tag: out.label.tag, version: out.label.version } : {};
    } catch (err) {
      result[imageId] = { error: (err as Error).message };
    }
    ctx.progress((i + 1) / ids.length, `${i + 1}/${ids.length} images`);
  }
  return result;
}
