/**
 * Whole-network gradient checks (reference/onnx-training.md, Q2): a Taylor remainder test on all parameters at
 * once, and the native-InstanceNorm rule against autodiff of a decomposed InstanceNorm on the same UNet.
 */
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { gradients } from "../../../src/graph/autodiff.js";
import type { NormOptions } from "../../../src/graph/builder.js";
import { numel, prune, type Value } from "../../../src/graph/ir.js";
import { serializeGraph } from "../../../src/graph/serialize.js";
import { TrainingGraphBuilder } from "../../../src/graph/training.js";
import { BasicUNet } from "../../../src/nn/basic-unet.js";
import { diceLoss } from "../../../src/nn/losses.js";
import type { Network } from "../../../src/nn/module.js";
import { UNet } from "../../../src/nn/unet.js";
import { randomArray, rng } from "./gradcheck.js";

const report: string[] = [];
afterAll(() => {
  console.log(report.join("\n"));
});

/** InstanceNorm as ReduceMean, Sub, Mul, Sqrt, Div, Add, differentiated op by op. */
class DecomposedNormBuilder extends TrainingGraphBuilder {
  override instanceNorm(x: Value, scale: Value, bias: Value, options: NormOptions = {}): Value {
    const axes = Array.from({ length: x.shape.length - 2 }, (_, i) => i + 2);
    const view = [1, x.shape[1]!, ...axes.map(() => 1)];
    const xc = this.sub(x, this.reduceMean(x, axes));
    const sd = this.sqrt(this.add(this.reduceMean(this.mul(xc, xc), axes), this.scalar(options.epsilon ?? 1e-5)));
    return this.add(this.mul(this.div(xc, sd), this.reshape(scale, view)), this.reshape(bias, view));
  }
}

/**
 * PReLU / LeakyReLU / ReLU replaced by smooth versions (min(x, 0) ~ -softplus(-x)), so that a Taylor test sees
 * the 4x fall of a correct gradient instead of kink noise; everything else in the network is unchanged.
 */
class SmoothActivationBuilder extends TrainingGraphBuilder {
  override prelu(x: Value, slope: Value): Value {
    // max(x, 0) + slope min(x, 0) = x - (1 - slope) min(x, 0)
    const one = this.scalar(1);
    return this.add(x, this.mul(this.sub(one, slope), this.op("Softplus", [this.neg(x)])[0]!));
  }

  override leakyRelu(x: Value, alpha = 0.01): Value {
    return this.add(x, this.mul(this.scalar(1 - alpha), this.op("Softplus", [this.neg(x)])[0]!));
  }

  override relu(x: Value): Value {
    return this.op("Softplus", [x])[0]!;
  }
}

interface GradModel {
  session: ort.InferenceSession;
  params: { name: string; shape: readonly number[] }[];
}

async function gradModel(net: Network, inputShape: number[], g = new TrainingGraphBuilder()): Promise<GradModel> {
  const x = g.input("image", "float32", inputShape);
  const y = g.input("label", "float32", [inputShape[0]!, net.outChannels, ...inputShape.slice(2)]);
  const loss = diceLoss(g, net.build(g, x), y, { sigmoid: true });
  const names = [...g.parameters.keys()];
  const grads = gradients(g, loss, names);
  g.output(loss, "loss");
  for (const name of names) {
    g.output(grads.get(name)!, `grad:${name}`);
  }
  const session = await ort.InferenceSession.create(serializeGraph(prune(g.graph())), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    logSeverityLevel: 3,
    extra: { session: { set_denormal_as_zero: "1" } },
  });
  return { session, params: names.map((name) => ({ name, shape: g.parameters.get(name)!.value.shape })) };
}

function feeds(
  m: GradModel,
  values: Map<string, Float32Array>,
  image: Float32Array,
  label: Float32Array,
  shape: number[],
) {
  const f: Record<string, ort.Tensor> = {
    image: new ort.Tensor("float32", image, shape),
    label: new ort.Tensor("float32", label, [
      shape[0]!,
      label.length / numel([shape[0]!, ...shape.slice(2)]),
      ...shape.slice(2),
    ]),
  };
  for (const p of m.params) {
    f[p.name] = new ort.Tensor("float32", values.get(p.name)!, p.shape);
  }
  return f;
}

