/**
 * Active-learning simulation on the Colin27 2D brain-mask task (shared/reference/data.md): 144 axial slices of
 * ch2.nii.gz with more than 200 mask pixels, label ch2bet > 0, block split (test = (z // 8) % 4 == 3: 34 slices,
 * the 110 others form the pool). The stored mask is the oracle.
 *
 *   npx tsx bench/activelearning/simulation.ts [--seeds 3] [--rounds 6] [--epochs 10] [--min-steps 40]
 *     [--initial 5] [--per-round 5] [--strategies random,epistemic] [--samples 5] [--threads 2]
 *   npm run bench:al-sim -- --seeds 1 --rounds 2 --epochs 2 --min-steps 10      (a short run)
 *
 * Per seed: 5 pool slices drawn at random are labeled; a 2D UNet with dropout trains on them (round 0, shared by
 * the strategies). Then per strategy, for each of --rounds rounds, --per-round slices are chosen through the real
 * code paths of a labelgraph server (in-process container, SQLite datastore, the sim-app/ LabelApp):
 *   - random: ActiveLearningService.nextImage with MONAI's Random strategy (seeded draw);
 *   - epistemic: the round's model is published (network.toOnnx, atomic rename, as BasicTrainTask does), an
 *     `epistemic` scoring job runs (EpistemicScoring: --samples MC-dropout passes of every unlabeled slice, mean
 *     entropy stored in the image info), then nextImage with MONAI's Epistemic strategy, --per-round times.
 * Each chosen slice gets its oracle mask saved as its `final` label; the round then trains on the datastore's
 * labeled images, continuing from the previous round's weights and optimizer state (MONAI Label fine-tunes the
 * published model): max(--min-steps, ceil(--epochs * labeled / batch)) Adam steps, batch 4, sigmoid Dice loss,
 * random left-right flips, lr cosine from --lr to --lr / 10 within the round. After each round the held-out
 * Dice (34 test slices, sigmoid > 0.5, on the 181x217 area) is measured with the plain (deterministic) model.
 *
 * Output (stdout): held-out Dice against the number of labels, mean and spread (sample sd, min-max) over the
 * seeds, per strategy; then wall times. Progress goes to stderr.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config/config.js";
import { buildContainer, type Container } from "../../src/container.js";
import type { GraphBuilder } from "../../src/graph/builder.js";
import type { Value } from "../../src/graph/ir.js";
import { numel } from "../../src/graph/ir.js";
import { writeNifti } from "../../src/io/nifti.js";
import { createLogger } from "../../src/logger.js";
import { diceLoss } from "../../src/nn/losses.js";
import { Adam, cosineLR } from "../../src/nn/optim.js";
import { buildTrainStep, Trainer, type TrainerState, type TrainStep } from "../../src/nn/train-step.js";
import { UNet } from "../../src/nn/unet.js";
import { ActiveLearningService } from "../../src/tasks/activelearning/active-learning.service.js";
import { BasicInferTask } from "../../src/tasks/infer/basic-infer-task.js";
import { Compose, type Data } from "../../src/transforms/compose.js";
import { MetaTensor, toCOrder } from "../../src/transforms/tensor.js";
import {
  evaluate,
  type Geometry,
  geometry,
  loadAverage,
  loadColin,
  putSlice,
  rng,
  type Slice,
  shuffle,
  table,
} from "../train/lib.js";

const { values: args } = parseArgs({
  options: {
    seeds: { type: "string", default: "3" },
    rounds: { type: "string", default: "6" },
    epochs: { type: "string", default: "10" },
    "min-steps": { type: "string", default: "40" },
    initial: { type: "string", default: "5" },
    "per-round": { type: "string", default: "5" },
    strategies: { type: "string", default: "random,epistemic" },
    samples: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    channels: { type: "string", default: "8,16,32" },
    dropout: { type: "string", default: "0.2" },
    lr: { type: "string", default: "5e-3" },
    batch: { type: "string", default: "4" },
    keep: { type: "boolean", default: false },
    data: { type: "string", default: join(import.meta.dirname, "../../test/fixtures/.cache") },
  },
});

function num(name: keyof typeof args, check: (v: number) => boolean, what: string): number {
  const v = Number(args[name]);
  if (!check(v)) {
    throw new Error(`--${name}: expected ${what}, got ${String(args[name])}`);
  }
  return v;
}
const posInt = (v: number) => Number.isInteger(v) && v > 0;
const SEEDS = num("seeds", posInt, "a positive integer");
const ROUNDS = num("rounds", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
const EPOCHS = num("epochs", (v) => v > 0, "a positive number");
const MIN_STEPS = num("min-steps", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
const INITIAL = num("initial", posInt, "a positive integer");
const PER_ROUND = num("per-round", posInt, "a positive integer");
const SAMPLES = num("samples", (v) => Number.isInteger(v) && v >= 2, "an integer >= 2");
const THREADS = num("threads", posInt, "a positive integer");
const DROPOUT = num("dropout", (v) => v > 0 && v < 1, "a ratio in (0, 1)");
const LR = num("lr", (v) => v > 0, "a positive number");
const BATCH = num("batch", posInt, "a positive integer");
const CHANNELS = args.channels.split(",").map(Number);
if (CHANNELS.length < 2 || !CHANNELS.every(posInt)) {
  throw new Error(`--channels: at least two positive integers, got ${args.channels}`);
}
const STRATEGIES = args.strategies.split(",").map((s) => s.trim());
for (const s of STRATEGIES) {
  if (s !== "random" && s !== "epistemic") {
    throw new Error(`--strategies: random and/or epistemic, got ${s}`);
  }
}

const PAD_W = 192;
const PAD_H = 224;
const APP = join(import.meta.dirname, "sim-app");
const progress = (msg: string) => process.stderr.write(`[bench:al-sim] ${msg}\n`);
const idOf = (s: Slice) => `z${String(s.z).padStart(3, "0")}`;
const sigmoidDice = (g: GraphBuilder, pred: Value, target: Value) => diceLoss(g, pred, target, { sigmoid: true });
const f = (v: number, d = 3) => v.toFixed(d);

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function sd(xs: readonly number[]): number {
  if (xs.length < 2) {
    return Number.NaN;
  }
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** The network of every run (seeded initialization). */
function makeNetwork(seed: number): UNet {
  return new UNet({
    spatialDims: 2,
    inChannels: 1,
    outChannels: 1,
    channels: CHANNELS,
    strides: CHANNELS.slice(1).map(() => 2),
    norm: "INSTANCE",
    act: "RELU",
    dropout: DROPOUT,
    seed,
  });
}

