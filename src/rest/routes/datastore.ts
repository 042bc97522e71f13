import type { SavedLabel } from "../../app/label-app.js";
import type { ImageRecord, Info, LabelRecord } from "../../datastore/types.js";
import { binaryToImage } from "../binary.js";
import { DEFAULT_USER, type RestDeps } from "../deps.js";
import { HttpError, parseJsonObject, readBody, sendStream, validationError } from "../http.js";
import { type Form, parseMultipart, type UploadedFile } from "../multipart.js";
import { HANDLED, type Route, type RouteContext } from "../router.js";
import { waitFor } from "../tasks.js";

const TAG = "Datastore";

/** Runs `fn` on a parsed multipart body and removes its temporary files afterwards. */
export async function withForm<T>(ctx: RouteContext, fn: (form: Form) => Promise<T>): Promise<T> {
  const form = await parseMultipart(ctx.req);
  try {
    return await fn(form);
  } finally {
    await form.cleanup();
  }
}

export function requireFile(form: Form, name: string): UploadedFile {
  const file = form.file(name);
  if (!file) {
    throw validationError("body", name, "Field required");
  }
  return file;
}

const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));

/** MONAI's label file name: the image id plus the label's extension. */
const labelFileName = (l: LabelRecord) => `${l.imageId}${l.extension}`;

/** Does the stored checksum match `ALGO:digest` or a bare digest? (MONAI's bare-digest comparison never matches.) */
function checksumMatches(image: ImageRecord, given: string): boolean {
  const [algo, digest] = given.includes(":") ? given.split(":", 2) : ["SHA256", given];
  return (algo ?? "").toUpperCase() === "SHA256" && (digest ?? "").toLowerCase() === image.sha256.toLowerCase();
}

/** The whole datastore as MONAI's datastore_v2.json (`?output=all`), a page of images at a time. */
async function datastoreJson(deps: RestDeps) {
  const objects: Record<string, unknown> = {};
  let after: string | undefined;
  for (;;) {
    const page = await deps.datastore.pageImages({}, { after, limit: 1000, inverted: false });
    if (page.length === 0) {
      break;
    }
    const labels = await deps.datastore.labelsOfMany(page.map((i) => i.id));
    for (const image of page) {
      objects[image.id] = {
        image: { ext: image.extension, info: image.info },
        labels: Object.fromEntries(
          (labels.get(image.id) ?? []).map((l) => [l.tag, { ext: l.extension, info: l.info }]),
        ),
      };
    }
    after = page.at(-1)?.id;
  }
  return {
    name: deps.app.name,
    description: deps.app.description,
    images_dir: ".",
    labels_dir: "labels",
    objects,
  };
}

/**
 * Saves an uploaded label through the app (so its `onSaveLabel` runs and its result joins the response); a `.bin`
 * upload is raw voxels on the image's grid (OHIF v3 sends `label.bin`).
 */
export async function saveUploadedLabel(
  deps: RestDeps,
  input: { imageId: string; tag: string; file: UploadedFile; info: Info },
): Promise<SavedLabel> {
  const image = await deps.datastore.getImage(input.imageId);
  let path = input.file.path;
  let fileName = input.file.fileName;
  if (fileName.toLowerCase().endsWith(".bin")) {
    const local = await deps.store.localPath(image.objectKey);
    try {
      path = `${input.file.path}.nii.gz`;
      fileName = `${image.id}.nii.gz`;
      await binaryToImage(input.file.path, { path: local.path, fileName: image.name }, path);
    } finally {
      await local.release();
    }
  }
  return deps.app.saveLabel({
    imageId: image.id,
    tag: input.tag,
    fileName,
    path,
    info: input.info,
    author: typeof input.info.client_id === "string" ? input.info.client_id : DEFAULT_USER,
  });
}

