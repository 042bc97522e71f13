/**
 * Helpers of bench/train: statistics, the Colin27 slice data set, padded batches, hard Dice, a forward-only
 * evaluator, the PyTorch reference runner and an ORT profile of one training-step model.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { numel } from "../../src/graph/ir.js";
import { readNifti } from "../../src/io/nifti.js";
import type { Network } from "../../src/nn/module.js";
import type { TrainStep } from "../../src/nn/train-step.js";

export const progress = (msg: string) => process.stderr.write(`[bench:train] ${msg}\n`);

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function loadAverage(): string {
  return loadavg()
    .map((v) => v.toFixed(2))
    .join(" ");
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** mulberry32: a small seeded PRNG in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller). */
export function randn(n: number, random: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const th = 2 * Math.PI * random();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) {
      out[i + 1] = r * Math.sin(th);
    }
  }
  return out;
}

export function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

// ------------------------------------------------------------------------------------------- Colin27 data

/** One axial slice, W (x, fastest) by H (y), row-major: index = x + W * y. */
export interface Slice {
  z: number;
  image: Float32Array;
  label: Uint8Array;
  /** Mask pixels. */
  area: number;
}

export interface ColinData {
  width: number;
  height: number;
  train: Slice[];
  test: Slice[];
}

/**
 * The Colin27 brain-mask benchmark (shared/reference/data.md): axial slices (axis 2) of ch2.nii.gz with more than
 * 200 pixels of ch2bet.nii.gz > 0; intensity scaled to [0, 1] over the whole volume (MONAI's ScaleIntensity);
 * test = slices with (z // 8) % 4 == 3.
 */
export async function loadColin(dir: string): Promise<ColinData> {
  const [img, seg] = await Promise.all([readNifti(join(dir, "ch2.nii.gz")), readNifti(join(dir, "ch2bet.nii.gz"))]);
  if (img.shape.join() !== seg.shape.join() || img.shape.length < 3) {
    throw new Error(`Colin27: image ${img.shape} and label ${seg.shape} differ`);
  }
  const [width, height, depth] = img.shape as [number, number, number];
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < img.data.length; i++) {
    const v = img.data[i]!;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? 1 / (hi - lo) : 0;
  const plane = width * height;
  const train: Slice[] = [];
  const test: Slice[] = [];
  for (let z = 0; z < depth; z++) {
    const image = new Float32Array(plane);
    const label = new Uint8Array(plane);
    let area = 0;
    for (let i = 0; i < plane; i++) {
      image[i] = (img.data[z * plane + i]! - lo) * scale;
      const m = seg.data[z * plane + i]! > 0 ? 1 : 0;
      label[i] = m;
      area += m;
    }
    if (area > 200) {
      (Math.floor(z / 8) % 4 === 3 ? test : train).push({ z, image, label, area });
    }
  }
  return { width, height, train, test };
}

/** Where an original W x H slice sits inside the network's PW x PH input (centered pad, or crop where smaller). */
export interface Geometry {
  width: number;
  height: number;
  padWidth: number;
  padHeight: number;
  /** Offset of the original x = 0 / y = 0 in the padded frame (negative: cropped). */
  offX: number;
  offY: number;
}

export function geometry(width: number, height: number, padWidth: number, padHeight: number): Geometry {
  // MONAI's SpatialPad / CenterSpatialCrop: the smaller half of the difference goes in front.
  return {
    width,
    height,
    padWidth,
    padHeight,
    offX: Math.floor((padWidth - width) / 2),
    offY: Math.floor((padHeight - height) / 2),
  };
}

/**
 * Writes a slice into item `n` of a padded batch [N, 1, PH, PW] (zeros outside), optionally flipped left-right
 * (x) and scaled/shifted in intensity (image only).
 */
export function putSlice(
  geo: Geometry,
  s: Slice,
  image: Float32Array,
  label: Float32Array,
  n: number,
  aug: { flipX?: boolean; flipY?: boolean; gain?: number; shift?: number } = {},
): void {
  const { width, height, padWidth, padHeight, offX, offY } = geo;
  const base = n * padWidth * padHeight;
  image.fill(0, base, base + padWidth * padHeight);
  label.fill(0, base, base + padWidth * padHeight);
  const gain = aug.gain ?? 1;
  const shift = aug.shift ?? 0;
  for (let y = 0; y < height; y++) {
    const py = y + offY;
    if (py < 0 || py >= padHeight) {
      continue;
    }
    const sy = aug.flipY ? height - 1 - y : y;
    for (let x = 0; x < width; x++) {
      const px = x + offX;
      if (px < 0 || px >= padWidth) {
        continue;
      }
      const sx = aug.flipX ? width - 1 - x : x;
      const src = sx + width * sy;
      const dst = base + px + padWidth * py;
      image[dst] = s.image[src]! * gain + shift;
      label[dst] = s.label[src]!;
    }
  }
}

