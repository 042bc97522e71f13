/**
 * Inference benchmark: a MONAI-radiology-like 3D UNet on Colin27 (181x217x181) with the SlidingWindowInferer.
 *
 *   npx tsx bench/infer/index.ts [--runs 3] [--roi 96] [--overlap 0.25] [--channels 16,32,64,128,256] [--keep]
 *   npm run bench:infer -- --runs 5
 *
 * Rows (medians over --runs, after one untimed warm-up of each):
 *  - raw: onnxruntime-node InferenceSession on the same .onnx with the pool's options, `session.run` summed over
 *    the windows of a SlidingWindowInferer on the pre-processed Colin27 (only the time inside session.run);
 *  - labelgraph: a real server (buildContainer + buildServer, SQLite, fs store) with the fixture app
 *    test/fixtures/apps/segmentation, `runInference` timed end to end over HTTP, with LABELGRAPH_INFER_WORKERS=1
 *    (the default) and 0; `latencies` from the result; session.run summed inside the server where it runs on
 *    the main thread;
 *  - PyTorch: the same architecture in torch.nn, forward over as many windows, when /usr/bin/python3 has torch.
 * Then a breakdown of the overhead (whole - raw): the pipeline's steps timed one by one in this process.
 *
 * Results go to stdout, progress to stderr. Everything lives in one temporary folder removed at the end.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { gzip } from "node:zlib";
import { InferenceSession } from "onnxruntime-node";
import { loadApp } from "../../src/app/load-app.js";
import { loadConfig } from "../../src/config/config.js";
import { buildContainer, type Container } from "../../src/container.js";
import { denseWindowStarts, SlidingWindowInferer, scanInterval } from "../../src/inferers/sliding-window.js";
import { encodeNifti, writeNifti } from "../../src/io/nifti.js";
import { createLogger } from "../../src/logger.js";
import { UNet } from "../../src/nn/unet.js";
import { buildServer, type Server } from "../../src/server.js";
import { type BasicInferTask, centroids } from "../../src/tasks/infer/basic-infer-task.js";
import { Compose, type Data, fusedPlan } from "../../src/transforms/compose.js";
import { Invertd } from "../../src/transforms/inverse.js";
import { fromCOrder, type MetaTensor, toCOrder, toVolume } from "../../src/transforms/tensor.js";
import {
  gql,
  gqlUpload,
  instrumentPool,
  median,
  msStr,
  poolSessionOptions,
  progress,
  RunClock,
  rawPredictor,
  runTorch,
  sec,
  type TorchResult,
  table,
  timed,
  torchAvailable,
} from "./lib.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    roi: { type: "string", default: "96" },
    overlap: { type: "string", default: "0.25" },
    channels: { type: "string", default: "16,32,64,128,256" },
    keep: { type: "boolean", default: false },
  },
});
const RUNS = Number(args.runs);
const ROI_EDGE = Number(args.roi);
const OVERLAP = Number(args.overlap);
const CHANNELS = args.channels.split(",").map(Number);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  throw new Error(`--runs must be a positive integer, got ${args.runs}`);
}
if (!Number.isInteger(ROI_EDGE) || ROI_EDGE < 8) {
  throw new Error(`--roi must be an integer >= 8, got ${args.roi}`);
}
if (!(OVERLAP >= 0 && OVERLAP < 1)) {
  throw new Error(`--overlap must be in [0, 1), got ${args.overlap}`);
}
if (CHANNELS.length < 2 || !CHANNELS.every((c) => Number.isInteger(c) && c > 0)) {
  throw new Error(`--channels must be positive integers, at least 2, got ${args.channels}`);
}
const STRIDES = CHANNELS.slice(1).map(() => 2);
if (ROI_EDGE % 2 ** STRIDES.length !== 0) {
  throw new Error(`--roi ${ROI_EDGE} must be a multiple of ${2 ** STRIDES.length} (the product of the strides)`);
}
const ROI = [ROI_EDGE, ROI_EDGE, ROI_EDGE];
const NUM_RES_UNITS = 2;
/** The fixture app thresholds a sigmoid (one foreground channel), so the model has one output channel. */
const OUT_CHANNELS = 1;
const TARGET = 1.15;
const THREADS = availableParallelism();