/**
 * Writes each pool slice as a 2D float32 NIfTI of shape [H, W] (x fastest in memory after the loader's C-order
 * view: the network's [H, W] layout), and its oracle mask likewise as uint8.
 */
async function writeSlices(dir: string, slices: readonly Slice[], width: number, height: number) {
  await mkdir(join(dir, "images"), { recursive: true });
  await mkdir(join(dir, "labels"), { recursive: true });
  const affine = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => (r === c ? 1 : 0)));
  const labels = new Map<string, string>();
  const images = new Map<string, string>();
  for (const s of slices) {
    // NIfTI index i + H * j with i = y, j = x holds pixel (x, y) = x + W * y of the slice.
    const image = new Float32Array(width * height);
    const label = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        image[y + height * x] = s.image[x + width * y]!;
        label[y + height * x] = s.label[x + width * y]!;
      }
    }
    const id = idOf(s);
    const imagePath = join(dir, "images", `${id}.nii.gz`);
    const labelPath = join(dir, "labels", `${id}.nii.gz`);
    const common = { shape: [height, width], spacing: [1, 1], affine, meta: {} };
    await writeNifti({ ...common, data: image, dtype: "float32" }, imagePath);
    await writeNifti({ ...common, data: label, dtype: "uint8" }, labelPath);
    images.set(id, imagePath);
    labels.set(id, labelPath);
  }
  return { images, labels };
}

