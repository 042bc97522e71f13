/**
 * Training benchmark (see the issue: step time against PyTorch, and held-out Dice against training time on real
 * data).
 *
 *   npx tsx bench/train/index.ts [--minutes 5] [--skip-colin] [--skip-steps] [--profile]
 *       [--threads 2] [--lr 1e-2] [--schedule cosine|poly|constant] [--min-lr 1e-4] [--channels 16,32,64]
 *       [--res-units 0] [--loss dice|dicece] [--pad 192x224] [--no-flip] [--eval-every 30] [--seed 0]
 *
 * Table 1: median ms per training step (forward + Dice loss + backward + Adam, one session.run of labelgraph's
 * Trainer) after 3 warm-up steps, over 15 steps, random inputs and labels, for the 2D UNet (channels 16/32/64,
 * strides 2/2, IN + ReLU, 4x1x128x128) and the 3D UNet (channels 8/16, stride 2, 1x1x64^3); and the same network
 * in PyTorch (bench/train/torch_step.py) when `/usr/bin/python3 -c "import torch"` works. Without torch the issue's
 * reference numbers (python3-torch 1.13, measured elsewhere) are shown, labelled as not measured in this run.
 * --profile adds the ORT profile of each step model (kernel time by part and op type, top nodes).
 *
 * Table 2: the Colin27 brain-mask benchmark (shared/reference/data.md): 144 axial slices of ch2.nii.gz, label
 * ch2bet > 0, 110 train / 34 test slices (block split). Each 181x217 slice is scaled to [0, 1] (whole volume) and
 * zero-padded, centered, to 192x224 (x by y; --pad); Dice is computed on the original 181x217 area only. A 2D UNet
 * (default channels 16/32/64, strides 2/2, IN + ReLU, no residual units) trains with Adam and sigmoid Dice loss,
 * batch 4, random left-right flips, for --minutes of training time; every --eval-every seconds the held-out Dice
 * (sigmoid > 0.5, mean over the 34 test slices) is measured by a forward-only model built with
 * `network.loadParameters(trainer.parameters())` + `network.toOnnx`. The training clock includes building the
 * step model and creating its session, and excludes data loading and evaluation. The learning rate follows the
 * schedule over training time (not steps), so it ends at --min-lr when the time is up whatever the step rate.
 *
 * Tables go to stdout, progress to stderr. The machine's load average is printed at the start and the end.
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { GraphBuilder } from "../../src/graph/builder.js";
import type { Value } from "../../src/graph/ir.js";
import { numel } from "../../src/graph/ir.js";
import { diceCELoss, diceLoss } from "../../src/nn/losses.js";
import type { Network } from "../../src/nn/module.js";
import { Adam, constantLR, cosineLR, type LRSchedule, polyLR } from "../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../src/nn/train-step.js";
import { UNet } from "../../src/nn/unet.js";
import { ClassicUNet } from "./classic-unet.js";
import {
  batchDice,
  evaluate,
  geometry,
  loadAverage,
  loadColin,
  median,
  profileStep,
  progress,
  putSlice,
  randn,
  rng,
  runTorch,
  type Slice,
  shuffle,
  stepFeeds,
  type TorchResult,
  table,
  torchVersion,
} from "./lib.js";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    "skip-colin": { type: "boolean", default: false },
    "skip-steps": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    threads: { type: "string", default: "2" },
    warmup: { type: "string", default: "3" },
    runs: { type: "string", default: "15" },
    lr: { type: "string", default: "1e-2" },
    "min-lr": { type: "string", default: "1e-4" },
    schedule: { type: "string", default: "cosine" },
    channels: { type: "string", default: "16,32,64" },
    "res-units": { type: "string", default: "0" },
    loss: { type: "string", default: "dice" },
    batch: { type: "string", default: "4" },
    pad: { type: "string", default: "192x224" },
    "no-flip": { type: "boolean", default: false },
    "eval-every": { type: "string", default: "30" },
    seed: { type: "string", default: "0" },
    data: { type: "string", default: join(import.meta.dirname, "../../test/fixtures/.cache") },
  },
});

function num(name: keyof typeof args, check: (v: number) => boolean = Number.isFinite): number {
  const v = Number(args[name]);
  if (!check(v)) {
    throw new Error(`--${name}: invalid value ${String(args[name])}`);
  }
  return v;
}
const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

const THREADS = num("threads", positiveInt);
const WARMUP = num("warmup", (v) => Number.isInteger(v) && v >= 0);
const RUNS = num("runs", positiveInt);
const MINUTES = num("minutes", (v) => v > 0);
const LR = num("lr", (v) => v > 0);
const MIN_LR = num("min-lr", (v) => v >= 0);
const RES_UNITS = num("res-units", (v) => Number.isInteger(v) && v >= 0);
const BATCH = num("batch", positiveInt);
const EVAL_EVERY_MS = num("eval-every", (v) => v > 0) * 1000;
const SEED = num("seed", Number.isInteger);
const CHANNELS = args.channels.split(",").map(Number);
if (CHANNELS.length < 2 || !CHANNELS.every(positiveInt)) {
  throw new Error(`--channels: give at least two positive integers, got ${args.channels}`);
}
const padMatch = /^(\d+)x(\d+)$/.exec(args.pad);
if (!padMatch) {
  throw new Error(`--pad: expected WIDTHxHEIGHT (x by y), got ${args.pad}`);
}
const PAD_W = Number(padMatch[1]);
const PAD_H = Number(padMatch[2]);
if (!["cosine", "poly", "constant"].includes(args.schedule)) {
  throw new Error(`--schedule: cosine, poly or constant, got ${args.schedule}`);
}
if (!["dice", "dicece"].includes(args.loss)) {
  throw new Error(`--loss: dice or dicece, got ${args.loss}`);
}

/** The issue's PyTorch numbers: Debian python3-torch 1.13, 2 threads, measured elsewhere (not in this run). */
const REFERENCE_TORCH_MS: Record<string, number> = { "2D": 153, "3D": 485 };
const TARGET_RATIO = 0.8;
const TARGET_DICE = 0.93;
const TARGET_MINUTES = 5;