function batch(shape: number[], outChannels: number, seed: number) {
  const image = randomArray("float32", numel(shape), seed) as Float32Array;
  const r = rng(seed + 1);
  const label = Float32Array.from({ length: numel([shape[0]!, outChannels, ...shape.slice(2)]) }, () =>
    r() < 0.3 ? 1 : 0,
  );
  return { image, label };
}

/** Taylor remainders r(e) = |L(w + e d) - L(w) - e <g, d>| for e = e0, e0/2, ... */
async function taylor(net: Network, shape: number[], e0: number, halvings: number, smooth = false) {
  const m = await gradModel(net, shape, smooth ? new SmoothActivationBuilder() : new TrainingGraphBuilder());
  try {
    const { image, label } = batch(shape, net.outChannels, 3);
    const w = new Map<string, Float32Array>();
    const d = new Map<string, Float32Array>();
    net.parameters().forEach((p, name) => {
      w.set(name, p.data.slice());
      // Direction scaled to each tensor's magnitude, so that small and large parameters move alike.
      const rms = Math.sqrt(p.data.reduce((a, v) => a + v * v, 0) / p.data.length) || 1;
      d.set(
        name,
        Float32Array.from(randomArray("float32", p.data.length, name.length * 7 + 11), (v) => v * rms),
      );
    });
    const base = await m.session.run(feeds(m, w, image, label, shape));
    const L0 = (base.loss!.data as Float32Array)[0]!;
    let gd = 0;
    for (const p of m.params) {
      const gr = base[`grad:${p.name}`]!.data as Float32Array;
      const dir = d.get(p.name)!;
      for (let i = 0; i < gr.length; i++) {
        gd += gr[i]! * dir[i]!;
      }
    }
    const remainders: number[] = [];
    for (let k = 0, e = e0; k <= halvings; k++, e /= 2) {
      const moved = new Map<string, Float32Array>();
      w.forEach((v, name) => {
        const dir = d.get(name)!;
        moved.set(
          name,
          Float32Array.from(v, (x, i) => x + e * dir[i]!),
        );
      });
      const out = await m.session.run(feeds(m, moved, image, label, shape));
      remainders.push(Math.abs((out.loss!.data as Float32Array)[0]! - L0 - e * gd));
    }
    const ratios = remainders.slice(1).map((r, i) => remainders[i]! / r);
    // Central difference along d at the smallest e whose difference is well above float32 noise.
    const central: number[] = [];
    for (const e of [1e-2, 3e-3, 1e-3]) {
      const at = async (sign: number) => {
        const moved = new Map<string, Float32Array>();
        w.forEach((v, name) => {
          const dir = d.get(name)!;
          moved.set(
            name,
            Float32Array.from(v, (x, i) => x + sign * e * dir[i]!),
          );
        });
        return (await m.session.run(feeds(m, moved, image, label, shape))).loss!.data[0] as number;
      };
      const fd = ((await at(1)) - (await at(-1))) / (2 * e);
      central.push(Math.abs(fd - gd) / Math.max(Math.abs(fd), Math.abs(gd)));
    }
    return { L0, gd, remainders, ratios, central };
  } finally {
    await m.session.release();
  }
}

/** At least `run` consecutive ratios >= 3 among those whose remainders are above the float32 noise floor. */
function longestQuadraticRun(remainders: number[], ratios: number[], floor: number): number {
  let best = 0;
  let current = 0;
  ratios.forEach((q, i) => {
    if (remainders[i + 1]! < floor) {
      current = 0;
      return;
    }
    current = q >= 3 ? current + 1 : 0;
    best = Math.max(best, current);
  });
  return best;
}

