import type { DatastoreService } from "../datastore/datastore.service.js";
import type { JobCatalogue, JobContext } from "../jobs/catalogue.js";
import { batchInference } from "../tasks/infer/batch-inference.js";
import type { InferenceService } from "../tasks/infer/inference.service.js";

/**
 * MONAI's BatchInferTask: runs one model over many images (`all`, `labeled`, `unlabeled` or a list) as a
 * `batchInference` job. An app returns its own from `initBatchInfer()` to change how, or null to turn batch
 * inference off.
 */
export class BatchInferTask {
  run(
    deps: { inference: InferenceService; datastore: DatastoreService },
    params: JobCatalogue["batchInference"]["params"],
    ctx: JobContext,
  ): Promise<JobCatalogue["batchInference"]["result"]> {
    return batchInference(deps, params, ctx);
  }
}