/** One labelgraph server (in-process) over the pool, for one strategy of one seed. */
async function openServer(root: string, name: string, modelPath: string): Promise<Container> {
  const dir = join(root, name);
  await mkdir(join(dir, "studies"), { recursive: true });
  const config = loadConfig(
    {
      LABELGRAPH_LOG_LEVEL: "error",
      LABELGRAPH_DATABASE_URL: `file:${join(dir, "labelgraph.db")}`,
      MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false",
      MONAI_LABEL_AUTO_UPDATE_SCORING: "false",
      LABELGRAPH_INFER_WORKERS: "0",
    },
    {
      studies: join(dir, "studies"),
      app: APP,
      port: 0,
      host: "127.0.0.1",
      conf: { model_path: modelPath, simulation_size: String(SAMPLES), pad: `${PAD_H}x${PAD_W}` },
    },
  );
  return buildContainer(config, { log: createLogger("error") });
}

/** Publishes the network's current weights as the plain inference model, atomically (as BasicTrainTask). */
async function publish(network: UNet, trainer: Trainer, path: string): Promise<void> {
  network.loadParameters(trainer.parameters());
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, network.toOnnx({ inputShape: [1, 1, PAD_H, PAD_W] }));
  await rename(tmp, path);
}

interface Trained {
  steps: number;
  ms: number;
  loss: number;
}

/** Trains on `slices` for one round (continuing the trainer's weights and optimizer state). */
async function trainRound(
  trainer: Trainer,
  geo: Geometry,
  slices: readonly Slice[],
  random: () => number,
): Promise<Trained> {
  const steps = Math.max(MIN_STEPS, Math.ceil((EPOCHS * slices.length) / BATCH));
  const shape = [BATCH, 1, PAD_H, PAD_W];
  const image = new Float32Array(numel(shape));
  const label = new Float32Array(numel(shape));
  const schedule = cosineLR(LR, { totalSteps: steps, minLr: LR / 10 });
  let order: Slice[] = [];
  const t0 = performance.now();
  let loss = Number.NaN;
  for (let step = 0; step < steps; step++) {
    for (let n = 0; n < BATCH; n++) {
      if (order.length === 0) {
        order = shuffle([...slices], random);
      }
      putSlice(geo, order.pop()!, image, label, n, { flipX: random() < 0.5 });
    }
    loss = (await trainer.step(image, label, schedule(step))).loss;
  }
  return { steps, ms: performance.now() - t0, loss };
}

/** The app's pre-transforms must give the network exactly the padded slice the trainer sees. */
async function checkLayout(c: Container, geo: Geometry, s: Slice, path: string): Promise<void> {
  const task = c.app.infers().brain;
  if (!(task instanceof BasicInferTask)) {
    throw new Error("sim-app: infer task 'brain' missing");
  }
  let data: Data = { ...task.config, image: path };
  data = await new Compose(task.preTransforms(data)).call(data);
  const tensor = data.image;
  if (!(tensor instanceof MetaTensor)) {
    throw new Error("sim-app: pre-transforms gave no tensor");
  }
  const got = toCOrder(tensor);
  const want = new Float32Array(PAD_W * PAD_H);
  putSlice(geo, s, want, new Float32Array(PAD_W * PAD_H), 0);
  if (tensor.shape.join() !== `1,${PAD_H},${PAD_W}` || got.some((v, i) => v !== want[i])) {
    throw new Error(`sim-app: the loaded slice (shape ${tensor.shape}) is not the training layout`);
  }
}

interface Curve {
  labels: number[];
  dice: number[];
}