describe("whole-network gradients", () => {
  const describeTaylor = (label: string, t: Awaited<ReturnType<typeof taylor>>) =>
    `${label}: L=${t.L0.toFixed(5)} <g,d>=${t.gd.toExponential(3)}\n` +
    `  r(e), e = e0 / 2^k: ${t.remainders.map((r) => r.toExponential(2)).join(", ")}\n` +
    `  ratios: ${t.ratios.map((r) => r.toFixed(2)).join(", ")}\n` +
    `  central difference vs <g,d> at e = 1e-2, 3e-3, 1e-3: ${t.central.map((c) => c.toExponential(1)).join(", ")}`;

  const unet = (act: "PRELU" | "RELU") =>
    new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8, 8], strides: [2, 2], act, seed: 1 });
  const basic = () =>
    new BasicUNet({
      spatialDims: 2,
      inChannels: 1,
      outChannels: 1,
      features: [4, 4, 4, 4, 4, 4],
      upsample: "nontrainable",
      seed: 2,
    });

  it("Taylor remainder of a 2D UNet (InstanceNorm, smooth PReLU) with sigmoid + Dice falls 4x per halving", async () => {
    const t = await taylor(unet("PRELU"), [2, 1, 32, 32], 0.5, 8, true);
    report.push(describeTaylor("UNet 2D [4,8,8], 2x1x32x32, PReLU made smooth", t));
    expect(longestQuadraticRun(t.remainders, t.ratios, 1e-6)).toBeGreaterThanOrEqual(3);
    expect(Math.min(...t.central)).toBeLessThan(1e-3);
  });

  it("Taylor remainder of a 3D UNet (InstanceNorm, smooth PReLU) with sigmoid + Dice falls 4x per halving", async () => {
    const net3d = new UNet({ spatialDims: 3, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 5 });
    const t = await taylor(net3d, [1, 1, 16, 16, 16], 0.5, 8, true);
    report.push(describeTaylor("UNet 3D [4,8], 1x1x16^3, PReLU made smooth", t));
    // Measured: 3.60, 3.86, 3.96, 4.14, 3.89 before the float32 noise floor.
    expect(longestQuadraticRun(t.remainders, t.ratios, 1e-6)).toBeGreaterThanOrEqual(3);
    expect(Math.min(...t.central)).toBeLessThan(1e-3);
  });

  it("BasicUNet (MaxPool, linear upsample, affine IN, smooth LeakyReLU): directional derivative matches", async () => {
    // MaxPool's argmax switches are kinks that no builder can smooth, so the Taylor ratios stay noisy here; the
    // central difference along a random direction of all parameters is the check.
    const t = await taylor(basic(), [2, 1, 16, 16], 0.5, 8, true);
    report.push(describeTaylor("BasicUNet 2D features 4, 2x1x16x16, nontrainable upsample, LeakyReLU made smooth", t));
    expect(Math.min(...t.central)).toBeLessThan(1e-3);
  });

  it("the same networks with their real (kinked) activations: directional derivatives match", async () => {
    // Kinks make Taylor ratios noisy (2 to 30, as the study saw with ReLU); the first-order check still holds.
    for (const [label, net, shape] of [
      ["UNet 2D, PReLU", unet("PRELU"), [2, 1, 32, 32]],
      ["UNet 2D, ReLU", unet("RELU"), [2, 1, 32, 32]],
      ["BasicUNet 2D, LeakyReLU", basic(), [2, 1, 16, 16]],
    ] as const) {
      const t = await taylor(net, [...shape], 0.5, 6);
      report.push(describeTaylor(`${label} (kinked)`, t));
      expect(Math.min(...t.central), label).toBeLessThan(1e-2);
    }
  });

  it("native InstanceNorm rule and autodiff of a decomposed InstanceNorm agree on a UNet", async () => {
    const shape = [2, 1, 16, 16];
    const make = () =>
      new UNet({
        spatialDims: 2,
        inChannels: 1,
        outChannels: 2,
        channels: [4, 8, 8],
        strides: [2, 2],
        act: "RELU",
        seed: 4,
      });
    const native = await gradModel(make(), shape);
    const decomposed = await gradModel(make(), shape, new DecomposedNormBuilder());
    try {
      const values = new Map([...make().parameters()].map(([n, p]) => [n, p.data] as const));
      const { image, label } = batch(shape, 2, 9);
      const a = await native.session.run(feeds(native, values, image, label, shape));
      const b = await decomposed.session.run(feeds(decomposed, values, image, label, shape));
      let diff = 0;
      let norm = 0;
      let count = 0;
      for (const p of native.params) {
        const ga = a[`grad:${p.name}`]!.data as Float32Array;
        const gb = b[`grad:${p.name}`]!.data as Float32Array;
        for (let i = 0; i < ga.length; i++) {
          diff += (ga[i]! - gb[i]!) ** 2;
          norm += ga[i]! ** 2;
        }
        count += ga.length;
      }
      const rel = Math.sqrt(diff / norm);
      report.push(
        `native vs decomposed InstanceNorm, UNet 2D ReLU: relative L2 ${rel.toExponential(2)} over ${count} grads`,
      );
      expect(rel).toBeLessThan(1e-4);
    } finally {
      await native.session.release();
      await decomposed.session.release();
    }
  });
});
