import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidImageError, InvalidInputError } from "../../../src/errors.js";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { SlidingWindowInferer } from "../../../src/inferers/sliding-window.js";
import type { Inferer } from "../../../src/inferers/types.js";
import { type Polygon, pointInPolygon, polygonArea } from "../../../src/io/polygons.js";
import { readRegion } from "../../../src/io/region.js";
import { SessionPool } from "../../../src/runtime/session-pool.js";
import { BasicInferTask } from "../../../src/tasks/infer/basic-infer-task.js";
import { inferWsi, toAsapXml, toDsaDocument, wsiRegion, wsiTiles } from "../../../src/tasks/infer/wsi.js";
import type { Transform } from "../../../src/transforms/compose.js";
import { EnsureChannelFirstd, LoadImaged } from "../../../src/transforms/io.js";
import { Activationsd, AsDiscreted } from "../../../src/transforms/post.js";

const W = 700;
const H = 500;
const ROI = 256;
const BG = [220, 200, 210];
const INK = [60, 40, 90];

/** Known shapes, level-0 pixel coordinates. */
const inRect = (x: number, y: number, l: number, t: number, r: number, b: number) => x >= l && x < r && y >= t && y < b;
const disc = (x: number, y: number) => (x - 300) ** 2 + (y - 250) ** 2 <= 40 ** 2;
function dark(x: number, y: number): boolean {
  return (
    inRect(x, y, 200, 100, 350, 160) || // crosses the tile edge x = 306
    disc(x, y) || // crosses the tile edge y = 306
    inRect(x, y, 500, 200, 505, 205) || // 25 px: below min_poly_area
    inRect(x, y, 600, 400, 680, 480) // cut by the region's corner (650, 450)
  );
}

function slide(): Buffer {
  const px = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const c = dark(x, y) ? INK : BG;
      px.set(c, 3 * (x + W * y));
    }
  }
  return px;
}

/** A "model" that marks pixels whose channel mean is below 128: logits 128 - mean. */
function thresholdModel(): Uint8Array {
  const g = new GraphBuilder({ name: "threshold", opset: 18 });
  const x = g.input("image", "float32", [1, 3, ROI, ROI]);
  const mean = g.reduceMean(x, [1], { keepdims: true });
  g.output(g.sub(g.constant(new Float32Array([128]), [1]), mean), "pred");
  return g.serialize();
}

class Threshold extends BasicInferTask {
  preTransforms(): Transform[] {
    return [new LoadImaged({ keys: "image" }), new EnsureChannelFirstd({ keys: "image" })];
  }
  override inferer(): Inferer {
    return new SlidingWindowInferer({ roiSize: [ROI, ROI], overlap: 0 });
  }
  postTransforms(): Transform[] {
    return [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })];
  }
}

let dir: string;
let pool: SessionPool;
let task: Threshold;
let png: string;
let tiff: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "wsi-test-"));
  pool = new SessionPool({});
  await writeFile(join(dir, "threshold.onnx"), thresholdModel());
  task = new Threshold({
    path: join(dir, "threshold.onnx"),
    type: "segmentation",
    labels: { Nuclei: 1 },
    dimension: 2,
    description: "dark regions",
  });
  png = join(dir, "slide.png");
  tiff = join(dir, "slide.tiff");
  const raw = { raw: { width: W, height: H, channels: 3 as const } };
  await sharp(slide(), raw).png().toFile(png);
  await sharp(slide(), raw).tiff({ tile: true, tileWidth: 128, tileHeight: 128, compression: "deflate" }).toFile(tiff);
});

afterAll(async () => {
  await pool.close({ force: true });
  await rm(dir, { recursive: true, force: true });
});

const input = { model: "nuclei", location: [50, 50], size: [600, 400], tileSize: [ROI, ROI] };

function pixelsInside(p: Polygon, box: [number, number, number, number]): number {
  let n = 0;
  for (let y = box[1]; y < box[3]; y++) {
    for (let x = box[0]; x < box[2]; x++) {
      n += pointInPolygon(x + 0.5, y + 0.5, p) ? 1 : 0;
    }
  }
  return n;
}

