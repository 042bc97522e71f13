/**
 * bench/interactive: the radiology app's interactive models (apps/radiology/model) on held-out Colin27 data.
 *
 *   npm run bench:interactive -- [--models deepgrow_2d,deepgrow_3d,deepedit] [--clicks 0,1,3,5,10]
 *       [--repeats 30] [--model-dir apps/radiology/model] [--data test/fixtures/.cache] [--regions split|xor]
 *
 * 1. Dice against the number of simulated clicks on the held-out items (34 axial slices for deepgrow_2d; 2 slabs
 *    of 16 slices for deepgrow_3d and deepedit; apps/radiology/lib/interactive.ts cuts them): the simulated
 *    annotator puts each new click at the centre of the largest error region (foreground where the mask misses
 *    brain, background where it overshoots; missed and extra regions apart, as MONAI's FindDiscrepancyRegionsd
 *    has them, or with --regions xor one error map; bench/interactive/lib.ts) and the model reruns with all
 *    clicks so far. 0 clicks: DeepEdit's automatic mode; deepgrow has none (empty mask, Dice 0). Runs in-process.
 * 2. The click-to-mask round trip through GraphQL on a real server (SQLite, fs store, inference workers as
 *    configured by default): runInference with one foreground click on a held-out slice (or slab), saveLabel
 *    false, then the download of the mask from the returned URL; median and p90 of --repeats after 3 warm-ups.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type Item, interactiveInfers, writeColinItems } from "../../apps/radiology/lib/interactive.js";
import { loadConfig } from "../../src/config/config.js";
import { buildContainer } from "../../src/container.js";
import { loadImage } from "../../src/io/load.js";
import { createLogger } from "../../src/logger.js";
import { SessionPool } from "../../src/runtime/session-pool.js";
import { buildServer } from "../../src/server.js";
import type { BasicInferTask } from "../../src/tasks/infer/basic-infer-task.js";
import { dice, type ErrorRegions, median, nextClick, table } from "./lib.js";

const REPO = resolve(import.meta.dirname, "../..");
const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "deepgrow_2d,deepgrow_3d,deepedit" },
    clicks: { type: "string", default: "0,1,3,5,10" },
    repeats: { type: "string", default: "30" },
    "model-dir": { type: "string", default: join(REPO, "apps/radiology/model") },
    data: { type: "string", default: join(REPO, "test/fixtures/.cache") },
    regions: { type: "string", default: "split" },
  },
});
const MODELS = args.models.split(",");
const CLICKS = args.clicks.split(",").map(Number);
const REPEATS = Number(args.repeats);
const MAX_CLICKS = Math.max(...CLICKS);
if (args.regions !== "split" && args.regions !== "xor") {
  throw new Error(`--regions: split or xor, got ${args.regions}`);
}
const REGIONS: ErrorRegions = args.regions;
const progress = (msg: string) => process.stderr.write(`[bench:interactive] ${msg}\n`);

type Clicks = { foreground: number[][]; background: number[][] };

function params(model: string, c: Clicks): Record<string, unknown> {
  // DeepEdit reads clicks per label name (MONAI's params); deepgrow reads foreground/background.
  return model === "deepedit" ? { brain: c.foreground, background: c.background } : { ...c };
}

async function infer(task: BasicInferTask, pool: SessionPool, model: string, image: string, c: Clicks) {
  const t0 = performance.now();
  const run = await task.run({ imagePath: image, params: params(model, c) }, { pool });
  const ms = performance.now() - t0;
  const out = await loadImage(run.labelPath!);
  await rm(dirname(run.labelPath!), { recursive: true, force: true });
  return { pred: out.data, ms };
}

/** Dice after each number of clicks in CLICKS for one item, and the per-click inference times. */
async function simulate(task: BasicInferTask, pool: SessionPool, model: string, item: Item) {
  const label = await loadImage(item.label);
  const spatial = label.shape;
  const clicks: Clicks = { foreground: [], background: [] };
  let pred: ArrayLike<number> = new Uint8Array(label.data.length);
  const times: number[] = [];
  if (model === "deepedit") {
    ({ pred } = await infer(task, pool, model, item.image, clicks));
  }
  const dices = new Map<number, number>();
  for (let n = 0; n <= MAX_CLICKS; n++) {
    if (CLICKS.includes(n)) {
      dices.set(n, dice(pred, label.data));
    }
    if (n === MAX_CLICKS) {
      break;
    }
    const click = nextClick(pred, label.data, spatial, REGIONS);
    if (click) {
      clicks[click.kind].push(click.point);
      const r = await infer(task, pool, model, item.image, clicks);
      pred = r.pred;
      times.push(r.ms);
    }
  }
  return { dices, times };
}

const RUN = /* GraphQL */ `
  mutation ($input: RunInferenceInput!) {
    runInference(input: $input) {
      __typename
      ... on RunInferenceSuccess { data { url latencies } }
      ... on Error { code message }
    }
  }`;
const UPLOAD = /* GraphQL */ `
  mutation ($f: File!, $id: String!) { uploadImage(input: { file: $f, id: $id }) { __typename ... on Error { message } } }`;

