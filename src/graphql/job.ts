import { type JobRecord, JobStatus } from "../db/jobs.repo.js";
import { LabelgraphError } from "../errors.js";
import { jobNotFound } from "../jobs/queue.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";

export const JobStatusEnum = builder.enumType("JobStatus", { values: Object.values(JobStatus) });

export const JobRef = builder.objectRef<JobRecord>("Job").implement({
  description: "Background work (export, training, scoring ...): state kept in the database across restarts",
  fields: (t) => ({
    id: t.exposeID("id"),
    kind: t.exposeString("kind"),
    status: t.field({ type: JobStatusEnum, resolve: (j) => j.status }),
    params: t.field({ type: "JSON", nullable: true, resolve: (j) => j.params }),
    progress: t.exposeFloat("progress", { description: "0 to 1" }),
    message: t.exposeString("message", { nullable: true }),
    result: t.field({ type: "JSON", nullable: true, resolve: (j) => j.result }),
    error: t.exposeString("error", { nullable: true }),
    downloadUrl: t.string({
      nullable: true,
      description: "For jobs whose result is a file (exportDataset)",
      resolve: (j, _a, ctx) =>
        j.kind === "exportDataset" && j.status === JobStatus.SUCCEEDED ? `${ctx.baseUrl}/jobs/${j.id}/download` : null,
    }),
    createdAt: t.field({ type: "DateTime", resolve: (j) => j.createdAt }),
    startedAt: t.field({ type: "DateTime", nullable: true, resolve: (j) => j.startedAt }),
    finishedAt: t.field({ type: "DateTime", nullable: true, resolve: (j) => j.finishedAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (j) => j.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  job: t.field({
    type: JobRef,
    nullable: true,
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.services.jobs.get(String(args.id)),
  }),
  jobs: t.field({
    type: [JobRef],
    description: "Newest first",
    args: {
      kind: t.arg.string({ required: false }),
      status: t.arg({ type: [JobStatusEnum], required: false }),
      first: t.arg.int({ defaultValue: 50 }),
      offset: t.arg.int({ defaultValue: 0 }),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.jobs.list(
        { kind: args.kind ?? undefined, status: args.status ?? undefined },
        Math.min(Math.max(args.first, 0), 500),
        Math.max(args.offset, 0),
      ),
  }),
}));

builder.mutationFields((t) => ({
  exportDataset: t.field({
    type: JobRef,
    description:
      "Starts a job that zips the final-labeled pairs (MONAI's dataset archive); download from Job.downloadUrl",
    errors: { types: datastoreErrors },
    args: { limitCases: t.arg.int({ required: false }) },
    resolve: (_r, args, ctx) => ctx.services.jobs.enqueue("exportDataset", { limitCases: args.limitCases ?? null }),
  }),
  cancelJob: t.field({
    type: JobRef,
    errors: { types: [LabelgraphError] },
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.services.jobs.cancel(String(args.id)),
  }),
}));

builder.subscriptionField("jobUpdated", (t) =>
  t.field({
    type: JobRef,
    description: "Every state or progress change of one job (or of all jobs when `id` is omitted)",
    args: { id: t.arg.id({ required: false }) },
    subscribe: async function* (_r, args, ctx) {
      const id = args.id == null ? null : String(args.id);
      // Subscribe before reading, so no update between the read and the subscription is lost.
      const events = ctx.services.pubsub.subscribe("job:updated");
      if (id !== null) {
        const current = await ctx.services.jobs.get(id);
        if (!current) {
          await events.return?.();
          throw jobNotFound(id);
        }
        yield current;
      }
      for await (const job of events) {
        if (id === null || job.id === id) {
          yield job;
        }
      }
    },
    resolve: (job) => job,
  }),
);
