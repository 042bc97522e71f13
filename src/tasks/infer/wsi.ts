/**
 * Whole-slide-image inference (MONAI Label's `infer_wsi` and `/infer/wsi/{model}`): a region of a large 2D
 * image (`location` + `size`, level-0 pixels) is cut into tiles of `tile_size`, a 2D segmentation infer task
 * runs on each tile, the tile masks are pasted into one region mask, and the mask's regions come back as
 * polygons. Tiles are merged BEFORE tracing, so a nucleus cut by a tile edge is one polygon, not two (MONAI
 * traces per tile and concatenates). The JSON keeps MONAI's shape, and the DSA and ASAP formats are
 * MONAI's documents (utils/others/pathology.py).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { SessionService } from "../../datastore/session.service.js";
import { InvalidInputError } from "../../errors.js";
import { loadImage } from "../../io/load.js";
import { maskToPolygons, type Polygon } from "../../io/polygons.js";
import { type Rect, regionImageSize, writeRegionPng } from "../../io/region.js";
import type { SessionPool } from "../../runtime/session-pool.js";
import type { ObjectStore } from "../../storage/object-store.js";
import { type InferTask, labelNames } from "./infer-task.js";
import type { InferenceService } from "./inference.service.js";

export type WsiOutput = "json" | "dsa" | "asap";

/** MONAI's WSIInput, camelCased, plus the image and output. */
export interface WsiInput {
  model: string;
  /** A datastore image, or */
  imageId?: string | null;
  /** an uploaded session image, or */
  sessionId?: string | null;
  /** a server-side file (MONAI's `image` may be a path; keep it off public APIs). */
  imagePath?: string | null;
  /** Pyramid level; only 0 (full resolution) is read today. */
  level?: number;
  /** Top-left corner of the region, level-0 pixels [x, y] (default [0, 0]). */
  location?: readonly number[];
  /** Region size [width, height] (default MONAI's [2048, 2048]); clipped to the image. */
  size?: readonly number[] | null;
  /** Tile size [width, height] (default [1024, 1024]). */
  tileSize?: readonly number[];
  /** Polygons smaller than this (pixels) are dropped (default MONAI's 80). */
  minPolyArea?: number;
  /** Default "dsa", as MONAI when output is unset. */
  output?: WsiOutput;
  /** Passed to the infer task on every tile (MONAI flattens WSIInput.params into the request). */
  params?: Record<string, unknown> | null;
  signal?: AbortSignal;
}

/** One polygon group per label, MONAI's `{label, contours}`. */
export interface WsiElement {
  label: string;
  contours: Polygon[];
}

/** MONAI's per-result `annotation`: here one for the whole merged region. */
export interface WsiAnnotation {
  location: [number, number];
  size: [number, number];
  /** Label name -> [r, g, b]. */
  labels: Record<string, [number, number, number]>;
  elements: WsiElement[];
}

export interface WsiResult {
  name: string;
  description: string;
  model: string;
  location: [number, number];
  size: [number, number];
  tile_size: [number, number];
  tiles: number;
  /** Polygons over all labels. */
  count: number;
  annotations: { annotation: WsiAnnotation }[];
  latencies: { pre: number; infer: number; post: number; total: number };
}

export interface WsiOutcome {
  model: string;
  imageId: string | null;
  output: WsiOutput;
  /** MONAI's JSON. */
  result: WsiResult;
  /** The DSA JSON or ASAP XML document; null for output "json". */
  document: { content: string; mimeType: string; fileName: string } | null;
}

const DEFAULT_SIZE = [2048, 2048];
const DEFAULT_TILE = [1024, 1024];
/** Pixels in one region mask (uint16): 1 GiB would be 2^29. */
const MAX_REGION_PIXELS = 2 ** 28;

/** Distinct, readable colours for label indices 1, 2, ... (0 unused). */
const PALETTE: [number, number, number][] = [
  [0, 0, 0],
  [255, 0, 0],
  [0, 160, 255],
  [0, 200, 0],
  [255, 170, 0],
  [170, 0, 255],
  [255, 0, 170],
  [0, 200, 200],
  [128, 128, 0],
];

