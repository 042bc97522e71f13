import type { JobRecord } from "../../db/jobs.repo.js";
import { LabelgraphError } from "../../errors.js";
import { trainerNotFound } from "../../tasks/train/training.js";
import type { RestDeps } from "../deps.js";
import { HttpError, parseJsonObject, readBody } from "../http.js";
import type { Route, RouteContext } from "../router.js";
import { activeJobs, stopTask, type TaskMethod, taskRecord, taskStatus, waitFor } from "../tasks.js";

/** A JSON body of params (MONAI's `params: dict = {}`); an empty body is `{}`. */
export async function jsonParams(ctx: RouteContext): Promise<Record<string, unknown>> {
  return parseJsonObject((await readBody(ctx.req)).toString("utf8"), "params");
}

const statusQuery = [
  { name: "all", type: "boolean" as const, default: false },
  { name: "check_if_running", type: "boolean" as const, default: false },
];

function statusRoute(deps: RestDeps, path: string, tag: string, kind: TaskMethod, label: string): Route {
  return {
    method: "GET",
    path,
    tag,
    summary: `Get Status of ${label} Task`,
    query: statusQuery,
    handler: async (ctx) => {
      const r = await taskStatus(deps.jobs, kind, label, {
        all: ctx.query.all === true,
        checkIfRunning: ctx.query.check_if_running === true,
      });
      if ("missing" in r) {
        throw new HttpError(404, r.missing);
      }
      return r.found;
    },
  };
}

/** MONAI's run_sync: the task runs inside the request and its result is the response. */
async function finish(deps: RestDeps, job: JobRecord, sync: boolean): Promise<unknown> {
  if (!sync) {
    return taskRecord(job);
  }
  const done = await waitFor(deps.jobs, deps.pubsub, job.id);
  if (done.status !== "SUCCEEDED") {
    throw new HttpError(500, done.error ?? `task ${done.status.toLowerCase()}`);
  }
  const result = done.result as Record<string, unknown> | null;
  if (result && typeof result === "object" && "history" in result) {
    const { history: _h, ...stats } = result;
    return stats;
  }
  return result;
}

const alreadyRunning = (label: string) => new HttpError(429, `++++++++++ ${label} Task is Already Running`);

