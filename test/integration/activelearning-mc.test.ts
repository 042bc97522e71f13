/**
 * Epistemic scoring of labelgraph's own network: a 3D UNet with dropout, trained for a few seconds on bright
 * spheres and exported the way training publishes it (network.toOnnx: the plain inference model), scored over
 * GraphQL by the activelearning fixture app's EpistemicScoring (Monte-Carlo dropout passes).
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeNifti } from "../../src/io/nifti.js";
import { diceCELoss } from "../../src/nn/losses.js";
import { Adam } from "../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../src/nn/train-step.js";
import { UNet } from "../../src/nn/unet.js";
import { EntropyAccumulator } from "../../src/tasks/scoring/metrics.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

type Row = Record<string, unknown>;
const APP = join(import.meta.dirname, "../fixtures/apps/activelearning");
const N = 16;
const SHAPE = [N, N, N];

/** mulberry32 in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A sphere of `contrast` over a 0.2 background with uniform noise of +-`noise`; the label is the sphere. */
function sphere(random: () => number, contrast: number, noise: number) {
  const image = new Float32Array(N ** 3);
  const label = new Float32Array(N ** 3);
  const c = [0, 1, 2].map(() => 5 + random() * 6);
  const r = 3 + random() * 2.5;
  for (let i = 0; i < image.length; i++) {
    const x = i % N;
    const y = Math.floor(i / N) % N;
    const z = Math.floor(i / (N * N));
    const inside = (x - c[0]!) ** 2 + (y - c[1]!) ** 2 + (z - c[2]!) ** 2 <= r * r;
    label[i] = inside ? 1 : 0;
    image[i] = 0.2 + (inside ? contrast : 0) + noise * (2 * random() - 1);
  }
  return { image, label };
}

let dir: string;
let modelPath: string;
let plainBytes: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-al-mc-"));
  // Train for a few seconds on clean, high-contrast spheres.
  const network = new UNet({
    spatialDims: 3,
    inChannels: 1,
    outChannels: 2,
    channels: [8, 16],
    strides: [2],
    dropout: 0.2,
    act: "RELU",
    seed: 1,
  });
  const batch = 2;
  const shape = [batch, 1, N, N, N];
  const trainer = new Trainer(
    buildTrainStep({
      network,
      inputShape: shape,
      targetShape: shape,
      loss: (g, pred, target) => diceCELoss(g, pred, target, { softmax: true, toOnehotY: true }),
      optimizer: new Adam(),
      dropoutSeed: 5,
    }),
    { threads: 1 },
  );
  const random = rng(11);
  const image = new Float32Array(batch * N ** 3);
  const label = new Float32Array(batch * N ** 3);
  let loss = Number.NaN;
  for (let step = 0; step < 80; step++) {
    for (let b = 0; b < batch; b++) {
      const s = sphere(random, 1, 0.1);
      image.set(s.image, b * N ** 3);
      label.set(s.label, b * N ** 3);
    }
    loss = (await trainer.step(image, label, 1e-2)).loss;
  }
  await trainer.release();
  expect(loss).toBeLessThan(0.5);
  network.loadParameters(trainer.parameters());
  // What BasicTrainTask.publish writes.
  plainBytes = network.toOnnx({ inputShape: [1, 1, N, N, N] });
  modelPath = join(dir, "model.onnx");
  await writeFile(modelPath, plainBytes);
}, 120_000);

afterAll(() => rm(dir, { recursive: true, force: true }));

async function addImage(s: TestServer, id: string, data: Float32Array): Promise<void> {
  const folder = join(dir, id);
  await mkdir(folder, { recursive: true });
  const path = join(folder, `${id}.nii.gz`);
  const affine = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => (r === c ? 1 : 0)));
  await writeNifti({ data, shape: SHAPE, spacing: [1, 1, 1], affine, dtype: "float32", meta: {} }, path);
  await s.container.datastore.addImage({ id, fileName: `${id}.nii.gz`, path });
}

async function runScoring(s: TestServer, params: Row = {}): Promise<Row> {
  const r = await s.gql<{ runScoring: { data?: Row } & Row }>(
    `mutation ($input: RunScoringInput!) {
      runScoring(input: $input) { ... on RunScoringSuccess { data { id } } ... on Error { code message } }
    }`,
    { input: { method: "epistemic", params } },
  );
  const job = r.data?.runScoring.data;
  if (!job) {
    throw new Error(`runScoring: ${JSON.stringify(r)}`);
  }
  await s.container.jobs.idle();
  return (await s.container.jobs.get(job.id as string)) as unknown as Row;
}

