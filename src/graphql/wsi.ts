import { LabelgraphError } from "../errors.js";
import type { WsiOutcome } from "../tasks/infer/wsi.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";

const WsiOutputEnum = builder.enumType("WsiOutput", {
  description: "MONAI's WSI output formats",
  values: {
    JSON: { value: "json", description: "The JSON result only" },
    DSA: { value: "dsa", description: "A Digital Slide Archive annotation document (JSON)" },
    ASAP: { value: "asap", description: "An ASAP annotation file (XML)" },
  } as const,
});

const WsiInferenceResultRef = builder.objectRef<WsiOutcome>("WsiInferenceResult").implement({
  description: "Polygons found in a region of a large image (MONAI's /infer/wsi)",
  fields: (t) => ({
    model: t.exposeString("model"),
    imageId: t.exposeID("imageId", { nullable: true }),
    output: t.field({ type: WsiOutputEnum, resolve: (o) => o.output }),
    count: t.int({ description: "Polygons over all labels", resolve: (o) => o.result.count }),
    tiles: t.int({ resolve: (o) => o.result.tiles }),
    result: t.field({
      type: "JSONObject",
      description:
        "MONAI's JSON: name, description, model, location, size, latencies and annotations[].annotation " +
        "{location, size, labels, elements[{label, contours}]}; contour vertices are level-0 pixel corners [x, y]",
      resolve: (o) => o.result as unknown as Record<string, unknown>,
    }),
    latencies: t.field({ type: "JSONObject", resolve: (o) => o.result.latencies }),
    document: t.string({
      nullable: true,
      description: "The DSA JSON or ASAP XML document (null for JSON output)",
      resolve: (o) => o.document?.content ?? null,
    }),
    mimeType: t.string({ nullable: true, resolve: (o) => o.document?.mimeType ?? null }),
  }),
});

builder.mutationField("runWsiInference", (t) =>
  t.field({
    type: WsiInferenceResultRef,
    description:
      "Runs a 2D segmentation model over a region of a large image, tile by tile, and returns the merged result as polygons",
    errors: { types: [...datastoreErrors, LabelgraphError] },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("RunWsiInferenceInput", {
          fields: (t) => ({
            model: t.string({ required: true }),
            imageId: t.id({ required: false, description: "A datastore image, or" }),
            sessionId: t.id({ required: false, description: "an image uploaded with createSession" }),
            level: t.int({ required: false, defaultValue: 0, description: "Pyramid level (0 only, today)" }),
            location: t.intList({
              required: false,
              defaultValue: [0, 0],
              description: "Top-left corner [x, y], level-0 pixels",
            }),
            size: t.intList({
              required: false,
              defaultValue: [2048, 2048],
              description: "Region [width, height]; clipped to the image",
            }),
            tileSize: t.intList({ required: false, defaultValue: [1024, 1024], description: "[width, height]" }),
            minPolyArea: t.float({ required: false, defaultValue: 80, description: "Smaller polygons are dropped" }),
            output: t.field({ type: WsiOutputEnum, required: false, defaultValue: "dsa" }),
            params: t.field({ type: "JSONObject", required: false, description: "Passed to the model on each tile" }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) =>
      ctx.services.wsi.infer({
        model: input.model,
        imageId: input.imageId == null ? null : String(input.imageId),
        sessionId: input.sessionId == null ? null : String(input.sessionId),
        level: input.level ?? 0,
        location: input.location ?? undefined,
        size: input.size ?? undefined,
        tileSize: input.tileSize ?? undefined,
        minPolyArea: input.minPolyArea ?? undefined,
        output: input.output ?? "dsa",
        params: input.params ?? null,
      }),
  }),
);
