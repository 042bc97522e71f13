import { resolveCursorConnection } from "@pothos/plugin-relay";
import type { ImageFilter, ImageRecord } from "../datastore/types.js";
import { InvalidInputError } from "../errors.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { LabelRef } from "./label.js";
import { withUpload } from "./upload.js";

export const ImageRef = builder.objectRef<ImageRecord>("Image");

const encodeCursor = (id: string) => Buffer.from(`image:${id}`).toString("base64url");
function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) {
    return undefined;
  }
  const raw = Buffer.from(cursor, "base64url").toString();
  if (!raw.startsWith("image:")) {
    throw new InvalidInputError(`invalid cursor ${JSON.stringify(cursor)}`);
  }
  return raw.slice("image:".length);
}

ImageRef.implement({
  description: "An image in the datastore",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name", { description: "The file name it was added with" }),
    extension: t.exposeString("extension"),
    format: t.exposeString("format", { description: "nifti, nrrd, png, jpeg or tiff" }),
    size: t.float({ description: "Bytes", resolve: (i) => i.size }),
    sha256: t.exposeString("sha256"),
    dimensions: t.intList({ description: "Every axis of the file, fastest first", resolve: (i) => i.dimensions }),
    spacing: t.floatList({ description: "Voxel size in mm per spatial axis", resolve: (i) => i.spacing }),
    channels: t.exposeInt("channels"),
    dtype: t.exposeString("dtype"),
    info: t.field({ type: "JSONObject", resolve: (i) => i.info }),
    url: t.string({
      description: "Downloads the file",
      resolve: (i, _a, ctx) => `${ctx.baseUrl}/datastore/image?image=${encodeURIComponent(i.id)}`,
    }),
    labeled: t.boolean({
      description: "Has a `final` label",
      resolve: async (i, _a, ctx) => (await ctx.loaders.labels.load(i.id)).some((l) => l.tag === "final"),
    }),
    labels: t.field({
      type: [LabelRef],
      description: "The current version of each tag",
      resolve: (i, _a, ctx) => ctx.loaders.labels.load(i.id),
    }),
    label: t.field({
      type: LabelRef,
      nullable: true,
      args: { tag: t.arg.string({ defaultValue: "final" }), version: t.arg.int() },
      resolve: async (i, args, ctx) =>
        args.version == null
          ? ((await ctx.loaders.labels.load(i.id)).find((l) => l.tag === args.tag) ?? null)
          : ctx.services.datastore.findLabel(i.id, args.tag, args.version),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (i) => i.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (i) => i.updatedAt }),
  }),
});

const ImageFilterInput = builder.inputType("ImageFilter", {
  fields: (t) => ({
    labeled: t.boolean({ required: false, description: "true: has a `final` label; false: has none" }),
    tag: t.string({ required: false, description: "Has a label with this tag" }),
    search: t.string({ required: false, description: "Substring of the id" }),
  }),
});

const toFilter = (f: { labeled?: boolean | null; tag?: string | null; search?: string | null } | null | undefined) => {
  const filter: ImageFilter = {};
  if (f?.labeled != null) {
    filter.labeled = f.labeled;
  }
  if (f?.tag != null) {
    filter.tag = f.tag;
  }
  if (f?.search != null) {
    filter.search = f.search;
  }
  return filter;
};

builder.queryFields((t) => ({
  images: t.connection(
    {
      type: ImageRef,
      args: { filter: t.arg({ type: ImageFilterInput, required: false }) },
      description: "Images ordered by id",
      resolve: async (_root, args, ctx) => {
        const filter = toFilter(args.filter);
        const conn = await resolveCursorConnection<Promise<ImageRecord[]>>(
          { args, toCursor: (i) => encodeCursor(i.id), defaultSize: 50, maxSize: 1000 },
          ({ before, after, limit, inverted }) =>
            ctx.services.datastore.pageImages(filter, {
              before: decodeCursor(before),
              after: decodeCursor(after),
              limit,
              inverted,
            }),
        );
        // totalCount (below) reads the filter back from the connection object.
        return Object.assign(conn, { filter });
      },
    },
    {
      name: "ImageConnection",
      fields: (t) => ({
        totalCount: t.int({
          description: "Images matching the filter, on every page",
          resolve: (conn, _a, ctx) => ctx.services.datastore.countImages((conn as { filter: ImageFilter }).filter),
        }),
      }),
    },
  ),
  image: t.field({
    type: ImageRef,
    nullable: true,
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.loaders.image.load(String(args.id)),
  }),
}));

builder.mutationFields((t) => ({
  uploadImage: t.field({
    type: ImageRef,
    description:
      "Adds an image (or replaces the one with the same id). The id defaults to the file name minus its extension.",
    errors: { types: datastoreErrors },
    args: {
      input: t.arg({
        required: true,
        type: builder.inputType("UploadImageInput", {
          fields: (t) => ({
            file: t.field({ type: "File", required: true }),
            id: t.string({ required: false }),
            info: t.field({ type: "JSONObject", required: false }),
          }),
        }),
      }),
    },
    resolve: (_r, { input }, ctx) =>
      withUpload(input.file, (path, fileName) =>
        ctx.services.datastore.addImage({ id: input.id, fileName, path, info: input.info, user: ctx.user }),
      ),
  }),
  deleteImage: t.field({
    type: ImageRef,
    description: "Removes the image and all its labels; returns what was removed",
    errors: { types: datastoreErrors },
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.services.datastore.removeImage(String(args.id)),
  }),
  updateImageInfo: t.field({
    type: ImageRef,
    description: "Merges `info` into the image's info (top-level keys replace)",
    errors: { types: datastoreErrors },
    args: { id: t.arg.id(), info: t.arg({ type: "JSONObject", required: true }) },
    resolve: (_r, args, ctx) => ctx.services.datastore.updateImageInfo(String(args.id), args.info, ctx.user),
  }),
}));

builder.queryField("datastoreStatus", (t) =>
  t.field({
    type: builder.simpleObject("DatastoreStatus", {
      fields: (t) => ({
        total: t.int(),
        completed: t.int({ description: "Images with a `final` label" }),
        labelTags: t.field({ type: "JSONObject", description: "Images per label tag, e.g. {final: 3, original: 5}" }),
      }),
    }),
    resolve: (_r, _a, ctx) => ctx.services.datastore.status(),
  }),
);