const pair = (v: readonly number[] | null | undefined, name: string, fallback: number[]): [number, number] => {
  const a = v ?? fallback;
  if (a.length !== 2 || !a.every((n) => Number.isInteger(n))) {
    throw new InvalidInputError(`${name} must be two integers [x, y], got ${JSON.stringify(v)}`);
  }
  return [a[0]!, a[1]!];
};

/** MONAI's create_infer_wsi_tasks: row-major tiles over the region, the last ones cut at the region edge. */
export function wsiTiles(region: Rect, tileSize: readonly [number, number]): Rect[] {
  const [tw, th] = tileSize;
  if (tw < 1 || th < 1) {
    throw new InvalidInputError(`tile size must be positive, got [${tw}, ${th}]`);
  }
  const tiles: Rect[] = [];
  for (let top = region.top; top < region.top + region.height; top += th) {
    for (let left = region.left; left < region.left + region.width; left += tw) {
      tiles.push({
        left,
        top,
        width: Math.min(tw, region.left + region.width - left),
        height: Math.min(th, region.top + region.height - top),
      });
    }
  }
  return tiles;
}

/** The region a request asks for, checked against the image and clipped to it. */
export function wsiRegion(input: Pick<WsiInput, "location" | "size">, image: { width: number; height: number }): Rect {
  const [x, y] = pair(input.location, "location", [0, 0]);
  const [w, h] = pair(input.size, "size", DEFAULT_SIZE);
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) {
    throw new InvalidInputError(`location [${x}, ${y}] lies outside the ${image.width} x ${image.height} image`);
  }
  if (w < 1 || h < 1) {
    throw new InvalidInputError(`size must be positive, got [${w}, ${h}]`);
  }
  const rect = { left: x, top: y, width: Math.min(w, image.width - x), height: Math.min(h, image.height - y) };
  if (rect.width * rect.height > MAX_REGION_PIXELS) {
    throw new InvalidInputError(
      `region ${rect.width} x ${rect.height} exceeds ${MAX_REGION_PIXELS} pixels; ask for smaller regions`,
    );
  }
  return rect;
}

/**
 * Runs a 2D segmentation infer task over a region of a large image, tile by tile, and merges the results.
 * Pure of storage: it reads the file at `imagePath`; `WsiInferenceService` resolves datastore ids to files.
 */
