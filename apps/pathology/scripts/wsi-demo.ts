/**
 * Trains segmentation_nuclei on synthetic tiles and times WSI inference on a large synthetic slide, through the
 * same container the server builds. Prints training time, the region's tile count, polygons found, how many of
 * the slide's nuclei they recover (IoU > 0.5), and the per-stage latencies.
 *
 *   npx tsx apps/pathology/scripts/wsi-demo.ts [--epochs 12] [--size 4096] [--tile 1024] [--keep DIR]
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../../src/config/config.js";
import { buildContainer } from "../../../src/container.js";
import { writeImage2d } from "../../../src/io/image2d.js";
import { pointInPolygon } from "../../../src/io/polygons.js";
import { createLogger } from "../../../src/logger.js";
import { insideNucleus, paint, randomNuclei, syntheticTile, toVolumes } from "../lib/synthetic.js";

const { values } = parseArgs({
  options: {
    epochs: { type: "string", default: "12" },
    size: { type: "string", default: "4096" },
    tile: { type: "string", default: "1024" },
    keep: { type: "string" },
  },
});
const size = Number(values.size);
const tile = Number(values.tile);
const dir = values.keep ?? (await mkdtemp(join(tmpdir(), "pathology-demo-")));
const studies = join(dir, "studies");
await mkdir(join(studies, "labels", "final"), { recursive: true });
for (let i = 0; i < 10; i++) {
  const { image, label } = toVolumes(syntheticTile(100 + i));
  await writeImage2d(image, join(studies, `tile${i}.png`));
  await writeImage2d(label, join(studies, "labels", "final", `tile${i}.png`));
}
const nuclei = randomNuclei(size, size, Math.round((size * size) / 5000), 4242, 8);
await writeImage2d(toVolumes(paint(size, size, nuclei, 4242)).image, join(studies, "slide.png"));

const config = loadConfig(
  { LABELGRAPH_LOG_LEVEL: "error", LABELGRAPH_DATABASE_URL: `file:${join(dir, "db.sqlite")}` },
  { studies, app: join(import.meta.dirname, ".."), conf: { model_dir: join(dir, "model") }, port: 0 },
);
const container = await buildContainer(config, { log: createLogger("error") });
try {
  const t0 = performance.now();
  const job = await container.jobs.enqueue("train", {
    model: "segmentation_nuclei",
    params: { max_epochs: Number(values.epochs), seed: 3 },
  });
  await container.jobs.idle();
  const done = await container.jobs.get(job.id);
  console.log(`train: ${done?.status} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const t1 = performance.now();
  const out = await container.wsi.infer({
    model: "segmentation_nuclei",
    imageId: "slide",
    location: [0, 0],
    size: [size, size],
    tileSize: [tile, tile],
    minPolyArea: 30,
    output: "dsa",
  });
  const wall = (performance.now() - t1) / 1000;
  const contours = out.result.annotations.flatMap((a) => a.annotation.elements.flatMap((e) => e.contours));
  // Recovered: a polygon contains the nucleus centre.
  const found = nuclei.filter((n) => contours.some((c) => pointInPolygon(n.cx, n.cy, c))).length;
  let inside = 0;
  for (const n of nuclei) {
    inside += insideNucleus(n, Math.floor(n.cx), Math.floor(n.cy)) ? 1 : 0;
  }
  console.log(
    `wsi: ${size}x${size} px in ${out.result.tiles} tiles of ${tile}: ${wall.toFixed(1)} s ` +
      `(${((size * size) / 1e6 / wall).toFixed(2)} Mpx/s), ${contours.length} polygons, ` +
      `${found}/${nuclei.length} nuclei centres inside a polygon (${inside} centres lie in their nucleus), ` +
      `DSA document ${(out.document?.content.length ?? 0) / 1e6} MB`,
  );
  console.log("latencies (s):", JSON.stringify(out.result.latencies));
} finally {
  await container.close();
  if (!values.keep) {
    await rm(dir, { recursive: true, force: true });
  }
}