describe("wsi tiles and region", () => {
  it("tiles a region row by row, cutting the last tiles at its edge", () => {
    const tiles = wsiTiles({ left: 50, top: 50, width: 600, height: 400 }, [256, 256]);
    expect(tiles).toHaveLength(6);
    expect(tiles[2]).toEqual({ left: 562, top: 50, width: 88, height: 256 });
    expect(tiles[5]).toEqual({ left: 562, top: 306, width: 88, height: 144 });
    expect(tiles.reduce((a, t) => a + t.width * t.height, 0)).toBe(600 * 400);
  });

  it("clips the region to the image and rejects one outside it", () => {
    expect(wsiRegion({ location: [600, 0], size: [2048, 2048] }, { width: W, height: H })).toEqual({
      left: 600,
      top: 0,
      width: 100,
      height: 500,
    });
    expect(() => wsiRegion({ location: [700, 0] }, { width: W, height: H })).toThrow(InvalidInputError);
    expect(() => wsiRegion({ location: [0, 0], size: [0, 5] }, { width: W, height: H })).toThrow(/positive/);
    expect(() => wsiRegion({ location: [1.5, 0] }, { width: W, height: H })).toThrow(/two integers/);
  });

  it("reads the same region from PNG and from a tiled TIFF", async () => {
    const rect = { left: 290, top: 240, width: 30, height: 20 };
    const a = await readRegion(png, rect);
    const b = await readRegion(tiff, rect);
    expect(a.shape).toEqual([30, 20, 3]);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    // Pixel (300, 250) is the disc's centre: ink; (290 + 29, 240 + 19) = (319, 259) too; red channel plane first.
    expect(a.data[10 + 30 * 10]).toBe(INK[0]);
    await expect(readRegion(png, { left: 690, top: 0, width: 20, height: 5 })).rejects.toThrow(InvalidImageError);
  });
});

describe("inferWsi", () => {
  it("merges tiles and returns the known shapes as polygons (PNG and TIFF alike)", async () => {
    const result = await inferWsi(task, { pool }, png, input);
    expect(result.tiles).toBe(6);
    expect(result.location).toEqual([50, 50]);
    expect(result.size).toEqual([600, 400]);
    const [{ annotation }] = result.annotations as [(typeof result.annotations)[0]];
    expect(annotation.elements.map((e) => e.label)).toEqual(["Nuclei"]);
    const contours = annotation.elements[0]!.contours;
    // The 25-pixel square is below min_poly_area 80; the rest: rectangle, disc, clipped square.
    expect(contours).toHaveLength(3);
    expect(result.count).toBe(3);
    const [rect, circle, corner] = contours as [Polygon, Polygon, Polygon];
    // One polygon across the tile edge at x = 306, exactly the rectangle.
    expect(rect).toEqual([
      [200, 100],
      [350, 100],
      [350, 160],
      [200, 160],
    ]);
    let discPixels = 0;
    for (let y = 200; y < 300; y++) {
      for (let x = 250; x < 350; x++) {
        discPixels += disc(x, y) ? 1 : 0;
      }
    }
    expect(polygonArea(circle)).toBe(discPixels);
    expect(pixelsInside(circle, [250, 200, 350, 300])).toBe(discPixels);
    expect(corner).toEqual([
      [600, 400],
      [650, 400],
      [650, 450],
      [600, 450],
    ]);

    const fromTiff = await inferWsi(task, { pool }, tiff, input);
    expect(fromTiff.annotations).toEqual(result.annotations);

    const small = await inferWsi(task, { pool }, png, { ...input, minPolyArea: 0 });
    expect(small.count).toBe(4);
  });

  it("renders MONAI's DSA document and ASAP XML", async () => {
    const result = await inferWsi(task, { pool }, png, input);
    const dsa = JSON.parse(toDsaDocument(result));
    expect(dsa.name).toBe(result.name);
    expect(dsa.elements).toHaveLength(3);
    expect(dsa.elements[0]).toMatchObject({
      group: "Nuclei",
      type: "polyline",
      closed: true,
      label: { value: "Nuclei" },
      points: [
        [200, 100, 0],
        [350, 100, 0],
        [350, 160, 0],
        [200, 160, 0],
      ],
    });
    expect(dsa.elements[0].lineColor).toMatch(/^rgb\(\d+,\d+,\d+\)$/);
    expect(JSON.parse(dsa.description)).toMatchObject({ model: "nuclei", count: 3, location: [50, 50] });

    const xml = toAsapXml(result);
    expect(xml.startsWith('<?xml version="1.0"?>\n<ASAP_Annotations>')).toBe(true);
    expect(xml.match(/<Annotation Name="Nuclei" Type="Polygon"/g)).toHaveLength(3);
    expect(xml).toContain('<Coordinate Order="1" X="350" Y="100" />');
    expect(xml).toMatch(/<Group Name="Nuclei" PartOfGroup="None" Color="#[0-9a-f]{6}">/);
    expect(xml).toContain('X="50" Y="50" W="600" H="400"');
  });

  it("rejects levels, classification models and bad areas with typed errors", async () => {
    await expect(inferWsi(task, { pool }, png, { ...input, level: 1 })).rejects.toThrow(/level 1/);
    await expect(inferWsi(task, { pool }, png, { ...input, minPolyArea: -1 })).rejects.toThrow(InvalidInputError);
    const classifier = new Threshold({
      path: join(dir, "threshold.onnx"),
      type: "classification",
      labels: ["a", "b"],
      dimension: 2,
      description: "",
    });
    await expect(inferWsi(classifier, { pool }, png, input)).rejects.toThrow(/needs 2D segmentation/);
    await expect(inferWsi(task, { pool }, join(dir, "missing.png"), input)).rejects.toThrow(InvalidImageError);
  });
});
