import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/graph/builder.js";
import { readNifti } from "../../src/io/nifti.js";
import { UNet } from "../../src/nn/unet.js";
import { InferenceWorkers } from "../../src/tasks/infer/worker-pool.js";
import { fixture } from "../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

const RUN = /* GraphQL */ `
  mutation ($input: RunInferenceInput!) {
    runInference(input: $input) {
      __typename
      ... on RunInferenceSuccess { data { model imageId url latencies result label { tag version } } }
      ... on Error { code message }
    }
  }`;

type Row = Record<string, unknown>;

/**
 * A server running the segmentation fixture app on a 3D UNet built by labelgraph's own graph module
 * (deterministic random weights from `seed`), taking windows of 32^3.
 */
async function segmentationServer(seed: number) {
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-model-"));
  const modelPath = join(dir, "segmentation.onnx");
  const net = new UNet({ spatialDims: 3, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed });
  await writeFile(modelPath, net.toOnnx({ inputShape: [1, 1, 32, 32, 32] }));
  const s = await startTestServer({
    app: join(import.meta.dirname, "../fixtures/apps/segmentation"),
    conf: { model_path: modelPath },
  });
  return { s, dir, modelPath };
}

describe("inference over GraphQL with a real ONNX model", () => {
  let s: TestServer;
  let dir: string;
  let modelPath: string;

  beforeAll(async () => {
    ({ s, dir, modelPath } = await segmentationServer(1));
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists the model with MONAI's info fields", async () => {
    const r = await s.gql("{ models { name type labels dimension description config } }");
    expect(r.data).toEqual({
      models: [
        {
          name: "segmentation",
          type: "segmentation",
          labels: ["brain"],
          dimension: 3,
          description: "3D brain segmentation (random weights in tests)",
          config: { device: ["cpu"] },
        },
      ],
    });
  });

  it("runs a sliding-window inference on an uploaded volume and saves a label on the image's grid", async () => {
    const anatomical = await readFile(fixture("anatomical.nii"));
    await s.upload(
      `mutation ($f: File!) { uploadImage(input: { file: $f, id: "anat" }) { __typename } }`,
      { f: null },
      { f: { data: anatomical, name: "anatomical.nii" } },
    );
    const r = await s.gql<{ runInference: { data: Row } }>(RUN, { input: { model: "segmentation", imageId: "anat" } });
    const out = r.data?.runInference.data as Row;
    expect(out.label).toEqual({ tag: "original", version: 1 });
    expect(Object.keys(out.latencies as object).sort()).toEqual([
      "infer",
      "invert",
      "post",
      "pre",
      "total",
      "transform",
      "write",
    ]);
    expect((out.result as Row).label_names).toEqual({ brain: 1 });
    const file = Buffer.from(await (await fetch(out.url as string)).arrayBuffer());
    const tmp = join(dir, "label.nii.gz");
    await writeFile(tmp, file);
    const [label, image] = await Promise.all([readNifti(tmp), readNifti(fixture("anatomical.nii"))]);
    expect(label.shape).toEqual([33, 41, 25]);
    expect(label.dtype).toBe("uint8");
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        expect(label.affine[i]?.[j]).toBeCloseTo(image.affine[i]?.[j] ?? Number.NaN, 4);
      }
    }
    expect(new Set(Array.from(label.data)).size).toBeLessThanOrEqual(2);
    const status = await s.gql("{ datastoreStatus { labelTags } }");
    expect(status.data).toEqual({ datastoreStatus: { labelTags: { original: 1 } } });
  });

  it("answers bad requests with typed errors and keeps serving", async () => {
    const unknown = await s.gql<{ runInference: Row }>(RUN, { input: { model: "nope", imageId: "anat" } });
    expect(unknown.data?.runInference).toMatchObject({ code: "MODEL_NOT_FOUND" });
    const noImage = await s.gql<{ runInference: Row }>(RUN, { input: { model: "segmentation", imageId: "missing" } });
    expect(noImage.data?.runInference).toMatchObject({ code: "IMAGE_NOT_FOUND" });
    await s.upload(
      `mutation ($f: File!) { uploadImage(input: { file: $f, id: "cell" }) { __typename } }`,
      { f: null },
      { f: { data: await readFile(fixture("camera.png")), name: "camera.png" } },
    );
    const twoD = await s.gql<{ runInference: Row }>(RUN, { input: { model: "segmentation", imageId: "cell" } });
    expect(twoD.data?.runInference).toMatchObject({ code: expect.stringMatching(/INVALID_INPUT|INVALID_IMAGE/) });
    // A corrupt model file: a typed error, and the server goes on answering.
    await writeFile(modelPath, Buffer.from("not an onnx model"));
    const corrupt = await s.gql<{ runInference: Row }>(RUN, { input: { model: "segmentation", imageId: "anat" } });
    expect(corrupt.data?.runInference).toMatchObject({ code: "INVALID_INPUT" });
    expect((await s.gql("{ datastoreStatus { total } }")).data).toEqual({ datastoreStatus: { total: 2 } });
  });
});

