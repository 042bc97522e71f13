import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { SessionService } from "../../datastore/session.service.js";
import type { LabelRecord } from "../../datastore/types.js";
import { ErrorCode, InvalidInputError, NotFoundError } from "../../errors.js";
import { splitImageFileName } from "../../io/extensions.js";
import type { SessionPool } from "../../runtime/session-pool.js";
import { resultKey } from "../../storage/keys.js";
import type { ObjectStore } from "../../storage/object-store.js";
import type { InferTask } from "./infer-task.js";
import type { InferenceWorkers } from "./worker-pool.js";

export const modelNotFound = (name: string) =>
  new NotFoundError(ErrorCode.MODEL_NOT_FOUND, `model ${JSON.stringify(name)} not found`, { name });

export interface RunInferenceInput {
  model: string;
  /** A datastore image, or */
  imageId?: string | null;
  /** an uploaded session image (its result is never saved as a label: there is no image to attach it to). */
  sessionId?: string | null;
  params?: Record<string, unknown> | null;
  /** Store the result as a label of the image (default true, tag `original`). */
  saveLabel?: boolean | null;
  labelTag?: string | null;
  user?: string | null;
}

export interface InferenceOutcome {
  model: string;
  imageId: string | null;
  sessionId: string | null;
  /** The saved label, when saveLabel. */
  label: LabelRecord | null;
  /** When not saved: the object key of the result file, served at /results/<id>. */
  resultKey: string | null;
  result: Record<string, unknown>;
}

/** Runs an app's infer tasks on datastore images; the one place inference meets storage. */
export class InferenceService {
  constructor(
    private readonly deps: {
      app: LabelApp;
      datastore: DatastoreService;
      store: ObjectStore;
      pool: SessionPool;
      sessions: SessionService;
      /** When set, tasks run on worker threads; otherwise on this thread. */
      workers?: InferenceWorkers | null;
    },
  ) {}

  /** The app's models whose weights exist (MONAI does not list the others). */
  models(): [string, InferTask][] {
    return Object.entries(this.deps.app.infers()).filter(([, t]) => t.isValid());
  }

  task(name: string): InferTask {
    const task = this.models().find(([n]) => n === name)?.[1];
    if (!task) {
      throw modelNotFound(name);
    }
    return task;
  }

  async runInference(input: RunInferenceInput): Promise<InferenceOutcome> {
    const task = this.task(input.model);
    if (!input.imageId === !input.sessionId) {
      throw new InvalidInputError("give exactly one of imageId and sessionId");
    }
    const image = input.imageId ? await this.deps.datastore.getImage(input.imageId) : null;
    const local = image
      ? await this.deps.store.localPath(image.objectKey)
      : await this.deps.sessions.localImage(input.sessionId as string);
    let labelPath: string | null = null;
    try {
      // Readers decide the format from the file name; object keys keep the extension.
      const request = { imagePath: local.path, params: { ...(input.params ?? {}) } };
      const run = this.deps.workers
        ? await this.deps.workers.run(input.model, request)
        : await task.run(request, { pool: this.deps.pool });
      labelPath = run.labelPath;
      const outcome: InferenceOutcome = {
        model: input.model,
        imageId: image?.id ?? null,
        sessionId: input.sessionId ?? null,
        label: null,
        resultKey: null,
        result: run.json,
      };
      if (labelPath) {
        const ext = splitImageFileName(basename(labelPath)).ext;
        if (image && (input.saveLabel ?? true)) {
          outcome.label = await this.deps.datastore.saveLabel({
            imageId: image.id,
            tag: input.labelTag ?? "original",
            fileName: `${image.id}${ext}`,
            path: labelPath,
            author: input.user ?? null,
            info: { model: input.model, params: input.params ?? {}, ...run.json },
          });
        } else {
          outcome.resultKey = resultKey(randomUUID(), ext);
          await this.deps.store.putFile(outcome.resultKey, labelPath);
        }
      }
      return outcome;
    } finally {
      await local.release();
      if (labelPath) {
        await rm(dirname(labelPath), { recursive: true, force: true });
      }
    }
  }
}
