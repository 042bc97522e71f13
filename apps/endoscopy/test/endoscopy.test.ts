import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeImage2d } from "../../../src/io/image2d.js";
import { loadImage } from "../../../src/io/load.js";
import { fixture } from "../../../test/helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../../test/helpers/harness.js";
import { cropFrame, drawTool, type Frame, frameVolume, labelVolume, type ToolFrame } from "../lib/frames.js";

type Row = Record<string, unknown>;
const SIZE = 96;

const RUN = `mutation ($input: RunInferenceInput!) { runInference(input: $input) {
  __typename ... on RunInferenceSuccess { data { result label { tag } } } ... on Error { code message } } }`;

async function train(s: TestServer, model: string, epochs: number): Promise<Row> {
  const started = await s.gql<{ startTraining: { data: Row } }>(
    `mutation ($m: String!, $p: JSONObject) { startTraining(input: { model: $m, params: $p }) {
      ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    { m: model, p: { max_epochs: epochs, seed: 11 } },
  );
  const id = started.data?.startTraining.data?.id as string;
  expect(id, JSON.stringify(started)).toBeTruthy();
  for (;;) {
    const job = (await s.gql<{ job: Row }>(`{ job(id: "${id}") { status result error } }`)).data?.job as Row;
    if (!["QUEUED", "RUNNING"].includes(job.status as string)) {
      return job;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const p = (a[i] ?? 0) > 0 ? 1 : 0;
    const q = (b[i] ?? 0) > 0 ? 1 : 0;
    inter += p * q;
    n += p + q;
  }
  return (2 * inter) / n;
}

describe("endoscopy app", () => {
  let s: TestServer;
  let dir: string;
  let heldOutTool: ToolFrame;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "endoscopy-app-"));
    const studies = join(dir, "studies");
    const final = join(studies, "labels", "final");
    await mkdir(final, { recursive: true });
    const retina = fixture("retina.jpg");
    const save = async (id: string, frame: Frame, label?: Uint8Array | number) => {
      await writeImage2d(frameVolume(frame), join(studies, `${id}.png`));
      if (label !== undefined) {
        await writeImage2d(labelVolume(frame.size, label), join(final, `${id}.png`));
      }
    };
    // tooltracking: retina crops with a synthetic instrument, and its mask.
    for (let i = 0; i < 10; i++) {
      const f = drawTool(await cropFrame(retina, SIZE, 10 + i), 10 + i);
      await save(`tool${i}`, f, f.mask);
    }
    // inbody: real in-body-like (retina) and out-of-body (astronaut, camera) frames, labels filled with the class.
    const out = [fixture("astronaut.png"), fixture("camera.png")];
    for (let i = 0; i < 12; i++) {
      const inside = i % 2 === 0;
      const f = await cropFrame(inside ? retina : out[i % 4 === 1 ? 0 : 1]!, SIZE, 50 + i);
      await save(`cls${String(i).padStart(2, "0")}`, f, inside ? 0 : 1);
    }
    heldOutTool = drawTool(await cropFrame(retina, SIZE, 999), 999);
    await save("test_tool", heldOutTool);
    await save("test_in", await cropFrame(retina, SIZE, 777));
    await save("test_out", await cropFrame(out[0]!, SIZE, 555));
    await save("test_out2", await cropFrame(out[1]!, SIZE, 556));
    s = await startTestServer({
      app: join(import.meta.dirname, ".."),
      studies,
      conf: { model_dir: join(dir, "model") },
      env: { MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
  });

  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("offers both trainers and lists no model before training", async () => {
    const r = await s.gql<{ trainers: Row[]; models: Row[] }>("{ trainers { name } models { name } }");
    expect(r.data?.trainers.map((t) => t.name).sort()).toEqual(["inbody", "tooltracking"]);
    expect(r.data?.models).toEqual([]);
  });

  it("trains the inbody classifier and classifies held-out frames", async () => {
    const job = await train(s, "inbody", 20);
    expect(job, JSON.stringify(job)).toMatchObject({ status: "SUCCEEDED" });
    const stats = job.result as Row;
    expect(stats).toMatchObject({ train: { key_metric_name: "train_accuracy" } });
    const models = await s.gql<{ models: Row[] }>("{ models { name type labels } }");
    expect(models.data?.models).toContainEqual({
      name: "inbody",
      type: "classification",
      labels: { in_body: 0, out_body: 1 },
    });
    for (const [image, want] of [
      ["test_in", "in_body"],
      ["test_out", "out_body"],
      ["test_out2", "out_body"],
    ] as const) {
      const r = await s.gql<{ runInference: { data: { result: Row; label: unknown } } }>(RUN, {
        input: { model: "inbody", imageId: image },
      });
      const data = r.data?.runInference.data;
      expect(data, JSON.stringify(r)).toBeTruthy();
      // JSON only: no label file is saved for a classification.
      expect(data?.label).toBeNull();
      const prediction = data?.result.prediction as { idx: number; label: string; score: number }[];
      expect(prediction.map((p) => p.label).sort()).toEqual(["in_body", "out_body"]);
      expect(prediction[0]?.label, `${image}: ${JSON.stringify(prediction)}`).toBe(want);
      expect(prediction[0]!.score + prediction[1]!.score).toBeCloseTo(1, 5);
    }
  }, 120_000);

  it("trains tooltracking and segments the instrument in a held-out frame", async () => {
    const job = await train(s, "tooltracking", 12);
    expect(job, JSON.stringify(job)).toMatchObject({ status: "SUCCEEDED" });
    const r = await s.gql<{ runInference: { data: { result: Row; label: Row } } }>(RUN, {
      input: { model: "tooltracking", imageId: "test_tool" },
    });
    expect(r.data?.runInference.data?.label, JSON.stringify(r)).toMatchObject({ tag: "original" });
    const label = await s.container.datastore.getLabel("test_tool", "original");
    const local = await s.container.store.localPath(label.objectKey);
    try {
      const mask = await loadImage(local.path);
      expect(mask.shape.slice(0, 2)).toEqual([SIZE, SIZE]);
      expect(dice(mask.data, heldOutTool.mask)).toBeGreaterThan(0.75);
    } finally {
      await local.release();
    }
  }, 120_000);

  it("rejects an unknown model with a typed error", async () => {
    const r = await s.gql<{ runInference: Row }>(RUN, { input: { model: "deepedit", imageId: "test_in" } });
    expect(r.data?.runInference).toMatchObject({ __typename: "NotFoundError", code: "MODEL_NOT_FOUND" });
  });
});
