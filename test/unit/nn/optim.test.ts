import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { Adam, AdamW, constantLR, cosineLR, type Optimizer, polyLR, SGD, stepLR } from "../../../src/nn/optim.js";

/** Runs `optimizer` on one parameter for a sequence of gradients, feeding state back like the Trainer. */
async function runSteps(optimizer: Optimizer, p0: number[], grads: number[][], lrs: number[]) {
  const n = p0.length;
  const g = new GraphBuilder({ name: "optim" });
  const param = g.input("p", "float32", [n]);
  const grad = g.input("g", "float32", [n]);
  const state = optimizer.stateNames.map((s) => g.input(s, "float32", [n]));
  const lr = g.input("lr", "float32", []);
  const step = g.input("step", "float32", []);
  const [u] = optimizer.apply(g, [{ name: "p", param, grad, state }], { lr, step });
  g.output(u!.param, "p_next");
  u!.state.forEach((s, i) => {
    g.output(s, `${optimizer.stateNames[i]}_next`);
  });
  const session = await ort.InferenceSession.create(g.serialize(), { logSeverityLevel: 3 });
  let p: Float32Array = Float32Array.from(p0);
  let st: Float32Array[] = optimizer.stateNames.map(() => new Float32Array(n));
  const history: number[][] = [];
  try {
    for (let k = 0; k < grads.length; k++) {
      const feeds: Record<string, ort.Tensor> = {
        p: new ort.Tensor("float32", p, [n]),
        g: new ort.Tensor("float32", Float32Array.from(grads[k]!), [n]),
        lr: new ort.Tensor("float32", Float32Array.from([lrs[k]!]), []),
        step: new ort.Tensor("float32", Float32Array.from([k]), []),
      };
      optimizer.stateNames.forEach((s, i) => {
        feeds[s] = new ort.Tensor("float32", st[i]!, [n]);
      });
      const out = await session.run(feeds);
      p = out.p_next!.data as Float32Array;
      st = optimizer.stateNames.map((s) => out[`${s}_next`]!.data as Float32Array);
      history.push(Array.from(p));
    }
  } finally {
    await session.release();
  }
  return history;
}

/** PyTorch's Adam / AdamW, in float64. */
function adamRef(
  p0: number[],
  grads: number[][],
  lrs: number[],
  o: { b1: number; b2: number; eps: number; wd: number; decoupled: boolean },
) {
  const p = [...p0];
  const m = p0.map(() => 0);
  const v = p0.map(() => 0);
  const history: number[][] = [];
  grads.forEach((gr, k) => {
    const t = k + 1;
    const lr = lrs[k]!;
    for (let i = 0; i < p.length; i++) {
      let g = gr[i]!;
      if (o.decoupled) {
        p[i] = p[i]! * (1 - lr * o.wd);
      } else {
        g += o.wd * p[i]!;
      }
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g * g;
      const stepSize = lr / (1 - o.b1 ** t);
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      p[i] = p[i]! - stepSize * (m[i]! / denom);
    }
    history.push([...p]);
  });
  return history;
}

/** PyTorch's SGD, in float64. */
function sgdRef(
  p0: number[],
  grads: number[][],
  lrs: number[],
  o: { momentum: number; dampening: number; wd: number; nesterov: boolean },
) {
  const p = [...p0];
  let buf: number[] | undefined;
  const history: number[][] = [];
  grads.forEach((gr, k) => {
    const d = gr.map((g, i) => g + o.wd * p[i]!);
    let step = d;
    if (o.momentum > 0) {
      buf = buf === undefined ? [...d] : buf.map((b, i) => o.momentum * b + (1 - o.dampening) * d[i]!);
      step = o.nesterov ? d.map((x, i) => x + o.momentum * buf![i]!) : buf;
    }
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! - lrs[k]! * step[i]!;
    }
    history.push([...p]);
  });
  return history;
}

function expectClose(got: number[][], want: number[][], rel = 2e-6) {
  expect(got).toHaveLength(want.length);
  got.forEach((row, k) => {
    row.forEach((v, i) => {
      const w = want[k]![i]!;
      expect(Math.abs(v - w), `step ${k} element ${i}: ${v} vs ${w}`).toBeLessThanOrEqual(
        rel * Math.max(1, Math.abs(w)),
      );
    });
  });
}

const p0 = [1, -2, 0.5, 3e-3];
const grads = [
  [0.1, -0.2, 0.3, 1e-4],
  [-0.05, 0.4, 0.1, 2e-4],
  [0.2, 0.1, -0.3, -1e-4],
];
const lrs = [0.1, 0.05, 0.02];

