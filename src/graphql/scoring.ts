import type { Info } from "../datastore/types.js";
import type { ScoreUpdate, ScoringMethod } from "../tasks/scoring/scoring-method.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { ImageRef } from "./image.js";
import { JobRef } from "./job.js";
import { LabelRef } from "./label.js";

const ScoringMethodRef = builder.objectRef<[string, ScoringMethod]>("ScoringMethod").implement({
  description: "A scoring method of the app: computes scores into image or label info, as a `scoring` job",
  fields: (t) => ({
    name: t.string({ resolve: ([name]) => name }),
    description: t.string({ resolve: ([, m]) => m.description }),
    info: t.field({ type: "JSONObject", resolve: ([, m]) => m.info() }),
  }),
});

builder.queryField("scoringMethods", (t) =>
  t.field({
    type: [ScoringMethodRef],
    description: "The app's scoring methods (MONAI's /info/ scoring)",
    resolve: (_r, _a, ctx) => ctx.services.scoring.methods(),
  }),
);

builder.mutationField("runScoring", (t) =>
  t.field({
    type: JobRef,
    description:
      "Runs one of the app's scoring methods as a job (MONAI's POST /scoring/{method}); progress on jobUpdated, " +
      "each new score on scoreUpdated",
    errors: { types: datastoreErrors },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("RunScoringInput", {
          fields: (t) => ({
            method: t.string({ required: true }),
            params: t.field({ type: "JSONObject", required: false, description: "Passed to the method" }),
            imageIds: t.idList({ required: false, description: "Only these images (default: all it applies to)" }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) =>
      ctx.services.scoring.enqueue(input.method, {
        params: input.params ?? {},
        imageIds: input.imageIds ? input.imageIds.map(String) : null,
      }),
  }),
);

const num = (info: Info, key: string) => {
  const v = info[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
};

builder.objectFields(ImageRef, (t) => ({
  dice: t.float({
    nullable: true,
    description: "Dice of the final label against the original one (the Dice scoring method; info.dice)",
    resolve: (i) => num(i.info, "dice"),
  }),
  epistemicEntropy: t.float({
    nullable: true,
    description:
      "Mean Monte-Carlo dropout entropy of the model's prediction (EpistemicScoring; info.epistemic_entropy)",
    resolve: (i) => num(i.info, "epistemic_entropy"),
  }),
  sum: t.int({
    nullable: true,
    description: "Sum of the current label's values under the tag (the Sum scoring method; label info.sum)",
    args: { tag: t.arg.string({ defaultValue: "final" }) },
    resolve: async (i, args, ctx) => {
      const label = (await ctx.loaders.labels.load(i.id)).find((l) => l.tag === args.tag);
      return label ? num(label.info, "sum") : null;
    },
  }),
}));

builder.objectFields(LabelRef, (t) => ({
  sum: t.int({
    nullable: true,
    description: "Sum of the label's values (the Sum scoring method)",
    resolve: (l) => num(l.info, "sum"),
  }),
  slices: t.intList({
    nullable: true,
    description: "Indices of the first-axis slices holding any label (the Sum scoring method)",
    resolve: (l) => (Array.isArray(l.info.slices) ? (l.info.slices as number[]) : null),
  }),
}));

const ScoreUpdateRef = builder.objectRef<ScoreUpdate>("ScoreUpdate").implement({
  description: "A score stored by a scoring job",
  fields: (t) => ({
    method: t.exposeString("method"),
    imageId: t.exposeID("imageId"),
    tag: t.exposeString("tag", { nullable: true, description: "Set when the score went into a label's info" }),
    version: t.exposeInt("version", { nullable: true }),
    score: t.field({ type: "JSONObject", description: "The entries written into the info", resolve: (u) => u.score }),
    jobId: t.exposeID("jobId", { nullable: true }),
    image: t.field({
      type: ImageRef,
      nullable: true,
      // Not the loader: a subscription keeps one context (and one loader cache) for all its events.
      resolve: (u, _a, ctx) => ctx.services.datastore.findImage(u.imageId),
    }),
    at: t.field({ type: "DateTime", resolve: (u) => u.at }),
  }),
});

builder.subscriptionField("scoreUpdated", (t) =>
  t.field({
    type: ScoreUpdateRef,
    description: "Each score as a scoring job stores it (of one method, or of all when `method` is omitted)",
    args: {
      method: t.arg.string({ required: false }),
      imageId: t.arg.id({ required: false }),
    },
    subscribe: async function* (_r, args, ctx) {
      for await (const update of ctx.services.pubsub.subscribe("score:updated")) {
        if (
          (args.method == null || update.method === args.method) &&
          (args.imageId == null || update.imageId === String(args.imageId))
        ) {
          yield update;
        }
      }
    },
    resolve: (u) => u,
  }),
);