/** Hard Dice of logits > 0 (sigmoid > 0.5) against the slice's mask, over the original W x H area only. */
export function sliceDice(geo: Geometry, logits: Float32Array, n: number, s: Slice): number {
  const { width, height, padWidth, padHeight, offX, offY } = geo;
  const base = n * padWidth * padHeight;
  let inter = 0;
  let pred = 0;
  for (let y = 0; y < height; y++) {
    const py = y + offY;
    for (let x = 0; x < width; x++) {
      const px = x + offX;
      const inside = py >= 0 && py < padHeight && px >= 0 && px < padWidth;
      const p = inside && logits[base + px + padWidth * py]! > 0 ? 1 : 0;
      pred += p;
      inter += p * s.label[x + width * y]!;
    }
  }
  const denom = pred + s.area;
  return denom === 0 ? 1 : (2 * inter) / denom;
}

/** Mean hard Dice (logits > 0) of a padded batch [N, 1, ...] against its labels, over the whole padded frame. */
export function batchDice(logits: Float32Array, label: Float32Array, batch: number): number {
  const per = logits.length / batch;
  let sum = 0;
  for (let n = 0; n < batch; n++) {
    let inter = 0;
    let pred = 0;
    let truth = 0;
    for (let i = n * per; i < (n + 1) * per; i++) {
      const p = logits[i]! > 0 ? 1 : 0;
      const t = label[i]!;
      pred += p;
      truth += t;
      inter += p * t;
    }
    sum += pred + truth === 0 ? 1 : (2 * inter) / (pred + truth);
  }
  return sum / batch;
}

/** Mean held-out Dice of `network` (current parameters) on `slices`, in one forward-only ORT session. */
export async function evaluate(
  network: Network,
  geo: Geometry,
  slices: readonly Slice[],
  threads: number,
): Promise<{ dice: number; perSlice: number[] }> {
  const shape = [slices.length, 1, geo.padHeight, geo.padWidth];
  const model = network.toOnnx({ inputShape: shape });
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    interOpNumThreads: 1,
    intraOpNumThreads: threads,
    logSeverityLevel: 3,
  });
  try {
    const image = new Float32Array(numel(shape));
    const label = new Float32Array(numel(shape));
    slices.forEach((s, n) => {
      putSlice(geo, s, image, label, n);
    });
    const out = await session.run({ image: new ort.Tensor("float32", image, shape) });
    const logits = out.pred!.data as Float32Array;
    const perSlice = slices.map((s, n) => sliceDice(geo, logits, n, s));
    return { dice: perSlice.reduce((a, b) => a + b, 0) / perSlice.length, perSlice };
  } finally {
    await session.release();
  }
}

// ------------------------------------------------------------------------------------------------ PyTorch

export const PYTHON = "/usr/bin/python3";

/** torch's version if `/usr/bin/python3 -c "import torch"` works, else undefined. */
export function torchVersion(): string | undefined {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8", timeout: 120_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export interface TorchResult {
  torch: string;
  threads: number;
  median_ms: number;
  times_ms: number[];
  params: number;
}

export function runTorch(args: {
  arch: "monai" | "classic";
  dims: number;
  shape: readonly number[];
  channels: readonly number[];
  strides: readonly number[];
  threads: number;
  warmup: number;
  runs: number;
}): TorchResult {
  const script = join(import.meta.dirname, "torch_step.py");
  const r = spawnSync(
    PYTHON,
    [
      script,
      `--arch=${args.arch}`,
      `--dims=${args.dims}`,
      `--shape=${args.shape.join(",")}`,
      `--channels=${args.channels.join(",")}`,
      ...(args.strides.length > 0 ? [`--strides=${args.strides.join(",")}`] : []),
      `--threads=${args.threads}`,
      `--warmup=${args.warmup}`,
      `--runs=${args.runs}`,
    ],
    {
      encoding: "utf8",
      timeout: 600_000,
      // One BLAS/OpenMP pool of the requested size, as torch.set_num_threads.
      env: { ...process.env, OMP_NUM_THREADS: String(args.threads), MKL_NUM_THREADS: String(args.threads) },
    },
  );
  if (r.status !== 0) {
    throw new Error(`torch_step.py failed (${r.status ?? r.signal}): ${r.stderr.trim().slice(-2000)}`);
  }
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as TorchResult;
}