describe("inference on a session image", () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    ({ s, dir } = await segmentationServer(2));
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("uploads once, infers on the session without touching the datastore, and expires on delete", async () => {
    const created = await s.upload<{ createSession: { data: Row } }>(
      `mutation ($files: [File!]!) { createSession(files: $files) { ... on CreateSessionSuccess { data { id name expiry } } ... on Error { code } } }`,
      { files: [null] },
      { "files.0": { data: await readFile(fixture("anatomical.nii")), name: "anatomical.nii" } },
    );
    const session = created.data?.createSession.data as Row;
    expect(session).toMatchObject({ name: "anatomical.nii", expiry: 3600 });
    const r = await s.gql<{ runInference: { data: Row } }>(RUN.replace("imageId url", "imageId sessionId url"), {
      input: { model: "segmentation", sessionId: session.id },
    });
    const out = r.data?.runInference.data as Row;
    expect(out).toMatchObject({ imageId: null, sessionId: session.id, label: null });
    const file = Buffer.from(await (await fetch(out.url as string)).arrayBuffer());
    const tmp = join(dir, "session-label.nii.gz");
    await writeFile(tmp, file);
    expect((await readNifti(tmp)).shape).toEqual([33, 41, 25]);
    expect((await s.gql("{ datastoreStatus { total } }")).data).toEqual({ datastoreStatus: { total: 0 } });
    await s.gql(`mutation { deleteSession(id: "${session.id}") { __typename } }`);
    const after = await s.gql<{ runInference: Row }>(RUN, { input: { model: "segmentation", sessionId: session.id } });
    expect(after.data?.runInference).toMatchObject({ code: "SESSION_NOT_FOUND" });
  });
});

describe("batch inference", () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    ({ s, dir } = await segmentationServer(3));
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs over the unlabeled images as a job with progress, saving each result", async () => {
    const anatomical = await readFile(fixture("anatomical.nii"));
    for (const id of ["a1", "a2", "a3"]) {
      await s.upload(
        `mutation ($f: File!, $id: String) { uploadImage(input: { file: $f, id: $id }) { __typename } }`,
        { f: null, id },
        { f: { data: anatomical, name: "anatomical.nii" } },
      );
    }
    await s.upload(
      `mutation ($f: File!) { saveLabel(input: { imageId: "a2", file: $f }) { __typename } }`,
      { f: null },
      { f: { data: anatomical, name: "a2.nii" } },
    );
    const progress: number[] = [];
    const sub = s.container.pubsub.subscribe("job:updated");
    void (async () => {
      for await (const j of sub) {
        if (j.kind === "batchInference" && j.status === "RUNNING") {
          progress.push(j.progress);
        }
      }
    })();
    const r = await s.gql<{ runBatchInference: { data: Row } }>(
      `mutation { runBatchInference(input: { model: "segmentation", images: UNLABELED }) { ... on RunBatchInferenceSuccess { data { id } } ... on Error { code } } }`,
    );
    const id = (r.data?.runBatchInference.data as Row | undefined)?.id as string;
    await s.container.jobs.idle();
    const job = await s.gql<{ job: Row }>(`{ job(id: "${id}") { status result progress } }`);
    expect(job.data?.job).toEqual({
      status: "SUCCEEDED",
      progress: 1,
      result: { a1: { tag: "original", version: 1 }, a3: { tag: "original", version: 1 } },
    });
    expect(progress.slice(-2)).toEqual([0.5, 1]);
    await sub.return();
    const unknown = await s.gql<{ runBatchInference: Row }>(
      `mutation { runBatchInference(input: { model: "nope" }) { __typename ... on Error { code } } }`,
    );
    expect(unknown.data?.runBatchInference).toMatchObject({ code: "MODEL_NOT_FOUND" });
  });
});