describe("optimizers: PyTorch's update formulas", () => {
  it("Adam, first step from zero state is lr * sign(g) (bias correction)", async () => {
    const [first] = await runSteps(new Adam(), [1, -2, 0.5], [[0.1, -0.2, 0.3]], [0.1]);
    expectClose([first!], [[0.9, -1.9, 0.4]], 1e-6);
  });

  it("AdamW, first step: p * (1 - lr wd) - lr * sign(g)", async () => {
    const [first] = await runSteps(new AdamW({ weightDecay: 0.1 }), [1, -2, 0.5], [[0.1, -0.2, 0.3]], [0.1]);
    expectClose([first!], [[0.89, -1.88, 0.395]], 1e-6);
  });

  it.each([
    ["Adam", new Adam(), { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0, decoupled: false }],
    [
      "Adam, L2 weight decay, betas (0.8, 0.99)",
      new Adam({ weightDecay: 0.1, betas: [0.8, 0.99] }),
      { b1: 0.8, b2: 0.99, eps: 1e-8, wd: 0.1, decoupled: false },
    ],
    ["AdamW (default wd 0.01)", new AdamW(), { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, decoupled: true }],
    [
      "AdamW wd 0.5, eps 1e-3",
      new AdamW({ weightDecay: 0.5, eps: 1e-3 }),
      { b1: 0.9, b2: 0.999, eps: 1e-3, wd: 0.5, decoupled: true },
    ],
  ] as const)("%s over three steps", async (_name, optimizer, o) => {
    expectClose(await runSteps(optimizer, p0, grads, lrs), adamRef(p0, grads, lrs, o));
  });

  it.each([
    ["SGD", new SGD(), { momentum: 0, dampening: 0, wd: 0, nesterov: false }],
    [
      "SGD momentum 0.9, wd 1e-2",
      new SGD({ momentum: 0.9, weightDecay: 1e-2 }),
      { momentum: 0.9, dampening: 0, wd: 1e-2, nesterov: false },
    ],
    [
      "SGD momentum 0.9, dampening 0.5 (first step undamped)",
      new SGD({ momentum: 0.9, dampening: 0.5 }),
      { momentum: 0.9, dampening: 0.5, wd: 0, nesterov: false },
    ],
    [
      "SGD Nesterov 0.8",
      new SGD({ momentum: 0.8, nesterov: true }),
      { momentum: 0.8, dampening: 0, wd: 0, nesterov: true },
    ],
  ] as const)("%s over three steps", async (_name, optimizer, o) => {
    expectClose(await runSteps(optimizer, p0, grads, lrs), sgdRef(p0, grads, lrs, o));
  });

  it("SGD momentum, hand-computed: buf = g, then 0.9 buf + g", async () => {
    const got = await runSteps(new SGD({ momentum: 0.9 }), [1], [[0.5], [0.25]], [0.1, 0.1]);
    // step 1: p = 1 - 0.1 * 0.5 = 0.95; step 2: buf = 0.45 + 0.25 = 0.7, p = 0.95 - 0.07 = 0.88
    expectClose(got, [[0.95], [0.88]], 1e-6);
  });

  it("validates options", () => {
    expect(() => new Adam({ betas: [1, 0.9] })).toThrow(/beta1/);
    expect(() => new SGD({ nesterov: true })).toThrow(/Nesterov/);
    expect(new SGD().stateNames).toEqual([]);
    expect(new Adam().stateNames).toEqual(["exp_avg", "exp_avg_sq"]);
  });
});

describe("learning-rate schedules", () => {
  it("constant, step, cosine (with warmup), poly", () => {
    expect(constantLR(0.1)(1000)).toBe(0.1);
    const s = stepLR(0.1, { stepSize: 10, gamma: 0.5 });
    expect([s(0), s(9), s(10), s(25)]).toEqual([0.1, 0.1, 0.05, 0.025]);
    const c = cosineLR(1, { totalSteps: 100, minLr: 0.1 });
    expect(c(0)).toBeCloseTo(1, 12);
    expect(c(50)).toBeCloseTo(0.55, 12);
    expect(c(100)).toBeCloseTo(0.1, 12);
    expect(c(150)).toBeCloseTo(0.1, 12);
    const w = cosineLR(1, { totalSteps: 110, warmupSteps: 10 });
    expect(w(0)).toBe(0);
    expect(w(5)).toBeCloseTo(0.5, 12);
    expect(w(10)).toBeCloseTo(1, 12);
    expect(w(60)).toBeCloseTo(0.5, 12);
    const p = polyLR(0.01, { totalSteps: 100 });
    expect(p(0)).toBeCloseTo(0.01, 15);
    expect(p(50)).toBeCloseTo(0.01 * 0.5 ** 0.9, 15);
    expect(p(100)).toBe(0);
    expect(() => polyLR(0.1, { totalSteps: 0 })).toThrow(/totalSteps/);
  });
});
