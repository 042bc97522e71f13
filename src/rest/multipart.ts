import { randomUUID } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { HttpError } from "./http.js";

/**
 * multipart/form-data as MONAI Label's clients send it, parsed as a stream: file parts go straight to
 * temporary files (images are large), text fields are kept in memory. Written here rather than taken from
 * undici's Request.formData(), which buffers the whole body and refuses RFC 5987 `filename*=` names that
 * older urllib3 (the Slicer plugin's requests) sends. Accepts the Python client's boundary
 * `----------lImIt_of_THE_fIle_eW_$`, whose `$` RFC 2046 does not allow.
 */
export interface UploadedFile {
  field: string;
  /** The base name the client gave (the Python client sends its full local path). */
  fileName: string;
  contentType: string | null;
  /** A temporary file holding the bytes; removed by `Form.cleanup()`. */
  path: string;
  size: number;
}

export interface Form {
  fields: Map<string, string[]>;
  files: UploadedFile[];
  field(name: string): string | null;
  file(name: string): UploadedFile | null;
  filesOf(name: string): UploadedFile[];
  cleanup(): Promise<void>;
}

const FIELD_LIMIT = 16 * 1024 * 1024;
const HEADER_LIMIT = 16 * 1024;

export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data/i.test(contentType.trim())) {
    return null;
  }
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const b = (m?.[1] ?? m?.[2])?.trim();
  return b && b.length <= 200 ? b : null;
}

