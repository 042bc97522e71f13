import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeImage2d } from "../../../src/io/image2d.js";
import { greyImage2d } from "../../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../helpers/harness.js";
import { call, pyMultipart } from "./client.js";

type Row = Record<string, unknown>;
const N = 48;

/** One bright ellipse on a noisy background, and its mask (the training fixture app's task). */
function sample(seed: number): { image: Uint8Array; mask: Uint8Array } {
  let s = seed * 2654435761;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const [cx, cy, rx, ry] = [12 + rand() * 24, 12 + rand() * 24, 5 + rand() * 6, 5 + rand() * 6];
  const image = new Uint8Array(N * N);
  const mask = new Uint8Array(N * N);
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      const inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
      mask[x + N * y] = inside ? 1 : 0;
      image[x + N * y] = Math.max(0, Math.min(255, (inside ? 170 : 70) + (rand() - 0.5) * 90));
    }
  }
  return { image, mask };
}

const png = (data: Uint8Array) => encodeImage2d(greyImage2d(data, N));

/**
 * An annotation session from OHIF v3 / QuPath against the training app: images uploaded with
 * PUT /datastore/image, labels saved as OHIF's raw `label.bin`, then train, status, stop; plus a training
 * started over GraphQL seen in GET /train/, and the model routes on the published model.
 */
