import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  AddGuidanceFromPointsDeepEditd,
  AddGuidanceFromPointsd,
  AddGuidanceSignalDeepEditd,
  AddGuidanceSignald,
  Compose,
  EnsureChannelFirstd,
  gaussianKernel1d,
  type MetaTensor,
  Orientationd,
  Resized,
  ResizeGuidanceMultipleLabelDeepEditd,
  Spacingd,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, tensor } from "./helpers.js";

/** A 20x20x10 volume of 1x1x2 mm as LoadImaged leaves it (no channel, spatial_shape in meta). */
function loaded(): MetaTensor {
  const t = tensor([1, 20, 20, 10], (x, y, z) => x + y + z, diag(1, 1, 2), {
    spatial_shape: [20, 20, 10],
    original_channel_dim: "no_channel",
  });
  return t.derive({ data: t.data, shape: [20, 20, 10] });
}

const toSpacing2 = new Compose([
  new EnsureChannelFirstd({ keys: "image" }),
  new Spacingd({ keys: "image", pixdim: [2, 2, 2] }),
]);

describe("AddGuidanceFromPointsd (deepgrow)", () => {
  it("3D: clicks in original voxels land on the same world point after Spacingd, and after Resized", async () => {
    const d = await toSpacing2.call({ image: loaded(), foreground: [[10, 6, 4]], background: [[3, 17, 9]] });
    const image = d.image as MetaTensor;
    // 20 voxels of 1 mm -> round(9.5 + 1) = 10 of 2 mm; 10 of 2 mm stay 10
    expect(image.shape).toEqual([1, 10, 10, 10]);
    const add = new AddGuidanceFromPointsd({ refImage: "image", depthFirst: false, spatialDims: 3 });
    const g = add.call(d);
    expect(g.guidance).toEqual([[[5, 3, 4]], [[1, 8, 9]]]);
    // same world position: original voxel (10, 6, 4) at 1x1x2 mm, new voxel (5, 3, 4) at 2 mm
    const world = (a: number[][], v: number[]) =>
      a.slice(0, 3).map((row) => row[0]! * v[0]! + row[1]! * v[1]! + row[2]! * v[2]! + row[3]!);
    expect(world(image.affine, [5, 3, 4])).toEqual(world(diag(1, 1, 2), [10, 6, 4]));

    const resized = new Resized({ keys: "image", spatialSize: [5, 5, 5] }).call(d);
    // factor (5/20, 5/20, 5/10), truncated
    expect(add.call(resized).guidance).toEqual([[[2, 1, 2]], [[0, 4, 4]]]);
  });

  it("depth first (MONAI's default) rolls the click and the shapes: (x, y, z) becomes (z, x, y)", async () => {
    const d = await toSpacing2.call({ image: loaded(), foreground: [[10, 6, 4]], background: [] });
    const g = new AddGuidanceFromPointsd({ refImage: "image", spatialDims: 3 }).call(d);
    expect(g.guidance).toEqual([[[4, 5, 3]], []]);
  });

  it("2D: the clicks of one slice (the first clicked, or data.slice), without the slice coordinate", async () => {
    const d = await new Compose([new EnsureChannelFirstd({ keys: "image" })]).call({
      image: loaded(),
      foreground: [
        [4, 10, 6],
        [4, 2, 2],
      ],
      background: [[5, 1, 1]],
    });
    const add = new AddGuidanceFromPointsd({ refImage: "image", depthFirst: false });
    expect(add.call(d).guidance).toEqual([
      [
        [10, 6],
        [2, 2],
      ],
      [],
      4,
    ]);
    expect(add.call({ ...d, slice: 5 }).guidance).toEqual([[], [[1, 1]], 5]);
  });
});

/** MONAI's erf kernel computed by Python's math.erf (an independent check of `gaussianKernel1d`). */
function pythonKernel(sigma: number): number[] {
  const script = `
import math, json, sys
s = float(sys.argv[1]); tail = int(max(s * 4.0, 0.5) + 0.5); t = 0.70710678 / s
print(json.dumps([max(0.5 * (math.erf(t * (x + 0.5)) - math.erf(t * (x - 0.5))), 0) for x in range(-tail, tail + 1)]))`;
  return JSON.parse(execFileSync("/usr/bin/python3", ["-c", script, String(sigma)], { encoding: "utf8" })) as number[];
}