describe("inference on worker threads", () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-model-"));
    const modelPath = join(dir, "segmentation.onnx");
    const net = new UNet({
      spatialDims: 3,
      inChannels: 1,
      outChannels: 1,
      channels: [8, 16, 32],
      strides: [2, 2],
      seed: 4,
    });
    await writeFile(modelPath, net.toOnnx({ inputShape: [1, 1, 32, 32, 32] }));
    s = await startTestServer({
      app: join(import.meta.dirname, "../fixtures/apps/segmentation"),
      conf: { model_path: modelPath },
      env: { LABELGRAPH_INFER_WORKERS: "1" },
    });
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps answering other requests while a model runs", async () => {
    await s.upload(
      `mutation ($f: File!) { uploadImage(input: { file: $f, id: "colin" }) { __typename } }`,
      { f: null },
      { f: { data: await readFile(fixture("ch2.nii.gz")), name: "colin.nii.gz" } },
    );
    let done = false;
    const running = s
      .gql<{ runInference: Row }>(RUN, { input: { model: "segmentation", imageId: "colin", saveLabel: false } })
      .finally(() => {
        done = true;
      });
    let answeredMeanwhile = 0;
    while (!done) {
      const r = await s.gql("{ datastoreStatus { total } }");
      expect(r.data).toEqual({ datastoreStatus: { total: 1 } });
      if (!done) {
        answeredMeanwhile++;
      }
    }
    const out = await running;
    expect(out.data?.runInference).toMatchObject({ __typename: "RunInferenceSuccess" });
    // Colin27 (181x217x181) in 32^3 windows takes seconds; the server answered throughout.
    expect(answeredMeanwhile).toBeGreaterThan(5);
    // The model ran on the worker thread: the main thread never loaded an onnxruntime session.
    expect(s.container.pool.stats().loads).toBe(0);
  }, 180_000); // Colin27 through a 3D UNet: seconds alone, minutes on a loaded 2-core machine

  it("closing the workers lets a running inference finish instead of aborting the process", async () => {
    // Terminating a thread while onnxruntime runs on it aborts the process; close() waits for the run.
    const workers = new InferenceWorkers(
      {
        appDir: join(import.meta.dirname, "../fixtures/apps/segmentation"),
        studiesDir: dir,
        conf: { model_path: join(dir, "segmentation.onnx") },
      },
      1,
    );
    const running = workers.run("segmentation", { imagePath: fixture("anatomical.nii"), params: {} });
    await new Promise((r) => setTimeout(r, 200));
    await workers.close();
    const result = await running;
    expect(result.labelPath).toMatch(/label/);
    expect(result.json).toHaveProperty("latencies");
  }, 120_000);
});

