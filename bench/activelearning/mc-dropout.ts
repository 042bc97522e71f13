/**
 * What Monte-Carlo dropout costs at inference, and that plain inference pays nothing for it: median ms per run
 * of the same 2D UNet weights exported without dropout, with dropout (the plain published model: onnxruntime
 * removes its Dropout nodes) and in MC form (mcDropoutModel: a random mask per Dropout), in sessions opened as
 * the session pool opens them (optimisation "all", denormals flushed).
 *
 *   npx tsx bench/activelearning/mc-dropout.ts [--runs 30] [--threads 2] [--shape 1x1x224x192]
 */
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { numel } from "../../src/graph/ir.js";
import { mcDropoutModel } from "../../src/nn/mc-dropout.js";
import { UNet } from "../../src/nn/unet.js";
import { loadAverage, median, table } from "../train/lib.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "30" },
    threads: { type: "string", default: "2" },
    shape: { type: "string", default: "1x1x224x192" },
    channels: { type: "string", default: "8,16,32" },
  },
});
const RUNS = Number(args.runs);
const THREADS = Number(args.threads);
const SHAPE = args.shape.split("x").map(Number);
const CHANNELS = args.channels.split(",").map(Number);
if (!(RUNS > 0) || !(THREADS > 0) || SHAPE.length !== 4 || !SHAPE.every((v) => v > 0)) {
  throw new Error("--runs, --threads: positive; --shape: NxCxHxW");
}

const net = (dropout: number) =>
  new UNet({
    spatialDims: 2,
    inChannels: 1,
    outChannels: 1,
    channels: CHANNELS,
    strides: CHANNELS.slice(1).map(() => 2),
    norm: "INSTANCE",
    act: "RELU",
    dropout,
    seed: 0,
  });

const withDropout = net(0.2).toOnnx({ inputShape: SHAPE });
const models: [string, Uint8Array][] = [
  ["no dropout (dropout 0)", net(0).toOnnx({ inputShape: SHAPE })],
  ["dropout 0.2, plain export (published model)", withDropout],
  ["dropout 0.2, MC form (epistemic scoring)", mcDropoutModel(withDropout).bytes],
];
const input = new Float32Array(numel(SHAPE)).map((_, i) => (i % 97) / 97);
const sessions = await Promise.all(
  models.map(([, bytes]) =>
    ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: "all",
      executionMode: "sequential",
      interOpNumThreads: 1,
      intraOpNumThreads: THREADS,
      logSeverityLevel: 3,
      extra: { session: { set_denormal_as_zero: "1" } },
    }),
  ),
);
const times: number[][] = models.map(() => []);
const outputs: Float32Array[][] = models.map(() => []);
// Interleaved, so that load changes hit every model alike.
for (let r = 0; r < RUNS + 3; r++) {
  for (const [m, session] of sessions.entries()) {
    const t0 = performance.now();
    const out = await session.run({ image: new ort.Tensor("float32", input, SHAPE) });
    const ms = performance.now() - t0;
    if (r >= 3) {
      times[m]!.push(ms);
      outputs[m]!.push(out.pred!.data as Float32Array);
    }
  }
}
const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => v !== b[i]);
const rows = models.map(([name], m) => {
  const outs = outputs[m]!;
  const varies = outs.slice(1).some((o) => differs(o, outs[0]!));
  return [name, median(times[m]!).toFixed(2), String(RUNS), varies ? "yes" : "no"];
});
process.stdout.write(
  `MC dropout cost: 2D UNet [${CHANNELS}] input ${SHAPE.join("x")}, ${THREADS} threads, load average ${loadAverage()}\n\n` +
    `${table(["model", "median ms", "runs", "output varies run to run"], rows)}\n`,
);
await Promise.all(sessions.map((s) => s.release()));
