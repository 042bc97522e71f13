import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMultipart } from "../../../src/rest/multipart.js";
import { fixture } from "../../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../helpers/harness.js";
import { call, PY_BOUNDARY, pyMultipart } from "./client.js";

type Row = Record<string, unknown>;

describe("REST protocol: Starlette's slashes, 404/405/422, CORS, OpenAPI, logs, sessions off", () => {
  let s: TestServer;
  let off: TestServer;
  let appDir: string;

  beforeAll(async () => {
    // An app folder whose logs/app.log /logs/ serves (the activelearning fixture app, copied).
    appDir = await mkdtemp(join(tmpdir(), "labelgraph-rest-app-"));
    await writeFile(
      join(appDir, "app.ts"),
      await readFile(join(import.meta.dirname, "../../fixtures/apps/activelearning/app.ts"), "utf8").then((t) =>
        t.replaceAll("../../../../src/", `${join(import.meta.dirname, "../../../src")}/`),
      ),
    );
    await mkdir(join(appDir, "logs"));
    await writeFile(join(appDir, "logs", "app.log"), "line 1\nline 2\nline 3\n");
    s = await startTestServer({
      app: appDir,
      env: { MONAI_LABEL_CORS_ORIGINS: '["http://viewer.example"]', MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
    off = await startTestServer({ env: { MONAI_LABEL_SESSIONS: "false" } });
  });
  afterAll(async () => {
    await s?.close();
    await off?.close();
    await rm(appDir, { recursive: true, force: true });
  });

  it("redirects a missing or extra trailing slash with 307 and keeps the query", async () => {
    const info = await call(s.url, "GET", "/info");
    expect(info.status).toBe(307);
    expect(info.headers.location).toBe(`${s.url}/info/`);
    const train = await call(s.url, "POST", "/train/segmentation/?enqueue=true");
    expect(train.status).toBe(307);
    expect(train.headers.location).toBe(`${s.url}/train/segmentation?enqueue=true`);
    expect((await call(s.url, "GET", "/datastore?output=all")).headers.location).toBe(`${s.url}/datastore/?output=all`);
  });

  it("answers unknown paths 404, wrong methods 405 with allow, missing parameters 422", async () => {
    expect((await call(s.url, "GET", "/nothing/here")).status).toBe(404); // not REST: GraphQL's server answers
    const unknown = await call(s.url, "GET", "/datastore/nothing");
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({ detail: "Not Found" });
    const wrong = await call(s.url, "PATCH", "/info/");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe("GET, HEAD");
    expect(wrong.json()).toEqual({ detail: "Method Not Allowed" });
    const missing = await call(s.url, "GET", "/datastore/image");
    expect(missing.status).toBe(422);
    expect(missing.json()).toEqual({
      detail: [{ type: "missing", loc: ["query", "image"], msg: "Field required", input: null }],
    });
    const bool = await call(s.url, "GET", "/train/?all=maybe");
    expect(bool.status).toBe(422);
    expect((await call(s.url, "GET", "/auth/token/valid")).status).toBe(404);
  });

  it("CORS as MONAI_LABEL_CORS_ORIGINS configures it", async () => {
    const pre = await call(s.url, "OPTIONS", "/datastore/label?image=x", {
      headers: {
        origin: "http://viewer.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBe(200);
    expect(pre.headers["access-control-allow-origin"]).toBe("http://viewer.example");
    expect(pre.headers["access-control-allow-credentials"]).toBe("true");
    expect(pre.headers["access-control-allow-headers"]).toBe("authorization");
    expect(pre.headers["access-control-allow-methods"]).toContain("PUT");
    const denied = await call(s.url, "OPTIONS", "/info/", {
      headers: { origin: "http://evil.example", "access-control-request-method": "GET" },
    });
    expect(denied.status).toBe(400);
    const simple = await call(s.url, "GET", "/info/", { headers: { origin: "http://viewer.example" } });
    expect(simple.headers["access-control-allow-origin"]).toBe("http://viewer.example");
    const other = await call(s.url, "GET", "/info/", { headers: { origin: "http://evil.example" } });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    // No origins configured: every origin, as MONAI's "*".
    const any = await call(off.url, "GET", "/info/", { headers: { origin: "http://anywhere.example" } });
    expect(any.headers["access-control-allow-origin"]).toBe("*");
  });

  it("serves /openapi.json with the visible routes", async () => {
    const doc = (await call(s.url, "GET", "/openapi.json")).json() as { openapi: string; paths: Record<string, Row> };
    expect(doc.openapi).toBe("3.1.0");
    for (const p of [
      "/info/",
      "/infer/{model}",
      "/train/{model}",
      "/datastore/label",
      "/session/",
      "/activelearning/{strategy}",
    ]) {
      expect(doc.paths).toHaveProperty([p]);
    }
    expect(doc.paths["/datastore/"]?.put).toMatchObject({ deprecated: true });
    expect(doc.paths).not.toHaveProperty(["/datastore/updatelabelinfo"]);
    const infer = doc.paths["/infer/{model}"]?.post as { parameters: Row[] };
    expect(infer.parameters.map((p) => p.name)).toEqual(["model", "image", "session_id", "output"]);
  });

  it("logs: the tail of <app>/logs/app.log as text, the HTML page, 404 without a file", async () => {
    const text = await call(s.url, "GET", "/logs/?text=true&lines=2");
    expect(text.headers["content-type"]).toMatch(/^text\/plain/);
    expect(text.text()).toBe("line 2\nline 3\n");
    expect((await call(s.url, "GET", "/logs/?text=true&lines=0")).text()).toBe("line 1\nline 2\nline 3\n");
    expect((await call(s.url, "GET", "/logs/")).headers["content-type"]).toMatch(/^text\/html/);
    expect((await call(off.url, "GET", "/logs/?text=true")).status).toBe(404);
  });

  it("WSI routes reach the WSI service: unknown model 404, no image 400, bad body 422", async () => {
    const unknown = await call(s.url, "POST", "/infer/wsi/nope?image=bright&output=json", { json: { level: 0 } });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ code: "MODEL_NOT_FOUND" });
    expect((await call(s.url, "POST", "/infer/wsi/nope", { json: {} })).status).toBe(400);
    const form = pyMultipart({ wsi: JSON.stringify({ location: "here" }) }, {});
    const bad = await call(s.url, "POST", "/infer/wsi_v2/nope?image=bright&output=asap", {
      headers: { "content-type": form.contentType },
      body: form.body,
    });
    expect(bad.status).toBe(422);
  });

  it("sessions off: 406 Session Feature is Not Enabled", async () => {
    const r = await call(off.url, "GET", "/session/abc");
    expect(r.status).toBe(406);
    expect(r.json()).toEqual({ detail: "Session Feature is Not Enabled" });
  });

  it("active learning and scoring over REST: strategy picks, sync and async scoring, 429, errors", async () => {
    for (const name of ["dark", "bright"]) {
      const { body, contentType } = pyMultipart(
        {},
        { file: { path: `/d/${name}.png`, data: await readFile(fixture("camera.png")) } },
      );
      await call(s.url, "PUT", `/datastore/image?image=${name}`, { headers: { "content-type": contentType }, body });
    }
    const sync = await call(s.url, "POST", "/scoring/my_scoring_method?run_sync=true", { json: {} });
    expect(sync.status).toBe(200);
    expect(Object.keys(sync.json() as Row).sort()).toEqual(["bright", "dark"]);
    expect((await call(s.url, "GET", "/scoring/")).json()).toMatchObject({
      status: "DONE",
      request: { method: "my_scoring_method" },
    });
    const slow = await call(s.url, "POST", "/scoring/my_scoring_method", { json: { delay_ms: 500 } });
    expect((slow.json() as Row).status).toBe("SUBMITTED");
    expect((await call(s.url, "POST", "/scoring/sum", { json: {} })).status).toBe(429);
    expect((await call(s.url, "DELETE", "/scoring/")).json()).toMatchObject({ status: "STOPPED" });
    expect((await call(s.url, "POST", "/scoring/nope", { json: {} })).status).toBe(400);
    const next = (
      await call(s.url, "POST", "/activelearning/first", { json: { client_id: "ohif-user" } })
    ).json() as Row;
    expect(next).toMatchObject({ id: "bright", name: "bright.png", strategy: { first: { client_id: "ohif-user" } } });
    const bad = await call(s.url, "POST", "/activelearning/nope", { json: {} });
    expect(bad.status).toBe(400);
    expect((bad.json() as Row).detail).toMatch(/strategy "nope" not found/);
    // Every image labeled: {}.
    for (const id of ["dark", "bright"]) {
      const { body, contentType } = pyMultipart(
        {},
        { label: { path: "/l.png", data: await readFile(fixture("camera.png")) } },
      );
      await call(s.url, "PUT", `/datastore/label?image=${id}`, { headers: { "content-type": contentType }, body });
    }
    expect((await call(s.url, "POST", "/activelearning/random")).json()).toEqual({});
  });
});

describe("the multipart parser", () => {
  /** The body arriving a few bytes at a time, so boundaries and headers split across chunks. */
  function chunked(body: Buffer, contentType: string, size: number): IncomingMessage {
    const parts: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) {
      parts.push(body.subarray(i, i + size));
    }
    return Object.assign(Readable.from(parts), {
      headers: { "content-type": contentType },
    }) as unknown as IncomingMessage;
  }

  it("parses the Python client's body whatever the chunking, and keeps bytes that look like a boundary", async () => {
    const data = Buffer.concat([Buffer.from("\r\n--"), Buffer.from(PY_BOUNDARY.slice(0, 10)), Buffer.alloc(3000, 7)]);
    const { body, contentType } = pyMultipart(
      { params: '{"a":1}' },
      { label: { path: "C:\\data\\x y.bin", data }, file: { path: "/tmp/z.nii.gz", data: Buffer.from("Z") } },
    );
    for (const size of [1, 7, 64, body.length]) {
      const form = await parseMultipart(chunked(body, contentType, size));
      expect(form.field("params")).toBe('{"a":1}');
      expect(form.file("label")?.fileName).toBe("x y.bin");
      expect((await readFile(form.file("label")?.path as string)).equals(data)).toBe(true);
      expect(form.file("file")?.size).toBe(1);
      await form.cleanup();
    }
  });

  it("reads RFC 5987 filename*= and refuses truncated bodies", async () => {
    const b = "xyz";
    const ok = Buffer.from(
      `--${b}\r\nContent-Disposition: form-data; name="files"; filename*=utf-8''h%C3%A9llo.nii.gz\r\n\r\nABC\r\n--${b}--\r\n`,
    );
    const form = await parseMultipart(chunked(ok, `multipart/form-data; boundary=${b}`, 5));
    expect(form.file("files")?.fileName).toBe("héllo.nii.gz");
    await form.cleanup();
    await expect(parseMultipart(chunked(ok.subarray(0, 60), `multipart/form-data; boundary=${b}`, 5))).rejects.toThrow(
      /ends before the closing boundary/,
    );
    await expect(parseMultipart(chunked(ok, "application/json", 5))).rejects.toThrow(/multipart/);
  });
});