const REPO = resolve(import.meta.dirname, "../..");
const COLIN = join(REPO, "test/fixtures/.cache/ch2.nii.gz");
const APP = join(REPO, "test/fixtures/apps/segmentation");

const RUN = /* GraphQL */ `
  mutation ($input: RunInferenceInput!) {
    runInference(input: $input) {
      __typename
      ... on RunInferenceSuccess { data { url latencies label { tag version } } }
      ... on Error { code message }
    }
  }`;
const UPLOAD = /* GraphQL */ `
  mutation ($f: File!) { uploadImage(input: { file: $f, id: "colin" }) { __typename ... on Error { code message } } }`;

const W_NIFTI_GZ = "write: writeNifti .nii.gz (the whole writer: encode, gzip level 1, atomic write)";
const W_ENCODE = "write: encodeNifti (f32 -> uint8 rounding loop)";
const W_GZIP6 = "write: gzip level 6 (zlib's default, for comparison)";
const W_GZIP1 = "write: gzip level 1 (nibabel's default, what writeNifti uses)";
const SW32 = "infer: SlidingWindowInferer, no model, constant, float32 (what BasicInferTask uses)";
const SW64 = "infer: SlidingWindowInferer, no model, constant, float64 (the class default)";
const SWG32 = "infer: SlidingWindowInferer, no model, gaussian, float32 (weight volume summed per window)";
const CENTROIDS = "after total: centroids (basic-infer-task.ts)";
const gzipAsync = promisify(gzip);

type Latencies = Record<"pre" | "infer" | "invert" | "post" | "write" | "total", number>;
interface WholeRun {
  /** runInference over HTTP, ms. */
  wholeMs: number;
  latencies: Latencies;
  /** session.run summed in the server's own pool (0 calls: the model ran elsewhere, e.g. on a worker). */
  serverRunMs: number;
  serverRunCalls: number;
  /** GET of the label url afterwards (not part of whole), ms. */
  downloadMs: number;
}

interface BenchServer {
  label: string;
  workers: number;
  url: string;
  container: Container;
  server: Server;
  clock: RunClock;
  uploadMs: number;
  dir: string;
}

async function ensureColin(): Promise<void> {
  if (!existsSync(COLIN)) {
    progress("Colin27 missing: running scripts/fetch-fixtures.sh");
    const r = spawnSync("bash", [join(REPO, "scripts/fetch-fixtures.sh")], { cwd: REPO, stdio: "inherit" });
    if (r.status !== 0 || !existsSync(COLIN)) {
      throw new Error(`could not fetch ${COLIN}; run: bash scripts/fetch-fixtures.sh`);
    }
  }
}

async function startServer(root: string, modelPath: string, workers: number): Promise<BenchServer> {
  const dir = join(root, `server-w${workers}`);
  await mkdir(join(dir, "studies"), { recursive: true });
  const config = loadConfig(
    {
      LABELGRAPH_LOG_LEVEL: "error",
      MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false",
      LABELGRAPH_INFER_WORKERS: String(workers),
    },
    { studies: join(dir, "studies"), app: APP, conf: { model_path: modelPath }, port: 0, host: "127.0.0.1" },
  );
  const container = await buildContainer(config, { log: createLogger("error") });
  const clock = new RunClock();
  instrumentPool(container.pool, clock);
  const server = buildServer(container);
  const { port } = await server.start(0, "127.0.0.1");
  const url = `http://127.0.0.1:${port}`;
  const bytes = await readFile(COLIN);
  const up = await timed(() =>
    gqlUpload<{ uploadImage: { __typename: string; message?: string } }>(url, UPLOAD, "f", {
      data: bytes,
      name: "colin.nii.gz",
    }),
  );
  if (up.value.uploadImage.__typename !== "UploadImageSuccess") {
    throw new Error(`upload failed: ${JSON.stringify(up.value.uploadImage)}`);
  }
  const label = workers === 0 ? "labelgraph, in-process (WORKERS=0)" : `labelgraph, WORKERS=${workers} (default)`;
  return { label, workers, url, container, server, clock, uploadMs: up.ms, dir };
}