const sigmoidDice = (g: GraphBuilder, pred: Value, target: Value) => diceLoss(g, pred, target, { sigmoid: true });
const sigmoidDiceCE = (g: GraphBuilder, pred: Value, target: Value) => diceCELoss(g, pred, target, { sigmoid: true });

const paramCount = (net: Network) => [...net.parameters().values()].reduce((a, p) => a + p.data.length, 0);
const f1 = (v: number) => v.toFixed(1);

// ------------------------------------------------------------------------------------- Table 1: step time

interface Case {
  name: "2D" | "3D";
  /** "monai": labelgraph's UNet (MONAI's); "classic": the feasibility study's U-Net (classic-unet.ts). */
  arch: "monai" | "classic";
  dims: 2 | 3;
  shape: number[];
  channels: number[];
  strides: number[];
}

const CASES: Case[] = [
  { name: "2D", arch: "monai", dims: 2, shape: [4, 1, 128, 128], channels: [16, 32, 64], strides: [2, 2] },
  { name: "3D", arch: "monai", dims: 3, shape: [1, 1, 64, 64, 64], channels: [8, 16], strides: [2] },
  { name: "2D", arch: "classic", dims: 2, shape: [4, 1, 128, 128], channels: [16, 32, 64], strides: [] },
  { name: "3D", arch: "classic", dims: 3, shape: [1, 1, 64, 64, 64], channels: [8, 16], strides: [] },
];

const caseLabel = (c: Case) =>
  c.arch === "monai"
    ? `${c.name} UNet [${c.channels}] s[${c.strides}] IN+ReLU`
    : `${c.name} classic U-Net [${c.channels}] (study's)`;

function caseNetwork(c: Case): Network {
  if (c.arch === "classic") {
    return new ClassicUNet(c.dims, c.channels);
  }
  return new UNet({
    spatialDims: c.dims,
    inChannels: 1,
    outChannels: 1,
    channels: c.channels,
    strides: c.strides,
    norm: "INSTANCE",
    act: "RELU",
    seed: 0,
  });
}

interface StepTiming {
  c: Case;
  params: number;
  buildMs: number;
  firstMs: number;
  median: number;
  min: number;
  max: number;
  modelKb: number;
}