/** `form-data; name="x"; filename="y"` or `filename*=utf-8''y%20z`. */
export function parseDisposition(value: string): { name: string | null; fileName: string | null } {
  const params = new Map<string, string>();
  // Quoted values are taken literally: clients do not backslash-escape (a Windows path keeps its "\").
  for (const m of value.matchAll(/;\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"([^"]*)"|([^;]*))/g)) {
    const key = (m[1] as string).toLowerCase();
    const raw = m[2] !== undefined ? m[2] : (m[3] ?? "").trim();
    params.set(key, raw);
  }
  let fileName = params.get("filename") ?? null;
  const extended = params.get("filename*");
  if (extended !== undefined) {
    const ext = /^([^']*)'[^']*'(.*)$/.exec(extended);
    try {
      fileName = decodeURIComponent(ext ? (ext[2] as string) : extended);
    } catch {
      fileName = ext ? (ext[2] as string) : extended;
    }
  }
  return { name: params.get("name") ?? null, fileName };
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) {
      headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
  }
  return headers;
}

/** The base name of a client path, Windows separators included; never empty. */
function safeBaseName(name: string): string {
  const base = basename(name.replaceAll("\\", "/"));
  return base && base !== "." && base !== ".." ? base : "upload";
}

export async function parseMultipart(req: IncomingMessage, opts: { maxBytes?: number } = {}): Promise<Form> {
  const boundary = boundaryOf(req.headers["content-type"]);
  if (!boundary) {
    throw new HttpError(400, "expected a multipart/form-data body with a boundary");
  }
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-rest-"));
  const form: Form = {
    fields: new Map(),
    files: [],
    field: (name) => form.fields.get(name)?.[0] ?? null,
    file: (name) => form.files.find((f) => f.field === name) ?? null,
    filesOf: (name) => form.files.filter((f) => f.field === name),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  try {
    await parseInto(req, boundary, dir, form, opts.maxBytes ?? Number.POSITIVE_INFINITY);
  } catch (err) {
    await form.cleanup();
    throw err;
  }
  return form;
}

async function parseInto(req: IncomingMessage, boundary: string, dir: string, form: Form, maxBytes: number) {
  const dash = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  type State = "preamble" | "headers" | "body" | "after" | "done";
  let buf: Buffer = Buffer.alloc(0);
  // Widened on purpose: `step` changes it, which TypeScript's narrowing of the loop conditions cannot see.
  let state = "preamble" as State;
  let part: { name: string; fileName: string | null; type: string | null; chunks: Buffer[]; size: number } | null =
    null;
  let out: WriteStream | null = null;
  let total = 0;

  const write = async (data: Buffer) => {
    if (!part || data.length === 0) {
      return;
    }
    part.size += data.length;
    if (out) {
      if (!out.write(data)) {
        await new Promise<void>((r) => out?.once("drain", () => r()));
      }
    } else {
      if (part.size > FIELD_LIMIT) {
        throw new HttpError(413, `form field ${part.name} is over ${FIELD_LIMIT} bytes`);
      }
      part.chunks.push(data);
    }
  };
  const finishPart = async () => {
    if (!part) {
      return;
    }
    if (out) {
      const stream = out;
      await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
      out = null;
    } else {
      const values = form.fields.get(part.name) ?? [];
      values.push(Buffer.concat(part.chunks).toString("utf8"));
      form.fields.set(part.name, values);
    }
    part = null;
  };

  const step = async (): Promise<boolean> => {
    if (state === "preamble") {
      const i = buf.indexOf(dash);
      if (i < 0) {
        buf = buf.subarray(Math.max(0, buf.length - dash.length));
        return false;
      }
      buf = buf.subarray(i + dash.length);
      state = "after";
      return true;
    }
    if (state === "after") {
      if (buf.length < 2) {
        return false;
      }
      if (buf[0] === 0x2d && buf[1] === 0x2d) {
        state = "done";
        return false;
      }
      // Transport padding, then CRLF.
      const eol = buf.indexOf("\r\n");
      if (eol < 0) {
        if (buf.length > 256) {
          throw new HttpError(400, "malformed multipart body: no line end after a boundary");
        }
        return false;
      }
      buf = buf.subarray(eol + 2);
      state = "headers";
      return true;
    }
    if (state === "headers") {
      const end = buf.indexOf("\r\n\r\n");
      const empty = buf.subarray(0, 2).toString() === "\r\n";
      if (end < 0 && !empty) {
        if (buf.length > HEADER_LIMIT) {
          throw new HttpError(400, "malformed multipart body: part headers too long");
        }
        return false;
      }
      const block = empty ? "" : buf.subarray(0, end).toString("utf8");
      buf = buf.subarray(empty ? 2 : end + 4);
      const headers = parseHeaders(block);
      const { name, fileName } = parseDisposition(headers.get("content-disposition") ?? "");
      if (!name) {
        throw new HttpError(400, "malformed multipart body: a part has no content-disposition name");
      }
      part = { name, fileName, type: headers.get("content-type") ?? null, chunks: [], size: 0 };
      if (fileName !== null) {
        // The readers pick the format from the file name, so the temporary file keeps it.
        const base = safeBaseName(fileName);
        const path = join(dir, `${randomUUID()}-${base}`);
        out = createWriteStream(path);
        form.files.push({ field: name, fileName: base, contentType: part.type, path, size: 0 });
      }
      state = "body";
      return true;
    }
    if (state === "body") {
      const i = buf.indexOf(delimiter);
      if (i < 0) {
        // Keep what could be the start of the delimiter.
        const keep = delimiter.length - 1;
        if (buf.length > keep) {
          await write(buf.subarray(0, buf.length - keep));
          buf = buf.subarray(buf.length - keep);
        }
        return false;
      }
      await write(buf.subarray(0, i));
      const last = form.files.at(-1);
      if (out && last) {
        last.size = part?.size ?? 0;
      }
      await finishPart();
      buf = buf.subarray(i + delimiter.length);
      state = "after";
      return true;
    }
    return false;
  };

  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      throw new HttpError(413, `request body over ${maxBytes} bytes`);
    }
    buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
    while (state !== "done" && (await step())) {}
  }
  while (state !== "done" && (await step())) {}
  if (state !== "done") {
    if (out) {
      (out as WriteStream).destroy();
    }
    throw new HttpError(400, "malformed multipart body: it ends before the closing boundary");
  }
}

/**
 * The response MONAI builds with requests_toolbelt's MultipartEncoder: a `params` JSON part, then the
 * `image` file part with its name and type.
 */
export function encodeMultipart(
  parts: { name: string; data: Buffer; fileName?: string; contentType?: string }[],
  boundary = randomUUID().replaceAll("-", ""),
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.fileName === undefined ? "" : `; filename="${p.fileName}"`}`;
    const head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.contentType ? `Content-Type: ${p.contentType}\r\n` : ""}\r\n`;
    chunks.push(Buffer.from(head), p.data, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
