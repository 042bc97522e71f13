import type { LabelRecord } from "../datastore/types.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { withUpload } from "./upload.js";

export const LabelRef = builder.objectRef<LabelRecord>("Label");

/** The save response of each label saveLabel returned (MONAI's {image, label} plus the app's onSaveLabel). */
const saveResponses = new WeakMap<LabelRecord, Record<string, unknown>>();

LabelRef.implement({
  description:
    "One version of an image's label under a tag (`original` from the model, `final` from the annotator, or any other)",
  fields: (t) => ({
    id: t.id({ description: "imageId/tag/version", resolve: (l) => `${l.imageId}/${l.tag}/${l.version}` }),
    imageId: t.exposeID("imageId"),
    tag: t.exposeString("tag"),
    version: t.exposeInt("version", { description: "1 for the first save of the tag; the highest is current" }),
    author: t.exposeString("author", { nullable: true }),
    extension: t.exposeString("extension"),
    size: t.float({ resolve: (l) => l.size }),
    sha256: t.exposeString("sha256"),
    dimensions: t.intList({ resolve: (l) => l.dimensions }),
    info: t.field({ type: "JSONObject", resolve: (l) => l.info }),
    url: t.string({
      description: "Downloads this version",
      resolve: (l, _a, ctx) =>
        `${ctx.baseUrl}/datastore/label?label=${encodeURIComponent(l.imageId)}&tag=${encodeURIComponent(l.tag)}&version=${l.version}`,
    }),
    versions: t.field({
      type: [LabelRef],
      description: "Every version of this tag, oldest first",
      resolve: (l, _a, ctx) => ctx.services.datastore.labelVersions(l.imageId, l.tag),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (l) => l.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (l) => l.updatedAt }),
  }),
});

builder.mutationFields((t) => ({
  saveLabel: t.field({
    type: LabelRef,
    description:
      "Saves a new version of the image's label under `tag` (default `final`). Its spatial shape must match the image's.",
    errors: {
      types: datastoreErrors,
      result: {
        fields: (t) => ({
          response: t.field({
            type: "JSONObject",
            description:
              "MONAI's PUT /datastore/label response: `image`, `label`, and whatever the app's onSaveLabel returned",
            resolve: (label) => saveResponses.get(label) ?? { image: label.imageId, label: label.imageId },
          }),
        }),
      },
    },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("SaveLabelInput", {
          fields: (t) => ({
            imageId: t.id({ required: true }),
            tag: t.string({ required: false, defaultValue: "final" }),
            file: t.field({ type: "File", required: true }),
            info: t.field({ type: "JSONObject", required: false }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) =>
      withUpload(input.file, async (path, fileName) => {
        const { label, response } = await ctx.services.app.saveLabel({
          imageId: String(input.imageId),
          tag: input.tag,
          fileName,
          path,
          info: input.info,
          author: ctx.user,
        });
        saveResponses.set(label, response);
        return label;
      }),
  }),
  deleteLabel: t.field({
    type: [LabelRef],
    description: "Removes every version of the tag; returns what was removed",
    errors: { types: datastoreErrors },
    args: { imageId: t.arg.id(), tag: t.arg.string() },
    resolve: (_r, args, ctx) => ctx.services.datastore.removeLabel(String(args.imageId), args.tag),
  }),
  updateLabelInfo: t.field({
    type: LabelRef,
    description: "Merges `info` into the current version's info",
    errors: { types: datastoreErrors },
    args: { imageId: t.arg.id(), tag: t.arg.string(), info: t.arg({ type: "JSONObject", required: true }) },
    resolve: (_r, args, ctx) =>
      ctx.services.datastore.updateLabelInfo(String(args.imageId), args.tag, args.info, ctx.user),
  }),
}));
