import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeNifti, readNifti } from "../../src/io/nifti.js";
import { fixture } from "../helpers/fixtures.js";
import { type CliServer, type Gql, gqlClient, root, startCli, waitForJob } from "./cli-helpers.js";

/** The "Writing an app" example, exactly as README.md shows it. */
async function readmeApp(): Promise<string> {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const m = /<!-- readme-app: app\.ts -->\s*```ts\n([\s\S]*?)\n```/.exec(readme);
  if (!m?.[1]) {
    throw new Error("README.md has no <!-- readme-app: app.ts --> example");
  }
  return `${m[1]}\n`;
}

describe("the README's example app, copied out of the repository and served by the CLI", () => {
  let dir: string;
  let server: CliServer;
  let gql: Gql;
  let labelBytes: Uint8Array;

  beforeAll(async () => {
    // Outside the repository: "labelgraph" resolves through the CLI's module hook, not self-reference.
    dir = await mkdtemp(join(tmpdir(), "labelgraph-readme-"));
    const app = join(dir, "myapp");
    await mkdir(app);
    await writeFile(join(app, "app.ts"), await readmeApp());
    await writeFile(join(app, "package.json"), JSON.stringify({ type: "module", private: true }));
    // Three real 3D MR images (nibabel's anatomical.nii, 33x41x25): as is, brighter, darker; the first labeled.
    const studies = join(dir, "studies");
    await mkdir(join(studies, "labels", "final"), { recursive: true });
    const t1 = await readNifti(fixture("anatomical.nii"));
    const scaled = (k: number) => ({ ...t1, data: Int16Array.from(t1.data, (v) => Math.round(Number(v) * k)) });
    await writeFile(join(studies, "a.nii"), encodeNifti(t1));
    await writeFile(join(studies, "bright.nii"), encodeNifti(scaled(2)));
    await writeFile(join(studies, "dark.nii"), encodeNifti(scaled(0.5)));
    let total = 0;
    for (let i = 0; i < t1.data.length; i++) {
      total += Number(t1.data[i]);
    }
    const mean = total / t1.data.length;
    labelBytes = encodeNifti({
      ...t1,
      dtype: "uint8",
      data: Uint8Array.from(t1.data, (v) => (Number(v) > mean ? 1 : 0)),
    });
    await writeFile(join(studies, "labels", "final", "a.nii"), labelBytes);

    server = await startCli(
      [
        "--app",
        app,
        "--studies",
        studies,
        "-p",
        "0",
        "-i",
        "127.0.0.1",
        "-c",
        "roi_size",
        "16",
        "-c",
        "max_epochs",
        "2",
      ],
      { LABELGRAPH_INFER_WORKERS: "1" },
    );
    gql = gqlClient(server.url);
  }, 120_000);

  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it("serves its trainer, strategies and scoring method; the model is not listed before it has weights", async () => {
    const { info } = await gql(
      "{ info { name labels models { name } trainers { name info } strategies { name } scoringMethods { name } } }",
    );
    expect(info.name).toBe("my-app");
    expect(info.labels).toEqual(["foreground"]);
    expect(info.models).toEqual([]);
    expect(info.trainers.map((t: { name: string }) => t.name)).toEqual(["segmentation"]);
    expect(info.trainers[0].info.config.max_epochs).toBe(2);
    expect(info.strategies.map((s: { name: string }) => s.name)).toEqual(["random", "my_score"]);
    expect(info.scoringMethods.map((s: { name: string }) => s.name)).toEqual(["my_scoring_method"]);
  });

  it("MyScoreGeneratorMethod stores my_score; SelectImageWithMyScore serves the brightest unlabeled image", async () => {
    const { runScoring } = await gql(
      `mutation { runScoring(input: { method: "my_scoring_method" }) { __typename ... on RunScoringSuccess { data { id } } } }`,
    );
    const job = await waitForJob(gql, runScoring.data.id);
    expect(job.status).toBe("SUCCEEDED");
    const { image } = await gql(`{ image(id: "bright") { info } }`);
    const { image: dark } = await gql(`{ image(id: "dark") { info } }`);
    expect(image.info.my_score).toBeGreaterThan(3 * dark.info.my_score);
    const { nextImage } = await gql(
      `mutation { nextImage(input: { strategy: "my_score" }) { ... on NextImageSuccess { data { id } } } }`,
    );
    expect(nextImage.data.id).toBe("bright");
  });

  it("onSaveLabel's result is merged into saveLabel's response", async () => {
    const { saveLabel } = await gql.upload(
      `mutation($f: File!) { saveLabel(input: { imageId: "bright", file: $f }) {
         __typename ... on SaveLabelSuccess { data { tag version } response } ... on Error { code message } } }`,
      {},
      { path: "f", data: labelBytes },
    );
    expect(saveLabel).toEqual({
      __typename: "SaveLabelSuccess",
      data: { tag: "final", version: 1 },
      response: { image: "bright", label: "bright", completed: 2, of: 3, saved: "bright" },
    });
  });

  it("MyTrainTask trains and publishes the model, which is then listed and runs", async () => {
    const { startTraining } = await gql(
      `mutation { startTraining(input: { model: "segmentation", params: { max_epochs: 1 } }) {
         __typename ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    expect(startTraining.__typename).toBe("StartTrainingSuccess");
    const job = await waitForJob(gql, startTraining.data.id);
    expect(job.error).toBeNull();
    expect(job.status).toBe("SUCCEEDED");
    const { info } = await gql("{ info { models { name } } }");
    expect(info.models).toEqual([{ name: "segmentation" }]);
    const { runInference } = await gql(
      `mutation { runInference(input: { model: "segmentation", imageId: "dark" }) {
         __typename ... on RunInferenceSuccess { data { label { tag dimensions } } } ... on Error { code message } } }`,
    );
    expect(runInference).toEqual({
      __typename: "RunInferenceSuccess",
      data: { label: { tag: "original", dimensions: [33, 41, 25] } },
    });
  }, 120_000);

  it("REST's PUT /datastore/label (MONAI's clients) merges onSaveLabel's result into its response too", async () => {
    const form = new FormData();
    form.append("params", JSON.stringify({ client_id: "slicer" }));
    form.append("label", new Blob([Buffer.from(labelBytes)]), "dark.nii");
    const res = await fetch(`${server.url}/datastore/label?image=dark&tag=final`, { method: "PUT", body: form });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ image: "dark", label: "dark", completed: 3, of: 3, saved: "dark" });
  });
});