// ------------------------------------------------------------------------------------------------ profile

export interface ProfileRow {
  key: string;
  ms: number;
  share: number;
  nodes: number;
}

/**
 * Runs the step model `steps` times (after one warm-up) in a profiling session with the Trainer's session options
 * and returns kernel time per op type and per part (forward / backward / optimizer), in ms per step.
 */
export async function profileStep(
  ts: TrainStep,
  feeds: Record<string, ort.Tensor>,
  threads: number,
  steps: number,
): Promise<{ byOp: ProfileRow[]; byPart: ProfileRow[]; byNode: ProfileRow[]; totalMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), "bench-train-prof-"));
  try {
    const session = await ort.InferenceSession.create(ts.model, {
      graphOptimizationLevel: "all",
      executionMode: "sequential",
      interOpNumThreads: 1,
      intraOpNumThreads: threads,
      logSeverityLevel: 3,
      enableProfiling: true,
      profileFilePrefix: join(dir, "step"),
      extra: { session: { set_denormal_as_zero: "1" } },
    });
    for (let i = 0; i < steps + 1; i++) {
      await session.run(feeds);
    }
    session.endProfiling();
    await session.release();
    const file = (await readdir(dir)).find((f) => f.endsWith(".json"));
    if (!file) {
      throw new Error("profileStep: ORT wrote no profile");
    }
    type Event = { cat?: string; name?: string; dur?: number; args?: { op_name?: string } };
    const events = JSON.parse(await readFile(join(dir, file), "utf8")) as Event[];
    const nodeEvents = events.filter((e) => e.cat === "Node" && e.name?.endsWith("_kernel_time"));
    // The first run is the warm-up: drop the first 1/(steps+1) of the node events.
    const perRun = nodeEvents.length / (steps + 1);
    const timed = nodeEvents.slice(Math.round(perRun));
    const group = (keyOf: (e: Event) => string) => {
      const acc = new Map<string, { us: number; nodes: Set<string> }>();
      for (const e of timed) {
        const k = keyOf(e);
        const a = acc.get(k) ?? { us: 0, nodes: new Set<string>() };
        a.us += e.dur ?? 0;
        a.nodes.add(e.name ?? "");
        acc.set(k, a);
      }
      const total = [...acc.values()].reduce((s, a) => s + a.us, 0);
      return [...acc.entries()]
        .map(([key, a]) => ({ key, ms: a.us / 1000 / steps, share: a.us / total, nodes: a.nodes.size }))
        .sort((a, b) => b.ms - a.ms);
    };
    const opOf = (e: Event) => e.args?.op_name ?? "?";
    const nameOf = (e: Event) => (e.name ?? "").replace(/_kernel_time$/, "");
    const partOf = (e: Event) => {
      const n = nameOf(e);
      if (n.startsWith("optim/")) {
        return "optimizer (Adam)";
      }
      if (n.startsWith("grad/")) {
        return "backward";
      }
      return "forward + loss";
    };
    const byOp = group(opOf);
    const totalMs = byOp.reduce((s, r) => s + r.ms, 0);
    return { byOp, byPart: group(partOf), byNode: group((e) => `${opOf(e)} ${nameOf(e)}`), totalMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The feeds of one step of `ts`: parameters as built, zero optimizer state, the given batch and lr. */
export function stepFeeds(ts: TrainStep, image: Float32Array, label: Float32Array, lr: number) {
  const feeds: Record<string, ort.Tensor> = {
    [ts.inputName]: new ort.Tensor("float32", image, ts.inputShape),
    [ts.targetName]: new ort.Tensor("float32", label, ts.targetShape),
    [ts.lrName]: new ort.Tensor("float32", new Float32Array([lr]), []),
    [ts.stepName]: new ort.Tensor("float32", new Float32Array([0]), []),
  };
  for (const [name, c] of ts.carried) {
    if (name === ts.stepName) {
      continue;
    }
    const init = ts.initialParameters.get(name);
    feeds[name] = new ort.Tensor("float32", init ? init.data : new Float32Array(numel(c.shape)), c.shape);
  }
  return feeds;
}
