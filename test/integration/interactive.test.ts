import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Item, writeColinItems } from "../../apps/radiology/lib/interactive.js";
import { nextClick } from "../../bench/interactive/lib.js";
import { loadImage } from "../../src/io/load.js";
import { labelComponents, type Shape3 } from "../../src/transforms/kernels.js";
import { fixture } from "../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

/**
 * The radiology app's trained interactive models (apps/radiology/model, made by
 * apps/radiology/scripts/train-interactive.ts) served over GraphQL by bench/interactive/app, on held-out
 * Colin27 items: clicks change the mask where they are put, and bad clicks are typed errors.
 */
const MODEL_DIR = join(import.meta.dirname, "../../apps/radiology/model");
const haveModels = ["deepgrow_2d", "deepedit"].every((m) => existsSync(join(MODEL_DIR, `${m}.onnx`)));

const RUN = /* GraphQL */ `
  mutation ($input: RunInferenceInput!) {
    runInference(input: $input) {
      __typename
      ... on RunInferenceSuccess { data { url } }
      ... on Error { code message }
    }
  }`;

type Run = { runInference: { __typename: string; code?: string; message?: string; data?: { url: string } } };

/** Voxels of the largest connected region of `mask`, or null when empty. */
function largestRegion(mask: Uint8Array, spatial: number[]): Uint8Array | null {
  const { labels, sizes } = labelComponents(
    mask,
    [spatial[0]!, spatial[1]!, spatial[2] ?? 1] as Shape3,
    spatial.length,
  );
  if (sizes.length === 0) {
    return null;
  }
  const biggest = sizes.indexOf(Math.max(...sizes)) + 1;
  return Uint8Array.from(labels, (l) => (l === biggest ? 1 : 0));
}

const countIn = (pred: ArrayLike<number>, region: Uint8Array) => {
  let n = 0;
  for (let i = 0; i < region.length; i++) {
    n += region[i] && (pred[i] ?? 0) > 0 ? 1 : 0;
  }
  return n;
};

describe.skipIf(!haveModels)("interactive segmentation over GraphQL (trained Colin27 models)", () => {
  let s: TestServer;
  let dir: string;
  let slices: Item[];
  let slab: Item;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-interactive-"));
    const split = await writeColinItems(join(fixture("ch2.nii.gz"), ".."), join(dir, "items"), { testOnly: true });
    slices = split.test2d;
    slab = split.test3d[1]!;
    s = await startTestServer({ app: join(import.meta.dirname, "../../bench/interactive/app") });
    const items: [string, Item][] = [["slab", slab], ...slices.map((t): [string, Item] => [`slice_${t.z}`, t])];
    for (const [id, item] of items) {
      const up = await s.upload(
        `mutation ($f: File!, $id: String!) { uploadImage(input: { file: $f, id: $id }) { __typename } }`,
        { f: null, id },
        { f: { data: await readFile(item.image), name: "image.nii.gz" } },
      );
      expect(up.data).toEqual({ uploadImage: { __typename: "UploadImageSuccess" } });
    }
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function run(input: Record<string, unknown>): Promise<Float32Array | Uint8Array | number[]> {
    const r = await s.gql<Run>(RUN, { input: { saveLabel: false, ...input } });
    const out = r.data?.runInference;
    expect(out?.__typename, JSON.stringify(r)).toBe("RunInferenceSuccess");
    const path = join(dir, `result-${Math.random()}.nii.gz`);
    await writeFile(path, Buffer.from(await (await fetch(out!.data!.url)).arrayBuffer()));
    return (await loadImage(path)).data as Float32Array;
  }

  it("a click inside brain the automatic (DeepEdit) model missed makes the mask grow there", async () => {
    const label = await loadImage(slab.label);
    const auto = await run({ model: "deepedit", imageId: "slab" });
    const missed = Uint8Array.from(label.data, (v, i) => (v > 0 && !((auto[i] ?? 0) > 0) ? 1 : 0));
    const region = largestRegion(missed, label.shape)!;
    expect(region).not.toBeNull();
    const click = nextClick(
      Uint8Array.from(region, () => 0),
      region,
      label.shape,
    )!;
    expect(click.kind).toBe("foreground");
    const before = countIn(auto, region);
    const after = countIn(await run({ model: "deepedit", imageId: "slab", params: { brain: [click.point] } }), region);
    expect(before).toBe(0);
    expect(after).toBeGreaterThan(0.2 * click.size);
  }, 120_000);

  it("a background click removes a false region (DeepGrow 2D)", async () => {
    // The held-out slice whose one-click mask has the largest false-positive region.
    let best: { id: string; fg: number[]; region: Uint8Array; pred: ArrayLike<number>; size: number } | null = null;
    for (const item of slices.filter((_, i) => i % 3 === 0)) {
      const label = await loadImage(item.label);
      const fg = nextClick(new Uint8Array(label.data.length), label.data, label.shape)!.point;
      const pred = await run({ model: "deepgrow_2d", imageId: `slice_${item.z}`, foreground: [fg] });
      const extra = Uint8Array.from(label.data, (v, i) => (!(v > 0) && (pred[i] ?? 0) > 0 ? 1 : 0));
      const region = largestRegion(extra, label.shape);
      const size = region ? countIn(pred, region) : 0;
      if (region && size > (best?.size ?? 0)) {
        best = { id: `slice_${item.z}`, fg, region, pred, size };
      }
    }
    expect(best).not.toBeNull();
    expect(best!.size).toBeGreaterThan(10);
    const bg = nextClick(best!.region, new Uint8Array(best!.region.length), [181, 217])!;
    expect(bg.kind).toBe("background");
    const after = await run({
      model: "deepgrow_2d",
      imageId: best!.id,
      foreground: [best!.fg],
      background: [bg.point],
    });
    expect(countIn(after, best!.region)).toBeLessThan(0.5 * best!.size);
  }, 180_000);

  it("clicks outside the image, or none for deepgrow, are typed INVALID_INPUT errors", async () => {
    const cases = [
      { model: "deepgrow_2d", imageId: `slice_${slices[0]!.z}`, foreground: [[181, 10]] },
      { model: "deepgrow_2d", imageId: `slice_${slices[0]!.z}`, foreground: [[5, -1]] },
      { model: "deepgrow_2d", imageId: `slice_${slices[0]!.z}` },
      { model: "deepedit", imageId: "slab", params: { brain: [[10, 10, 16]] } },
      { model: "deepedit", imageId: "slab", foreground: { liver: [[1, 1, 1]] } },
    ];
    for (const input of cases) {
      const r = await s.gql<Run>(RUN, { input: { saveLabel: false, ...input } });
      expect(r.data?.runInference.__typename, JSON.stringify(input)).toBe("InvalidInputError");
      expect(r.data?.runInference.code).toBe("INVALID_INPUT");
    }
  }, 60_000);
});
