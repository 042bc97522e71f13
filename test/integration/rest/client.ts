import { request as httpRequest } from "node:http";

/**
 * HTTP the way MONAI Label's clients send it. `pyMultipart` is the Python client's hand-built body
 * (monailabel/client/client.py, encode_multipart_formdata): its fixed boundary, text fields first, then
 * files named by the full local path with a guessed content type, every line ended by CRLF.
 */
export const PY_BOUNDARY = "----------lImIt_of_THE_fIle_eW_$";

export function pyMultipart(
  fields: Record<string, string>,
  files: Record<string, { path: string; data: Uint8Array; contentType?: string }>,
): { body: Buffer; contentType: string } {
  const lines: (string | Uint8Array)[] = [];
  for (const [key, value] of Object.entries(fields)) {
    lines.push(`--${PY_BOUNDARY}`, `Content-Disposition: form-data; name="${key}"`, "", value);
  }
  for (const [key, f] of Object.entries(files)) {
    lines.push(
      `--${PY_BOUNDARY}`,
      `Content-Disposition: form-data; name="${key}"; filename="${f.path}"`,
      `Content-Type: ${f.contentType ?? "application/octet-stream"}`,
      "",
      f.data,
    );
  }
  lines.push(`--${PY_BOUNDARY}--`, "");
  const chunks: Buffer[] = [];
  for (const line of lines) {
    chunks.push(typeof line === "string" ? Buffer.from(line, "utf8") : Buffer.from(line), Buffer.from("\r\n"));
  }
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${PY_BOUNDARY}` };
}

/** python-requests' multipart (create_session): a random hex boundary, `filename` is the base name. */
export function requestsMultipart(files: { field: string; name: string; data: Uint8Array }[]): {
  body: Buffer;
  contentType: string;
} {
  const boundary = "9b1f2c3d4e5f60718293a4b5c6d7e8f9";
  const chunks: Buffer[] = [];
  for (const f of files) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${f.name}"\r\n\r\n`),
      Buffer.from(f.data),
      Buffer.from("\r\n"),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): unknown;
  text(): string;
}

/** One request over http.client-like plain HTTP (no redirects followed, exact headers). */
export function call(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Buffer | string; json?: unknown } = {},
): Promise<Reply> {
  const url = new URL(path, base);
  let body = opts.body;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] = "application/json";
  }
  if (body !== undefined) {
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const buf = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buf,
          json: () => JSON.parse(buf.toString("utf8")),
          text: () => buf.toString("utf8"),
        });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** What the Python client's cgi.FieldStorage parse gives: parts with a filename in `files`, others in `form`. */
export function parseMultipartReply(reply: Reply): { form: Record<string, string>; files: Record<string, Buffer> } {
  const type = String(reply.headers["content-type"] ?? "");
  const boundary = /boundary=([^;]+)/.exec(type)?.[1];
  if (!boundary) {
    throw new Error(`not multipart: ${type}`);
  }
  const form: Record<string, string> = {};
  const files: Record<string, Buffer> = {};
  const delim = Buffer.from(`--${boundary}`);
  let pos = reply.body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (reply.body.subarray(start, start + 2).toString() === "--") {
      break;
    }
    const next = reply.body.indexOf(delim, start);
    const part = reply.body.subarray(start + 2, next - 2);
    const headEnd = part.indexOf("\r\n\r\n");
    const head = part.subarray(0, headEnd).toString();
    const data = part.subarray(headEnd + 4);
    const name = /name="([^"]*)"/.exec(head)?.[1] ?? "";
    const fileName = /filename="([^"]*)"/.exec(head)?.[1];
    if (fileName) {
      files[fileName] = data;
    } else {
      form[name] = data.toString("utf8");
    }
    pos = next;
  }
  return { form, files };
}

/** The Python client's get_filename: `filename*=utf-8''…` first, else `filename="…"`. */
export function pyFilename(contentDisposition: string): string {
  const star = /filename\*=([^;]+)/i.exec(contentDisposition);
  if (star) {
    return decodeURIComponent((star[1] as string).replace(/^utf-8''/i, ""));
  }
  return /filename="(.+)"/i.exec(contentDisposition)?.[1] ?? "";
}
