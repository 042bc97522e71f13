import type { Info } from "../datastore/types.js";
import type { Strategy } from "../tasks/activelearning/strategy.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { ImageRef } from "./image.js";

const StrategyRef = builder.objectRef<[string, Strategy]>("Strategy").implement({
  description: "An active learning strategy of the app: how nextImage picks the image to label next",
  fields: (t) => ({
    name: t.string({ resolve: ([name]) => name }),
    description: t.string({ resolve: ([, s]) => s.description }),
    info: t.field({ type: "JSONObject", resolve: ([, s]) => s.info() }),
  }),
});

builder.queryField("strategies", (t) =>
  t.field({
    type: [StrategyRef],
    description: "The app's strategies (MONAI's /info/ strategies)",
    resolve: (_r, _a, ctx) => ctx.services.activeLearning.strategies(),
  }),
);

interface Serve {
  strategy: string;
  clientId: string | null;
  servedAt: Date;
}

/** MONAI's `info.strategy`: {<strategy>: {ts, client_id}}, most recent first. */
function servesOf(info: Info): Serve[] {
  const served = info.strategy;
  if (!served || typeof served !== "object" || Array.isArray(served)) {
    return [];
  }
  return Object.entries(served as Record<string, { ts?: unknown; client_id?: unknown } | null>)
    .filter(([, r]) => typeof r?.ts === "number")
    .map(([strategy, r]) => ({
      strategy,
      clientId: typeof r?.client_id === "string" ? r.client_id : null,
      servedAt: new Date((r?.ts as number) * 1000),
    }))
    .sort((a, b) => b.servedAt.getTime() - a.servedAt.getTime());
}

const ServeRef = builder.objectRef<Serve>("StrategyServe").implement({
  description: "When a strategy last served the image, and to whom (MONAI's info.strategy)",
  fields: (t) => ({
    strategy: t.exposeString("strategy"),
    clientId: t.exposeString("clientId", { nullable: true }),
    servedAt: t.field({ type: "DateTime", resolve: (s) => s.servedAt }),
  }),
});

builder.objectFields(ImageRef, (t) => ({
  served: t.field({
    type: [ServeRef],
    description: "Each strategy's last serve of this image by nextImage, most recent first",
    resolve: (i) => servesOf(i.info),
  }),
}));

builder.mutationField("nextImage", (t) =>
  t.field({
    type: ImageRef,
    nullable: true,
    description:
      "The image to label next by one of the app's strategies (MONAI's POST /activelearning/{strategy}), or null " +
      "when every image is labeled; records the serve (strategy, time, client) in the image info",
    errors: { types: datastoreErrors },
    args: {
      input: t.arg({
        required: false,
        type: builder.inputType("NextImageInput", {
          fields: (t) => ({
            strategy: t.string({ required: false, defaultValue: "random" }),
            clientId: t.string({ required: false, description: "Who the image is for (default: the user)" }),
            params: t.field({ type: "JSONObject", required: false, description: "Passed to the strategy" }),
          }),
        }),
      }),
    },
    resolve: async (_r, { input }, ctx) => {
      const next = await ctx.services.activeLearning.nextImage({
        strategy: input?.strategy ?? "random",
        clientId: input?.clientId ?? ctx.user,
        params: input?.params ?? {},
      });
      return next?.image ?? null;
    },
  }),
);