describe("train, status and stop over REST, as OHIF and QuPath call them", () => {
  let s: TestServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-rest-train-"));
    s = await startTestServer({
      app: join(import.meta.dirname, "../../fixtures/apps/training"),
      conf: { model_dir: join(dir, "model") },
      env: { MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
    for (let i = 0; i < 6; i++) {
      const { image, mask } = sample(i + 1);
      const form = new FormData();
      form.append("file", new Blob([Buffer.from(await png(image))]), `img${i}.png`);
      const up = await fetch(`${s.url}/datastore/image?image=img${i}`, { method: "PUT", body: form });
      expect(up.status).toBe(200);
      if (i < 5) {
        // OHIF v3 save_label: FormData with params and the label's voxels as "label.bin".
        const label = new FormData();
        label.append("params", JSON.stringify({ label_info: [{ name: "blob", idx: 1 }] }));
        label.append("label", new Blob([Buffer.from(mask)]), "label.bin");
        const saved = await fetch(`${s.url}/datastore/label?image=img${i}`, { method: "PUT", body: label });
        expect(await saved.json()).toEqual({ image: `img${i}`, label: `img${i}` });
      }
    }
  });
  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("stores a .bin label as NIfTI on the image's grid, and refuses one of the wrong size", async () => {
    const status = (await call(s.url, "GET", "/datastore/")).json();
    expect(status).toEqual({ total: 6, completed: 5, label_tags: { final: 5 } });
    const label = await call(s.url, "GET", "/datastore/label?label=img0&tag=final");
    expect(label.headers["content-disposition"]).toBe('attachment; filename="img0.nii.gz"');
    const form = new FormData();
    form.append("label", new Blob([Buffer.alloc(10)]), "label.bin");
    const bad = await fetch(`${s.url}/datastore/label?image=img5`, { method: "PUT", body: form });
    expect(bad.status).toBe(400);
    const missing = await fetch(`${s.url}/datastore/label?image=nope`, { method: "PUT", body: form });
    expect(missing.status).toBe(404);
  });

  it("starts training, answers 429 to a second start unless enqueue=true, reports status and stops", async () => {
    const start = await call(s.url, "POST", "/train/segmentation", { json: { max_epochs: 200, client_id: "ohif" } });
    expect(start.status).toBe(200);
    const task = start.json() as Row;
    expect(task).toMatchObject({ status: "SUBMITTED", request: { model: "segmentation", max_epochs: 200 } });
    expect(Object.keys(task).sort()).toEqual(["id", "request", "start_ts", "status"]);
    const again = await call(s.url, "POST", "/train/segmentation", { json: {} });
    expect(again.status).toBe(429);
    expect(again.json()).toEqual({ detail: "++++++++++ Train Task is Already Running" });
    const queued = await call(s.url, "POST", "/train/segmentation?enqueue=true", { json: { max_epochs: 1 } });
    expect(queued.status).toBe(200);
    // OHIF's is_train_running: 200 and status RUNNING.
    let running: Row = {};
    for (let i = 0; i < 100 && running.status !== "RUNNING"; i++) {
      const r = await call(s.url, "GET", "/train/?check_if_running=true");
      expect(r.status).toBe(200);
      running = r.json() as Row;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(running).toMatchObject({ id: task.id, status: "RUNNING" });
    const stopped = await call(s.url, "DELETE", "/train/");
    expect(stopped.json()).toMatchObject({ id: task.id, status: "STOPPED", end_ts: expect.any(String) });
    // The queued one runs next; stop it too.
    const stopQueued = (await call(s.url, "DELETE", "/train/")).json() as Row;
    expect(stopQueued.id).toBe((queued.json() as Row).id);
    const all = (await call(s.url, "GET", "/train/?all=true")).json() as Row[];
    expect(all.map((t) => t.id)).toEqual([task.id, (queued.json() as Row).id]);
    expect((await call(s.url, "GET", "/train/?check_if_running=true")).status).toBe(404);
  });

  it("a training started over GraphQL shows in GET /train/; run_sync answers with the stats", async () => {
    const started = await s.gql<{ startTraining: { data: { id: string } } }>(
      `mutation { startTraining(input: { model: "segmentation", params: { max_epochs: 1 } }) {
        ... on StartTrainingSuccess { data { id } } } }`,
    );
    const id = started.data?.startTraining.data.id;
    const last = (await call(s.url, "GET", "/train/")).json() as Row;
    expect(last.id).toBe(id);
    const sync = await call(s.url, "POST", "/train/segmentation?run_sync=true&enqueue=true", {
      json: { max_epochs: 1 },
    });
    expect(sync.status).toBe(200);
    const stats = sync.json() as Row;
    expect(stats).toMatchObject({ total_epochs: 1, best_metric: expect.any(Number) });
    expect(stats).not.toHaveProperty("history");
    const info = (await call(s.url, "GET", "/info/")).json() as Row;
    expect((info.train_stats as Row).segmentation).toMatchObject({ total_epochs: 1 });
    expect((info.trainers as Row).segmentation).toMatchObject({
      config: { max_epochs: 20 },
      description: expect.any(String),
    });
  });

  it("model routes: info with checksum, download, upload (validated, atomic), delete", async () => {
    const path = join(dir, "model", "segmentation.onnx");
    const bytes = await readFile(path);
    const info = (await call(s.url, "GET", "/model/info/segmentation")).json() as Row;
    expect(info.checksum).toBe(`SHA256:${createHash("sha256").update(bytes).digest("hex")}`);
    expect(info.modified_time).toEqual(expect.any(Number));
    expect(info.train_stats).toMatchObject({ total_epochs: 1 });
    const download = await call(s.url, "GET", "/model/segmentation");
    expect(download.headers["content-disposition"]).toBe('attachment; filename="segmentation.onnx"');
    expect(download.body.equals(bytes)).toBe(true);
    const garbage = pyMultipart({}, { file: { path: "/tmp/model.onnx", data: Buffer.from("not a model") } });
    const refused = await call(s.url, "PUT", "/model/segmentation", {
      headers: { "content-type": garbage.contentType },
      body: garbage.body,
    });
    expect(refused.status).toBe(400);
    expect((await readFile(path)).equals(bytes)).toBe(true);
    const upload = pyMultipart({}, { file: { path: "/tmp/model.onnx", data: bytes } });
    const put = await call(s.url, "PUT", "/model/segmentation", {
      headers: { "content-type": upload.contentType },
      body: upload.body,
    });
    expect(put.json()).toMatchObject({ checksum: info.checksum });
    expect((await call(s.url, "DELETE", "/model/segmentation")).json()).toEqual({});
    expect(existsSync(path)).toBe(false);
    expect((await readdir(join(dir, "model"))).some((f) => /^segmentation\.onnx\.\d{8}_\d{6}\.deleted$/.test(f))).toBe(
      true,
    );
    const gone = await call(s.url, "GET", "/model/segmentation");
    expect(gone.status).toBe(404);
    expect(gone.json()).toEqual({ detail: "Model File NOT Found for segmentation" });
    expect((await call(s.url, "GET", "/model/nope")).status).toBe(404);
  });

  it("the rest of the datastore family: HEAD with check_sum, info, Slicer Reviewer's updatelabelinfo, dataset, deletes", async () => {
    const image = (await s.gql<{ image: { sha256: string } }>(`{ image(id: "img0") { sha256 } }`)).data?.image;
    const sha = image?.sha256 as string;
    expect((await call(s.url, "HEAD", `/datastore/image?image=img0&check_sum=SHA256:${sha}`)).status).toBe(200);
    expect((await call(s.url, "HEAD", `/datastore/image?image=img0&check_sum=${sha}`)).status).toBe(200);
    expect((await call(s.url, "HEAD", "/datastore/image?image=img0&check_sum=SHA256:00")).status).toBe(404);
    expect((await call(s.url, "HEAD", "/datastore/image?image=nope")).status).toBe(404);
    expect((await call(s.url, "HEAD", "/datastore/label?image=img0&tag=final")).status).toBe(200);
    expect((await call(s.url, "HEAD", "/datastore/label?image=img5&tag=final")).status).toBe(404);
    const imageInfo = pyMultipart({ info: JSON.stringify({ reviewed: true }) }, {});
    const put = await call(s.url, "PUT", "/datastore/image/info?image=img0", {
      headers: { "content-type": imageInfo.contentType },
      body: imageInfo.body,
    });
    expect(put.text()).toBe("null");
    expect((await call(s.url, "GET", "/datastore/image/info?image=img0")).json()).toMatchObject({
      name: "img0.png",
      reviewed: true,
      user: "admin",
    });
    expect((await call(s.url, "GET", "/datastore/image/info?image=nope")).json()).toEqual({});
    const review = pyMultipart({ params: JSON.stringify({ approved: true, comment: "ok" }) }, {});
    const upd = await call(s.url, "PUT", "/datastore/updatelabelinfo?label=img0&tag=final", {
      headers: { "content-type": review.contentType },
      body: review.body,
    });
    expect(upd.status).toBe(200);
    expect((await call(s.url, "GET", "/datastore/label/info?label=img0&tag=final")).json()).toMatchObject({
      approved: true,
      comment: "ok",
      label_info: [{ name: "blob", idx: 1 }],
    });
    const train = (await call(s.url, "GET", "/datastore/?output=train")).json() as Row[];
    expect(train).toHaveLength(5);
    const zip = await call(s.url, "GET", "/datastore/dataset?limit_cases=2");
    expect(zip.headers["content-type"]).toBe("application/zip");
    expect(zip.body.subarray(0, 2).toString()).toBe("PK");
    expect((await call(s.url, "DELETE", "/datastore/label?id=img0&tag=final")).json()).toEqual({});
    expect((await call(s.url, "DELETE", "/datastore/label?id=img0&tag=final")).status).toBe(404);
    expect((await call(s.url, "DELETE", "/datastore/image?id=img1")).json()).toEqual({});
    expect((await call(s.url, "DELETE", "/datastore/?id=img2")).json()).toEqual({});
    expect((await call(s.url, "DELETE", "/datastore/image")).status).toBe(422);
    expect((await call(s.url, "GET", "/datastore/")).json()).toEqual({
      total: 4,
      completed: 2,
      label_tags: { final: 2 },
    });
  });
});