describe("deepedit guidance", () => {
  const labelNames = { spleen: 1, liver: 2, background: 0 };

  it("AddGuidanceFromPointsDeepEditd: clicks per label name, scaled into the current grid", async () => {
    const d = await toSpacing2.call({ image: loaded(), spleen: [[10, 6, 4]], background: [[3, 17, 9]] });
    const g = new AddGuidanceFromPointsDeepEditd({ refImage: "image", labelNames }).call(d);
    expect(g.guidance).toEqual({ spleen: [[5, 3, 4]], liver: [], background: [[1, 8, 9]] });
  });

  it("ResizeGuidanceMultipleLabelDeepEditd scales by current / original shape after Resized", async () => {
    const pre = new Compose([
      new EnsureChannelFirstd({ keys: "image" }),
      new Orientationd({ keys: "image", axcodes: "RAS" }),
      new AddGuidanceFromPointsDeepEditd({ refImage: "image", labelNames }),
      new Resized({ keys: "image", spatialSize: [5, 5, 5] }),
      new ResizeGuidanceMultipleLabelDeepEditd({ guidance: "guidance", refImage: "image" }),
    ]);
    const d = await pre.call({ image: loaded(), spleen: [[10, 6, 4]], liver: "[[19, 19, 9]]" });
    expect(d.guidance).toEqual({ spleen: [[2, 1, 2]], liver: [[4, 4, 4]], background: [] });
  });

  it("the erf Gaussian kernel matches Python's math.erf", () => {
    for (const sigma of [1, 3]) {
      const expected = pythonKernel(sigma);
      const actual = gaussianKernel1d(sigma);
      expect(actual.length).toBe(expected.length);
      expected.forEach((v, i) => {
        expect(actual[i]).toBeCloseTo(v, 7);
      });
    }
  });

  it("AddGuidanceSignalDeepEditd: one Gaussian channel per label, peak 1 at the click, zeros without clicks", () => {
    const image = tensor([1, 10, 10, 10], () => 0.5, diag(2, 2, 2));
    const d = new AddGuidanceSignalDeepEditd({ keys: "image", sigma: 1 }).call({
      image,
      guidance: { spleen: [[5, 3, 4]], liver: [], background: [[1, 8, 9]] },
    });
    const out = d.image as MetaTensor;
    expect(out.shape).toEqual([4, 10, 10, 10]);
    expectAffineClose(out.affine, image.affine);
    expect(at(out, 0, 0, 0, 0)).toBe(0.5);
    expect(at(out, 5, 3, 4, 1)).toBe(1);
    expect(Array.from(out.channel(2)).every((v) => v === 0)).toBe(true);
    expect(at(out, 1, 8, 9, 3)).toBe(1);
    // separable: the value at an offset is k(dx) k(dy) k(dz) / k(0)^3 (the grid minimum is 0 here)
    const k = pythonKernel(1);
    const k0 = k[4]!;
    for (const [dx, dy, dz] of [
      [1, 0, 0],
      [0, 2, 0],
      [1, 1, 1],
      [-3, 0, 2],
    ] as const) {
      const expected = (k[4 + dx]! * k[4 + dy]! * k[4 + dz]!) / k0 ** 3;
      expect(at(out, 5 + dx, 3 + dy, 4 + dz, 1)).toBeCloseTo(expected, 6);
    }
    // symmetric about the click
    expect(at(out, 4, 3, 4, 1)).toBeCloseTo(at(out, 6, 3, 4, 1), 7);
  });

  it("AddGuidanceSignald (deepgrow): foreground and background channels; clicks with a negative coordinate are skipped", () => {
    const image = tensor([3, 8, 8, 8], () => 1);
    const d = new AddGuidanceSignald({ sigma: 2 }).call({
      image,
      guidance: JSON.stringify([[[2, 2, 2]], [[-1, -1, -1]]]),
    });
    const out = d.image as MetaTensor;
    expect(out.shape).toEqual([3, 8, 8, 8]);
    expect(at(out, 2, 2, 2, 1)).toBe(1);
    expect(Array.from(out.channel(2)).every((v) => v === 0)).toBe(true);
  });
});
