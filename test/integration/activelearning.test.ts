import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import onnxProto from "onnx-proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { writeNifti } from "../../src/io/nifti.js";
import type { ScoreUpdate } from "../../src/tasks/scoring/scoring-method.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

type Row = Record<string, unknown>;
const APP = join(import.meta.dirname, "../fixtures/apps/activelearning");
const SHAPE = [4, 4, 4];

/**
 * A two-class "segmentation" with Monte-Carlo dropout built into the graph: pred = [a·m·x/(1−p), −a·m·x/(1−p)]
 * with m = Cast(RandomUniformLike(x) >= p). With p = 0 the mask is all ones and the model is deterministic.
 */
function mcDropoutModel(p: number, a: number): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT = onnx.AttributeProto.AttributeType.INT;
  const scalar = (name: string, v: number) => {
    const d = Float32Array.of(v);
    return { name, dims: [], dataType: FLOAT, rawData: new Uint8Array(d.buffer) };
  };
  const dims = ["n", 1, "x", "y", "z"].map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "labelgraph-tests",
    opsetImport: [{ domain: "", version: 18 }],
    graph: {
      name: "mc_dropout",
      node: [
        {
          opType: "RandomUniformLike",
          input: ["image"],
          output: ["r"],
          attribute: [{ name: "dtype", type: INT, i: 1 }],
        },
        { opType: "GreaterOrEqual", input: ["r", "p"], output: ["keep"] },
        { opType: "Cast", input: ["keep"], output: ["m"], attribute: [{ name: "to", type: INT, i: FLOAT }] },
        { opType: "Mul", input: ["image", "m"], output: ["xm"] },
        { opType: "Mul", input: ["xm", "k"], output: ["z"] },
        { opType: "Neg", input: ["z"], output: ["nz"] },
        { opType: "Concat", input: ["z", "nz"], output: ["pred"], attribute: [{ name: "axis", type: INT, i: 1 }] },
      ],
      initializer: [scalar("p", p), scalar("k", a / (1 - p))],
      input: [{ name: "image", type: { tensorType: { elemType: FLOAT, shape: { dim: dims } } } }],
      output: [{ name: "pred", type: { tensorType: { elemType: FLOAT } } }],
    },
  }).finish();
}

/** Binary entropy in nats. */
const H2 = (p: number) => -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

let dir: string;
let seq = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-al-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A 4x4x4 uint8 NIfTI file whose voxels `fill` gives (x fastest). */
async function nifti(fill: Fill, name = "v.nii.gz"): Promise<string> {
  const data = new Uint8Array(64);
  for (let z = 0; z < 4; z++) {
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        data[x + 4 * (y + 4 * z)] = fill(x, y, z);
      }
    }
  }
  const folder = join(dir, String(++seq));
  await mkdir(folder, { recursive: true });
  const path = join(folder, name);
  const affine = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => (r === c ? 1 : 0)));
  await writeNifti({ data, shape: SHAPE, spacing: [1, 1, 1], affine, dtype: "uint8", meta: {} }, path);
  return path;
}

/** final: x in {1, 2} on the z = 0 plane (8 voxels); original: x in {2, 3} (8 voxels); they share x = 2 (4). */
type Fill = (x: number, y: number, z: number) => number;
const FINAL: Fill = (x, _y, z) => (z === 0 && (x === 1 || x === 2) ? 1 : 0);
const ORIGINAL: Fill = (x, _y, z) => (z === 0 && (x === 2 || x === 3) ? 1 : 0);

interface Env {
  s: TestServer;
  addImage(id: string, value: number): Promise<void>;
  saveLabel(id: string, tag: string, fill: Fill, info?: Row): Promise<void>;
  info(id: string): Promise<Row>;
  runScoring(method: string, params?: Row): Promise<Row>;
}

