import type { IncomingMessage } from "node:http";
import { splitImageFileName } from "../../io/extensions.js";
import type { InferenceOutcome } from "../../tasks/infer/inference.service.js";
import { binaryToImage } from "../binary.js";
import { DEFAULT_USER, type RestDeps } from "../deps.js";
import { HttpError, mimeType, parseJsonObject, readBody, sendJson, sendStream } from "../http.js";
import { encodeMultipart, type Form, parseMultipart, type UploadedFile } from "../multipart.js";
import { HANDLED, type Route } from "../router.js";

const TAG = "Infer";

/** The request's params and uploads: a multipart form (every client), a JSON body, or nothing. */
async function readInferBody(req: IncomingMessage): Promise<{ params: Record<string, unknown>; form: Form | null }> {
  const type = req.headers["content-type"] ?? "";
  if (/multipart\/form-data/i.test(type)) {
    const form = await parseMultipart(req);
    try {
      return { params: parseJsonObject(form.field("params"), "params"), form };
    } catch (err) {
      await form.cleanup();
      throw err;
    }
  }
  const body = await readBody(req);
  return { params: /json/i.test(type) ? parseJsonObject(body.toString("utf8"), "params") : {}, form: null };
}

export function inferRoutes(deps: RestDeps): Route[] {
  const { inference, sessions, store } = deps;

  return [
    {
      method: "POST",
      path: "/infer/{model}",
      tag: TAG,
      summary: "Run Inference",
      query: [
        { name: "image", default: "" },
        { name: "session_id" },
        { name: "output", enum: ["image", "json", "all", "dicom_seg"] },
      ],
      body: { kind: "multipart", fields: ["params"], files: ["file", "label"] },
      handler: async (ctx) => {
        const model = ctx.path.model as string;
        const { params, form } = await readInferBody(ctx.req);
        let tempSession: string | null = null;
        let outcome: InferenceOutcome | null = null;
        try {
          inference.task(model);
          const output = (ctx.query.output as string | null) ?? "all";
          if (output === "dicom_seg") {
            throw new HttpError(
              400,
              "output=dicom_seg needs a DICOMweb datastore; labelgraph serves local studies only",
            );
          }
          const file: UploadedFile | null = form?.file("file") ?? null;
          const labelUpload: UploadedFile | null = form?.file("label") ?? null;
          let sessionId = (ctx.query.session_id as string | null) || null;
          const imageId = (ctx.query.image as string) || null;
          if (sessionId) {
            await sessions.get(sessionId); // 404 before any work when it expired
          } else if (file) {
            // An uploaded image is not a datastore image: it runs as a short-lived session, removed below.
            tempSession = (await sessions.create([{ fileName: file.fileName, path: file.path }])).id;
            sessionId = tempSession;
          } else if (!imageId) {
            throw new HttpError(400, "Neither Image nor File not Session ID input is provided");
          }
          const request = { ...params };
          if (labelUpload) {
            request.label = await labelPath(
              deps,
              labelUpload,
              sessionId ? { sessionId } : { imageId: imageId as string },
            );
          }
          const save = !sessionId && request.save_label === true;
          outcome = await inference.runInference({
            model,
            imageId: sessionId ? null : imageId,
            sessionId,
            params: request,
            saveLabel: save,
            labelTag: typeof request.label_tag === "string" ? request.label_tag : "original",
            user: typeof request.client_id === "string" ? request.client_id : DEFAULT_USER,
          });
          const key = outcome.label?.objectKey ?? outcome.resultKey;
          if (output === "json" || !key) {
            sendJson(ctx.res, 200, outcome.result);
            return HANDLED;
          }
          const ext = outcome.label?.extension ?? splitImageFileName(key).ext;
          const fileName = `${outcome.imageId ?? "result"}${ext}`;
          if (output === "image") {
            const info = await store.stat(key);
            await sendStream(ctx.res, await store.get(key), { size: info?.size, fileName });
            return HANDLED;
          }
          const { body, contentType } = encodeMultipart([
            { name: "params", data: Buffer.from(JSON.stringify(outcome.result)), contentType: "application/json" },
            { name: "image", data: await store.getBuffer(key), fileName, contentType: mimeType(fileName) },
          ]);
          ctx.res.writeHead(200, { "content-type": contentType, "content-length": body.length });
          ctx.res.end(body);
          return HANDLED;
        } finally {
          await form?.cleanup();
          if (tempSession) {
            await sessions.remove(tempSession).catch(() => {});
          }
          // MONAI deletes its temporary result file after the response; an unsaved result is not kept either.
          if (outcome?.resultKey) {
            await store.delete(outcome.resultKey).catch(() => {});
          }
        }
      },
    },
  ];
}

/** The label upload as a file the infer task's transforms can load (`.bin` becomes NIfTI on the image's grid). */
async function labelPath(
  deps: RestDeps,
  upload: UploadedFile,
  ref: { imageId: string } | { sessionId: string },
): Promise<string> {
  if (!upload.fileName.toLowerCase().endsWith(".bin")) {
    return upload.path;
  }
  let local: { path: string; release(): Promise<void> };
  let name: string;
  if ("imageId" in ref) {
    const image = await deps.datastore.getImage(ref.imageId);
    local = await deps.store.localPath(image.objectKey);
    name = image.name;
  } else {
    const session = await deps.sessions.get(ref.sessionId, false);
    local = await deps.sessions.localImage(ref.sessionId);
    name = session.name;
  }
  try {
    const out = `${upload.path}.nii.gz`;
    await binaryToImage(upload.path, { path: local.path, fileName: name }, out);
    return out;
  } finally {
    await local.release();
  }
}
