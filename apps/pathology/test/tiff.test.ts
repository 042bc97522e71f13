import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeImage2d } from "../../../src/io/image2d.js";
import { pointInPolygon } from "../../../src/io/polygons.js";
import { startTestServer, type TestServer } from "../../../test/helpers/harness.js";
import { type Nucleus, paint, randomNuclei, syntheticTile, toVolumes } from "../lib/synthetic.js";

/**
 * Whole-slide images as TIFF (what scanners write): a tiled TIFF slide imported from the studies folder and
 * one uploaded over GraphQL are accepted with their size, broken ones are refused, and WSI inference reads
 * regions of the TIFF exactly as of the same slide saved as PNG.
 */

type Row = Record<string, unknown>;
type Contour = [number, number][];

const SLIDE_W = 1000;
const SLIDE_H = 760;
const REGION = { location: [120, 80], size: [512, 512], tileSize: [256, 256], minPolyArea: 30, output: "JSON" };

const UPLOAD = `mutation ($file: File!, $id: String) { uploadImage(input: { file: $file, id: $id }) {
  __typename ... on UploadImageSuccess { data { id name dimensions channels dtype format extension } }
  ... on Error { code message } } }`;
const WSI = `mutation ($input: RunWsiInferenceInput!) { runWsiInference(input: $input) {
  __typename ... on RunWsiInferenceSuccess { data { imageId count tiles result } } ... on Error { code message } } }`;

/** The synthetic slide's pixels, interleaved RGB, as sharp takes raw input. */
function interleaved(planarRgb: Uint8Array, width: number, height: number): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      out[i * 3 + c] = planarRgb[c * plane + i]!;
    }
  }
  return out;
}