export function taskRoutes(deps: RestDeps): Route[] {
  const { jobs, app, scoring, inference } = deps;

  const startTraining = async (model: string, params: Record<string, unknown>, enqueue: boolean, sync: boolean) => {
    if (!app.trainers()[model]) {
      throw trainerNotFound(model);
    }
    if (!enqueue && (await activeJobs(jobs, "train")).length > 0) {
      throw alreadyRunning("Train");
    }
    const { model: _m, ...rest } = params;
    return finish(deps, await jobs.enqueue("train", { model, params: rest }), sync);
  };

  const startScoring = async (method: string, params: Record<string, unknown>, enqueue: boolean, sync: boolean) => {
    scoring.method(method);
    if (!enqueue && (await activeJobs(jobs, "scoring")).length > 0) {
      throw alreadyRunning("Scoring");
    }
    return finish(deps, await scoring.enqueue(method, { params }), sync);
  };

  /** The deprecated run-everything routes: `{name: {result, detail}}`, every one enqueued. */
  const all = async (
    names: string[],
    start: (name: string) => Promise<unknown>,
  ): Promise<Record<string, { result: unknown; detail: string | null }>> => {
    const out: Record<string, { result: unknown; detail: string | null }> = {};
    for (const name of names) {
      try {
        out[name] = { result: await start(name), detail: null };
      } catch (err) {
        if (!(err instanceof LabelgraphError || err instanceof HttpError)) {
          throw err;
        }
        out[name] = { result: null, detail: err.message };
      }
    }
    return out;
  };

  return [
    statusRoute(deps, "/train/", "Train", "train", "train"),
    {
      method: "POST",
      path: "/train/{model}",
      tag: "Train",
      summary: "Run Train Task for specific model",
      query: [
        { name: "run_sync", type: "boolean", default: false },
        { name: "enqueue", type: "boolean", default: false },
      ],
      body: { kind: "json", description: "Train request params (max_epochs, val_split, ...)" },
      handler: async (ctx) =>
        startTraining(
          ctx.path.model as string,
          await jsonParams(ctx),
          ctx.query.enqueue === true,
          ctx.query.run_sync === true,
        ),
    },
    {
      method: "POST",
      path: "/train/",
      tag: "Train",
      summary: "Run All Train Tasks (deprecated)",
      deprecated: true,
      hidden: true,
      query: [{ name: "run_sync", type: "boolean", default: false }],
      body: { kind: "json" },
      handler: async (ctx) => {
        const params = await jsonParams(ctx);
        // MONAI merges params into every trainer's request, so a "model" key retrains that one model
        // under every trainer's name; here it selects that trainer only.
        const names = typeof params.model === "string" ? [params.model] : Object.keys(app.trainers());
        return all(names, (name) => startTraining(name, params, true, ctx.query.run_sync === true));
      },
    },
    {
      method: "DELETE",
      path: "/train/",
      tag: "Train",
      summary: "Stop Training Task",
      handler: () => stopTask(jobs, "train"),
    },
    statusRoute(deps, "/scoring/", "Scoring", "scoring", "scoring"),
    {
      method: "POST",
      path: "/scoring/{method}",
      tag: "Scoring",
      summary: "Run Scoring Task for specific method",
      query: [{ name: "run_sync", type: "boolean", default: false }],
      body: { kind: "json" },
      handler: async (ctx) =>
        startScoring(ctx.path.method as string, await jsonParams(ctx), false, ctx.query.run_sync === true),
    },
    {
      method: "POST",
      path: "/scoring/",
      tag: "Scoring",
      summary: "Run All Scoring Tasks (deprecated)",
      deprecated: true,
      hidden: true,
      query: [{ name: "run_sync", type: "boolean", default: false }],
      body: { kind: "json" },
      handler: async (ctx) => {
        const params = await jsonParams(ctx);
        return all(
          scoring.methods().map(([n]) => n),
          (name) => startScoring(name, params, true, ctx.query.run_sync === true),
        );
      },
    },
    {
      method: "DELETE",
      path: "/scoring/",
      tag: "Scoring",
      summary: "Stop Scoring Task",
      handler: () => stopTask(jobs, "scoring"),
    },
    statusRoute(deps, "/batch/infer", "Infer", "batchInference", "batch_infer"),
    {
      method: "POST",
      path: "/batch/infer/{model}",
      tag: "Infer",
      summary: "Run Batch Inference Task",
      query: [
        { name: "images", enum: ["all", "labeled", "unlabeled"], default: "all" },
        { name: "run_sync", type: "boolean", default: false },
      ],
      body: { kind: "json", description: "device, label_tag, max_batch_size, save_label ..." },
      handler: async (ctx) => {
        const model = ctx.path.model as string;
        const params = await jsonParams(ctx);
        inference.task(model);
        if ((await activeJobs(jobs, "batchInference")).length > 0) {
          throw alreadyRunning("Batch_infer");
        }
        const max = Number(params.max_batch_size ?? 0);
        const job = await jobs.enqueue("batchInference", {
          model,
          images: ctx.query.images as "all" | "labeled" | "unlabeled",
          labelTag: typeof params.label_tag === "string" ? params.label_tag : "original",
          params,
          maxBatchSize: Number.isFinite(max) && max > 0 ? max : null,
        });
        return finish(deps, job, ctx.query.run_sync === true);
      },
    },
    {
      method: "DELETE",
      path: "/batch/infer",
      tag: "Infer",
      summary: "Stop Batch Inference Task",
      handler: () => stopTask(jobs, "batchInference"),
    },
  ];
}
