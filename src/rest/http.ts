import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ErrorCode, type LabelgraphError, NotFoundError } from "../errors.js";

/**
 * MONAI Label's REST responses as FastAPI/Starlette write them: compact JSON, `{"detail": ...}` for
 * HTTP errors, FileResponse headers (content-disposition with `filename*=utf-8''` when the name needs
 * quoting). Errors a client can act on keep their labelgraph `code` next to `detail`.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.name = "HttpError";
  }
}

/** A query or form parameter that FastAPI would have refused (pydantic v2's 422 shape). */
export function validationError(where: "query" | "body" | "path", name: string, msg: string, input: unknown = null) {
  return new HttpError(422, [
    { type: msg === "Field required" ? "missing" : "value_error", loc: [where, name], msg, input },
  ]);
}

/** HTTP status for a labelgraph error; MONAI answers most of these with a bare 500, which tells a client nothing. */
export function statusOf(err: LabelgraphError): number {
  if (err instanceof NotFoundError) {
    return 404;
  }
  switch (err.code) {
    case ErrorCode.TASK_ALREADY_RUNNING:
      return 429;
    case ErrorCode.DATASTORE_READ_ONLY:
      return 403;
    case ErrorCode.SHAPE_MISMATCH:
    case ErrorCode.INVALID_IMAGE:
      return 422;
    default:
      return 400;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body === undefined ? null : body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

export function sendText(res: ServerResponse, status: number, text: string, type = "text/plain; charset=utf-8") {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/** Starlette's FileResponse content-disposition: plain when the name is URL-safe, RFC 5987 otherwise. */
export function contentDisposition(fileName: string, type: "attachment" | "inline" = "attachment"): string {
  const quoted = encodeURIComponent(fileName).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  // Python's quote() keeps "/" and these unreserved characters; anything else means the name needs encoding.
  const plain = quoted.replaceAll("%2F", "/") === fileName;
  return plain ? `${type}; filename="${fileName}"` : `${type}; filename*=utf-8''${quoted}`;
}

const MIME: [string, string][] = [
  [".nii.gz", "application/octet-stream"],
  [".seg.nrrd", "application/octet-stream"],
  [".nii", "application/octet-stream"],
  [".nrrd", "application/octet-stream"],
  [".png", "image/png"],
  [".tif", "image/tiff"],
  [".tiff", "image/tiff"],
  [".jpg", "image/jpeg"],
  [".jpeg", "image/jpeg"],
  [".json", "application/json"],
  [".zip", "application/zip"],
  [".xml", "application/xml"],
  [".onnx", "application/octet-stream"],
  [".dcm", "application/dicom"],
];

/** MONAI's get_mime_type: by extension, octet-stream when unknown (.nii.gz included, as Python guesses it). */
export function mimeType(fileName: string): string {
  const lower = fileName.toLowerCase();
  return MIME.find(([ext]) => lower.endsWith(ext))?.[1] ?? "application/octet-stream";
}

export async function sendStream(
  res: ServerResponse,
  body: Readable,
  opts: { size?: number; fileName: string; contentType?: string },
) {
  res.writeHead(200, {
    "content-type": opts.contentType ?? mimeType(opts.fileName),
    ...(opts.size === undefined ? {} : { "content-length": opts.size }),
    "content-disposition": contentDisposition(opts.fileName),
  });
  if (res.req.method === "HEAD") {
    body.destroy();
    res.end();
    return;
  }
  await pipeline(body, res);
}

/** Reads a small request body (JSON params); uploads go through the multipart parser instead. */
export async function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new HttpError(413, `request body over ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A JSON object from text; `what` names it in the error (a form field or the body). */
export function parseJsonObject(text: string | null | undefined, what: string): Record<string, unknown> {
  if (text === null || text === undefined || text.trim() === "") {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw validationError("body", what, `invalid JSON: ${(e as Error).message}`, text.slice(0, 200));
  }
  if (value === null) {
    return {};
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw validationError("body", what, "expected a JSON object", value);
  }
  return value as Record<string, unknown>;
}