async function start(
  opts: { auto?: boolean; conf?: Record<string, string>; studies?: string; provider?: "sqlite" | "postgresql" } = {},
): Promise<Env> {
  const s = await startTestServer({
    provider: opts.provider,
    app: APP,
    conf: opts.conf,
    studies: opts.studies,
    env: { MONAI_LABEL_AUTO_UPDATE_SCORING: opts.auto ? "true" : "false" },
  });
  const ds = s.container.datastore;
  return {
    s,
    async addImage(id, value) {
      await ds.addImage({ id, fileName: `${id}.nii.gz`, path: await nifti(() => value) });
    },
    async saveLabel(id, tag, fill, info) {
      await ds.saveLabel({ imageId: id, tag, fileName: `${id}.nii.gz`, path: await nifti(fill), info: info ?? null });
    },
    async info(id) {
      return (await ds.getImage(id)).info;
    },
    async runScoring(method, params) {
      const r = await s.gql<{ runScoring: { data?: Row } & Row }>(
        `mutation ($input: RunScoringInput!) {
          runScoring(input: $input) { ... on RunScoringSuccess { data { id kind status } } ... on Error { code message } }
        }`,
        { input: { method, params } },
      );
      const job = r.data?.runScoring.data;
      if (!job) {
        throw new Error(`runScoring: ${JSON.stringify(r)}`);
      }
      await s.container.jobs.idle();
      return (await s.container.jobs.get(job.id as string)) as unknown as Row;
    },
  };
}

const NEXT = /* GraphQL */ `
  mutation ($input: NextImageInput) {
    nextImage(input: $input) {
      __typename
      ... on NextImageSuccess { data { id labeled served { strategy clientId servedAt } } }
      ... on Error { code message }
    }
  }`;

async function next(s: TestServer, strategy: string, clientId?: string): Promise<Row | null> {
  const r = await s.gql<{ nextImage: { data?: Row } | null }>(NEXT, { input: { strategy, clientId } });
  if (r.errors) {
    throw new Error(JSON.stringify(r.errors));
  }
  const out = r.data?.nextImage;
  return out ? ((out.data ?? out) as Row) : null;
}

describe("strategies over GraphQL", () => {
  let env: Env;
  afterEach(() => env?.s.close());

  it("lists the app's strategies and scoring methods", async () => {
    env = await start();
    const r = await env.s.gql("{ strategies { name description } scoringMethods { name info } }");
    expect((r.data as { strategies: Row[] }).strategies.map((x) => x.name)).toEqual([
      "random",
      "first",
      "last",
      "epistemic",
      "my_score",
    ]);
    expect((r.data as { scoringMethods: Row[] }).scoringMethods.map((x) => x.name)).toEqual([
      "dice",
      "sum",
      "epistemic",
      "my_scoring_method",
    ]);
    expect((r.data as { scoringMethods: Row[] }).scoringMethods[2]?.info).toMatchObject({
      model: "epistemic_model",
      simulation_size: 5,
    });
  });

  it("First and Last serve the lowest and highest unlabeled id, record the serve, and give null when all is labeled", async () => {
    env = await start();
    for (const id of ["b", "a", "d", "c"]) {
      await env.addImage(id, 1);
    }
    await env.saveLabel("a", "final", FINAL);
    const before = Math.floor(Date.now() / 1000);
    const first = await next(env.s, "first", "alice");
    expect(first).toMatchObject({ id: "b", labeled: false, served: [{ strategy: "first", clientId: "alice" }] });
    const servedAt = Date.parse((first as { served: Row[] }).served[0]?.servedAt as string) / 1000;
    expect(servedAt).toBeGreaterThanOrEqual(before);
    expect((await env.info("b")).strategy).toEqual({ first: { ts: servedAt, client_id: "alice" } });

    // The client defaults to the user.
    expect(await next(env.s, "last")).toMatchObject({ id: "d", served: [{ strategy: "last", clientId: "admin" }] });

    // With b the only unlabeled image left, Last serves it too: both records are kept, newest first.
    await env.saveLabel("c", "final", FINAL);
    await env.saveLabel("d", "final", FINAL);
    await new Promise((r) => setTimeout(r, 1100));
    const b = await next(env.s, "last", "bob");
    expect(b).toMatchObject({
      id: "b",
      served: [
        { strategy: "last", clientId: "bob" },
        { strategy: "first", clientId: "alice" },
      ],
    });
    expect(Object.keys((await env.info("b")).strategy as Row).sort()).toEqual(["first", "last"]);

    await env.saveLabel("b", "final", FINAL);
    for (const strategy of ["first", "last", "random", "epistemic", "my_score"]) {
      expect(await next(env.s, strategy)).toBeNull();
    }
  });

  it("Random does not serve an image again while others have waited longer", async () => {
    env = await start();
    for (const id of ["a", "b", "c"]) {
      await env.addImage(id, 1);
    }
    // Served this second: weight ~0 against ~1.7e9 for the others.
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await next(env.s, "random"))?.id);
    }
    expect(ids.sort()).toEqual(["a", "b", "c"]);
  });

  it("serves in code point order on PostgreSQL too, and follows labels saved there", async () => {
    env = await start({ provider: "postgresql" });
    for (const id of ["b", "B", "a", "_a"]) {
      await env.addImage(id, 1);
    }
    // Python's sorted(): "B" < "_a" < "a" < "b", whatever the database collation.
    expect(await next(env.s, "first")).toMatchObject({ id: "B" });
    expect(await next(env.s, "last")).toMatchObject({ id: "b" });
    await env.saveLabel("B", "final", FINAL);
    expect(await next(env.s, "first")).toMatchObject({ id: "_a" });
    const ids = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      ids.add((await next(env.s, "random"))?.id);
    }
    expect([...ids].sort()).toEqual(["_a", "a", "b"]);
  });

  it("answers an unknown strategy with a typed error", async () => {
    env = await start();
    const r = await env.s.gql<{ nextImage: Row }>(NEXT, { input: { strategy: "nope" } });
    expect(r.data?.nextImage).toMatchObject({ code: "INVALID_INPUT" });
    expect(r.data?.nextImage.message).toContain("random, first, last, epistemic, my_score");
  });
});

