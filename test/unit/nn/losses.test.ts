import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { numel, type Value } from "../../../src/graph/ir.js";
import {
  bceWithLogitsLoss,
  crossEntropyLoss,
  type DiceLossOptions,
  diceCELoss,
  diceLoss,
} from "../../../src/nn/losses.js";
import { gradCheck, randomArray, rng } from "../autodiff/gradcheck.js";

type Build = (g: GraphBuilder, pred: Value, target: Value) => Value;

/** Runs a float64 loss graph and returns its output. */
async function evaluate(
  build: Build,
  pred: Float64Array,
  predShape: number[],
  target: Float64Array,
  targetShape: number[],
) {
  const g = new GraphBuilder({ name: "loss" });
  const p = g.input("pred", "float64", predShape);
  const t = g.input("target", "float64", targetShape);
  const out = build(g, p, t);
  g.output(out, "out");
  const s = await ort.InferenceSession.create(g.serialize(), { logSeverityLevel: 3 });
  try {
    const r = await s.run({
      pred: new ort.Tensor("float64", pred, predShape),
      target: new ort.Tensor("float64", target, targetShape),
    });
    return { data: Array.from(r.out!.data as Float64Array), dims: [...r.out!.dims] };
  } finally {
    await s.release();
  }
}

// ----------------------------------------------------------------------------------- JS references

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Element (n, c, s) of a [N, C, S] array. */
const at = (a: ArrayLike<number>, C: number, S: number, n: number, c: number, s: number) => a[(n * C + c) * S + s]!;

function softmaxChannels(x: ArrayLike<number>, N: number, C: number, S: number): number[] {
  const out = Array<number>(N * C * S);
  for (let n = 0; n < N; n++) {
    for (let s = 0; s < S; s++) {
      let max = -Infinity;
      for (let c = 0; c < C; c++) {
        max = Math.max(max, at(x, C, S, n, c, s));
      }
      let sum = 0;
      for (let c = 0; c < C; c++) {
        sum += Math.exp(at(x, C, S, n, c, s) - max);
      }
      for (let c = 0; c < C; c++) {
        out[(n * C + c) * S + s] = Math.exp(at(x, C, S, n, c, s) - max) / sum;
      }
    }
  }
  return out;
}

function oneHotRef(t: ArrayLike<number>, N: number, C: number, S: number): number[] {
  const out = Array<number>(N * C * S).fill(0);
  for (let n = 0; n < N; n++) {
    for (let s = 0; s < S; s++) {
      out[(n * C + t[n * S + s]!) * S + s] = 1;
    }
  }
  return out;
}