export async function inferWsi(
  task: InferTask,
  services: { pool: SessionPool },
  imagePath: string,
  input: WsiInput,
): Promise<WsiResult> {
  if (task.dimension !== 2 || task.type === "classification") {
    throw new InvalidInputError(
      `model ${JSON.stringify(input.model)} is a ${task.dimension}D ${task.type} model; WSI inference needs 2D segmentation`,
    );
  }
  if ((input.level ?? 0) !== 0) {
    throw new InvalidInputError(`level ${input.level} is not supported: only level 0 (full resolution) is read`);
  }
  const minArea = input.minPolyArea ?? 80;
  if (!Number.isFinite(minArea) || minArea < 0) {
    throw new InvalidInputError(`min_poly_area must be a number >= 0, got ${input.minPolyArea}`);
  }
  const t0 = performance.now();
  const region = wsiRegion(input, await regionImageSize(imagePath));
  const tileSize = pair(input.tileSize, "tile_size", DEFAULT_TILE);
  const tiles = wsiTiles(region, tileSize);
  const mask = new Uint16Array(region.width * region.height);
  const latencies = { pre: 0, infer: 0, post: 0, total: 0 };
  const scratch = await mkdtemp(join(tmpdir(), "labelgraph-wsi-"));
  try {
    for (const [i, tile] of tiles.entries()) {
      if (input.signal?.aborted) {
        throw new InvalidInputError("WSI inference cancelled");
      }
      const t1 = performance.now();
      const tilePath = join(scratch, `tile-${i}.png`);
      await writeRegionPng(imagePath, tile, tilePath);
      const t2 = performance.now();
      const run = await task.run(
        {
          imagePath: tilePath,
          params: { ...(input.params ?? {}), result_extension: ".nii", result_dtype: "uint16" },
          signal: input.signal,
        },
        services,
      );
      const t3 = performance.now();
      if (!run.labelPath) {
        throw new InvalidInputError(`model ${JSON.stringify(input.model)} wrote no label for tile ${i}`);
      }
      try {
        paste(mask, region, tile, await loadImage(run.labelPath));
      } finally {
        await rm(dirname(run.labelPath), { recursive: true, force: true });
      }
      await rm(tilePath, { force: true });
      latencies.pre += t2 - t1;
      latencies.infer += t3 - t2;
      latencies.post += performance.now() - t3;
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const t4 = performance.now();
  const names = labelIndex(task);
  const elements: WsiElement[] = [];
  const colours: Record<string, [number, number, number]> = {};
  for (const { label, polygons } of maskToPolygons(mask, region.width, region.height, {
    minArea,
    offset: [region.left, region.top],
  })) {
    const name = names.get(label) ?? String(label);
    elements.push({ label: name, contours: polygons });
    colours[name] = PALETTE[label % PALETTE.length] ?? [255, 255, 255];
  }
  latencies.post += performance.now() - t4;
  latencies.total = performance.now() - t0;
  const seconds = (ms: number) => Math.round(ms) / 1000;
  const location: [number, number] = [region.left, region.top];
  const size: [number, number] = [region.width, region.height];
  return {
    name: `labelgraph Annotations - ${input.model}`,
    description: task.description,
    model: input.model,
    location,
    size,
    tile_size: tileSize,
    tiles: tiles.length,
    count: elements.reduce((n, e) => n + e.contours.length, 0),
    annotations: [{ annotation: { location, size, labels: colours, elements } }],
    latencies: {
      pre: seconds(latencies.pre),
      infer: seconds(latencies.infer),
      post: seconds(latencies.post),
      total: seconds(latencies.total),
    },
  };
}

/** label index -> name, from the task's labels ({name: idx}, or a list numbered from 1). */
function labelIndex(task: InferTask): Map<number, string> {
  const labels = task.labels;
  if (typeof labels === "object" && !Array.isArray(labels)) {
    return new Map(Object.entries(labels).map(([n, i]) => [i, n]));
  }
  return new Map(labelNames(labels).map((n, i) => [i + 1, n]));
}

/** Copies a tile's label (x fastest, [w, h] or [w, h, 1]) into the region mask. */
function paste(mask: Uint16Array, region: Rect, tile: Rect, label: { data: ArrayLike<number>; shape: number[] }) {
  const [w = 0, h = 0, ...rest] = label.shape;
  if (w !== tile.width || h !== tile.height || rest.some((d) => d !== 1)) {
    throw new InvalidInputError(
      `the model's label for a ${tile.width} x ${tile.height} tile has shape [${label.shape.join(", ")}]`,
    );
  }
  for (let y = 0; y < h; y++) {
    const dst = tile.left - region.left + region.width * (tile.top - region.top + y);
    for (let x = 0; x < w; x++) {
      mask[dst + x] = label.data[x + w * y] ?? 0;
    }
  }
}

const rgb = ([r, g, b]: [number, number, number]) => `rgb(${r},${g},${b})`;
const hex = (c: [number, number, number]) => `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
const xmlAttr = (s: unknown) =>
  String(s).replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * MONAI's DSA annotation document: closed polylines grouped by label, `points` as [x, y, 0] in level-0
 * pixels, and a description that is itself a JSON string. (MONAI reverses each contour's point order and
 * x/y around the tile origin to undo a transposed read; our contours are [x, y] already, so none of that.)
 */
export function toDsaDocument(result: WsiResult): string {
  const elements = result.annotations.flatMap(({ annotation }) =>
    annotation.elements.flatMap((e) =>
      e.contours.map((contour) => ({
        group: e.label,
        type: "polyline",
        lineColor: rgb(annotation.labels[e.label] ?? [255, 255, 255]),
        lineWidth: 2.0,
        closed: true,
        points: contour.map(([x, y]) => [x, y, 0]),
        label: { value: e.label },
      })),
    ),
  );
  return JSON.stringify({
    name: result.name,
    elements,
    description: JSON.stringify({
      model: result.model,
      desc: result.description,
      location: result.location,
      size: result.size,
      count: elements.length,
      latencies: result.latencies,
    }),
  });
}

/** MONAI's ASAP annotation XML: one Polygon annotation per contour, one group per label. */
export function toAsapXml(result: WsiResult): string {
  const lines = [
    '<?xml version="1.0"?>',
    "<ASAP_Annotations>",
    `  <Annotations Name="${xmlAttr(result.name)}" Description="${xmlAttr(result.description)}" Model="${xmlAttr(
      result.model,
    )}" X="${result.location[0]}" Y="${result.location[1]}" W="${result.size[0]}" H="${result.size[1]}">`,
  ];
  const groups = new Map<string, string>();
  for (const { annotation } of result.annotations) {
    for (const e of annotation.elements) {
      const colour = hex(annotation.labels[e.label] ?? [255, 255, 255]);
      groups.set(e.label, colour);
      for (const contour of e.contours) {
        const name = xmlAttr(e.label);
        lines.push(`    <Annotation Name="${name}" Type="Polygon" PartOfGroup="${name}" Color="${colour}">`);
        lines.push("      <Coordinates>");
        contour.forEach(([x, y], i) => {
          lines.push(`        <Coordinate Order="${i}" X="${x}" Y="${y}" />`);
        });
        lines.push("      </Coordinates>");
        lines.push("    </Annotation>");
      }
    }
  }
  lines.push("  </Annotations>", "  <AnnotationGroups>");
  for (const [label, colour] of groups) {
    lines.push(`    <Group Name="${xmlAttr(label)}" PartOfGroup="None" Color="${colour}">`);
    lines.push("      <Attributes />", "    </Group>");
  }
  lines.push("  </AnnotationGroups>", "</ASAP_Annotations>", "");
  return lines.join("\n");
}