describe("scoring methods", () => {
  let env: Env;
  afterEach(() => env?.s.close());

  it("Dice: final against original, as MONAI stores it, plus per label", async () => {
    env = await start();
    await env.addImage("a", 1);
    await env.addImage("b", 1);
    await env.saveLabel("a", "final", FINAL);
    await env.saveLabel("a", "original", ORIGINAL, { label_names: { spot: 1 } });
    await env.saveLabel("b", "final", FINAL); // no original: not scored

    const job = await env.runScoring("dice");
    // 2 * 4 shared voxels / (8 + 8)
    expect(job).toMatchObject({ status: "SUCCEEDED", result: { a: 0.5 }, progress: 1 });
    expect(await env.info("a")).toMatchObject({
      dice: 0.5,
      dice_labels: { spot: 0.5 },
      dice_source: { final: 1, original: 1 },
    });
    expect((await env.info("b")).dice).toBeUndefined();
    const r = await env.s.gql(`{ image(id: "a") { dice } }`);
    expect(r.data).toEqual({ image: { dice: 0.5 } });

    // Same label versions: not recomputed. A new final version: recomputed.
    const ts = (await env.info("a")).dice_ts;
    await new Promise((r) => setTimeout(r, 1100));
    await env.runScoring("dice");
    expect((await env.info("a")).dice_ts).toBe(ts);
    await env.saveLabel("a", "final", ORIGINAL);
    expect((await env.runScoring("dice")).result).toEqual({ a: 1 });
    expect(await env.info("a")).toMatchObject({ dice: 1, dice_source: { final: 2, original: 1 } });
  });

  it("Sum: the label's sum and labeled first-axis slices in label info", async () => {
    env = await start();
    await env.addImage("a", 1);
    await env.saveLabel("a", "final", FINAL);
    await env.saveLabel("a", "original", (x, y, z) => (x === 3 && y === 0 && z === 3 ? 2 : 0));
    const job = await env.runScoring("sum");
    expect(job.result).toEqual({
      a: { final: { sum: 8, slices: [1, 2] }, original: { sum: 2, slices: [3] } },
    });
    const r = await env.s.gql(`{ image(id: "a") { sum original: sum(tag: "original") labels { tag sum slices } } }`);
    expect(r.data).toEqual({
      image: {
        sum: 8,
        original: 2,
        labels: [
          { tag: "final", sum: 8, slices: [1, 2] },
          { tag: "original", sum: 2, slices: [3] },
        ],
      },
    });
  });

  it("Epistemic: MC-dropout entropy, by hand for a model without dropout; skipped until the model changes", async () => {
    const model = join(dir, "deterministic.onnx");
    await writeFile(model, mcDropoutModel(0, 0.5));
    env = await start({ conf: { epistemic_path: model } });
    for (const [id, v] of [
      ["v1", 1],
      ["v2", 2],
      ["v3", 3],
    ] as const) {
      await env.addImage(id, v);
    }
    await env.saveLabel("v3", "final", FINAL); // labeled: not scored
    const job = await env.runScoring("epistemic");
    expect(job.result).toMatchObject({ total: 2, skipped: 0, executed: 2 });
    // Logits [v/2, -v/2]: softmax gives p = sigmoid(v) in every voxel, whatever the passes.
    expect((await env.info("v1")).epistemic_entropy).toBeCloseTo(H2(sigmoid(1)), 5);
    expect((await env.info("v2")).epistemic_entropy).toBeCloseTo(H2(sigmoid(2)), 5);
    expect(await env.info("v1")).toMatchObject({ epistemic_samples: 5, epistemic_ts: expect.any(Number) });
    expect((await env.info("v3")).epistemic_entropy).toBeUndefined();
    const r = await env.s.gql(`{ image(id: "v2") { epistemicEntropy } }`);
    expect(r.data?.image).toEqual({ epistemicEntropy: expect.closeTo(H2(sigmoid(2)), 5) });

    // The Epistemic strategy serves the most uncertain unlabeled image.
    expect(await next(env.s, "epistemic")).toMatchObject({ id: "v1" });

    expect((await env.runScoring("epistemic")).result).toMatchObject({ total: 2, skipped: 2, executed: 0 });

    // A new model version (half the voxels dropped in each pass) is scored again; its passes differ.
    await writeFile(model, mcDropoutModel(0.5, 0.5));
    const version = (await env.info("v1")).epistemic_version;
    expect((await env.runScoring("epistemic", { simulation_size: 8 })).result).toMatchObject({ executed: 2 });
    const info = await env.info("v1");
    expect(info.epistemic_version).not.toBe(version);
    expect(info.epistemic_samples).toBe(8);
    // Each voxel's mean probability is a mix of sigmoid(2) (kept) and 1/2 (dropped): between the two.
    expect(info.epistemic_entropy).toBeGreaterThan(H2(sigmoid(2)) + 1e-4);
    expect(info.epistemic_entropy).toBeLessThan(Math.log(2));
  });

  it("refuses an unknown method, or one whose model is missing, before queueing anything", async () => {
    env = await start();
    const run = (method: string) =>
      env.s.gql<{ runScoring: Row }>(
        `mutation ($m: String!) { runScoring(input: { method: $m }) { ... on Error { code message } } }`,
        { m: method },
      );
    expect((await run("nope")).data?.runScoring).toMatchObject({ code: "INVALID_INPUT" });
    expect((await run("epistemic")).data?.runScoring).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("model file of epistemic_model is missing"),
    });
    expect(await env.s.container.jobs.count({ kind: "scoring" })).toBe(0);
  });
});

