import { LabelgraphError } from "../errors.js";
import type { InferTask } from "../tasks/infer/infer-task.js";
import type { InferenceOutcome } from "../tasks/infer/inference.service.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { JobRef } from "./job.js";
import { LabelRef } from "./label.js";

const ModelRef = builder.objectRef<[string, InferTask]>("Model").implement({
  description: "An infer task of the app (MONAI's /info/ models entry)",
  fields: (t) => ({
    name: t.string({ resolve: ([name]) => name }),
    type: t.string({ resolve: ([, task]) => task.type }),
    labels: t.field({
      type: "JSON",
      description: "A list or MONAI's {name: index} map",
      resolve: ([, task]) => task.labels,
    }),
    dimension: t.int({ resolve: ([, task]) => task.dimension }),
    description: t.string({ resolve: ([, task]) => task.description }),
    config: t.field({ type: "JSONObject", resolve: ([, task]) => task.config }),
  }),
});

builder.queryField("models", (t) =>
  t.field({
    type: [ModelRef],
    description: "Models whose weights exist",
    resolve: (_r, _a, ctx) => ctx.services.inference.models(),
  }),
);

const InferenceResultRef = builder.objectRef<InferenceOutcome>("InferenceResult").implement({
  fields: (t) => ({
    model: t.exposeString("model"),
    imageId: t.exposeID("imageId", { nullable: true }),
    sessionId: t.exposeID("sessionId", { nullable: true }),
    label: t.field({
      type: LabelRef,
      nullable: true,
      description: "The saved label (saveLabel)",
      resolve: (o) => o.label,
    }),
    url: t.string({
      nullable: true,
      description: "Downloads the label file",
      resolve: (o, _a, ctx) =>
        o.label
          ? `${ctx.baseUrl}/datastore/label?label=${encodeURIComponent(o.label.imageId)}&tag=${encodeURIComponent(o.label.tag)}&version=${o.label.version}`
          : o.resultKey
            ? `${ctx.baseUrl}/${o.resultKey}`
            : null,
    }),
    result: t.field({
      type: "JSONObject",
      description: "MONAI's result JSON: label_names, latencies, centroids and what post-transforms add",
      resolve: (o) => o.result,
    }),
    latencies: t.field({ type: "JSONObject", resolve: (o) => (o.result.latencies as Record<string, unknown>) ?? {} }),
  }),
});

builder.mutationField("runInference", (t) =>
  t.field({
    type: InferenceResultRef,
    description: "Runs a model on a datastore image; by default the result is saved as its `original` label",
    errors: { types: [...datastoreErrors, LabelgraphError] },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("RunInferenceInput", {
          fields: (t) => ({
            model: t.string({ required: true }),
            imageId: t.id({ required: false, description: "A datastore image, or" }),
            sessionId: t.id({ required: false, description: "an image uploaded with createSession" }),
            params: t.field({ type: "JSONObject", required: false }),
            saveLabel: t.boolean({ required: false, defaultValue: true }),
            labelTag: t.string({ required: false, defaultValue: "original" }),
            foreground: t.field({
              type: "JSON",
              required: false,
              description: "Foreground clicks, [[x, y, z], ...] in voxels (deepgrow), or {label: [[x,y,z]]} (deepedit)",
            }),
            background: t.field({ type: "JSON", required: false, description: "Background clicks, [[x, y, z], ...]" }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) =>
      ctx.services.inference.runInference({
        model: input.model,
        imageId: input.imageId == null ? null : String(input.imageId),
        sessionId: input.sessionId == null ? null : String(input.sessionId),
        // Clicks travel in params under MONAI's keys, where the guidance transforms read them.
        params: {
          ...(input.params ?? {}),
          ...(input.foreground == null ? {} : { foreground: input.foreground }),
          ...(input.background == null ? {} : { background: input.background }),
        },
        saveLabel: input.saveLabel,
        labelTag: input.labelTag,
        user: ctx.user,
      }),
  }),
);

const BatchImages = builder.enumType("BatchImages", { values: ["ALL", "LABELED", "UNLABELED"] as const });

builder.mutationField("runBatchInference", (t) =>
  t.field({
    type: JobRef,
    description: "Runs a model over a set of images as a job (progress on jobUpdated); each result is saved as a label",
    errors: { types: [...datastoreErrors, LabelgraphError] },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("RunBatchInferenceInput", {
          fields: (t) => ({
            model: t.string({ required: true }),
            images: t.field({ type: BatchImages, required: false, description: "Which images (default ALL)" }),
            imageIds: t.idList({ required: false, description: "Or exactly these images" }),
            labelTag: t.string({ required: false, defaultValue: "original" }),
            params: t.field({ type: "JSONObject", required: false }),
            maxBatchSize: t.int({ required: false }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) => {
      // Fail fast on an unknown model rather than in the job.
      ctx.services.inference.task(input.model);
      return ctx.services.jobs.enqueue("batchInference", {
        model: input.model,
        images: input.imageIds
          ? input.imageIds.map(String)
          : ((input.images ?? "ALL").toLowerCase() as "all" | "labeled" | "unlabeled"),
        labelTag: input.labelTag,
        params: input.params,
        maxBatchSize: input.maxBatchSize,
      });
    },
  }),
);
