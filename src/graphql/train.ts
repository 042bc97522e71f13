import { JobStatus } from "../db/jobs.repo.js";
import { LabelgraphError } from "../errors.js";
import type { TrainingProgress } from "../events/pubsub.js";
import { jobNotFound } from "../jobs/queue.js";
import type { TrainTask } from "../tasks/train/basic-train-task.js";
import { trainerNotFound } from "../tasks/train/training.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { JobRef } from "./job.js";

const TrainerRef = builder.objectRef<[string, TrainTask]>("Trainer").implement({
  description: "A train task of the app (MONAI's /info/ trainers entry); its config doubles as the request params",
  fields: (t) => ({
    name: t.string({ resolve: ([name]) => name }),
    description: t.string({ resolve: ([, task]) => task.description }),
    config: t.field({ type: "JSONObject", resolve: ([, task]) => task.config() }),
  }),
});

builder.queryField("trainers", (t) =>
  t.field({ type: [TrainerRef], resolve: (_r, _a, ctx) => Object.entries(ctx.services.app.trainers()) }),
);

const TrainingProgressRef = builder.objectRef<TrainingProgress>("TrainingProgress").implement({
  description: "One training iteration (loss, learning rate, samples/s) or epoch (train/val Dice, best so far)",
  fields: (t) => ({
    jobId: t.exposeID("jobId"),
    model: t.exposeString("model"),
    kind: t.exposeString("kind", { description: "iteration or epoch" }),
    epoch: t.exposeInt("epoch"),
    iteration: t.exposeInt("iteration"),
    loss: t.exposeFloat("loss", { nullable: true }),
    lr: t.exposeFloat("lr", { nullable: true }),
    samplesPerSec: t.exposeFloat("samplesPerSec", { nullable: true }),
    trainDice: t.exposeFloat("trainDice", { nullable: true }),
    valDice: t.exposeFloat("valDice", { nullable: true }),
    bestMetric: t.exposeFloat("bestMetric", { nullable: true }),
    bestEpoch: t.exposeInt("bestEpoch", { nullable: true }),
    elapsed: t.exposeFloat("elapsed", { description: "Seconds since the run started" }),
  }),
});

builder.mutationFields((t) => ({
  startTraining: t.field({
    type: JobRef,
    description: "Queues a training run of the app's trainer (one run at a time; later requests wait their turn)",
    errors: { types: [...datastoreErrors, LabelgraphError] },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("StartTrainingInput", {
          fields: (t) => ({
            model: t.string({ required: true }),
            params: t.field({
              type: "JSONObject",
              required: false,
              description: "MONAI's request params: max_epochs, val_split, train_batch_size, learning_rate ...",
            }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) => {
      if (!ctx.services.app.trainers()[input.model]) {
        throw trainerNotFound(input.model);
      }
      return ctx.services.jobs.enqueue("train", { model: input.model, params: input.params ?? {} });
    },
  }),
  stopTraining: t.field({
    type: JobRef,
    description: "Stops a training run after its current step; the best model published so far is kept",
    errors: { types: [LabelgraphError] },
    args: { jobId: t.arg.id() },
    resolve: async (_r, args, ctx) => {
      const job = await ctx.services.jobs.get(String(args.jobId));
      if (job?.kind !== "train") {
        throw jobNotFound(String(args.jobId));
      }
      return ctx.services.jobs.cancel(job.id);
    },
  }),
}));

builder.subscriptionField("trainingProgress", (t) =>
  t.field({
    type: TrainingProgressRef,
    description: "Every iteration and epoch of training runs, of one job or of one model",
    args: { jobId: t.arg.id({ required: false }), model: t.arg.string({ required: false }) },
    subscribe: async function* (_r, args, ctx) {
      const jobId = args.jobId == null ? null : String(args.jobId);
      const events = ctx.services.pubsub.subscribe("training:progress");
      const jobs = ctx.services.pubsub.subscribe("job:updated");
      // End the stream when the watched job finishes.
      const finished = (async () => {
        for await (const j of jobs) {
          if (
            jobId !== null &&
            j.id === jobId &&
            [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED].includes(j.status as never)
          ) {
            await events.return?.();
            return;
          }
        }
      })();
      try {
        for await (const e of events) {
          if ((jobId === null || e.jobId === jobId) && (args.model == null || e.model === args.model)) {
            yield e;
          }
        }
      } finally {
        await jobs.return?.();
        await finished;
      }
    },
    resolve: (e) => e,
  }),
);
