import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadDataset } from "../../src/cli/datasets.js";
import { type CliServer, type Gql, gqlClient, root, startCli, subscribe, waitForJob } from "./cli-helpers.js";

/**
 * The whole labeling loop, as a client drives it: the CLI-built server with the radiology template app on the
 * Colin27 demo studies, over HTTP (GraphQL, multipart uploads, downloads) and WebSocket (graphql-ws).
 */
describe("radiology app: upload, infer, save, score, train, infer with the new model, next image", () => {
  let dir: string;
  let modelDir: string;
  let server: CliServer;
  let gql: Gql;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-loop-"));
    await downloadDataset("colin27", join(dir, "studies"));
    modelDir = join(dir, "model");
    server = await startCli([
      ...["--app", join(root, "apps/radiology"), "--studies", join(dir, "studies"), "-p", "0", "-i", "127.0.0.1"],
      // Trained models go to a temporary folder; a short run: one epoch, one patch per image.
      ...["-c", "model_dir", modelDir, "-c", "max_epochs", "1", "-c", "num_samples", "1"],
      ...["-c", "epistemic_samples", "2", "-c", "epistemic_max_samples", "1"],
    ]);
    gql = gqlClient(server.url);
  }, 120_000);

  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  const infer = async (imageId: string) => {
    const { runInference } = await gql(
      `mutation($id: ID!) { runInference(input: { model: "segmentation", imageId: $id }) {
         __typename ... on RunInferenceSuccess { data { label { tag version sha256 url } result } }
         ... on Error { code message } } }`,
      { id: imageId },
    );
    expect(runInference.__typename).toBe("RunInferenceSuccess");
    return runInference.data.label as { tag: string; version: number; sha256: string; url: string };
  };

  it("drives the loop over HTTP and WebSocket", async () => {
    const { info } = await gql(
      "{ info { name models { name } trainers { name } strategies { name } scoringMethods { name } } }",
    );
    expect(info.name).toBe("radiology");
    expect(info.models).toEqual([
      { name: "segmentation" },
      { name: "deepgrow_2d" },
      { name: "deepgrow_3d" },
      { name: "deepedit" },
    ]);
    expect(info.trainers.map((t: { name: string }) => t.name)).toContain("segmentation");
    const changes = subscribe<{ datastoreChanged: { kind: string; imageId: string; tag: string | null } }>(
      server.url,
      "subscription { datastoreChanged { kind imageId tag } }",
    );
    const scores = subscribe<{ scoreUpdated: { method: string; imageId: string; score: Record<string, number> } }>(
      server.url,
      "subscription { scoreUpdated { method imageId score } }",
    );
    const progress = subscribe<{ trainingProgress: { kind: string; epoch: number; loss: number | null } }>(
      server.url,
      'subscription { trainingProgress(model: "segmentation") { kind epoch loss } }',
    );
    try {
      // Upload: the mirrored brain under a new id.
      const bytes = await readFile(join(dir, "studies", "colin27_lr.nii.gz"));
      const { uploadImage } = await gql.upload(
        `mutation($f: File!) { uploadImage(input: { file: $f, id: "scan1" }) {
           __typename ... on UploadImageSuccess { data { id dimensions } } ... on Error { code message } } }`,
        {},
        { path: "f", data: bytes, name: "scan1.nii.gz" },
      );
      expect(uploadImage).toEqual({
        __typename: "UploadImageSuccess",
        data: { id: "scan1", dimensions: [181, 217, 181] },
      });
      await changes.until((c) => c.some((e) => e.datastoreChanged.imageId === "scan1"));

      // Infer with the shipped model: the result is saved as the `original` label, and is deterministic.
      const first = await infer("scan1");
      expect(first.tag).toBe("original");
      const sameImageBefore = await infer("colin27_lr");
      expect(sameImageBefore.sha256).toBe(first.sha256);

      // The annotator approves it: download it, save it as `final`.
      const label = new Uint8Array(await (await fetch(first.url)).arrayBuffer());
      const { saveLabel } = await gql.upload(
        `mutation($f: File!) { saveLabel(input: { imageId: "scan1", file: $f }) {
           __typename ... on SaveLabelSuccess { data { tag version } response } ... on Error { code message } } }`,
        {},
        { path: "f", data: label, name: "scan1.nii.gz" },
      );
      expect(saveLabel).toEqual({
        __typename: "SaveLabelSuccess",
        data: { tag: "final", version: 1 },
        response: { image: "scan1", label: "scan1" },
      });

      // Scoring reruns by itself on a final label: dice of the model's label against the approved one.
      await scores.until((s) => s.some((e) => e.scoreUpdated.method === "dice" && e.scoreUpdated.imageId === "scan1"));
      const dice = scores.received.find((e) => e.scoreUpdated.method === "dice" && e.scoreUpdated.imageId === "scan1");
      expect(dice?.scoreUpdated.score).toMatchObject({ dice: 1 });

      // Train a short run on the two final labels, watching progress over the WebSocket.
      const { startTraining } = await gql(
        `mutation { startTraining(input: { model: "segmentation" }) {
           __typename ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
      );
      expect(startTraining.__typename).toBe("StartTrainingSuccess");
      const job = await waitForJob(gql, startTraining.data.id, 240_000);
      expect(job.error).toBeNull();
      expect(job.status).toBe("SUCCEEDED");
      await progress.until((p) => p.some((e) => e.trainingProgress.kind === "epoch"));
      expect(progress.received.some((e) => typeof e.trainingProgress.loss === "number")).toBe(true);

      // The published model is what inference now runs: same image, a different result.
      const after = await infer("colin27_lr");
      expect(after.version).toBe(sameImageBefore.version + 1);
      expect(after.sha256).not.toBe(sameImageBefore.sha256);

      // Next image: the only one without a final label.
      const { nextImage } = await gql(
        `mutation { nextImage(input: { strategy: "random", clientId: "e2e" }) { ... on NextImageSuccess { data { id } } } }`,
      );
      expect(nextImage.data.id).toBe("colin27_lr");
    } finally {
      await Promise.all([changes.close(), scores.close(), progress.close()]);
    }
  }, 400_000);
});
