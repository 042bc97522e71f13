import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import type { Value } from "../../../src/graph/ir.js";
import * as ref from "./reference.js";
import { maxAbsDiff, random, runModel, type Tensor } from "./reference.js";

/** Runs a one-input graph built by `make` and returns output "y". */
async function run(x: Tensor, make: (g: GraphBuilder, x: Value) => Value) {
  const g = new GraphBuilder({ name: "numerics" });
  const input = g.input("x", "float32", x.shape);
  const y = make(g, input);
  g.output(y, "y");
  const out = (await runModel(g.serialize(), { x })).y!;
  expect(out.dims).toEqual(y.shape);
  return out.data as Float32Array;
}

function param(g: GraphBuilder, name: string, t: Tensor): Value {
  return g.initializer(name, t.data, t.shape);
}

describe("ops agree with naive references", () => {
  const convCases = [
    { name: "Conv2d k3 s1 p1", x: [2, 3, 7, 6], w: [4, 3, 3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dil: [1, 1] },
    {
      name: "Conv2d k3 s2 p1, odd size",
      x: [1, 2, 9, 8],
      w: [3, 2, 3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      dil: [1, 1],
    },
    {
      name: "Conv2d k3 s2 asymmetric pads",
      x: [1, 2, 8, 8],
      w: [3, 2, 3, 3],
      strides: [2, 1],
      pads: [0, 1, 1, 0],
      dil: [1, 1],
    },
    {
      name: "Conv2d k3 dilation 2",
      x: [1, 2, 9, 9],
      w: [2, 2, 3, 3],
      strides: [1, 1],
      pads: [2, 2, 2, 2],
      dil: [2, 2],
    },
    {
      name: "Conv3d k3 s1 p1",
      x: [1, 2, 6, 5, 4],
      w: [3, 2, 3, 3, 3],
      strides: [1, 1, 1],
      pads: [1, 1, 1, 1, 1, 1],
      dil: [1, 1, 1],
    },
    {
      name: "Conv3d k3 s2 p1, odd 7x6x5",
      x: [1, 2, 7, 6, 5],
      w: [2, 2, 3, 3, 3],
      strides: [2, 2, 2],
      pads: [1, 1, 1, 1, 1, 1],
      dil: [1, 1, 1],
    },
    {
      name: "Conv3d k2 s2 p0, no bias",
      x: [1, 3, 4, 4, 6],
      w: [2, 3, 2, 2, 2],
      strides: [2, 2, 2],
      pads: [0, 0, 0, 0, 0, 0],
      dil: [1, 1, 1],
      noBias: true,
    },
  ];

  it.each(convCases)("$name", async (c) => {
    const x = random(c.x, 11);
    const w = random(c.w, 12);
    const b = c.noBias ? undefined : random([c.w[0]!], 13);
    const got = await run(x, (g, xv) =>
      g.conv(xv, param(g, "w", w), b && param(g, "b", b), { strides: c.strides, pads: c.pads, dilations: c.dil }),
    );
    const want = ref.conv(x, w, b?.data, { strides: c.strides, pads: c.pads, dilations: c.dil });
    expect(maxAbsDiff(got, want.data)).toBeLessThan(1e-5);
  });

  const convTransposeCases = [
    { name: "ConvTranspose2d k3 s2 p1 output_padding 1", x: [1, 3, 4, 5], w: [3, 2, 3, 3], s: 2, p: 1, op: 1 },
    { name: "ConvTranspose2d k2 s2", x: [2, 2, 3, 3], w: [2, 3, 2, 2], s: 2, p: 0, op: 0 },
    { name: "ConvTranspose3d k3 s2 p1 output_padding 1", x: [1, 2, 3, 4, 2], w: [2, 2, 3, 3, 3], s: 2, p: 1, op: 1 },
  ];

  it.each(convTransposeCases)("$name", async (c) => {
    const d = c.x.length - 2;
    const x = random(c.x, 21);
    const w = random(c.w, 22);
    const b = random([c.w[1]!], 23);
    const got = await run(x, (g, xv) =>
      g.convTranspose(xv, param(g, "w", w), param(g, "b", b), { strides: c.s, pads: c.p, outputPadding: c.op }),
    );
    const want = ref.convTranspose(x, w, b.data, {
      strides: Array(d).fill(c.s),
      pads: Array(2 * d).fill(c.p),
      dilations: Array(d).fill(1),
      outputPadding: Array(d).fill(c.op),
    });
    expect(got.length).toBe(want.data.length);
    expect(maxAbsDiff(got, want.data)).toBeLessThan(1e-5);
  });

  it("InstanceNorm 2D and 3D, with scale and bias", async () => {
    for (const shape of [
      [2, 3, 5, 6],
      [1, 2, 4, 3, 5],
    ]) {
      const x = random(shape, 31, -2, 3);
      const scale = random([shape[1]!], 32);
      const bias = random([shape[1]!], 33);
      const got = await run(x, (g, xv) => g.instanceNorm(xv, param(g, "s", scale), param(g, "b", bias)));
      expect(maxAbsDiff(got, ref.instanceNorm(x, scale.data, bias.data).data)).toBeLessThan(1e-5);
    }
  });

  it("MaxPool k2 (2D, odd size) and k3 s2 p1 (3D)", async () => {
    const x2 = random([1, 2, 7, 6], 41);
    const got2 = await run(x2, (g, xv) => g.maxPool(xv, { kernelShape: 2 }));
    const want2 = ref.maxPool(x2, [2, 2], { strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] });
    expect(maxAbsDiff(got2, want2.data)).toBe(0);

    const x3 = random([1, 2, 5, 6, 4], 42);
    const got3 = await run(x3, (g, xv) => g.maxPool(xv, { kernelShape: 3, strides: 2, pads: 1 }));
    const want3 = ref.maxPool(x3, [3, 3, 3], { strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1], dilations: [1, 1, 1] });
    expect(maxAbsDiff(got3, want3.data)).toBe(0);
  });

  it("Softmax over channels", async () => {
    const x = random([2, 4, 3, 5], 51, -4, 4);
    const got = await run(x, (g, xv) => g.softmax(xv, 1));
    expect(maxAbsDiff(got, ref.softmaxChannels(x).data)).toBeLessThan(1e-6);
  });

  it("Concat on channels", async () => {
    const x = random([2, 2, 3, 3], 61);
    const other = random([2, 3, 3, 3], 62);
    const got = await run(x, (g, xv) => g.concat([xv, param(g, "o", other), xv], 1));
    expect(maxAbsDiff(got, ref.concatChannels([x, other, x]).data)).toBe(0);
  });

  it("Resize nearest x2 in 2D and 3D (PyTorch's floor rule)", async () => {
    for (const shape of [
      [1, 2, 3, 4],
      [1, 1, 2, 3, 2],
    ]) {
      const x = random(shape, 71);
      const got = await run(x, (g, xv) => g.resize(xv, { scales: 2, mode: "nearest" }));
      expect(maxAbsDiff(got, ref.resizeNearest(x, 2).data)).toBe(0);
    }
  });

  it("Resize linear x2 with align_corners (BasicUNet's non-trainable upsampling)", async () => {
    const x = random([1, 2, 3, 4], 72);
    const got = await run(x, (g, xv) =>
      g.resize(xv, { scales: 2, mode: "linear", coordinateTransformationMode: "align_corners" }),
    );
    expect(maxAbsDiff(got, ref.resizeBilinearAlignCorners(x, 6, 8).data)).toBeLessThan(1e-6);
  });

  it("Pad edge replicates the last row and column (MONAI UpCat's replicate pad)", async () => {
    const x = random([1, 1, 2, 3], 73);
    const got = await run(x, (g, xv) => g.pad(xv, [0, 0, 0, 0, 0, 0, 1, 1], { mode: "edge" }));
    const at = (r: number, c: number) => x.data[Math.min(r, 1) * 3 + Math.min(c, 2)]!;
    const want = Float32Array.from({ length: 12 }, (_, i) => at(Math.floor(i / 4), i % 4));
    expect(maxAbsDiff(got, want)).toBe(0);
  });

  it("Dropout is the identity in inference form", async () => {
    const x = random([2, 3, 4], 81);
    expect(maxAbsDiff(await run(x, (g, xv) => g.dropout(xv, 0.5)), x.data)).toBe(0);
  });

  it("Add, Mul, Sub, Div broadcast like numpy", async () => {
    const x = random([2, 3, 2], 91);
    const c = new Float32Array([1, 2, 3]);
    const got = await run(x, (g, xv) => {
      const k = g.constant(c, [3, 1]);
      return g.div(g.sub(g.mul(g.add(xv, k), k), k), k);
    });
    const want = x.data.map((v, i) => {
      const k = c[Math.floor(i / 2) % 3]!;
      return ((v + k) * k - k) / k;
    });
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-6);
  });

  it("Slice with negative steps reverses an axis", async () => {
    const x = random([1, 1, 2, 5], 92);
    const got = await run(x, (g, xv) => g.slice(xv, { starts: [-1], ends: [-1000], axes: [3], steps: [-1] }));
    const want = new Float32Array(10);
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 5; c++) {
        want[r * 5 + c] = x.data[r * 5 + (4 - c)]!;
      }
    }
    expect(maxAbsDiff(got, want)).toBe(0);
  });
});