/** MONAI DiceLoss.forward, written out. */
function diceRef(pred: ArrayLike<number>, target: ArrayLike<number>, shape: number[], o: DiceLossOptions): number[] {
  const [N, C0] = shape as [number, number];
  const S = numel(shape.slice(2));
  let p = Array.from(pred);
  let t = Array.from(target);
  if (o.sigmoid) {
    p = p.map(sigmoid);
  }
  if (o.softmax && C0 > 1) {
    p = softmaxChannels(p, N, C0, S);
  }
  if (o.toOnehotY && C0 > 1) {
    t = oneHotRef(t, N, C0, S);
  }
  const first = o.includeBackground === false && C0 > 1 ? 1 : 0;
  const f: number[] = [];
  const smoothNr = o.smoothNr ?? 1e-5;
  const smoothDr = o.smoothDr ?? 1e-5;
  const groups = o.batch ? [[...Array(N).keys()]] : [...Array(N).keys()].map((n) => [n]);
  for (const ns of groups) {
    for (let c = first; c < C0; c++) {
      let inter = 0;
      let ground = 0;
      let po = 0;
      for (const n of ns) {
        for (let s = 0; s < S; s++) {
          const pv = at(p, C0, S, n, c, s);
          const tv = at(t, C0, S, n, c, s);
          inter += pv * tv;
          ground += o.squaredPred ? tv * tv : tv;
          po += o.squaredPred ? pv * pv : pv;
        }
      }
      let den = ground + po;
      if (o.jaccard) {
        den = 2 * (den - inter);
      }
      f.push(1 - (2 * inter + smoothNr) / (den + smoothDr));
    }
  }
  return f;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("DiceLoss", () => {
  it("matches a hand-computed value", async () => {
    // One sample, one channel, 2x2: probabilities used as given.
    const pred = Float64Array.from([0.9, 0.1, 0.8, 0.3]);
    const target = Float64Array.from([1, 0, 1, 0]);
    const r = await evaluate((g, p, t) => diceLoss(g, p, t), pred, [1, 1, 2, 2], target, [1, 1, 2, 2]);
    // intersection 1.7, |target| 2, |pred| 2.1
    expect(r.data[0]).toBeCloseTo(1 - (2 * 1.7 + 1e-5) / (2 + 2.1 + 1e-5), 12);
    expect(r.dims).toEqual([]);
  });

  const cases: [string, DiceLossOptions, number][] = [
    ["sigmoid", { sigmoid: true }, 1],
    ["sigmoid, squaredPred, jaccard", { sigmoid: true, squaredPred: true, jaccard: true }, 2],
    ["softmax, toOnehotY, no background", { softmax: true, toOnehotY: true, includeBackground: false }, 3],
    ["softmax, toOnehotY, batch, sum", { softmax: true, toOnehotY: true, batch: true, reduction: "sum" }, 3],
    ["sigmoid, smoothing 1/1, reduction none", { sigmoid: true, smoothNr: 1, smoothDr: 1, reduction: "none" }, 2],
    ["one channel: softmax/onehot/background ignored", { softmax: true, includeBackground: false, sigmoid: false }, 1],
  ];

  it.each(cases)("agrees with MONAI's formula: %s", async (_name, options, channels) => {
    const shape = [2, channels, 3, 4];
    const pred = randomArray("float64", numel(shape), 3, -3, 3) as Float64Array;
    if (!options.sigmoid && !options.softmax) {
      pred.forEach((v, i) => {
        pred[i] = sigmoid(v);
      });
    }
    const r = rng(5);
    const onehot = options.toOnehotY;
    const targetShape = onehot ? [2, 1, 3, 4] : shape;
    const target = Float64Array.from({ length: numel(targetShape) }, () =>
      onehot ? Math.floor(r() * channels) : r() < 0.4 ? 1 : 0,
    );
    const got = await evaluate((g, p, t) => diceLoss(g, p, t, options), pred, shape, target, targetShape);
    const f = diceRef(pred, target, shape, options);
    const reduction = options.reduction ?? "mean";
    const want = reduction === "mean" ? [mean(f)] : reduction === "sum" ? [f.reduce((a, b) => a + b, 0)] : f;
    expect(got.data).toHaveLength(want.length);
    got.data.forEach((v, i) => {
      expect(v).toBeCloseTo(want[i]!, 12);
    });
    if (reduction === "none") {
      expect(got.dims).toEqual([2, channels, 1, 1]);
    }
  });

  it("rejects sigmoid with softmax and mismatched shapes", () => {
    const g = new GraphBuilder();
    const p = g.input("p", "float32", [1, 2, 4, 4]);
    const t = g.input("t", "float32", [1, 1, 4, 4]);
    expect(() => diceLoss(g, p, t, { sigmoid: true, softmax: true })).toThrow(/not compatible/);
    expect(() => diceLoss(g, p, t)).toThrow(/different shape/);
  });
});

describe("CrossEntropy, BCE and DiceCE", () => {
  it("DiceCE (softmax, index targets) matches a hand-computed value", async () => {
    // N=1, C=2, two voxels: logits channel 0 = [2, 0], channel 1 = [0, 1]; labels [0, 1].
    const pred = Float64Array.from([2, 0, 0, 1]);
    const target = Float64Array.from([0, 1]);
    const r = await evaluate(
      (g, p, t) => diceCELoss(g, p, t, { softmax: true, toOnehotY: true }),
      pred,
      [1, 2, 2],
      target,
      [1, 1, 2],
    );
    const ce = (Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(-1))) / 2;
    const p0 = [sigmoid(2), sigmoid(-1)];
    const p1 = [sigmoid(-2), sigmoid(1)];
    const d0 = 1 - (2 * p0[0]! + 1e-5) / (1 + p0[0]! + p0[1]! + 1e-5);
    const d1 = 1 - (2 * p1[1]! + 1e-5) / (1 + p1[0]! + p1[1]! + 1e-5);
    expect(r.data[0]).toBeCloseTo((d0 + d1) / 2 + ce, 12);
  });

  it("DiceCE with one channel uses BCE with logits; lambdas weight the terms", async () => {
    const shape = [2, 1, 3, 3];
    const pred = randomArray("float64", numel(shape), 8, -4, 4) as Float64Array;
    const r = rng(9);
    const target = Float64Array.from({ length: numel(shape) }, () => (r() < 0.5 ? 1 : 0));
    const got = await evaluate(
      (g, p, t) => diceCELoss(g, p, t, { sigmoid: true, lambdaDice: 0.7, lambdaCe: 1.5 }),
      pred,
      shape,
      target,
      shape,
    );
    const bce = mean(Array.from(pred, (x, i) => Math.max(x, 0) - x * target[i]! + Math.log1p(Math.exp(-Math.abs(x)))));
    const dice = mean(diceRef(pred, target, shape, { sigmoid: true }));
    expect(got.data[0]).toBeCloseTo(0.7 * dice + 1.5 * bce, 12);
  });

  it("CrossEntropy: index targets with class weights (weighted mean), probability targets, reductions", async () => {
    const shape = [2, 3, 4];
    const pred = randomArray("float64", numel(shape), 12, -2, 2) as Float64Array;
    const labels = Float64Array.from([0, 2, 1, 1, 2, 0, 0, 1]);
    const weight = [0.2, 1, 3];
    const logp = softmaxChannels(pred, 2, 3, 4).map(Math.log);
    let num = 0;
    let den = 0;
    const perVoxel: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let s = 0; s < 4; s++) {
        const y = labels[n * 4 + s]!;
        num += -weight[y]! * at(logp, 3, 4, n, y, s);
        den += weight[y]!;
        perVoxel.push(-at(logp, 3, 4, n, y, s));
      }
    }
    const weighted = await evaluate((g, p, t) => crossEntropyLoss(g, p, t, { weight }), pred, shape, labels, [2, 1, 4]);
    expect(weighted.data[0]).toBeCloseTo(num / den, 12);
    const none = await evaluate(
      (g, p, t) => crossEntropyLoss(g, p, t, { reduction: "none" }),
      pred,
      shape,
      labels,
      [2, 1, 4],
    );
    expect(none.dims).toEqual([2, 4]);
    none.data.forEach((v, i) => {
      expect(v).toBeCloseTo(perVoxel[i]!, 12);
    });
    // Probability targets (soft labels): -sum_c t_c log p_c, mean over voxels.
    const soft = Float64Array.from(softmaxChannels(randomArray("float64", numel(shape), 13), 2, 3, 4));
    const got = await evaluate((g, p, t) => crossEntropyLoss(g, p, t), pred, shape, soft, shape);
    let want = 0;
    soft.forEach((t, i) => {
      want -= t * logp[i]!;
    });
    expect(got.data[0]).toBeCloseTo(want / 8, 12);
  });

  it("BCE with logits stays finite for large logits", async () => {
    const pred = Float64Array.from([-200, -30, 0, 30, 200]);
    const target = Float64Array.from([1, 0, 1, 1, 0]);
    const got = await evaluate((g, p, t) => bceWithLogitsLoss(g, p, t, { reduction: "sum" }), pred, [5], target, [5]);
    expect(got.data[0]).toBeCloseTo(200 + Math.log1p(Math.exp(-30)) + Math.log(2) + Math.log1p(Math.exp(-30)) + 200, 9);
  });

  it("rejects target channel counts that are neither 1 nor C, and reduction none", () => {
    const g = new GraphBuilder();
    const p = g.input("p", "float32", [1, 3, 4, 4]);
    const t = g.input("t", "float32", [1, 2, 4, 4]);
    expect(() => diceCELoss(g, p, t)).toThrow(/neither 1 nor the same/);
    const t1 = g.input("t1", "float32", [1, 1, 4, 4]);
    expect(() => diceCELoss(g, p, t1, { reduction: "none", toOnehotY: true })).toThrow(/none/);
  });
});