async function runWhole(s: BenchServer): Promise<WholeRun> {
  s.clock.reset();
  const input = { model: "segmentation", imageId: "colin", saveLabel: true, params: { roi_size: ROI } };
  const r = await timed(() =>
    gql<{ runInference: { __typename: string; message?: string; data?: { url: string; latencies: Latencies } } }>(
      s.url,
      RUN,
      { input },
    ),
  );
  const out = r.value.runInference;
  if (out.__typename !== "RunInferenceSuccess" || !out.data) {
    throw new Error(`runInference failed: ${JSON.stringify(out)}`);
  }
  const dl = await timed(async () => {
    const res = await fetch(out.data?.url as string);
    if (!res.ok) {
      throw new Error(`GET ${out.data?.url}: ${res.status}`);
    }
    return (await res.arrayBuffer()).byteLength;
  });
  return {
    wholeMs: r.ms,
    latencies: out.data.latencies,
    serverRunMs: s.clock.ms,
    serverRunCalls: s.clock.calls,
    downloadMs: dl.ms,
  };
}

async function stopServer(s: BenchServer): Promise<void> {
  await s.server.stop();
  await s.container.close();
}

interface RawRun {
  /** session.run summed over windows, ms. */
  runMs: number;
  calls: number;
  /** The whole SlidingWindowInferer.infer (window copies, blending, division included), ms. */
  infererMs: number;
}