/** The document for an output format, or null for "json". */
export function wsiDocument(result: WsiResult, output: WsiOutput): WsiOutcome["document"] {
  switch (output) {
    case "json":
      return null;
    case "dsa":
      return { content: toDsaDocument(result), mimeType: "application/json", fileName: `${result.model}.json` };
    case "asap":
      return { content: toAsapXml(result), mimeType: "application/xml", fileName: `${result.model}.xml` };
    default:
      throw new InvalidInputError(`output must be json, dsa or asap, got ${JSON.stringify(output)}`);
  }
}

/**
 * The WSI entry point for GraphQL and REST: resolves the image (datastore id, session, or a server path),
 * runs `inferWsi` with the app's model, and renders the requested output.
 */
export class WsiInferenceService {
  constructor(
    private readonly deps: {
      inference: InferenceService;
      datastore: DatastoreService;
      store: ObjectStore;
      sessions: SessionService;
      pool: SessionPool;
    },
  ) {}

  async infer(input: WsiInput): Promise<WsiOutcome> {
    const task = this.deps.inference.task(input.model);
    const output = input.output ?? "dsa";
    if (!["json", "dsa", "asap"].includes(output)) {
      throw new InvalidInputError(`output must be json, dsa or asap, got ${JSON.stringify(output)}`);
    }
    const given = [input.imageId, input.sessionId, input.imagePath].filter((v) => v != null && v !== "");
    if (given.length !== 1) {
      throw new InvalidInputError("give exactly one of imageId, sessionId and imagePath");
    }
    const image = input.imageId ? await this.deps.datastore.getImage(input.imageId) : null;
    const local = image
      ? await this.deps.store.localPath(image.objectKey)
      : input.sessionId
        ? await this.deps.sessions.localImage(input.sessionId)
        : { path: input.imagePath as string, release: async () => {} };
    try {
      const result = await inferWsi(task, { pool: this.deps.pool }, local.path, input);
      return { model: input.model, imageId: image?.id ?? null, output, result, document: wsiDocument(result, output) };
    } finally {
      await local.release();
    }
  }
}
