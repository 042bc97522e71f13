import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImage2d, writeImage2d } from "../../../src/io/image2d.js";
import { pointInPolygon, polygonArea } from "../../../src/io/polygons.js";
import { fixture } from "../../../test/helpers/fixtures.js";
import { startTestServer, type TestServer } from "../../../test/helpers/harness.js";
import { insideNucleus, type Nucleus, paint, randomNuclei, syntheticTile, toVolumes } from "../lib/synthetic.js";

type Row = Record<string, unknown>;
type Contour = [number, number][];

const SLIDE_W = 1200;
const SLIDE_H = 900;
const REGION = { location: [100, 100], size: [900, 700], tileSize: [256, 256] };
const TILE_EDGES_X = [356, 612, 868];
const TILE_EDGES_Y = [356, 612];

const WSI = `mutation ($input: RunWsiInferenceInput!) { runWsiInference(input: $input) {
  __typename ... on RunWsiInferenceSuccess { data { model imageId output count tiles result document mimeType latencies } }
  ... on Error { code message } } }`;

function iou(contour: Contour, n: Nucleus): number {
  // IoU <= smaller area / larger area: skip the pixel count when that bound already fails, or boxes miss.
  const ratio = polygonArea(contour) / (Math.PI * n.rx * n.ry);
  if (ratio < 0.4 || ratio > 2.5) {
    return 0;
  }
  const xs = contour.map((p) => p[0]);
  const ys = contour.map((p) => p[1]);
  const x0 = Math.min(...xs, Math.floor(n.cx - n.rx)) - 1;
  const x1 = Math.max(...xs, Math.ceil(n.cx + n.rx)) + 1;
  const y0 = Math.min(...ys, Math.floor(n.cy - n.ry)) - 1;
  const y1 = Math.max(...ys, Math.ceil(n.cy + n.ry)) + 1;
  if (x1 - x0 > 8 * n.rx || y1 - y0 > 8 * n.ry) {
    return 0;
  }
  let inter = 0;
  let union = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const a = pointInPolygon(x + 0.5, y + 0.5, contour);
      const b = insideNucleus(n, x, y);
      inter += a && b ? 1 : 0;
      union += a || b ? 1 : 0;
    }
  }
  return inter / union;
}