async function main(): Promise<void> {
  await ensureColin();
  const root = await mkdtemp(join(tmpdir(), "labelgraph-bench-infer-"));
  const servers: BenchServer[] = [];
  try {
    // The model: MONAI radiology's segmentation UNet shape, deterministic random weights, one window as input.
    const modelPath = join(root, "unet.onnx");
    const net = new UNet({
      spatialDims: 3,
      inChannels: 1,
      outChannels: OUT_CHANNELS,
      channels: CHANNELS,
      strides: STRIDES,
      numResUnits: NUM_RES_UNITS,
      norm: "INSTANCE",
      seed: 1,
    });
    await writeFile(modelPath, net.toOnnx({ inputShape: [1, 1, ...ROI] }));

    // The fixture app's task, loaded as the server loads it, for the in-process steps.
    const app = await loadApp({ appDir: APP, studiesDir: join(root, "app-studies"), conf: { model_path: modelPath } });
    const task = app.infers().segmentation as BasicInferTask | undefined;
    if (!task) {
      throw new Error("the fixture app has no segmentation model");
    }
    const params: Data = { roi_size: ROI };
    const preData = (): Data => ({ ...task.config, ...params, image: COLIN, image_path: COLIN });
    const pre = new Compose(task.preTransforms(preData()));
    const preprocessed = await pre.call(preData());
    const image = preprocessed.image as MetaTensor;
    const input = { data: toCOrder(image), shape: [1, ...image.shape] };
    const spatial = image.spatialShape;
    const starts = denseWindowStarts(spatial, ROI, scanInterval(spatial, ROI, [OVERLAP, OVERLAP, OVERLAP]));
    const windows = starts.length;

    // Raw baseline: a session with the pool's options, session.run timed inside a sliding window.
    const session = await InferenceSession.create(modelPath, poolSessionOptions(THREADS));
    const rawClock = new RunClock();
    const predictor = rawPredictor(session, rawClock);
    const inferer = new SlidingWindowInferer({ roiSize: ROI, overlap: OVERLAP, swBatchSize: 1 });
    let lastOutput: { data: Float32Array; shape: number[] } | undefined;
    const runRaw = async (): Promise<RawRun> => {
      rawClock.reset();
      const r = await timed(() => inferer.infer(input, predictor));
      lastOutput = r.value;
      return { runMs: rawClock.ms, calls: rawClock.calls, infererMs: r.ms };
    };

    progress(`servers: starting (WORKERS=1 and WORKERS=0), uploading Colin27`);
    for (const w of [1, 0]) {
      servers.push(await startServer(root, modelPath, w));
    }

    progress(`warm-up: raw and one runInference per server (${windows} windows each)`);
    await runRaw();
    for (const s of servers) {
      await runWhole(s);
    }

    // Interleaved rounds, so that drift on a shared machine hits every row alike.
    const raw: RawRun[] = [];
    const whole = new Map<BenchServer, WholeRun[]>(servers.map((s) => [s, []]));
    for (let i = 0; i < RUNS; i++) {
      const r = await runRaw();
      raw.push(r);
      progress(`run ${i + 1}/${RUNS}: raw ${sec(r.runMs / 1000)} s (${r.calls} session.run)`);
      for (const s of servers) {
        const w = await runWhole(s);
        whole.get(s)?.push(w);
        progress(`run ${i + 1}/${RUNS}: ${s.label}: whole ${sec(w.wholeMs / 1000)} s`);
      }
    }

    // PyTorch, when Debian's python3-torch is there.
    let torch: TorchResult | null = null;
    let torchNote = "PyTorch: skipped (python3-torch not installed)";
    if (torchAvailable()) {
      progress("PyTorch: timing the same UNet in torch.nn");
      try {
        torch = runTorch({
          inChannels: 1,
          outChannels: OUT_CHANNELS,
          channels: CHANNELS,
          strides: STRIDES,
          numResUnits: NUM_RES_UNITS,
          roi: ROI,
          windows,
          runs: RUNS,
          threads: THREADS,
        });
        torchNote = "";
      } catch (err) {
        torchNote = `PyTorch: failed (${(err as Error).message.split("\n")[0]})`;
      }
    }

    // ---- Breakdown: the pipeline's steps one by one, in this process, on the same data.
    progress("breakdown: timing the pipeline's steps in-process");
    const steps = new Map<string, number[]>();
    const add = (name: string, ms: number) => steps.set(name, [...(steps.get(name) ?? []), ms]);
    const labelMap = task.labelMap();
    const out = lastOutput as { data: Float32Array; shape: number[] };
    for (let i = 0; i < RUNS; i++) {
      let d = preData();
      for (const t of task.preTransforms(d)) {
        const r = await timed(() => t.call(d));
        d = r.value;
        add(`pre: ${t.constructor.name}`, r.ms);
      }
      add("infer: toCOrder(image)", (await timed(() => toCOrder(image))).ms);
      const back = await timed(() => fromCOrder(out.data, out.shape.slice(1), image));
      add("infer: fromCOrder(output)", back.ms);
      let data: Data = { ...preprocessed, pred: back.value };
      const inv = await timed(() =>
        new Invertd({ keys: "pred", transform: pre, origKey: "image" }).call(data as Record<string, unknown>),
      );
      data = inv.value;
      add("invert: Invertd", inv.ms);
      const postInput = data;
      for (const t of task.postTransforms(data)) {
        const r = await timed(() => t.call(data));
        data = r.value;
        add(`post: ${t.constructor.name} (alone)`, r.ms);
      }
      // What BasicInferTask runs: Compose fuses sigmoid + threshold into one pass (same result).
      const plan = fusedPlan(task.postTransforms(postInput)).map((t) => t.constructor.name);
      add(
        `post: Compose, as run (${plan.join(" + ")})`,
        (await timed(() => new Compose(task.postTransforms(postInput)).call(postInput))).ms,
      );
      const pred = data.pred as MetaTensor;
      const vol = await timed(() => toVolume(pred, "uint8"));
      add("write: toVolume(uint8)", vol.ms);
      add(W_NIFTI_GZ, (await timed(() => writeNifti(vol.value, join(root, "l.nii.gz")))).ms);
      const enc = await timed(() => encodeNifti(vol.value));
      add(W_ENCODE, enc.ms);
      add(W_GZIP6, (await timed(() => gzipAsync(enc.value))).ms);
      add(W_GZIP1, (await timed(() => gzipAsync(enc.value, { level: 1 }))).ms);
      add(CENTROIDS, (await timed(() => centroids(pred, labelMap))).ms);
      for (const [name, mode, precision] of [
        [SW32, "constant", "float32"],
        [SW64, "constant", "float64"],
        [SWG32, "gaussian", "float32"],
      ] as const) {
        // Bookkeeping alone: a predictor that hands the window back (no model).
        const sw = new SlidingWindowInferer({ roiSize: ROI, overlap: OVERLAP, swBatchSize: 1, precision, mode });
        add(name, (await timed(() => sw.infer(input, async (x) => x))).ms);
      }
    }

    // ---- Report.
    const rawMs = median(raw.map((r) => r.runMs));
    const rawInfererMs = median(raw.map((r) => r.infererMs));
    const header = [
      "row",
      "session.run sum",
      "whole (HTTP)",
      "whole/raw",
      `target <${TARGET}`,
      "whole/raw paired",
      "whole/own run",
      "pre",
      "infer",
      "invert",
      "post",
      "write",
      "task total",
      "HTTP - task",
    ];
    const rows: string[][] = [
      [
        `onnxruntime-node raw (${windows} x session.run)`,
        sec(rawMs / 1000),
        "–",
        "1.000",
        "",
        "–",
        "–",
        "–",
        sec(rawInfererMs / 1000),
        "–",
        "–",
        "–",
        "–",
        "–",
      ],
    ];
    for (const s of servers) {
      const ws = whole.get(s) ?? [];
      const wholeMs = median(ws.map((w) => w.wholeMs));
      const lat = (k: keyof Latencies) => median(ws.map((w) => w.latencies[k]));
      const seen = ws.every((w) => w.serverRunCalls > 0);
      const ratio = wholeMs / rawMs;
      rows.push([
        s.label,
        seen ? sec(median(ws.map((w) => w.serverRunMs)) / 1000) : "n/a (worker)",
        sec(wholeMs / 1000),
        ratio.toFixed(3),
        ratio < TARGET ? "met" : "MISSED",
        // Run i's whole over run i's raw (measured back to back): less swayed by the host's speed drifting
        // between runs than the ratio of medians, which decides the target column.
        median(ws.map((w, i) => w.wholeMs / (raw[i]?.runMs ?? Number.NaN))).toFixed(3),
        seen ? median(ws.map((w) => w.wholeMs / w.serverRunMs)).toFixed(3) : "–",
        sec(lat("pre")),
        sec(lat("infer")),
        sec(lat("invert")),
        sec(lat("post")),
        sec(lat("write")),
        sec(lat("total")),
        sec(median(ws.map((w) => w.wholeMs / 1000 - w.latencies.total))),
      ]);
    }
    if (torch) {
      const torchMs = median(torch.runsMs);
      rows.push([
        `PyTorch ${torch.version} forward (${windows} windows)`,
        sec(torchMs / 1000),
        "–",
        (torchMs / rawMs).toFixed(3),
        "",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
        "–",
      ]);
    }

    const cpu = cpus()[0]?.model ?? "unknown CPU";
    const ortVersion = (
      JSON.parse(await readFile(join(REPO, "node_modules/onnxruntime-node/package.json"), "utf8")) as {
        version: string;
      }
    ).version;
    console.log("# labelgraph inference benchmark: 3D UNet on Colin27 with SlidingWindowInferer\n");
    console.log(
      `Model: UNet(spatial_dims=3, in=1, out=${OUT_CHANNELS}, channels=[${CHANNELS.join(",")}], ` +
        `strides=[${STRIDES.join(",")}], num_res_units=${NUM_RES_UNITS}, norm=INSTANCE), random weights, ` +
        `input [1,1,${ROI.join(",")}] (out=1: the fixture app applies sigmoid + threshold 0.5).`,
    );
    console.log(
      `Image: Colin27 ch2.nii.gz ${spatial.join("x")}; roi ${ROI.join("x")}, overlap ${OVERLAP}, ` +
        `sw_batch_size 1: ${windows} windows per inference.`,
    );
    console.log(
      `Machine: ${cpu}, ${THREADS} threads (intraOpNumThreads=${THREADS}); Node ${process.version}, ` +
        `onnxruntime-node ${ortVersion}. Medians of ${RUNS} runs after 1 warm-up; times in seconds.`,
    );
    console.log(
      "whole/raw: median whole (HTTP) / median raw session.run sum (a separate session on the same .onnx, same " +
        "options); whole/own run: per request, whole / the session.run sum inside that server (immune to drift " +
        "between rows; n/a when the model runs on a worker). PyTorch row: whole/raw column is torch / raw.\n",
    );
    console.log(table(header, rows));
    if (!torch) {
      console.log(`\n${torchNote}`);
    } else {
      const best = Math.min(...servers.map((s) => median((whole.get(s) ?? []).map((w) => w.wholeMs))));
      const torchMs = median(torch.runsMs);
      console.log(
        `\nPyTorch forward sum ${sec(torchMs / 1000)} s vs labelgraph whole ${sec(best / 1000)} s: ` +
          `${best < torchMs ? "labelgraph faster (target met)" : "PyTorch faster (target MISSED)"}; ` +
          `raw onnxruntime ${sec(rawMs / 1000)} s.`,
      );
    }

    console.log("\n## Where whole - raw goes (medians, in-process unless noted)\n");
    const stepRows: string[][] = [];
    stepRows.push([
      "infer: SlidingWindowInferer bookkeeping (inferer - session.run, raw)",
      msStr(rawInfererMs - rawMs),
    ]);
    for (const [name, ms] of steps) {
      stepRows.push([name, msStr(median(ms))]);
    }
    for (const s of servers) {
      const ws = whole.get(s) ?? [];
      stepRows.push([
        `${s.label}: infer latency - server session.run sum`,
        ws.every((w) => w.serverRunCalls > 0)
          ? msStr(median(ws.map((w) => w.latencies.infer * 1000 - w.serverRunMs)))
          : "n/a (ran on a worker)",
      ]);
      stepRows.push([
        `${s.label}: whole - task total (HTTP, DB, localPath, centroids, saveLabel)`,
        msStr(median(ws.map((w) => w.wholeMs - w.latencies.total * 1000))),
      ]);
      stepRows.push([`${s.label}: upload Colin27 (once, not in whole)`, msStr(s.uploadMs)]);
      stepRows.push([`${s.label}: download label (after, not in whole)`, msStr(median(ws.map((w) => w.downloadMs)))]);
    }
    console.log(table(["step", "median"], stepRows));
    for (const s of servers) {
      const ws = whole.get(s) ?? [];
      if (s.workers > 0 && ws.every((w) => w.serverRunCalls > 0)) {
        console.log(
          `\nNote: with LABELGRAPH_INFER_WORKERS=${s.workers} the model still ran in the server's main-thread pool ` +
            `(${ws[0]?.serverRunCalls} session.run calls seen there): InferenceService.runInference does not use ` +
            "its `workers`.",
        );
      }
    }
    await session.release();
  } finally {
    for (const s of servers) {
      await stopServer(s).catch((err: unknown) => progress(`stopping ${s.label}: ${(err as Error).message}`));
    }
    if (args.keep) {
      progress(`kept ${root}`);
    } else {
      await rm(root, { recursive: true, force: true });
    }
  }
  const end = performance.now();
  progress(`done in ${(end / 1000).toFixed(0)} s`);
}

await main();