export function datastoreRoutes(deps: RestDeps): Route[] {
  const { datastore } = deps;

  const addImage: Route["handler"] = (ctx) =>
    withForm(ctx, async (form) => {
      const file = requireFile(form, "file");
      const params = parseJsonObject(form.field("params"), "params");
      const image = await datastore.addImage({
        id: str(ctx.query.image) || null,
        fileName: file.fileName,
        path: file.path,
        info: params,
        user: DEFAULT_USER,
      });
      return { image: image.id };
    });

  const removeImage: Route["handler"] = async (ctx) => {
    await datastore.removeImage(str(ctx.query.id));
    return {};
  };

  const updateLabelInfo =
    (field: "info" | "params"): Route["handler"] =>
    (ctx) =>
      withFormOrEmpty(ctx, async (form) => {
        const info = parseJsonObject(form?.field(field), field);
        await datastore.updateLabelInfo(str(ctx.query.label), str(ctx.query.tag) || "final", info, DEFAULT_USER);
        return null;
      });

  return [
    {
      method: "GET",
      path: "/datastore/",
      tag: TAG,
      summary: "Get All Images/Labels from datastore",
      query: [{ name: "output", enum: ["stats", "all", "train"], default: "stats" }],
      handler: async (ctx) => {
        if (ctx.query.output === "all") {
          return datastoreJson(deps);
        }
        if (ctx.query.output === "train") {
          // MONAI gives local paths; labelgraph's blobs may not be files, so the pairs are download URLs.
          const pairs = await datastore.datalist();
          return pairs.map((p) => ({
            image: `${ctx.baseUrl}/datastore/image?image=${encodeURIComponent(p.image)}`,
            label: `${ctx.baseUrl}/datastore/label?label=${encodeURIComponent(p.label)}&tag=final`,
          }));
        }
        const s = await datastore.status();
        return { total: s.total, completed: s.completed, label_tags: s.labelTags };
      },
    },
    {
      method: "PUT",
      path: "/datastore/",
      tag: TAG,
      summary: "Upload new Image (deprecated: PUT /datastore/image)",
      deprecated: true,
      query: [{ name: "image" }],
      body: { kind: "multipart", fields: ["params"], files: ["file"] },
      handler: addImage,
    },
    {
      method: "DELETE",
      path: "/datastore/",
      tag: TAG,
      summary: "Remove Image and corresponding labels (deprecated: DELETE /datastore/image)",
      deprecated: true,
      query: [{ name: "id", required: true }],
      handler: removeImage,
    },
    {
      method: "PUT",
      path: "/datastore/image",
      tag: TAG,
      summary: "Upload new Image",
      query: [{ name: "image" }],
      body: { kind: "multipart", fields: ["params"], files: ["file"] },
      handler: addImage,
    },
    {
      method: "DELETE",
      path: "/datastore/image",
      tag: TAG,
      summary: "Remove Image and corresponding labels",
      query: [{ name: "id", required: true }],
      handler: removeImage,
    },
    {
      method: "HEAD",
      path: "/datastore/image",
      tag: TAG,
      summary: "Check If Image Exists",
      query: [{ name: "image", required: true }, { name: "check_sum" }],
      handler: async (ctx) => {
        const image = await datastore.findImage(str(ctx.query.image));
        const sum = str(ctx.query.check_sum);
        if (!image || (sum && !checksumMatches(image, sum))) {
          throw new HttpError(404, "Image NOT Found");
        }
        return {};
      },
    },
    {
      method: "GET",
      path: "/datastore/image",
      tag: TAG,
      summary: "Download Image",
      query: [{ name: "image", required: true }],
      handler: async (ctx) => {
        const image = await datastore.findImage(str(ctx.query.image));
        const info = image ? await deps.store.stat(image.objectKey) : null;
        if (!image || !info) {
          throw new HttpError(404, "Image NOT Found or is a directory");
        }
        await sendStream(ctx.res, await deps.store.get(image.objectKey), { size: info.size, fileName: image.name });
        return HANDLED;
      },
    },
    {
      method: "GET",
      path: "/datastore/image/info",
      tag: TAG,
      summary: "Get Image Info",
      query: [{ name: "image", required: true }],
      handler: async (ctx) => {
        const image = await datastore.findImage(str(ctx.query.image));
        return image
          ? { ...image.info, path: `${ctx.baseUrl}/datastore/image?image=${encodeURIComponent(image.id)}` }
          : {};
      },
    },
    {
      method: "PUT",
      path: "/datastore/image/info",
      tag: TAG,
      summary: "Update Image Info",
      query: [{ name: "image", required: true }],
      body: { kind: "multipart", fields: ["info"], files: [] },
      handler: (ctx) =>
        withFormOrEmpty(ctx, async (form) => {
          await datastore.updateImageInfo(
            str(ctx.query.image),
            parseJsonObject(form?.field("info"), "info"),
            DEFAULT_USER,
          );
          return null;
        }),
    },
    {
      method: "PUT",
      path: "/datastore/label",
      tag: TAG,
      summary: "Save Finished Label",
      query: [
        { name: "image", required: true },
        { name: "tag", default: "final" },
      ],
      body: { kind: "multipart", fields: ["params"], files: ["label"] },
      handler: (ctx) =>
        withForm(ctx, async (form) => {
          const file = requireFile(form, "label");
          const params = parseJsonObject(form.field("params"), "params");
          const { response } = await saveUploadedLabel(deps, {
            imageId: str(ctx.query.image),
            tag: str(ctx.query.tag) || "final",
            file,
            info: params,
          });
          return response;
        }),
    },
    {
      method: "DELETE",
      path: "/datastore/label",
      tag: TAG,
      summary: "Remove Label",
      query: [
        { name: "id", required: true },
        { name: "tag", required: true },
      ],
      handler: async (ctx) => {
        await datastore.removeLabel(str(ctx.query.id), str(ctx.query.tag));
        return {};
      },
    },
    {
      method: "HEAD",
      path: "/datastore/label",
      tag: TAG,
      summary: "Check If Label Exists",
      query: [
        { name: "image", required: true },
        { name: "tag", required: true },
      ],
      handler: async (ctx) => {
        const label = await datastore.findLabel(str(ctx.query.image), str(ctx.query.tag));
        if (!label) {
          throw new HttpError(404, "Label NOT Found");
        }
        return {};
      },
    },
    {
      method: "GET",
      path: "/datastore/label",
      tag: TAG,
      summary: "Download Label",
      query: [
        { name: "label", required: true },
        { name: "tag", required: true },
        { name: "version", type: "integer", description: "labelgraph: an earlier version of the tag" },
      ],
      handler: async (ctx) => {
        const version = ctx.query.version === null ? undefined : Number(ctx.query.version);
        const label = await datastore.findLabel(str(ctx.query.label), str(ctx.query.tag), version).catch(() => null);
        const info = label ? await deps.store.stat(label.objectKey) : null;
        if (!label || !info) {
          throw new HttpError(404, "Label NOT Found or is a directory");
        }
        await sendStream(ctx.res, await deps.store.get(label.objectKey), {
          size: info.size,
          fileName: labelFileName(label),
        });
        return HANDLED;
      },
    },
    {
      method: "GET",
      path: "/datastore/label/info",
      tag: TAG,
      summary: "Get Label Info",
      query: [
        { name: "label", required: true },
        { name: "tag", required: true },
      ],
      handler: async (ctx) => {
        const label = await datastore.findLabel(str(ctx.query.label), str(ctx.query.tag)).catch(() => null);
        return label ? label.info : {};
      },
    },
    {
      method: "PUT",
      path: "/datastore/label/info",
      tag: TAG,
      summary: "Update Label Info",
      query: [
        { name: "label", required: true },
        { name: "tag", required: true },
      ],
      body: { kind: "multipart", fields: ["info"], files: [] },
      handler: updateLabelInfo("info"),
    },
    {
      method: "PUT",
      path: "/datastore/updatelabelinfo",
      tag: TAG,
      summary: "Update label info (deprecated; the Slicer Reviewer sends form field params)",
      deprecated: true,
      hidden: true,
      query: [
        { name: "label", required: true },
        { name: "tag", required: true },
      ],
      body: { kind: "multipart", fields: ["params"], files: [] },
      handler: updateLabelInfo("params"),
    },
    {
      method: "GET",
      path: "/datastore/dataset",
      tag: TAG,
      summary: "Download full dataset as ZIP file",
      query: [{ name: "limit_cases", type: "integer" }],
      handler: async (ctx) => {
        const limit = ctx.query.limit_cases === null ? null : Number(ctx.query.limit_cases);
        const queued = await deps.jobs.enqueue("exportDataset", { limitCases: limit });
        const job = await waitFor(deps.jobs, deps.pubsub, queued.id);
        const result = job.result as { key?: string } | null;
        if (job.status !== "SUCCEEDED" || !result?.key) {
          const empty = /no image has a final label/.test(job.error ?? "");
          throw new HttpError(empty ? 404 : 500, job.error ?? "the export failed");
        }
        const info = await deps.store.stat(result.key);
        await sendStream(ctx.res, await deps.store.get(result.key), {
          size: info?.size,
          fileName: "dataset.zip",
          contentType: "application/zip",
        });
        return HANDLED;
      },
    },
  ];
}

/** Info updates: a multipart or urlencoded form, or no body at all (nothing to merge). */
async function withFormOrEmpty<T>(ctx: RouteContext, fn: (form: Form | null) => Promise<T>): Promise<T> {
  const type = ctx.req.headers["content-type"] ?? "";
  if (!/multipart\/form-data/i.test(type)) {
    if (/application\/x-www-form-urlencoded/i.test(type)) {
      const params = new URLSearchParams((await readBody(ctx.req)).toString("utf8"));
      const fields = new Map([...params.entries()].map(([k, v]) => [k, [v]]));
      return fn({
        fields,
        files: [],
        field: (n) => fields.get(n)?.[0] ?? null,
        file: () => null,
        filesOf: () => [],
        cleanup: async () => {},
      });
    }
    return fn(null);
  }
  return withForm(ctx, fn);
}
