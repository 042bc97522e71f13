import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { readNifti } from "../../../src/io/nifti.js";
import { UNet } from "../../../src/nn/unet.js";
import { fixture } from "../../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../helpers/harness.js";
import { call, parseMultipartReply, pyFilename, pyMultipart, requestsMultipart } from "./client.js";

type Row = Record<string, unknown>;

/**
 * A session of MONAI Label's Python client (and the Slicer plugin, which carries the same client) against
 * labelgraph, in the order a user makes the calls: auth check, info, upload, next sample, infer, save label,
 * download, train status. Every request is built byte for byte as client.py builds it.
 */
describe("the MONAI Label Python client's calls", () => {
  let s: TestServer;
  let dir: string;
  // update_auth(token): "<token_type> <access_token>"; with auth off the server ignores it.
  const auth = { Authorization: "bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln" };
  const anatomicalPath = "/home/annotator/data/anatomical.nii";
  let anatomical: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-rest-"));
    const modelPath = join(dir, "segmentation.onnx");
    const net = new UNet({ spatialDims: 3, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 3 });
    await writeFile(modelPath, net.toOnnx({ inputShape: [1, 1, 32, 32, 32] }));
    s = await startTestServer({
      app: join(import.meta.dirname, "../../fixtures/apps/segmentation"),
      conf: { model_path: modelPath },
      env: { MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
    anatomical = await readFile(fixture("anatomical.nii"));
  });
  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("auth_enabled(): GET /auth/ is 404 with auth off", async () => {
    const r = await call(s.url, "GET", "/auth/");
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ detail: "Not Found" });
  });

  it("info(): MONAI's keys and types", async () => {
    const r = await call(s.url, "GET", "/info/", { headers: auth });
    expect(r.status).toBe(200);
    const info = r.json() as Row;
    expect(Object.keys(info).sort()).toEqual(
      [
        "datastore",
        "description",
        "labels",
        "models",
        "name",
        "scoring",
        "strategies",
        "train_stats",
        "trainers",
        "version",
      ].sort(),
    );
    expect(info.name).toBe("segmentation-test");
    expect(info.labels).toEqual(["brain"]);
    expect((info.models as Row).segmentation).toEqual({
      type: "segmentation",
      labels: ["brain"],
      dimension: 3,
      description: "3D brain segmentation (random weights in tests)",
      config: { device: ["cpu"] },
    });
    // Models without weights are not listed, as MONAI lists only valid tasks.
    expect(Object.keys(info.models as Row)).toEqual(["segmentation"]);
    expect((info.strategies as Row).random).toEqual({ description: expect.any(String) });
    expect(info.datastore).toEqual({ total: 0, completed: 0, label_tags: {} });
    expect(info.train_stats).toEqual({});
  });

  it("upload_image(): PUT /datastore/?image= with the client's multipart body", async () => {
    const { body, contentType } = pyMultipart(
      { params: JSON.stringify({ client_id: "py-client" }) },
      { file: { path: anatomicalPath, data: anatomical } },
    );
    const r = await call(s.url, "PUT", "/datastore/?image=anat", {
      headers: { ...auth, "content-type": contentType },
      body,
    });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.text()).toBe('{"image":"anat"}');
    // Without an id, the file's base name minus its extension (the client sends the full path).
    const second = pyMultipart({ params: "{}" }, { file: { path: "C:\\scans\\my scan.nii", data: anatomical } });
    const r2 = await call(s.url, "PUT", "/datastore/image", {
      headers: { "content-type": second.contentType },
      body: second.body,
    });
    expect(r2.json()).toEqual({ image: "my scan" });
    const stats = await call(s.url, "GET", "/datastore/");
    expect(stats.json()).toEqual({ total: 2, completed: 0, label_tags: {} });
  });

  it("next_sample(): POST /activelearning/random records the serve and returns id, name and info", async () => {
    const r = await call(s.url, "POST", "/activelearning/random", { json: { client_id: "py-client" }, headers: auth });
    expect(r.status).toBe(200);
    const sample = r.json() as Row;
    expect(["anat", "my scan"]).toContain(sample.id);
    expect(sample.name).toMatch(/\.nii$/);
    expect(typeof sample.ts).toBe("number");
    expect(sample.path).toMatch(/\/datastore\/image\?image=/);
    expect((sample.strategy as Row).random).toEqual({ ts: expect.any(Number), client_id: "py-client" });
  });

  it("infer(): POST /infer/{model}?image= answers multipart with params and the label file", async () => {
    const { body, contentType } = pyMultipart({ params: JSON.stringify({ client_id: "py-client" }) }, {});
    const r = await call(s.url, "POST", "/infer/segmentation?image=anat", {
      headers: { ...auth, "content-type": contentType },
      body,
    });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=[0-9a-f]{32}$/);
    const { form, files } = parseMultipartReply(r);
    const params = JSON.parse(form.params as string) as Row;
    expect(params.label_names).toEqual({ brain: 1 });
    expect(Object.keys(params.latencies as Row).sort()).toEqual(
      ["infer", "invert", "post", "pre", "total", "transform", "write"].sort(),
    );
    const names = Object.keys(files);
    expect(names).toHaveLength(1);
    const out = join(dir, names[0] as string);
    await writeFile(out, files[names[0] as string] as Buffer);
    const label = await readNifti(out);
    expect(label.shape).toEqual([33, 41, 25]);
    // Unless params.save_label, MONAI does not store the result.
    expect((await call(s.url, "GET", "/datastore/")).json()).toMatchObject({ label_tags: {} });
  });

  it("infer() with output=json and output=image, and save_label stores an `original` label", async () => {
    const json = await call(s.url, "POST", "/infer/segmentation?image=anat&output=json", {
      json: { save_label: true },
    });
    expect(json.status).toBe(200);
    expect((json.json() as Row).label_names).toEqual({ brain: 1 });
    expect((await call(s.url, "GET", "/datastore/")).json()).toMatchObject({ label_tags: { original: 1 } });
    // OHIF v3: output=image, NRRD result, its FormData with a params field.
    const form = new FormData();
    form.append(
      "params",
      JSON.stringify({
        result_extension: ".nrrd",
        result_dtype: "uint8",
        result_compress: false,
        restore_label_idx: false,
      }),
    );
    const res = await fetch(`${s.url}/infer/segmentation?image=anat&output=image`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(pyFilename(res.headers.get("content-disposition") ?? "")).toMatch(/\.nrrd$/);
    expect(
      Buffer.from(await res.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe("NRRD");
  });

  it("infer() with a .bin label (raw voxels on the image grid) and with an uploaded file instead of an id", async () => {
    const voxels = new Uint8Array(33 * 41 * 25).fill(1);
    const withLabel = pyMultipart({ params: "{}" }, { label: { path: "/tmp/label.bin", data: voxels } });
    const ok = await call(s.url, "POST", "/infer/segmentation?image=anat&output=json", {
      headers: { "content-type": withLabel.contentType },
      body: withLabel.body,
    });
    expect(ok.status).toBe(200);
    const short = pyMultipart({ params: "{}" }, { label: { path: "/tmp/label.bin", data: voxels.subarray(1) } });
    const bad = await call(s.url, "POST", "/infer/segmentation?image=anat", {
      headers: { "content-type": short.contentType },
      body: short.body,
    });
    expect(bad.status).toBe(400);
    expect((bad.json() as Row).detail).toMatch(/33, 41, 25/);
    // CVAT's nuclio functions: client.infer(model, image_id="", file=...).
    const upload = pyMultipart({ params: "{}" }, { file: { path: anatomicalPath, data: anatomical } });
    const r = await call(s.url, "POST", "/infer/segmentation?image=", {
      headers: { "content-type": upload.contentType },
      body: upload.body,
    });
    expect(r.status).toBe(200);
    expect(Object.keys(parseMultipartReply(r).files)).toEqual(["result.nii.gz"]);
    expect((await call(s.url, "GET", "/datastore/")).json()).toMatchObject({ total: 2 });
  });

  it("infer() errors: unknown model 404, unknown image 404, no input 400, bad output 422", async () => {
    const empty = pyMultipart({ params: "{}" }, {});
    const h = { "content-type": empty.contentType };
    const model = await call(s.url, "POST", "/infer/nope?image=anat", { headers: h, body: empty.body });
    expect(model.status).toBe(404);
    expect(model.json()).toMatchObject({ code: "MODEL_NOT_FOUND" });
    const image = await call(s.url, "POST", "/infer/segmentation?image=missing", { headers: h, body: empty.body });
    expect(image.status).toBe(404);
    expect(image.json()).toMatchObject({ code: "IMAGE_NOT_FOUND" });
    const none = await call(s.url, "POST", "/infer/segmentation", { headers: h, body: empty.body });
    expect(none.status).toBe(400);
    expect(none.json()).toEqual({ detail: "Neither Image nor File not Session ID input is provided" });
    const output = await call(s.url, "POST", "/infer/segmentation?image=anat&output=png", {
      headers: h,
      body: empty.body,
    });
    expect(output.status).toBe(422);
    expect((output.json() as { detail: Row[] }).detail[0]).toMatchObject({ loc: ["query", "output"] });
    const params = pyMultipart({ params: "{not json" }, {});
    const badParams = await call(s.url, "POST", "/infer/segmentation?image=anat", {
      headers: { "content-type": params.contentType },
      body: params.body,
    });
    expect(badParams.status).toBe(422);
  });

  it("save_label(): PUT /datastore/label raises datastoreChanged for GraphQL subscribers", async () => {
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/graphql`, webSocketImpl: WebSocket });
    const seen: Row[] = [];
    const subscribed = new Promise<void>((resolve, reject) => {
      const stop = client.subscribe<{ datastoreChanged: Row }>(
        { query: `subscription { datastoreChanged(imageId: "anat") { kind imageId tag version source } }` },
        {
          next: (v) => {
            seen.push(v.data?.datastoreChanged as Row);
            stop();
            resolve();
          },
          error: reject,
          complete: () => resolve(),
        },
      );
    });
    // Give the subscription time to reach the server before the save.
    await new Promise((r) => setTimeout(r, 200));
    const { body, contentType } = pyMultipart(
      { params: JSON.stringify({ label_info: [{ name: "brain", idx: 1 }], client_id: "py-client" }) },
      { label: { path: "/home/annotator/labels/anat_label.nii", data: anatomical } },
    );
    const r = await call(s.url, "PUT", "/datastore/label?image=anat&tag=final", {
      headers: { ...auth, "content-type": contentType },
      body,
    });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ image: "anat", label: "anat" });
    await subscribed;
    await client.dispose();
    expect(seen).toEqual([{ kind: "LABEL_SAVED", imageId: "anat", tag: "final", version: 1, source: "API" }]);
    const all = (await call(s.url, "GET", "/datastore/?output=all")).json() as Row;
    const anat = (all.objects as Row).anat as Row;
    expect(anat.image).toMatchObject({ ext: ".nii", info: { name: "anatomical.nii", user: "admin" } });
    expect((anat.labels as Row).final).toMatchObject({
      ext: ".nii",
      info: { label_info: [{ name: "brain", idx: 1 }], client_id: "py-client" },
    });
  });

  it("download_label(): the file name comes from content-disposition, filename*= when it needs quoting", async () => {
    const r = await call(s.url, "GET", "/datastore/label?label=anat&tag=final");
    expect(r.status).toBe(200);
    expect(r.headers["content-disposition"]).toBe('attachment; filename="anat.nii"');
    expect(r.body.equals(anatomical)).toBe(true);
    const { body, contentType } = pyMultipart({ params: "{}" }, { label: { path: "/x/l.nii", data: anatomical } });
    await call(s.url, "PUT", "/datastore/label?image=my%20scan", { headers: { "content-type": contentType }, body });
    const spaced = await call(s.url, "GET", "/datastore/label?label=my+scan&tag=final");
    expect(spaced.headers["content-disposition"]).toBe("attachment; filename*=utf-8''my%20scan.nii");
    expect(pyFilename(String(spaced.headers["content-disposition"]))).toBe("my scan.nii");
    const missing = await call(s.url, "GET", "/datastore/label?label=anat&tag=nope");
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ detail: "Label NOT Found or is a directory" });
  });

  it("sessions: create_session (requests multipart), infer on it, get, delete", async () => {
    const { body, contentType } = requestsMultipart([{ field: "files", name: "anatomical.nii", data: anatomical }]);
    const created = await call(s.url, "PUT", "/session/?expiry=600", {
      headers: { "content-type": contentType },
      body,
    });
    expect(created.status).toBe(200);
    const { session_id, session_info } = created.json() as { session_id: string; session_info: Row };
    expect(session_info).toMatchObject({ name: session_id, image: "anatomical.nii", expiry: 600 });
    expect(Object.keys(session_info).sort()).toEqual(
      ["create_ts", "expiry", "image", "last_access_ts", "meta", "name", "path"].sort(),
    );
    const empty = pyMultipart({ params: "{}" }, {});
    const inferred = await call(s.url, "POST", `/infer/segmentation?image=&session_id=${session_id}&output=json`, {
      headers: { "content-type": empty.contentType },
      body: empty.body,
    });
    expect(inferred.status).toBe(200);
    const image = await call(s.url, "GET", `/session/${session_id}?image=true`);
    expect(image.headers["content-type"]).toBe("application/octet-stream");
    expect(image.body.equals(anatomical)).toBe(true);
    const removed = await call(s.url, "DELETE", `/session/${session_id}`);
    expect((removed.json() as Row).name).toBe(session_id);
    expect((await call(s.url, "GET", `/session/${session_id}`)).status).toBe(404);
  });

  it("batch inference: run_sync answers {image_id: result}; status and stop", async () => {
    const r = await call(s.url, "POST", "/batch/infer/segmentation?images=all&run_sync=true", {
      json: { label_tag: "batch", max_batch_size: 0 },
    });
    expect(r.status).toBe(200);
    expect(Object.keys(r.json() as Row).sort()).toEqual(["anat", "my scan"]);
    const status = (await call(s.url, "GET", "/batch/infer")).json() as Row;
    expect(status).toMatchObject({ status: "DONE", request: { model: "segmentation", images: "all" } });
    expect(Object.keys(status).sort()).toEqual(["details", "end_ts", "id", "request", "start_ts", "status"]);
    expect(status.start_ts).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect((await call(s.url, "GET", "/batch/infer?check_if_running=true")).status).toBe(404);
    const stop = await call(s.url, "DELETE", "/batch/infer");
    expect(stop.text()).toBe("null");
    expect((await call(s.url, "GET", "/datastore/")).json()).toMatchObject({ label_tags: { batch: 2 } });
  });

  it("train_status() and train_stop() with no trainer: 404 as a boolean, null", async () => {
    const running = await call(s.url, "GET", "/train/?check_if_running=true", { headers: auth });
    expect(running.status).toBe(404);
    const status = await call(s.url, "GET", "/train/");
    expect(status.json()).toEqual({ detail: "No Train Tasks Found" });
    const start = await call(s.url, "POST", "/train/segmentation", { json: { client_id: "py-client" } });
    expect(start.status).toBe(404);
    expect((await call(s.url, "DELETE", "/train/")).text()).toBe("null");
  });
});