async function main() {
  const t0 = performance.now();
  const data = await loadColin(args.data);
  progress(`Colin27: ${data.train.length} pool / ${data.test.length} test slices of ${data.width}x${data.height}`);
  if (data.train.length !== 110 || data.test.length !== 34) {
    throw new Error("expected 110 pool and 34 test slices (shared/reference/data.md)");
  }
  const needed = INITIAL + ROUNDS * PER_ROUND;
  if (needed > data.train.length) {
    throw new Error(`${INITIAL} + ${ROUNDS} x ${PER_ROUND} labels exceed the pool of ${data.train.length}`);
  }
  const geo = geometry(data.width, data.height, PAD_W, PAD_H);
  const byId = new Map(data.train.map((s) => [idOf(s), s]));
  const root = await mkdtemp(join(tmpdir(), "labelgraph-al-sim-"));
  progress(`temp folder ${root}; load average ${loadAverage()}`);
  const curves = new Map<string, Curve[]>(STRATEGIES.map((s) => [s, []]));
  const times = { train: 0, scoring: 0, select: 0, eval: 0, setup: 0 };
  let totalSteps = 0;
  try {
    const setup0 = performance.now();
    const files = await writeSlices(join(root, "pool"), data.train, data.width, data.height);
    times.setup += performance.now() - setup0;

    for (let seed = 0; seed < SEEDS; seed++) {
      const network = makeNetwork(seed);
      const trainStep: TrainStep = buildTrainStep({
        network,
        inputShape: [BATCH, 1, PAD_H, PAD_W],
        targetShape: [BATCH, 1, PAD_H, PAD_W],
        loss: sigmoidDice,
        optimizer: new Adam(),
        dropoutSeed: 1000 * (seed + 1),
      });
      const random = rng(seed + 1);
      const initial = shuffle([...data.train], random).slice(0, INITIAL);
      // Round 0, shared by the strategies.
      const trainer0 = new Trainer(trainStep, { threads: THREADS });
      const r0 = await trainRound(trainer0, geo, initial, rng(100 + seed));
      times.train += r0.ms;
      totalSteps += r0.steps;
      network.loadParameters(trainer0.parameters());
      let e0 = performance.now();
      const dice0 = (await evaluate(network, geo, data.test, THREADS)).dice;
      times.eval += performance.now() - e0;
      const state0: TrainerState = trainer0.state();
      await trainer0.release();
      progress(
        `seed ${seed}: ${INITIAL} labels, ${r0.steps} steps in ${f(r0.ms / 1000, 1)} s, loss ${f(r0.loss)}, held-out Dice ${f(dice0)}`,
      );

      for (const strategy of STRATEGIES) {
        const s0 = performance.now();
        const modelPath = join(root, `seed${seed}-${strategy}`, "model.onnx");
        const c = await openServer(root, `seed${seed}-${strategy}`, modelPath);
        // nextImage through ActiveLearningService over the container's app and datastore, with a seeded draw.
        const al = new ActiveLearningService({
          app: c.app,
          datastore: c.datastore,
          pubsub: c.pubsub,
          random: rng(200 + seed),
        });
        try {
          for (const s of data.train) {
            const id = idOf(s);
            await c.datastore.addImage({ id, fileName: `${id}.nii.gz`, path: files.images.get(id)! });
          }
          if (seed === 0 && strategy === STRATEGIES[0]) {
            await checkLayout(c, geo, data.train[0]!, files.images.get(idOf(data.train[0]!))!);
          }
          const label = async (id: string) => {
            await c.datastore.saveLabel({
              imageId: id,
              tag: "final",
              fileName: `${id}.nii.gz`,
              path: files.labels.get(id)!,
            });
          };
          for (const s of initial) {
            await label(idOf(s));
          }
          al.start();
          await al.index.ready();
          times.setup += performance.now() - s0;

          const trainer = new Trainer(trainStep, { threads: THREADS });
          trainer.loadState(state0);
          const trainRandom = rng(300 + seed);
          const curve: Curve = { labels: [INITIAL], dice: [dice0] };
          for (let round = 1; round <= ROUNDS; round++) {
            let scoringMs = 0;
            if (strategy === "epistemic") {
              await mkdir(join(root, `seed${seed}-${strategy}`), { recursive: true });
              await publish(network, trainer, modelPath);
              const sc0 = performance.now();
              const job = await c.scoring.enqueue("epistemic");
              await c.jobs.idle();
              const done = await c.jobs.get(job.id);
              if (done?.status !== "SUCCEEDED") {
                throw new Error(`epistemic scoring job ${job.id}: ${done?.status} ${JSON.stringify(done?.error)}`);
              }
              scoringMs = performance.now() - sc0;
              times.scoring += scoringMs;
            }
            const sel0 = performance.now();
            const chosen: string[] = [];
            for (let k = 0; k < PER_ROUND; k++) {
              const next = await al.nextImage({ strategy, clientId: "simulation" });
              if (!next) {
                throw new Error(`${strategy}: no image left`);
              }
              chosen.push(next.image.id);
              await label(next.image.id);
            }
            times.select += performance.now() - sel0;
            const labeled = (await c.datastore.labeledImages()).map((id) => {
              const s = byId.get(id);
              if (!s) {
                throw new Error(`labeled image ${id} is not a pool slice`);
              }
              return s;
            });
            const tr = await trainRound(trainer, geo, labeled, trainRandom);
            times.train += tr.ms;
            totalSteps += tr.steps;
            network.loadParameters(trainer.parameters());
            e0 = performance.now();
            const dice = (await evaluate(network, geo, data.test, THREADS)).dice;
            times.eval += performance.now() - e0;
            curve.labels.push(labeled.length);
            curve.dice.push(dice);
            progress(
              `seed ${seed} ${strategy} round ${round}: +[${chosen.join(" ")}]${scoringMs > 0 ? ` (scoring ${f(scoringMs / 1000, 1)} s)` : ""}, ` +
                `${labeled.length} labels, ${tr.steps} steps in ${f(tr.ms / 1000, 1)} s, loss ${f(tr.loss)}, held-out Dice ${f(dice)}`,
            );
          }
          await trainer.release();
          curves.get(strategy)!.push(curve);
        } finally {
          await al.stop();
          await c.close();
        }
      }
    }
  } finally {
    if (args.keep) {
      progress(`kept ${root}`);
    } else {
      await rm(root, { recursive: true, force: true });
    }
  }

  const wall = performance.now() - t0;
  const counts = curves.get(STRATEGIES[0]!)![0]!.labels;
  const header = ["labels", ...STRATEGIES.flatMap((s) => [`${s} mean`, `${s} sd`, `${s} min-max`])];
  const rows = counts.map((n, r) => [
    String(n),
    ...STRATEGIES.flatMap((s) => {
      const ds = curves.get(s)!.map((c) => c.dice[r]!);
      return [f(mean(ds)), Number.isNaN(sd(ds)) ? "-" : f(sd(ds)), `${f(Math.min(...ds))}-${f(Math.max(...ds))}`];
    }),
  ]);
  const out = [
    `labelgraph active-learning simulation: Colin27 brain mask, 2D axial slices (110 pool / 34 test), Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}`,
    `2D UNet channels [${CHANNELS}] IN+ReLU dropout ${DROPOUT}, input ${PAD_H}x${PAD_W} (181x217 centered zero-pad); ` +
      `${INITIAL} initial labels + ${PER_ROUND} per round x ${ROUNDS} rounds; per round max(${MIN_STEPS}, ceil(${EPOCHS} epochs x labels / ${BATCH})) ` +
      `Adam steps (sigmoid Dice, cosine ${LR} -> ${LR / 10}), continuing the previous round's weights; epistemic: ${SAMPLES} MC-dropout passes; ${SEEDS} seed(s); ${THREADS} threads`,
    "",
    `Held-out Dice (34 test slices, sigmoid > 0.5) against the number of labeled slices; mean, sample sd and range over ${SEEDS} seed(s)`,
    "",
    table(header, rows),
    "",
    `Wall time ${f(wall / 1000, 0)} s: training ${f(times.train / 1000, 0)} s (${totalSteps} steps), epistemic scoring ${f(times.scoring / 1000, 0)} s, ` +
      `selection + labeling ${f(times.select / 1000, 1)} s, evaluation ${f(times.eval / 1000, 0)} s, setup ${f(times.setup / 1000, 0)} s. ` +
      `Load average at the end: ${loadAverage()} (1, 5, 15 min).`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

await main();