async function roundTrips(root: string, items: Record<string, Item>) {
  const studies = join(root, "studies");
  await mkdir(studies, { recursive: true });
  const config = loadConfig(
    { LABELGRAPH_LOG_LEVEL: "error", MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" },
    {
      studies,
      app: join(REPO, "bench/interactive/app"),
      conf: { model_dir: resolve(args["model-dir"]) },
      port: 0,
      host: "127.0.0.1",
    },
  );
  const container = await buildContainer(config, { log: createLogger("error") });
  const server = buildServer(container);
  const { port } = await server.start(0, "127.0.0.1");
  const url = `http://127.0.0.1:${port}/graphql`;
  const rows: string[][] = [];
  try {
    for (const model of MODELS) {
      const item = items[model]!;
      // Upload the item (one retry: a transient upload error is not what this bench measures).
      for (let attempt = 0; ; attempt++) {
        const form = new FormData();
        form.append("operations", JSON.stringify({ query: UPLOAD, variables: { f: null, id: model } }));
        form.append("map", JSON.stringify({ "0": ["variables.f"] }));
        form.append("0", new Blob([new Uint8Array(await readFile(item.image))]), "image.nii.gz");
        const up = (await (await fetch(url, { method: "POST", body: form })).json()) as {
          data?: { uploadImage?: { __typename: string } };
        };
        if (up.data?.uploadImage?.__typename === "UploadImageSuccess") {
          break;
        }
        if (attempt > 0) {
          throw new Error(`upload: ${JSON.stringify(up)}`);
        }
        progress(`upload failed, retrying: ${JSON.stringify(up)}`);
      }
      // One click at the centre of the brain on this item (the first simulated click).
      const label = await loadImage(item.label);
      const click = nextClick(new Uint8Array(label.data.length), label.data, label.shape)!;
      const input = { model, imageId: model, saveLabel: false, foreground: [click.point] };
      const times: number[] = [];
      const server: number[] = [];
      for (let i = 0; i < REPEATS + 3; i++) {
        const t0 = performance.now();
        const res = (await (
          await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ query: RUN, variables: { input } }),
          })
        ).json()) as { data?: { runInference: { data?: { url: string; latencies: { total: number } } } } };
        const data = res.data?.runInference.data;
        if (!data) {
          throw new Error(`runInference ${model}: ${JSON.stringify(res)}`);
        }
        const mask = await (await fetch(data.url)).arrayBuffer();
        if (mask.byteLength === 0) {
          throw new Error("empty mask");
        }
        if (i >= 3) {
          times.push(performance.now() - t0);
          server.push(data.latencies.total * 1000);
        }
      }
      const sorted = [...times].sort((a, b) => a - b);
      rows.push([
        model,
        `[${label.shape.join("x")}]`,
        median(times).toFixed(1),
        sorted[Math.floor(0.9 * (sorted.length - 1))]!.toFixed(1),
        median(server).toFixed(1),
      ]);
      progress(`${model}: round trip median ${median(times).toFixed(1)} ms`);
    }
  } finally {
    await server.stop();
    await container.close();
  }
  return rows;
}

const root = await mkdtemp(join(tmpdir(), "labelgraph-bench-interactive-"));
try {
  progress(
    `load ${loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}; writing the Colin27 items`,
  );
  const split = await writeColinItems(resolve(args.data), join(root, "items"));
  const tasks = interactiveInfers(resolve(args["model-dir"])) as Record<string, BasicInferTask>;
  const pool = new SessionPool({});
  const diceRows: string[][] = [];
  try {
    for (const model of MODELS) {
      const task = tasks[model];
      if (!task?.isValid()) {
        throw new Error(
          `${model}: no model file in ${args["model-dir"]} (run apps/radiology/scripts/train-interactive.ts)`,
        );
      }
      const items = model === "deepgrow_2d" ? split.test2d : split.test3d;
      const sums = new Map<number, number>();
      const times: number[] = [];
      for (const item of items) {
        const r = await simulate(task, pool, model, item);
        for (const [n, d] of r.dices) {
          sums.set(n, (sums.get(n) ?? 0) + d);
        }
        times.push(...r.times);
      }
      progress(`${model}: ${items.length} items done`);
      diceRows.push([
        model,
        String(items.length),
        // deepgrow has no automatic mode: nothing to score before the first click.
        ...CLICKS.map((n) =>
          n === 0 && model !== "deepedit" ? "n/a" : ((sums.get(n) ?? 0) / items.length).toFixed(4),
        ),
        median(times).toFixed(1),
      ]);
    }
  } finally {
    await pool.close({ force: true });
  }
  const trips = await roundTrips(root, {
    deepgrow_2d: split.test2d[Math.floor(split.test2d.length / 2)]!,
    deepgrow_3d: split.test3d[0]!,
    deepedit: split.test3d[0]!,
  });
  console.log(
    "\nMean Dice on held-out Colin27 items after N simulated clicks (each at the centre of the largest error region," +
      ` error regions ${REGIONS};` +
      "\n0 clicks = DeepEdit's automatic mode; slices 181x217 (z // 8 % 4 == 3), slabs 181x217x16 at z 48 and 112)\n",
  );
  console.log(
    table(["model", "items", ...CLICKS.map((n) => `${n} clicks`), "infer ms (median, in-process)"], diceRows),
  );
  console.log(`\nClick-to-mask round trip through GraphQL (runInference + mask download), ${REPEATS} runs\n`);
  console.log(table(["model", "image", "median ms", "p90 ms", "server total ms (median)"], trips));
  console.log(
    `\nload average at the end: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")} (2 vCPU, shared)`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