describe("clicks, classification and writer options", () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-model-"));
    // Deepgrow stand-in: returns the foreground guidance channel (channel 1 of [image, fg, bg]).
    const dg = new GraphBuilder({ name: "guidance" });
    const x = dg.input("image", "float32", [1, 3, 33, 41, 25]);
    dg.output(dg.slice(x, { starts: [1], ends: [2], axes: [1] }), "pred");
    await writeFile(join(dir, "deepgrow.onnx"), dg.serialize());
    // Classifier stand-in: softmax([mean, -mean]).
    const cl = new GraphBuilder({ name: "classify" });
    const y = cl.input("image", "float32", [1, 1, 32, 32, 32]);
    const m = cl.reduceMean(y, [2, 3, 4], { keepdims: true });
    cl.output(cl.softmax(cl.concat([m, cl.neg(m)], 1), 1), "pred");
    await writeFile(join(dir, "classify.onnx"), cl.serialize());
    const net = new UNet({ spatialDims: 3, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 5 });
    await writeFile(join(dir, "seg.onnx"), net.toOnnx({ inputShape: [1, 1, 32, 32, 32] }));
    s = await startTestServer({
      app: join(import.meta.dirname, "../fixtures/apps/segmentation"),
      conf: {
        model_path: join(dir, "seg.onnx"),
        deepgrow_path: join(dir, "deepgrow.onnx"),
        classification_path: join(dir, "classify.onnx"),
      },
    });
    await s.upload(
      `mutation ($f: File!) { uploadImage(input: { file: $f, id: "anat" }) { __typename } }`,
      { f: null },
      { f: { data: await readFile(fixture("anatomical.nii")), name: "anatomical.nii" } },
    );
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("turns foreground clicks into a label around the clicked voxel", async () => {
    const r = await s.gql<{ runInference: { data: Row } }>(
      `mutation { runInference(input: { model: "deepgrow", imageId: "anat", foreground: [[10, 20, 12]], background: [] }) {
        ... on RunInferenceSuccess { data { url result } } ... on Error { code message } } }`,
    );
    const out = r.data?.runInference.data as Row;
    expect((out.result as Row).centroids).toEqual({ clicked: ["10", "20", "12"] });
    const tmp = join(dir, "dg.nii.gz");
    await writeFile(tmp, Buffer.from(await (await fetch(out.url as string)).arrayBuffer()));
    const label = await readNifti(tmp);
    expect(label.data[10 + 33 * (20 + 41 * 12)]).toBe(1);
    expect(label.data[0]).toBe(0);
  });

  it("answers classification with MONAI's prediction list and no label", async () => {
    const r = await s.gql<{ runInference: { data: Row } }>(
      `mutation { runInference(input: { model: "classification", imageId: "anat" }) {
        ... on RunInferenceSuccess { data { url label { version } result } } ... on Error { code message } } }`,
    );
    const out = r.data?.runInference.data as Row;
    expect(out.url).toBeNull();
    expect(out.label).toBeNull();
    const prediction = (out.result as { prediction: { idx: number; label: string; score: number }[] }).prediction;
    expect(prediction.map((p) => p.label)).toEqual(["bright", "dark"]);
    expect((prediction[0]?.score ?? 0) + (prediction[1]?.score ?? 0)).toBeCloseTo(1, 5);
  });

  it("writes NRRD when asked (result_extension) and refuses unknown extensions", async () => {
    const r = await s.gql<{ runInference: { data: Row } }>(
      `mutation { runInference(input: { model: "segmentation", imageId: "anat", params: { result_extension: ".nrrd" } }) {
        ... on RunInferenceSuccess { data { label { extension version } } } ... on Error { code message } } }`,
    );
    // Version 2: the deepgrow run above saved version 1 of `original`.
    expect(r.data?.runInference.data).toEqual({ label: { extension: ".nrrd", version: 2 } });
    const bad = await s.gql<{ runInference: Row }>(
      `mutation { runInference(input: { model: "segmentation", imageId: "anat", params: { result_extension: ".exe" } }) {
        __typename ... on Error { code } } }`,
    );
    expect(bad.data?.runInference).toMatchObject({ code: "INVALID_INPUT" });
  });
});
