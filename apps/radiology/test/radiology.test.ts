import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadImage } from "labelgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../../../test/helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../../test/helpers/harness.js";
import RadiologyApp from "../app.js";
import { type Colin27Files, maskDice, writeDemoStudies } from "../lib/colin27.js";

type Row = Record<string, unknown>;
const APP = join(import.meta.dirname, "..");
const SHIPPED = join(APP, "model", "pretrained_segmentation.onnx");

const RUN = /* GraphQL */ `
  mutation ($input: RunInferenceInput!) {
    runInference(input: $input) {
      __typename
      ... on RunInferenceSuccess { data { url result label { tag version } } }
      ... on Error { code message }
    }
  }`;

const NEXT = /* GraphQL */ `
  mutation ($input: NextImageInput) {
    nextImage(input: $input) {
      __typename
      ... on NextImageSuccess { data { id } }
      ... on Error { code message }
    }
  }`;

const SCORE = /* GraphQL */ `
  mutation ($input: RunScoringInput!) {
    runScoring(input: $input) { ... on RunScoringSuccess { data { id } } ... on Error { code message } }
  }`;

function countPositive(data: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    n += (data[i] ?? 0) > 0 ? 1 : 0;
  }
  return n;
}

describe("radiology app on the Colin27 demo studies", () => {
  let s: TestServer;
  let dir: string;
  let files: Colin27Files;
  let modelDir: string;
  /** Voxels of each inferred brain mask, by image id. */
  const predicted = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "radiology-app-"));
    modelDir = join(dir, "model");
    files = await writeDemoStudies(join(fixture("ch2.nii.gz"), ".."), join(dir, "studies"), join(dir, "ref"));
    s = await startTestServer({
      app: APP,
      studies: join(dir, "studies"),
      // Training writes under a temporary model_dir, never into the app folder; runs stay one or two steps.
      conf: { model_dir: modelDir, max_epochs: "1", num_samples: "2", epistemic_samples: "2" },
      env: { MONAI_LABEL_AUTO_UPDATE_SCORING: "false" },
    });
  });
  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("offers segmentation (the shipped model), its trainer, 4 strategies and 3 scoring methods", async () => {
    const r = await s.gql(
      "{ models { name type labels dimension } trainers { name config } strategies { name } scoringMethods { name } }",
    );
    expect(r.errors).toBeUndefined();
    const names = (rows: unknown) => (rows as Row[]).map((x) => x.name).sort();
    const models = r.data?.models as Row[];
    expect(names(models)).toEqual(["deepedit", "deepgrow_2d", "deepgrow_3d", "segmentation"]);
    expect(models.find((m) => m.name === "segmentation")).toEqual({
      name: "segmentation",
      type: "segmentation",
      labels: ["brain"],
      dimension: 3,
    });
    expect(models.find((m) => m.name === "deepgrow_2d")).toMatchObject({ type: "deepgrow", dimension: 2 });
    expect(models.find((m) => m.name === "deepedit")).toMatchObject({ type: "deepedit", dimension: 3 });
    const trainers = r.data?.trainers as Row[];
    expect(names(trainers)).toEqual(["deepedit", "deepgrow_2d", "deepgrow_3d", "segmentation"]);
    expect(trainers.find((t) => t.name === "segmentation")).toMatchObject({
      config: { max_epochs: 1, num_samples: 2 },
    });
    expect(names(r.data?.strategies)).toEqual(["epistemic", "first", "last", "random"]);
    expect(names(r.data?.scoringMethods)).toEqual(["dice", "epistemic", "sum"]);
    // The shipped model is small: a few MB at most.
    expect((await stat(SHIPPED)).size).toBeLessThan(3e6);
  });

  it("segments the brain of both demo images through GraphQL (Dice against the brain mask)", async () => {
    for (const [id, truth, floor] of [
      ["colin27", files.label, 0.93],
      ["colin27_lr", files.labelLr, 0.93],
    ] as const) {
      const r = await s.gql<{ runInference: { data?: Row } & Row }>(RUN, {
        input: { model: "segmentation", imageId: id },
      });
      const out = r.data?.runInference.data;
      expect(out, JSON.stringify(r)).toBeDefined();
      expect(out?.label).toEqual({ tag: "original", version: 1 });
      const path = join(dir, `${id}-pred.nii.gz`);
      await writeFile(path, Buffer.from(await (await fetch(out?.url as string)).arrayBuffer()));
      const [pred, mask] = await Promise.all([loadImage(path), loadImage(truth)]);
      expect(pred.shape).toEqual([181, 217, 181]);
      predicted.set(id, countPositive(pred.data));
      expect(maskDice(pred.data, mask.data)).toBeGreaterThan(floor);
    }
  }, 180_000);

  it("answers every strategy: colin27_lr is the one unlabeled image", async () => {
    for (const strategy of ["random", "first", "last", "epistemic"]) {
      const r = await s.gql<{ nextImage: { data?: Row } & Row }>(NEXT, { input: { strategy } });
      expect(r.data?.nextImage, strategy).toMatchObject({ __typename: "NextImageSuccess", data: { id: "colin27_lr" } });
    }
  });

  it("scores: dice of final vs original, label sums, epistemic entropy of the unlabeled image", async () => {
    const run = async (method: string) => {
      const r = await s.gql<{ runScoring: { data?: Row } & Row }>(SCORE, { input: { method } });
      const job = r.data?.runScoring.data;
      expect(job, JSON.stringify(r)).toBeDefined();
      await s.container.jobs.idle();
      const done = await s.container.jobs.get(job?.id as string);
      expect(done?.status, JSON.stringify(done)).toBe("SUCCEEDED");
      return done?.result as Row;
    };
    await run("dice");
    const colin = await s.container.datastore.getImage("colin27");
    expect(colin.info.dice).toBeGreaterThan(0.93);

    await run("sum");
    const r = await s.gql(`{ image(id: "colin27") { labels { tag sum slices } } }`);
    const labels = ((r.data?.image as Row | undefined)?.labels ?? []) as Row[];
    const final = labels.find((l) => l.tag === "final");
    const original = labels.find((l) => l.tag === "original");
    // ch2bet > 0 holds 24.4 % of the 181 x 217 x 181 voxels; the original label is what inference returned.
    expect(final?.sum).toBe(countPositive((await loadImage(files.label)).data));
    expect(final?.sum).toBeCloseTo(0.244 * 181 * 217 * 181, -5);
    expect(original?.sum).toBe(predicted.get("colin27"));

    const epistemic = await run("epistemic");
    expect(epistemic).toMatchObject({ total: 1, executed: 1 });
    const lr = await s.container.datastore.getImage("colin27_lr");
    expect(lr.info.epistemic_entropy).toBeGreaterThan(0);
    // MC dropout: the UNet's dropout makes the passes differ.
    expect(lr.info.epistemic_samples).toBe(2);
  }, 180_000);

  it("a short training run continues from the shipped model and publishes a new model that inference uses", async () => {
    const published = join(modelDir, "segmentation.onnx");
    expect(existsSync(published)).toBe(false);
    const r = await s.gql<{ startTraining: { data?: Row } & Row }>(
      `mutation { startTraining(input: { model: "segmentation", params: { max_epochs: 1 } }) {
        ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    const id = r.data?.startTraining.data?.id as string;
    expect(id, JSON.stringify(r)).toBeDefined();
    await s.container.jobs.idle();
    const job = await s.container.jobs.get(id);
    expect(job?.status, JSON.stringify(job)).toBe("SUCCEEDED");
    expect(existsSync(published)).toBe(true);
    // Fine-tuned from the shipped weights, one step keeps it a brain segmenter (from scratch it would not be).
    const history = ((job?.result as Row | undefined)?.history ?? []) as Row[];
    expect(history.find((e) => e.kind === "epoch")?.trainDice).toBeGreaterThan(0.8);
    const app = s.container.app as unknown as RadiologyApp;
    expect(app.infers().segmentation).toBeDefined();
    expect((app.infers().segmentation as unknown as { getPath(): string }).getPath()).toBe(published);
    const again = await s.gql<{ runInference: { data?: Row } & Row }>(RUN, {
      input: { model: "segmentation", imageId: "colin27_lr" },
    });
    expect(again.data?.runInference.data?.label).toEqual({ tag: "original", version: 2 });
  }, 180_000);
});

describe("radiology app conf", () => {
  const context = (conf: Record<string, string>) => ({ appDir: APP, studiesDir: tmpdir(), conf });

  it("rejects values its schema refuses, naming the key", () => {
    expect(() => new RadiologyApp(context({ max_epochs: "zero" })).init()).toThrow(/max_epochs/);
    expect(() => new RadiologyApp(context({ target_spacing: "-1" })).init()).toThrow(/target_spacing/);
    expect(() => new RadiologyApp(context({ epistemic_enabled: "maybe" })).init()).toThrow(/epistemic_enabled/);
  });

  it("drops epistemic with epistemic_enabled=false, and the shipped model with use_pretrained_model=false", () => {
    const app = new RadiologyApp(context({ epistemic_enabled: "false", use_pretrained_model: "false" }));
    app.init();
    expect(Object.keys(app.strategies()).sort()).toEqual(["first", "last", "random"]);
    expect(Object.keys(app.scoringMethods()).sort()).toEqual(["dice", "sum"]);
    const info = app.info();
    // Only the published model would be served, and none exists in a fresh model_dir.
    expect(Object.keys(info.models)).toEqual(existsSync(app.publishedPath) ? ["segmentation"] : []);
    expect(Object.keys(info.trainers)).toEqual(["segmentation", "deepgrow_2d", "deepgrow_3d", "deepedit"]);
  });
});
