import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { writeImage2d } from "../../src/io/image2d.js";
import { readNifti } from "../../src/io/nifti.js";
import { loadCheckpoint } from "../../src/nn/checkpoint.js";
import { greyImage2d } from "../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

type Row = Record<string, unknown>;
const N = 48;

/** A synthetic 2D task: one bright ellipse per image on a noisy background, with its mask. */
function sample(seed: number): { image: Uint8Array; mask: Uint8Array } {
  let s = seed * 2654435761;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const cx = 12 + rand() * 24;
  const cy = 12 + rand() * 24;
  const rx = 5 + rand() * 6;
  const ry = 5 + rand() * 6;
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

const volume = (data: Uint8Array) => greyImage2d(data, N);

/** Uploads `count` synthetic blob images (img0..), with a final label on the first `labeled` of them. */
async function seedBlobs(s: TestServer, dir: string, count: number, labeled: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const { image, mask } = sample(i + 1);
    await writeImage2d(volume(image), join(dir, `img${i}.png`));
    await writeImage2d(volume(mask), join(dir, `mask${i}.png`));
    await s.upload(
      `mutation ($f: File!, $id: String) { uploadImage(input: { file: $f, id: $id }) { __typename } }`,
      { f: null, id: `img${i}` },
      { f: { data: await readFile(join(dir, `img${i}.png`)), name: `img${i}.png` } },
    );
    if (i < labeled) {
      await s.upload(
        `mutation ($f: File!, $id: ID!) { saveLabel(input: { imageId: $id, file: $f }) { __typename } }`,
        { f: null, id: `img${i}` },
        { f: { data: await readFile(join(dir, `mask${i}.png`)), name: `img${i}.png` } },
      );
    }
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

describe("training through GraphQL", () => {
  let s: TestServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-train-"));
    s = await startTestServer({
      app: join(import.meta.dirname, "../fixtures/apps/training"),
      conf: { model_dir: join(dir, "model") },
    });
    await seedBlobs(s, dir, 10, 8);
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists the trainer, and no model before training (its file does not exist yet)", async () => {
    const r = await s.gql("{ trainers { name config } models { name } }");
    expect(r.data).toMatchObject({ trainers: [{ name: "segmentation", config: { max_epochs: 20 } }], models: [] });
  });

  it("trains, streams every iteration and epoch over graphql-ws, and publishes a model inference uses", async () => {
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/graphql`, webSocketImpl: WebSocket });
    const events: Row[] = [];
    const started = await s.gql<{ startTraining: { data: Row } }>(
      `mutation { startTraining(input: { model: "segmentation", params: { max_epochs: 25 } }) {
        ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    const jobId = (started.data?.startTraining.data as Row | undefined)?.id as string;
    await new Promise<void>((resolve, reject) => {
      client.subscribe<{ trainingProgress: Row }>(
        {
          query: `subscription ($id: ID) { trainingProgress(jobId: $id) { kind epoch iteration loss lr samplesPerSec trainDice valDice bestMetric } }`,
          variables: { id: jobId },
        },
        { next: (v) => events.push(v.data?.trainingProgress as Row), error: reject, complete: resolve },
      );
    });
    await client.dispose();
    const job = await s.gql<{ job: Row }>(`{ job(id: "${jobId}") { status progress result } }`);
    expect(job.data?.job).toMatchObject({ status: "SUCCEEDED", progress: 1 });
    const iterations = events.filter((e) => e.kind === "iteration");
    const epochs = events.filter((e) => e.kind === "epoch");
    // 8 final labels, val_split 0.25: 6 to train in batches of 2 -> 3 iterations per epoch.
    expect(epochs).toHaveLength(25);
    expect(iterations.length).toBeGreaterThan(60);
    expect(iterations.every((e) => typeof e.loss === "number" && typeof e.lr === "number")).toBe(true);
    const best = Math.max(...epochs.map((e) => e.valDice as number));
    // The train metric goes through the app's trainPostTransforms (sigmoid + threshold).
    expect(epochs.at(-1)?.trainDice).toBeGreaterThan(0.6);
    expect(best).toBeGreaterThan(0.7);
    const stats = JSON.parse(await readFile(join(dir, "model", "train", "train_stats.json"), "utf8"));
    expect(stats).toMatchObject({ total_epochs: 25, eval: { key_metric_name: "val_mean_dice" } });
    expect(stats.best_metric).toBeCloseTo(best, 5);
    // The final checkpoint holds weights and Adam state under the network's names and resumes the step count.
    const ckpt = await loadCheckpoint(join(dir, "model", "train", "train_01", "checkpoint_final.lgckpt"));
    expect(ckpt.step).toBe(iterations.length);
    expect(ckpt.parameters.has("model.0.conv.weight")).toBe(true);
    expect([...ckpt.optimizer.keys()].some((k) => k.includes("exp_avg"))).toBe(true);

    // The published model is listed and used by the next inference, on an image it never saw.
    expect((await s.gql("{ models { name } }")).data).toEqual({ models: [{ name: "segmentation" }] });
    const r = await s.gql<{ runInference: { data: Row } }>(
      `mutation { runInference(input: { model: "segmentation", imageId: "img9" }) { ... on RunInferenceSuccess { data { url } } ... on Error { code message } } }`,
    );
    const tmp = join(dir, "pred.nii.gz");
    await writeFile(
      tmp,
      Buffer.from(await (await fetch((r.data?.runInference.data as Row | undefined)?.url as string)).arrayBuffer()),
    );
    const pred = await readNifti(tmp);
    expect(dice(pred.data, sample(10).mask)).toBeGreaterThan(0.6);
  });

  it("stops mid-run on stopTraining and keeps the best model so far", async () => {
    const started = await s.gql<{ startTraining: { data: Row } }>(
      `mutation { startTraining(input: { model: "segmentation", params: { max_epochs: 1000 } }) { ... on StartTrainingSuccess { data { id } } } }`,
    );
    const jobId = (started.data?.startTraining.data as Row | undefined)?.id as string;
    const sub = s.container.pubsub.subscribe("training:progress");
    let firstEpoch: Row = {};
    for await (const e of sub) {
      if (e.jobId === jobId && e.kind === "epoch") {
        firstEpoch = e as unknown as Row;
        break;
      }
    }
    // It started from the published model (MONAI continues from <out>/model.pt), not from scratch.
    expect(firstEpoch.valDice).toBeGreaterThan(0.6);
    const t0 = Date.now();
    const stopped = await s.gql<{ stopTraining: { data: Row } }>(
      `mutation { stopTraining(jobId: "${jobId}") { ... on StopTrainingSuccess { data { status } } } }`,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(stopped.data?.stopTraining.data).toEqual({ status: "CANCELLED" });
    expect((await s.gql("{ models { name } }")).data).toEqual({ models: [{ name: "segmentation" }] });
  });
  it("takes device and val_batch_size: CUDA without its libraries trains on the CPU and the job says so", async () => {
    const run = async (params: string) => {
      const started = await s.gql<{ startTraining: { data: Row } }>(
        `mutation { startTraining(input: { model: "segmentation", params: ${params} }) { ... on StartTrainingSuccess { data { id } } } }`,
      );
      const id = (started.data?.startTraining.data as Row | undefined)?.id as string;
      for (;;) {
        const job = (await s.gql<{ job: Row }>(`{ job(id: "${id}") { status error result } }`)).data?.job as Row;
        if (job.status !== "QUEUED" && job.status !== "RUNNING") {
          return job;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const job = await run(`{ max_epochs: 2, device: ["cuda"], val_batch_size: 2 }`);
    expect(job.status).toBe("SUCCEEDED");
    const placed = (job.result as { device: { device: string; provider: string; warning?: string } }).device;
    expect(placed.device).toBe("cuda");
    if (placed.provider === "cpu") {
      expect(placed.warning).toMatch(/^CUDA requested but/);
    }
    const stats = JSON.parse(await readFile(join(dir, "model", "train", "train_stats.json"), "utf8"));
    expect(stats.device).toEqual(placed);
    expect(stats.eval.metrics.val_mean_dice).toBeGreaterThan(0.6);

    const bad = await run(`{ max_epochs: 1, device: "tpu" }`);
    expect(bad.status).toBe("FAILED");
    expect(bad.error).toMatch(/unknown device "tpu"/);
  });
});

describe("training history across a restart", () => {
  it("keeps a run's metrics in the job row: queryable after the server restarts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-train-restart-"));
    const studies = join(dir, "studies");
    const opts = {
      app: join(import.meta.dirname, "../fixtures/apps/training"),
      conf: { model_dir: join(dir, "model") },
      studies,
      env: { MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" },
    };
    const first = await startTestServer(opts);
    for (let i = 0; i < 4; i++) {
      const { image, mask } = sample(i + 20);
      await writeImage2d(volume(image), join(dir, `i${i}.png`));
      await writeImage2d(volume(mask), join(dir, `m${i}.png`));
      await first.container.datastore.addImage({ id: `i${i}`, fileName: `i${i}.png`, path: join(dir, `i${i}.png`) });
      await first.container.datastore.saveLabel({
        imageId: `i${i}`,
        fileName: `i${i}.png`,
        path: join(dir, `m${i}.png`),
      });
    }
    const job = await first.container.jobs.enqueue("train", { model: "segmentation", params: { max_epochs: 1000 } });
    const sub = first.container.pubsub.subscribe("training:progress");
    let epochs = 0;
    for await (const e of sub) {
      if (e.jobId === job.id && e.kind === "epoch" && ++epochs === 3) {
        break;
      }
    }
    await first.close();
    const second = await startTestServer(opts);
    try {
      const r = await second.gql<{ job: Row }>(`{ job(id: "${job.id}") { status result } }`);
      const history = ((r.data?.job.result as Row | undefined)?.history ?? []) as Row[];
      expect(["CANCELLED", "FAILED"]).toContain(r.data?.job.status);
      expect(history.filter((e) => e.kind === "epoch").length).toBeGreaterThanOrEqual(3);
      expect(history.filter((e) => e.kind === "iteration").length).toBeGreaterThanOrEqual(3);
    } finally {
      await second.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a training worker that dies", () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-crash-"));
    s = await startTestServer({
      app: join(import.meta.dirname, "../fixtures/apps/crashing"),
      conf: { model_dir: join(dir, "model") },
    });
    await seedBlobs(s, dir, 4, 4);
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const train = async (params: string) => {
    const started = await s.gql<{ startTraining: { data: Row } }>(
      `mutation { startTraining(input: { model: "segmentation", params: ${params} }) {
        ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    const id = (started.data?.startTraining.data as Row | undefined)?.id as string;
    expect(id).toBeTruthy();
    for (;;) {
      const r = await s.gql<{ job: Row }>(`{ job(id: "${id}") { status error } }`);
      const job = r.data?.job as Row;
      if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(job.status as string)) {
        return job;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  it("marks the job FAILED with the exit code, keeps serving, and the next run trains and publishes", async () => {
    const crashed = await train("{ max_epochs: 2, crash_worker: true }");
    expect(crashed.status).toBe("FAILED");
    expect(JSON.stringify(crashed.error)).toMatch(/exited with code 7/);
    const status = await s.gql("{ datastoreStatus { total } }");
    expect(status.data).toEqual({ datastoreStatus: { total: 4 } });
    const next = await train("{ max_epochs: 1 }");
    expect(next).toMatchObject({ status: "SUCCEEDED" });
    const models = await s.gql("{ models { name } }");
    expect(models.data).toEqual({ models: [{ name: "segmentation" }] });
  }, 120_000);
});