describe("pathology app: TIFF slides", () => {
  let s: TestServer;
  let dir: string;
  let nuclei: Nucleus[];
  let slideTiff: Buffer;
  let slidePng: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pathology-tiff-"));
    const studies = join(dir, "studies");
    await mkdir(join(studies, "labels", "final"), { recursive: true });
    for (let i = 0; i < 10; i++) {
      const { image, label } = toVolumes(syntheticTile(100 + i));
      await writeImage2d(image, join(studies, `tile${i}.png`));
      await writeImage2d(label, join(studies, "labels", "final", `tile${i}.png`));
    }
    nuclei = randomNuclei(SLIDE_W, SLIDE_H, 120, 777, 8);
    const slide = paint(SLIDE_W, SLIDE_H, nuclei, 777);
    const raw = interleaved(slide.rgb, SLIDE_W, SLIDE_H);
    // A tiled, deflate-compressed pyramid, as slide scanners and converters write.
    slideTiff = await sharp(raw, { raw: { width: SLIDE_W, height: SLIDE_H, channels: 3 } })
      .tiff({ tile: true, tileWidth: 128, tileHeight: 128, pyramid: true, compression: "deflate" })
      .toBuffer();
    await writeFile(join(studies, "slide.tif"), slideTiff);
    // The same pixels as PNG, uploaded later to compare results.
    slidePng = join(dir, "slide-png.png");
    await writeImage2d(toVolumes(slide).image, slidePng);
    s = await startTestServer({
      app: join(import.meta.dirname, ".."),
      studies,
      conf: { model_dir: join(dir, "model") },
    });
  });

  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("imports the studies folder's TIFF slide with its size", async () => {
    const r = await s.gql<{ image: Row }>(`{ image(id: "slide") { id dimensions channels dtype format extension } }`);
    expect(r.data?.image).toEqual({
      id: "slide",
      dimensions: [SLIDE_W, SLIDE_H],
      channels: 3,
      dtype: "uint8",
      format: "tiff",
      extension: ".tif",
    });
  });

  it("accepts TIFF uploads (strips, 16-bit grey, .tiff) and refuses truncated or mislabeled ones, storing nothing", async () => {
    const grey = new Uint16Array(300 * 200).map((_, i) => (i * 37) % 65536);
    const strip = await sharp(grey, { raw: { width: 300, height: 200, channels: 1 } })
      .toColourspace("grey16")
      .tiff({ compression: "lzw" })
      .toBuffer();
    const ok = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null },
      { file: { data: strip, name: "grey16.tiff" } },
    );
    expect(ok.data?.uploadImage).toEqual({
      __typename: "UploadImageSuccess",
      data: {
        id: "grey16",
        name: "grey16.tiff",
        dimensions: [300, 200],
        channels: 1,
        dtype: "uint16",
        format: "tiff",
        extension: ".tiff",
      },
    });

    const count = async () => (await s.gql<{ images: { totalCount: number } }>("{ images { totalCount } }")).data;
    const before = await count();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "white" } })
      .png()
      .toBuffer();
    for (const [name, data, message] of [
      ["cut.tif", slideTiff.subarray(0, Math.floor(slideTiff.length * 0.6)), /cut\.tif: truncated TIFF/],
      ["png.tif", png, /png\.tif: not a valid \.tif file \(the content is a PNG image\)/],
      ["tiff.png", strip, /tiff\.png: not a valid \.png file \(the content is a TIFF image\)/],
    ] as const) {
      const r = await s.upload<{ uploadImage: Row }>(UPLOAD, { file: null }, { file: { data: data, name } });
      expect(r.data?.uploadImage, name).toMatchObject({ __typename: "InvalidImageError", code: "INVALID_IMAGE" });
      expect(r.data?.uploadImage.message, name).toMatch(message);
      const id = name.slice(0, name.indexOf("."));
      expect((await s.gql<{ image: Row | null }>(`{ image(id: "${id}") { id } }`)).data?.image, name).toBeNull();
    }
    expect(await count()).toEqual(before);
  });

  it("trains briefly, then segments the TIFF slide's nuclei exactly as the same slide in PNG", async () => {
    const started = await s.gql<{ startTraining: { data: Row } }>(
      `mutation { startTraining(input: { model: "segmentation_nuclei", params: { max_epochs: 12, seed: 3 } }) {
        ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    const id = started.data?.startTraining.data?.id as string;
    expect(id).toBeTruthy();
    let job: Row | undefined;
    for (let i = 0; i < 600; i++) {
      job = (await s.gql<{ job: Row }>(`{ job(id: "${id}") { status error } }`)).data?.job;
      if (job && !["QUEUED", "RUNNING"].includes(job.status as string)) {
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(job, JSON.stringify(job)).toMatchObject({ status: "SUCCEEDED" });

    const fromTiff = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", ...REGION },
    });
    const data = fromTiff.data?.runWsiInference.data as Row;
    expect(data, JSON.stringify(fromTiff)).toMatchObject({ imageId: "slide", tiles: 4 });
    const annotations = (data.result as { annotations: { annotation: { elements: { contours: Contour[] }[] } }[] })
      .annotations;
    const contours = annotations[0]!.annotation.elements.flatMap((e) => e.contours);
    // The nuclei wholly inside the region are found: one polygon around each centre.
    const [rx, ry] = REGION.location as [number, number];
    const inside = nuclei.filter(
      (n) => n.cx - n.rx >= rx && n.cx + n.rx <= rx + 512 && n.cy - n.ry >= ry && n.cy + n.ry <= ry + 512,
    );
    expect(inside.length).toBeGreaterThan(10);
    const found = inside.filter((n) => contours.some((c) => pointInPolygon(n.cx, n.cy, c)));
    expect(found.length, `${found.length} of ${inside.length} nuclei`).toBeGreaterThanOrEqual(inside.length * 0.9);
    expect(contours.length).toBeLessThan(inside.length * 1.5);

    // Same pixels, same polygons: the TIFF's regions decode exactly as the PNG's.
    const up = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null, id: "slide_png" },
      { file: { data: await readFile(slidePng), name: "slide_png.png" } },
    );
    expect(up.data?.uploadImage).toMatchObject({ __typename: "UploadImageSuccess" });
    const fromPng = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide_png", ...REGION },
    });
    const pngResult = fromPng.data?.runWsiInference.data.result as { annotations: unknown[] };
    expect(pngResult.annotations).toEqual(annotations);
  }, 180_000);
});