async function timeCase(c: Case): Promise<StepTiming> {
  const net = caseNetwork(c);
  const t0 = performance.now();
  const ts = buildTrainStep({
    network: net,
    inputShape: c.shape,
    targetShape: c.shape,
    loss: sigmoidDice,
    optimizer: new Adam(),
  });
  const buildMs = performance.now() - t0;
  const random = rng(1234);
  const image = randn(numel(c.shape), random);
  const label = Float32Array.from({ length: numel(c.shape) }, () => (random() > 0.5 ? 1 : 0));
  const trainer = new Trainer(ts, { threads: THREADS });
  const t1 = performance.now();
  await trainer.step(image, label, 1e-3);
  const firstMs = performance.now() - t1;
  for (let i = 1; i < WARMUP; i++) {
    await trainer.step(image, label, 1e-3);
  }
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    await trainer.step(image, label, 1e-3);
    times.push(performance.now() - s);
  }
  await trainer.release();
  if (args.profile) {
    progress(`${caseLabel(c)}: profiling 5 steps`);
    const prof = await profileStep(ts, stepFeeds(ts, image, label, 1e-3), THREADS, 5);
    const pct = (s: number) => `${(100 * s).toFixed(1)} %`;
    console.log(
      `\nProfile of the ${caseLabel(c)} step model (ORT kernel time, ${f1(prof.totalMs)} ms per step in kernels):`,
    );
    console.log(
      table(
        ["part", "ms/step", "share", "nodes"],
        prof.byPart.map((r) => [r.key, f1(r.ms), pct(r.share), String(r.nodes)]),
      ),
    );
    console.log(
      table(
        ["op type", "ms/step", "share", "nodes"],
        prof.byOp.slice(0, 12).map((r) => [r.key, f1(r.ms), pct(r.share), String(r.nodes)]),
      ),
    );
    console.log(
      table(
        ["top nodes", "ms/step", "share"],
        prof.byNode.slice(0, 15).map((r) => [r.key, f1(r.ms), pct(r.share)]),
      ),
    );
  }
  return {
    c,
    params: paramCount(net),
    buildMs,
    firstMs,
    median: median(times),
    min: Math.min(...times),
    max: Math.max(...times),
    modelKb: ts.model.length / 1024,
  };
}

async function stepTable(): Promise<void> {
  const torch = torchVersion();
  progress(torch ? `PyTorch ${torch} found: measuring it in this run` : "python3-torch not installed: no PyTorch row");
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const c of CASES) {
    progress(`${caseLabel(c)}: labelgraph ${WARMUP} warm-up + ${RUNS} timed steps`);
    const t = await timeCase(c);
    const input = c.shape.join("x");
    const arch = caseLabel(c);
    notes.push(
      `${caseLabel(c)}: step model ${t.modelKb.toFixed(0)} KB, built in ${t.buildMs.toFixed(0)} ms; ` +
        `first step (session creation) ${t.firstMs.toFixed(0)} ms; timed steps min ${f1(t.min)} / max ${f1(t.max)} ms`,
    );
    let torchCell: string;
    let ratioCell: string;
    let verdict: string;
    if (torch) {
      progress(`${caseLabel(c)}: PyTorch ${WARMUP} warm-up + ${RUNS} timed steps`);
      const r: TorchResult = runTorch({
        arch: c.arch,
        dims: c.dims,
        shape: c.shape,
        channels: c.channels,
        strides: c.strides,
        threads: THREADS,
        warmup: WARMUP,
        runs: RUNS,
      });
      if (r.params !== t.params) {
        notes.push(`${caseLabel(c)}: PyTorch net has ${r.params} parameters, labelgraph ${t.params} (should match)`);
      }
      const ratio = t.median / r.median_ms;
      torchCell = `${f1(r.median_ms)} (torch ${r.torch}, ${r.threads} thr)`;
      ratioCell = `${ratio.toFixed(2)}x`;
      verdict = ratio <= TARGET_RATIO ? "met" : "MISSED";
    } else {
      const ref = REFERENCE_TORCH_MS[c.name]!;
      const ratio = t.median / ref;
      torchCell = `${ref} (issue's number, NOT measured here)`;
      ratioCell = `${ratio.toFixed(2)}x (indicative only)`;
      verdict = ratio <= TARGET_RATIO ? "met (indicative)" : "missed (indicative)";
    }
    rows.push([arch, input, String(t.params), f1(t.median), torchCell, ratioCell, `<= ${TARGET_RATIO}x: ${verdict}`]);
  }
  console.log(`\nTable 1: training step time, median of ${RUNS} steps after ${WARMUP} warm-up, ${THREADS} threads`);
  console.log(table(["network", "input", "params", "labelgraph ms/step", "PyTorch ms/step", "ratio", "target"], rows));
  for (const n of notes) {
    console.log(`  ${n}`);
  }
  if (!torch) {
    console.log(
      "  PyTorch: /usr/bin/python3 cannot import torch on this machine, so no PyTorch step was run; the PyTorch column\n" +
        "  is the issue's figure (Debian python3-torch 1.13, 2 threads, measured elsewhere, NOT in this run) and every\n" +
        "  ratio is indicative only. Those figures most likely belong to the study's classic U-Net (117k / 18.7k\n" +
        "  params, rows 'classic'), not to MONAI's UNet with the same channel lists (37k / 4.3k params, about 9x fewer\n" +
        "  FLOPs in 2D), so the MONAI rows' ratios flatter labelgraph. Install python3-torch and rerun to measure\n" +
        "  both networks in PyTorch in the same run (bench/train/torch_step.py).",
    );
  }
}