/** Mean voxel entropy of the plain (deterministic) model's softmax output for one image. */
async function plainEntropy(data: Float32Array): Promise<number> {
  const session = await ort.InferenceSession.create(plainBytes, { graphOptimizationLevel: "all", logSeverityLevel: 3 });
  try {
    const out = await session.run({ image: new ort.Tensor("float32", data, [1, 1, N, N, N]) });
    const acc = new EntropyAccumulator(2, N ** 3, "softmax");
    acc.add(out.pred!.data as Float32Array);
    return acc.entropy();
  } finally {
    await session.release();
  }
}

describe("epistemic scoring of an exported UNet with dropout", () => {
  it("scores with MC dropout: non-zero, higher for images unlike the training data, served first", async () => {
    const s = await startTestServer({
      app: APP,
      conf: { epistemic_path: modelPath },
      env: { MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
    try {
      const random = rng(99);
      const images: Record<string, Float32Array> = {};
      // Like the training data, and faint spheres in heavy noise (the model has never seen such contrast).
      for (const id of ["clear1", "clear2", "clear3"]) {
        images[id] = sphere(random, 1, 0.1).image;
      }
      for (const id of ["faint1", "faint2", "faint3"]) {
        images[id] = sphere(random, 0.25, 0.6).image;
      }
      for (const [id, data] of Object.entries(images)) {
        await addImage(s, id, data);
      }

      const job = await runScoring(s);
      expect(job.status).toBe("SUCCEEDED");
      expect(job.result).toMatchObject({ total: 6, executed: 6, dropout_layers: 2 });
      const info = async (id: string) => (await s.container.datastore.getImage(id)).info;
      const entropy: Record<string, number> = {};
      for (const id of Object.keys(images)) {
        const i = await info(id);
        expect(i).toMatchObject({ epistemic_samples: 5, epistemic_version: expect.any(String) });
        entropy[id] = i.epistemic_entropy as number;
        expect(entropy[id]).toBeGreaterThan(0);
        expect(entropy[id]).toBeLessThan(Math.log(2));
      }
      const clear = ["clear1", "clear2", "clear3"].map((id) => entropy[id]!);
      const faint = ["faint1", "faint2", "faint3"].map((id) => entropy[id]!);
      expect(Math.min(...faint)).toBeGreaterThan(Math.max(...clear));

      // The passes were stochastic: the MC entropy is not the deterministic model's entropy.
      for (const id of ["clear1", "faint1"]) {
        expect(Math.abs(entropy[id]! - (await plainEntropy(images[id]!)))).toBeGreaterThan(1e-4);
      }
      // Scoring again (forced) draws new masks: close, but not the same numbers.
      expect((await runScoring(s, { force: true })).result).toMatchObject({ executed: 6 });
      const again = (await info("faint1")).epistemic_entropy as number;
      expect(again).not.toBe(entropy.faint1);
      expect(Math.abs(again - entropy.faint1!)).toBeLessThan(0.25 * entropy.faint1!);

      // The published file is untouched: plain inference stays the deterministic model.
      expect(Buffer.compare(await readFile(modelPath), Buffer.from(plainBytes))).toBe(0);
      // Scored with the current model version: skipped. A newly published model (atomic rename, as training
      // does) is a new version: everything is scored again with it.
      const version = (await info("faint1")).epistemic_version;
      expect((await runScoring(s)).result).toMatchObject({ total: 6, skipped: 6, executed: 0 });
      await writeFile(`${modelPath}.tmp`, plainBytes);
      await rename(`${modelPath}.tmp`, modelPath);
      expect((await runScoring(s)).result).toMatchObject({ total: 6, skipped: 0, executed: 6, dropout_layers: 2 });
      expect((await info("faint1")).epistemic_version).not.toBe(version);

      // The Epistemic strategy serves the most uncertain image first: a faint one.
      const r = await s.gql<{ nextImage: { data: { id: string } } }>(
        `mutation { nextImage(input: { strategy: "epistemic" }) { ... on NextImageSuccess { data { id } } } }`,
      );
      expect(r.data?.nextImage.data.id).toMatch(/^faint/);
    } finally {
      await s.close();
    }
  }, 120_000);
});