describe("pathology app", () => {
  let s: TestServer;
  let dir: string;
  let slideNuclei: Nucleus[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pathology-app-"));
    const studies = join(dir, "studies");
    await mkdir(join(studies, "labels", "final"), { recursive: true });
    // Training tiles with their nuclei masks as final labels (synthetic: no labelled pathology data is packaged).
    for (let i = 0; i < 10; i++) {
      const { image, label } = toVolumes(syntheticTile(100 + i));
      await writeImage2d(image, join(studies, `tile${i}.png`));
      await writeImage2d(label, join(studies, "labels", "final", `tile${i}.png`));
    }
    slideNuclei = randomNuclei(SLIDE_W, SLIDE_H, 160, 4242, 8);
    await writeImage2d(toVolumes(paint(SLIDE_W, SLIDE_H, slideNuclei, 4242)).image, join(studies, "slide.png"));
    // Real immunohistochemistry (scikit-image's ihc.png), unlabelled: inference only.
    await copyFile(fixture("ihc.png"), join(studies, "ihc.png"));
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

  it("offers a trainer and lists no model before one is trained", async () => {
    const r = await s.gql<{ trainers: Row[]; models: Row[] }>("{ trainers { name } models { name } }");
    expect(r.data?.trainers.map((t) => t.name)).toEqual(["segmentation_nuclei"]);
    expect(r.data?.models).toEqual([]);
    const wsi = await s.gql<{ runWsiInference: Row }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide" },
    });
    expect(wsi.data?.runWsiInference).toMatchObject({ __typename: "NotFoundError", code: "MODEL_NOT_FOUND" });
  });

  it("trains segmentation_nuclei briefly, then lists it", async () => {
    const started = await s.gql<{ startTraining: { data: Row } }>(
      `mutation { startTraining(input: { model: "segmentation_nuclei", params: { max_epochs: 12, seed: 3 } }) {
        ... on StartTrainingSuccess { data { id } } ... on Error { code message } } }`,
    );
    const id = started.data?.startTraining.data?.id as string;
    expect(id).toBeTruthy();
    let job: Row | undefined;
    for (let i = 0; i < 600; i++) {
      job = (await s.gql<{ job: Row }>(`{ job(id: "${id}") { status result error } }`)).data?.job;
      if (job && !["QUEUED", "RUNNING"].includes(job.status as string)) {
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(job, JSON.stringify(job)).toMatchObject({ status: "SUCCEEDED" });
    const r = await s.gql<{ models: Row[] }>("{ models { name type dimension labels } }");
    expect(r.data?.models).toEqual([
      { name: "segmentation_nuclei", type: "segmentation", dimension: 2, labels: { Nuclei: 1 } },
    ]);
  }, 120_000);

  it("finds the slide's nuclei in a region spanning 12 tiles, merged across tile edges (ASAP, DSA, JSON)", async () => {
    const r = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", ...REGION, minPolyArea: 30, output: "ASAP" },
    });
    const data = r.data?.runWsiInference.data as Row;
    expect(data, JSON.stringify(r)).toMatchObject({
      model: "segmentation_nuclei",
      imageId: "slide",
      output: "ASAP",
      tiles: 12,
    });
    const result = data.result as {
      annotations: { annotation: { elements: { label: string; contours: Contour[] }[] } }[];
    };
    const contours = result.annotations[0]!.annotation.elements.flatMap((e) => e.contours);
    const [rx, ry] = REGION.location as [number, number];
    const [rw, rh] = REGION.size as [number, number];
    const inside = slideNuclei.filter(
      (n) => n.cx - n.rx >= rx && n.cx + n.rx <= rx + rw && n.cy - n.ry >= ry && n.cy + n.ry <= ry + rh,
    );
    const crossing = inside.filter(
      (n) =>
        TILE_EDGES_X.some((e) => n.cx - n.rx < e && n.cx + n.rx > e) ||
        TILE_EDGES_Y.some((e) => n.cy - n.ry < e && n.cy + n.ry > e),
    );
    expect(crossing.length).toBeGreaterThan(5);
    expect(contours.length, `${contours.length} polygons for ${inside.length} nuclei`).toBeLessThan(
      inside.length * 1.5,
    );
    // Every nucleus inside the region is one polygon (also those cut by a tile edge) ...
    const matched = new Set<number>();
    for (const n of inside) {
      const best = contours
        .map((c, i) => [i, iou(c, n)] as const)
        .reduce((a, b) => (b[1] > a[1] ? b : a), [-1, 0] as const);
      expect(best[1], `nucleus at ${n.cx.toFixed(0)},${n.cy.toFixed(0)}`).toBeGreaterThan(0.6);
      matched.add(best[0]);
    }
    expect(matched.size).toBe(inside.length);
    // ... and the other polygons are nuclei the region's border cuts: nothing is found in the stroma.
    for (const [i, c] of contours.entries()) {
      if (!matched.has(i)) {
        const onBorder = c.some(([x, y]) => x === rx || y === ry || x === rx + rw || y === ry + rh);
        expect(onBorder, `unmatched polygon at ${c[0]}`).toBe(true);
      }
    }
    expect(data.count).toBe(contours.length);
    expect(data.mimeType).toBe("application/xml");
    const xml = data.document as string;
    expect(xml.match(/<Annotation Name="Nuclei" Type="Polygon"/g)).toHaveLength(contours.length);

    const dsa = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", ...REGION, minPolyArea: 30 },
    });
    const doc = JSON.parse(dsa.data?.runWsiInference.data.document as string);
    expect(dsa.data?.runWsiInference.data.output).toBe("DSA");
    expect(doc.elements).toHaveLength(contours.length);
    expect(doc.elements[0].points[0]).toEqual([...contours[0]![0]!, 0]);
  }, 60_000);

  it("serves the same region over MONAI's REST routes (/infer/wsi/{model} JSON body, /infer/wsi_v2 multipart)", async () => {
    const wsi = { location: REGION.location, size: REGION.size, tile_size: REGION.tileSize, min_poly_area: 30 };
    const graph = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", ...REGION, minPolyArea: 30, output: "JSON" },
    });
    const result = graph.data?.runWsiInference.data.result as { annotations: unknown[] } | undefined;
    expect(result).toBeDefined();
    const expected = result?.annotations ?? [];
    // QuPath / the Python client's wsi_infer: JSON body, output in the query.
    const v1 = await fetch(`${s.url}/infer/wsi/segmentation_nuclei?image=slide&output=json`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(wsi),
    });
    expect(v1.status).toBe(200);
    const body = (await v1.json()) as { annotations: unknown[]; location: number[]; size: number[] };
    expect(body).toMatchObject({ location: REGION.location, size: REGION.size });
    expect(body.annotations).toEqual(expected);
    // wsi_v2: multipart with the `wsi` field; ASAP comes back as an XML file.
    const form = new FormData();
    form.append("wsi", JSON.stringify(wsi));
    const v2 = await fetch(`${s.url}/infer/wsi_v2/segmentation_nuclei?image=slide&output=asap`, {
      method: "POST",
      body: form,
    });
    expect(v2.status).toBe(200);
    expect(v2.headers.get("content-type")).toMatch(/xml/);
    const xml = await v2.text();
    const elements = (expected[0] as { annotation: { elements: { contours: unknown[] }[] } }).annotation.elements;
    const polygons = elements.reduce((n, e) => n + e.contours.length, 0);
    expect(polygons).toBeGreaterThan(5);
    expect(xml.match(/<Annotation Name="[^"]*" Type="Polygon"/g)).toHaveLength(polygons);
  }, 60_000);

  it("segments dark nuclei on real immunohistochemistry (ihc.png), returning JSON only", async () => {
    const r = await s.gql<{ runWsiInference: { data: Row } }>(WSI, {
      input: {
        model: "segmentation_nuclei",
        imageId: "ihc",
        location: [0, 0],
        size: [512, 512],
        tileSize: [200, 200],
        output: "JSON",
      },
    });
    const data = r.data?.runWsiInference.data as Row;
    expect(data).toMatchObject({ output: "JSON", document: null, tiles: 9 });
    const contours = (
      data.result as { annotations: { annotation: { elements: { contours: Contour[] }[] } }[] }
    ).annotations[0]!.annotation.elements.flatMap((e) => e.contours);
    expect(contours.length).toBeGreaterThan(0);
    // What the polygons enclose is darker than the image as a whole.
    const img = await readImage2d(fixture("ihc.png"));
    const [w, h] = img.shape as [number, number];
    const lum = (x: number, y: number) =>
      ((img.data[x + w * y] ?? 0) + (img.data[w * h + x + w * y] ?? 0) + (img.data[2 * w * h + x + w * y] ?? 0)) / 3;
    let all = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        all += lum(x, y);
      }
    }
    let inSum = 0;
    let inN = 0;
    for (const c of contours.filter((c) => polygonArea(c) < 5000)) {
      const xs = c.map((p) => p[0]);
      const ys = c.map((p) => p[1]);
      for (let y = Math.min(...ys); y < Math.max(...ys); y++) {
        for (let x = Math.min(...xs); x < Math.max(...xs); x++) {
          if (pointInPolygon(x + 0.5, y + 0.5, c)) {
            inSum += lum(x, y);
            inN++;
          }
        }
      }
    }
    expect(inN).toBeGreaterThan(0);
    expect(inSum / inN).toBeLessThan((all / (w * h)) * 0.8);
  });

  it("answers bad regions and levels with typed errors", async () => {
    const outside = await s.gql<{ runWsiInference: Row }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", location: [5000, 0] },
    });
    expect(outside.data?.runWsiInference).toMatchObject({ __typename: "InvalidInputError", code: "INVALID_INPUT" });
    const level = await s.gql<{ runWsiInference: Row }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "slide", level: 2 },
    });
    expect(level.data?.runWsiInference).toMatchObject({ code: "INVALID_INPUT" });
    const missing = await s.gql<{ runWsiInference: Row }>(WSI, {
      input: { model: "segmentation_nuclei", imageId: "nope" },
    });
    expect(missing.data?.runWsiInference).toMatchObject({ code: "IMAGE_NOT_FOUND" });
  });
});