// ----------------------------------------------------------------------------------- Table 2: Colin27 Dice

async function colinTable(): Promise<void> {
  const dir = args.data;
  if (!existsSync(join(dir, "ch2.nii.gz")) || !existsSync(join(dir, "ch2bet.nii.gz"))) {
    throw new Error(`Colin27 files not found in ${dir}: run bash scripts/fetch-fixtures.sh (or pass --data DIR)`);
  }
  const data = await loadColin(dir);
  progress(`Colin27: ${data.train.length} train / ${data.test.length} test slices of ${data.width}x${data.height}`);
  if (data.train.length + data.test.length !== 144 || data.test.length !== 34) {
    progress(`warning: expected 110 train / 34 test slices (shared/reference/data.md)`);
  }
  const geo = geometry(data.width, data.height, PAD_W, PAD_H);
  const strides = CHANNELS.slice(1).map(() => 2);
  const divisor = 2 ** strides.length;
  if (PAD_W % divisor !== 0 || PAD_H % divisor !== 0) {
    throw new Error(`--pad ${args.pad}: both sizes must be multiples of ${divisor} for ${strides.length} strides of 2`);
  }
  const shape = [BATCH, 1, PAD_H, PAD_W];
  const budgetMs = MINUTES * 60_000;
  const schedule: LRSchedule =
    args.schedule === "cosine"
      ? cosineLR(LR, { totalSteps: budgetMs, minLr: MIN_LR })
      : args.schedule === "poly"
        ? polyLR(LR, { totalSteps: budgetMs, minLr: MIN_LR })
        : constantLR(LR);
  const flip = !args["no-flip"];
  const random = rng(SEED + 1);

  // Training clock: runs while building/stepping, paused while evaluating.
  let trainedMs = 0;
  let segment = performance.now();
  const clock = () => trainedMs + (performance.now() - segment);
  const pause = () => {
    trainedMs += performance.now() - segment;
  };
  const resume = () => {
    segment = performance.now();
  };

  const network = new UNet({
    spatialDims: 2,
    inChannels: 1,
    outChannels: 1,
    channels: CHANNELS,
    strides,
    numResUnits: RES_UNITS,
    norm: "INSTANCE",
    act: "RELU",
    seed: SEED,
  });
  const ts = buildTrainStep({
    network,
    inputShape: shape,
    targetShape: shape,
    loss: args.loss === "dicece" ? sigmoidDiceCE : sigmoidDice,
    optimizer: new Adam(),
  });
  const trainer = new Trainer(ts, { threads: THREADS });
  const setup = `2D UNet channels [${CHANNELS}] strides [${strides}] numResUnits ${RES_UNITS} IN+ReLU (${paramCount(network)} params), input ${shape.join("x")} (181x217 centered zero-pad to ${PAD_W}x${PAD_H}), Adam lr ${LR} ${args.schedule}${args.schedule === "constant" ? "" : ` -> ${MIN_LR} over ${MINUTES} min of training time`}, loss ${args.loss === "dice" ? "Dice (sigmoid)" : "Dice + BCE (sigmoid)"}, ${flip ? "random left-right flips" : "no augmentation"}, seed ${SEED}, ${THREADS} threads`;
  progress(setup);

  const image = new Float32Array(numel(shape));
  const label = new Float32Array(numel(shape));
  let order: Slice[] = [];
  let epoch = 0;
  const next = (): Slice => {
    if (order.length === 0) {
      order = shuffle([...data.train], random);
      epoch++;
    }
    return order.pop()!;
  };

  const rows: string[][] = [];
  const history: { s: number; dice: number }[] = [];
  const stepTimes: number[] = [];
  let losses: number[] = [];
  let trainDice: number[] = [];
  let lastLr = schedule(0);
  const evalRow = async (steps: number) => {
    pause();
    const at = trainedMs;
    const e0 = performance.now();
    network.loadParameters(trainer.parameters());
    const { dice } = await evaluate(network, geo, data.test, THREADS);
    const evalMs = performance.now() - e0;
    const mean = (xs: number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
    const loss = mean(losses);
    const hard = mean(trainDice);
    history.push({ s: at / 1000, dice });
    rows.push([
      f1(at / 1000),
      String(steps),
      f1((steps * BATCH) / data.train.length),
      lastLr.toExponential(1),
      Number.isNaN(loss) ? "-" : loss.toFixed(4),
      Number.isNaN(hard) ? "-" : hard.toFixed(4),
      dice.toFixed(4),
      evalMs.toFixed(0),
    ]);
    progress(
      `t=${f1(at / 1000)} s step ${steps} lr ${lastLr.toExponential(1)} loss ${Number.isNaN(loss) ? "-" : loss.toFixed(4)} held-out Dice ${dice.toFixed(4)} (eval ${evalMs.toFixed(0)} ms)`,
    );
    losses = [];
    trainDice = [];
    resume();
  };

  let nextEval = EVAL_EVERY_MS;
  let steps = 0;
  let lastStepMs = 0;
  while (clock() + lastStepMs <= budgetMs) {
    for (let n = 0; n < BATCH; n++) {
      putSlice(geo, next(), image, label, n, { flipX: flip && random() < 0.5 });
    }
    lastLr = schedule(clock());
    const s = performance.now();
    const { loss, pred } = await trainer.step(image, label, lastLr);
    lastStepMs = performance.now() - s;
    stepTimes.push(lastStepMs);
    losses.push(loss);
    trainDice.push(batchDice(pred, label, BATCH));
    steps++;
    if (clock() >= nextEval) {
      await evalRow(steps);
      while (nextEval <= trainedMs) {
        nextEval += EVAL_EVERY_MS;
      }
    }
  }
  if (losses.length > 0) {
    await evalRow(steps);
  }
  await trainer.release();

  console.log(
    `\nTable 2: Colin27 brain mask, held-out Dice (34 test slices, sigmoid > 0.5, on the 181x217 area) against training time`,
  );
  console.log(`  ${setup}`);
  console.log(
    "  train loss / train Dice: mean soft Dice loss / hard Dice (logits > 0, padded frame) of the training batches since\n" +
      "  the previous row, computed by the step itself with the weights before each update (augmented batches).",
  );
  console.log(
    table(["train s", "steps", "epochs", "lr", "train loss", "train Dice", "held-out Dice", "eval ms"], rows),
  );
  const steady = stepTimes.slice(3);
  console.log(
    `  ${steps} steps in ${f1(trainedMs / 1000)} s of training (epoch ${epoch} started); ms/step median ${f1(median(steady))}` +
      ` (first step incl. session creation ${stepTimes[0]?.toFixed(0)} ms)`,
  );
  const within = history.filter((h) => h.s <= TARGET_MINUTES * 60);
  const best = within.reduce((b, h) => (h.dice > b.dice ? h : b), { s: 0, dice: Number.NEGATIVE_INFINITY });
  const first = within.find((h) => h.dice >= TARGET_DICE);
  const final = history.at(-1)!;
  console.log(
    `Best held-out Dice within ${TARGET_MINUTES} min of training: ${best.dice.toFixed(4)} at ${f1(best.s)} s; ` +
      `final ${final.dice.toFixed(4)} at ${f1(final.s)} s. Target (>= ${TARGET_DICE} within ${TARGET_MINUTES} min): ` +
      (first ? `MET (first reached at ${f1(first.s)} s)` : "MISSED"),
  );
}

// ------------------------------------------------------------------------------------------------- main

const startLoad = loadAverage();
console.log(
  `bench:train  ${new Date().toISOString()}  node ${process.version}  ${cpus().length} x ${cpus()[0]?.model ?? "?"}` +
    `  threads ${THREADS}\nload average at start (1/5/15 min): ${startLoad}`,
);
if (!args["skip-steps"]) {
  await stepTable();
}
if (!args["skip-colin"]) {
  await colinTable();
}
console.log(`\nload average at start: ${startLoad}; at end: ${loadAverage()}`);
