import { builder } from "./builder.js";

const NamedTask = builder.simpleObject("NamedTask", {
  description: "A model, trainer, strategy or scoring method the app offers",
  fields: (t) => ({ name: t.string(), info: t.field({ type: "JSONObject" }) }),
});

const named = (tasks: Record<string, unknown>) =>
  Object.entries(tasks).map(([name, task]) => ({
    name,
    info:
      typeof task === "object" && task !== null && "info" in task && typeof task.info === "function"
        ? (task.info() as Record<string, unknown>)
        : {},
  }));

builder.queryField("info", (t) =>
  t.field({
    type: builder.simpleObject("AppInfo", {
      description: "What the app serves (MONAI Label's GET /info/)",
      fields: (t) => ({
        name: t.string(),
        description: t.string(),
        version: t.string(),
        labels: t.stringList(),
        models: t.field({ type: [NamedTask] }),
        trainers: t.field({ type: [NamedTask] }),
        strategies: t.field({ type: [NamedTask] }),
        scoringMethods: t.field({ type: [NamedTask] }),
      }),
    }),
    resolve: (_r, _a, ctx) => {
      const info = ctx.services.app.info();
      return {
        name: info.name,
        description: info.description,
        version: info.version,
        labels: info.labels,
        models: named(info.models),
        trainers: named(info.trainers),
        strategies: named(info.strategies),
        scoringMethods: named(info.scoring),
      };
    },
  }),
);