describe("the seed example: an app-level scoring method and strategy", () => {
  let env: Env;
  afterEach(() => env?.s.close());

  it("picks at random until my_score exists, then the highest my_score among unlabeled images", async () => {
    env = await start();
    for (const [id, v] of [
      ["low", 10],
      ["mid", 20],
      ["high", 30],
    ] as const) {
      await env.addImage(id, v);
    }
    const unscored = await env.s.container.activeLearning.nextImage({ strategy: "my_score" });
    expect(["low", "mid", "high"]).toContain(unscored?.image.id);
    expect(unscored?.result).toMatchObject({ my_score: null });

    const job = await env.runScoring("my_scoring_method");
    expect(job.result).toEqual({ high: 30, low: 10, mid: 20 });
    expect(await env.info("mid")).toMatchObject({ my_score: 20, my_score_ts: expect.any(Number) });

    expect(await next(env.s, "my_score")).toMatchObject({ id: "high" });
    await env.saveLabel("high", "final", FINAL);
    expect(await next(env.s, "my_score")).toMatchObject({ id: "mid" });
  });
});

describe("scoring jobs: progress, scoreUpdated, cancellation", () => {
  let env: Env;
  afterEach(() => env?.s.close());

  it("streams progress on jobUpdated and each score on scoreUpdated over graphql-ws", async () => {
    env = await start();
    for (const [id, v] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ] as const) {
      await env.addImage(id, v);
    }
    const client = createClient({ url: `ws://127.0.0.1:${env.s.port}/graphql`, webSocketImpl: WebSocket, lazy: false });
    const updates: Row[] = [];
    const threeScores = new Promise<void>((resolve, reject) => {
      client.subscribe<{ scoreUpdated: Row }>(
        {
          query: `subscription { scoreUpdated(method: "my_scoring_method") { method imageId tag score jobId image { id } } }`,
        },
        {
          next: (v) => {
            updates.push(v.data?.scoreUpdated as Row);
            if (updates.length === 3) {
              resolve();
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    await new Promise((r) => setTimeout(r, 200));
    const started = await env.s.gql<{ runScoring: { data: Row } }>(
      `mutation { runScoring(input: { method: "my_scoring_method", params: { delay_ms: 100 } }) {
        ... on RunScoringSuccess { data { id status kind } } } }`,
    );
    const id = started.data?.runScoring.data.id as string;
    const jobStates: Row[] = [];
    await new Promise<void>((resolve, reject) => {
      client.subscribe<{ jobUpdated: Row }>(
        { query: `subscription ($id: ID) { jobUpdated(id: $id) { status progress message } }`, variables: { id } },
        {
          next: (v) => {
            const job = v.data?.jobUpdated as Row;
            jobStates.push(job);
            if (job.status === "SUCCEEDED" || job.status === "FAILED") {
              resolve();
            }
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    await threeScores;
    await client.dispose();
    expect(jobStates.at(-1)).toMatchObject({ status: "SUCCEEDED", progress: 1 });
    const progress = jobStates.filter((j) => j.status === "RUNNING").map((j) => j.progress as number);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(progress).toEqual(expect.arrayContaining([expect.closeTo(1 / 3, 5), expect.closeTo(2 / 3, 5)]));
    expect(updates.map((u) => [u.imageId, (u.score as Row).my_score])).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    expect(updates[0]).toMatchObject({ method: "my_scoring_method", tag: null, jobId: id, image: { id: "a" } });
  });

  it("keeps the scores stored before a cancel", async () => {
    env = await start();
    for (const id of ["a", "b", "c", "d"]) {
      await env.addImage(id, 5);
    }
    const first = new Promise<ScoreUpdate>((resolve) => {
      void (async () => {
        for await (const u of env.s.container.pubsub.subscribe("score:updated")) {
          resolve(u);
          break;
        }
      })();
    });
    const job = await env.s.container.scoring.enqueue("my_scoring_method", { params: { delay_ms: 300 } });
    const update = await first;
    const r = await env.s.gql<{ cancelJob: { data: Row } }>(
      `mutation ($id: ID!) { cancelJob(id: $id) { ... on CancelJobSuccess { data { status result progress } } } }`,
      { id: job.id },
    );
    expect(update.imageId).toBe("a");
    expect(r.data?.cancelJob.data).toMatchObject({ status: "CANCELLED", result: { a: 5 } });
    expect((r.data?.cancelJob.data.progress as number) < 1).toBe(true);
    expect((await env.info("a")).my_score).toBe(5);
    for (const id of ["b", "c", "d"]) {
      expect((await env.info(id)).my_score).toBeUndefined();
    }
  });
});

describe("automatic scoring (MONAI_LABEL_AUTO_UPDATE_SCORING)", () => {
  let env: Env;
  afterEach(() => env?.s.close());

  it("scores at start, and again for an image whose final label is saved", async () => {
    // A studies folder with one image and both labels, registered at start.
    const studies = join(dir, "studies-auto");
    await mkdir(join(studies, "labels", "final"), { recursive: true });
    await mkdir(join(studies, "labels", "original"), { recursive: true });
    await writeFile(join(studies, "s.nii.gz"), await readFile(await nifti(() => 7)));
    await writeFile(join(studies, "labels", "final", "s.nii.gz"), await readFile(await nifti(FINAL)));
    await writeFile(join(studies, "labels", "original", "s.nii.gz"), await readFile(await nifti(ORIGINAL)));
    env = await start({ auto: true, studies });

    const triggers = (await env.s.container.jobs.list({ kind: "scoring" }, 50)).map((j) => {
      const p = j.params as Row;
      return `${p.method}:${p.trigger}`;
    });
    // Every valid method (epistemic has no model here) queued once at start.
    expect(triggers.sort()).toEqual(["dice:start", "my_scoring_method:start", "sum:start"]);
    await env.s.container.jobs.idle();
    expect(await env.info("s")).toMatchObject({ dice: 0.5, my_score: 7 });
    expect((await env.s.container.datastore.getLabel("s", "final")).info).toMatchObject({ sum: 8, slices: [1, 2] });

    // A final label saved through the API queues the label-based methods for that image.
    await env.addImage("n", 3);
    await env.saveLabel("n", "original", ORIGINAL);
    const client = createClient({ url: `ws://127.0.0.1:${env.s.port}/graphql`, webSocketImpl: WebSocket, lazy: false });
    const seen: Row[] = [];
    const scored = new Promise<void>((resolve, reject) => {
      client.subscribe<{ scoreUpdated: Row }>(
        { query: `subscription { scoreUpdated(imageId: "n") { method tag score } }` },
        {
          next: (v) => {
            seen.push(v.data?.scoreUpdated as Row);
            if (seen.some((u) => u.method === "dice") && seen.filter((u) => u.method === "sum").length === 2) {
              resolve();
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    await new Promise((r) => setTimeout(r, 200));
    const label = await nifti(FINAL);
    await env.s.upload(
      `mutation ($f: File!) { saveLabel(input: { imageId: "n", file: $f, tag: "final" }) { __typename } }`,
      { f: null },
      { f: { data: await readFile(label), name: "n.nii.gz" } },
    );
    await scored;
    await client.dispose();
    expect(seen).toEqual(
      expect.arrayContaining([
        { method: "dice", tag: null, score: expect.objectContaining({ dice: 0.5 }) },
        { method: "sum", tag: "final", score: { sum: 8, slices: [1, 2] } },
        { method: "sum", tag: "original", score: { sum: 8, slices: [2, 3] } },
      ]),
    );
    const labelJobs = (await env.s.container.jobs.list({ kind: "scoring" }, 50))
      .map((j) => j.params as Row)
      .filter((p) => p.trigger === "label");
    expect(labelJobs.map((p) => [p.method, p.imageIds]).sort()).toEqual([
      ["dice", ["n"]],
      ["my_scoring_method", ["n"]],
      ["sum", ["n"]],
    ]);
  });

  it("queues nothing when MONAI_LABEL_AUTO_UPDATE_SCORING=false", async () => {
    env = await start({ auto: false });
    await env.addImage("a", 1);
    await env.saveLabel("a", "original", ORIGINAL);
    await env.saveLabel("a", "final", FINAL);
    await new Promise((r) => setTimeout(r, 100));
    expect(await env.s.container.jobs.count({ kind: "scoring" })).toBe(0);
    expect(await env.s.container.scoring.onModelPublished("epistemic_model")).toEqual([]);
  });
});