describe("loss gradients against finite differences (float64)", () => {
  const shape = [2, 3, 3, 4];
  const r = rng(21);
  const labels = Float64Array.from({ length: numel([2, 1, 3, 4]) }, () => Math.floor(r() * 3));
  const binary = Float64Array.from({ length: numel([2, 1, 3, 4]) }, () => (r() < 0.4 ? 1 : 0));
  const cases: [string, number[], Float64Array, Build][] = [
    ["Dice, sigmoid (one channel)", [2, 1, 3, 4], binary, (g, p, t) => diceLoss(g, p, t, { sigmoid: true })],
    [
      "Dice, softmax, one-hot, no background, squared",
      [2, 1, 3, 4],
      labels,
      (g, p, t) => diceLoss(g, p, t, { softmax: true, toOnehotY: true, includeBackground: false, squaredPred: true }),
    ],
    [
      "DiceCE, softmax, index targets",
      [2, 1, 3, 4],
      labels,
      (g, p, t) => diceCELoss(g, p, t, { softmax: true, toOnehotY: true }),
    ],
    ["DiceCE, one channel (BCE)", [2, 1, 3, 4], binary, (g, p, t) => diceCELoss(g, p, t, { sigmoid: true })],
    [
      "CrossEntropy with class weights",
      [2, 1, 3, 4],
      labels,
      (g, p, t) => crossEntropyLoss(g, p, t, { weight: [1, 2, 0.5] }),
    ],
  ];
  it.each(cases)("%s", async (name, targetShape, target, build) => {
    const predShape = targetShape[1] === 1 && name.includes("one channel") ? targetShape : shape;
    const res = await gradCheck({
      name,
      dtype: "float64",
      inputs: { pred: { shape: predShape, lo: -2, hi: 2 }, target: { shape: targetShape, data: target, fixed: true } },
      build: (g, v) => build(g, v.pred!, v.target!),
    });
    expect(res.maxElementError).toBeLessThan(1e-6);
    expect(res.directionError).toBeLessThan(1e-6);
  });
});
