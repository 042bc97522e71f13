import { describe, expect, it } from "vitest";
import { type MetaTensor, Orientationd, Resized, Spacingd } from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, expectArrayClose, grid, tensor } from "./helpers.js";

const img = (d: Record<string, unknown>, key = "image") => d[key] as MetaTensor;

describe("Orientationd", () => {
  // value = x + 10 y + 100 z on a 2x3x4 grid
  const ramp = (affine: number[][]) => tensor([1, 2, 3, 4], (x, y, z) => x + 10 * y + 100 * z, affine);

  it("LPS to RAS flips x and y, and moves the origin to the old last voxel", () => {
    const lps = [
      [-2, 0, 0, 10],
      [0, -3, 0, 20],
      [0, 0, 1, 30],
      [0, 0, 0, 1],
    ];
    const out = img(new Orientationd({ keys: "image", axcodes: "RAS" }).call({ image: ramp(lps) }));
    expect(out.shape).toEqual([1, 2, 3, 4]);
    // new (x, y, z) is old (1 - x, 2 - y, z)
    expect(at(out, 0, 0, 0)).toBe(1 + 20);
    expect(at(out, 1, 0, 2)).toBe(0 + 20 + 200);
    expect(at(out, 0, 2, 3)).toBe(1 + 0 + 300);
    // world of new voxel 0 = world of old voxel (1, 2, 0) = (10 - 2, 20 - 6, 30)
    expectAffineClose(out.affine, [
      [2, 0, 0, 8],
      [0, 3, 0, 14],
      [0, 0, 1, 30],
      [0, 0, 0, 1],
    ]);
    expect(out.applied).toHaveLength(1);
    expect(out.applied[0]!.className).toBe("Orientationd");
  });

  it("permutes axes: voxel axes along world A, S, R become R, A, S", () => {
    const asr = [
      [0, 0, 1, 0],
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0, 1],
    ];
    const out = img(new Orientationd({ keys: "image", axcodes: "RAS" }).call({ image: ramp(asr) }));
    expect(out.shape).toEqual([1, 4, 2, 3]);
    // new (i, j, k) is old (j, k, i)
    expect(at(out, 3, 1, 2)).toBe(1 + 10 * 2 + 100 * 3);
    expectAffineClose(out.affine, diag(1, 1, 1));
  });

  it("an image already in the target orientation is unchanged", () => {
    const t = ramp(diag(1, 1, 1, [1, 2, 3]));
    const out = img(new Orientationd({ keys: "image" }).call({ image: t }));
    expect(Array.from(out.data)).toEqual(Array.from(t.data));
    expectAffineClose(out.affine, t.affine);
  });

  it("inverse restores values and affine exactly", () => {
    const lps = diag(-1, -1, 1, [5, 5, 5]);
    const xf = new Orientationd({ keys: "image", axcodes: "RAS" });
    const t = ramp(lps);
    const back = img(xf.inverse(xf.call({ image: t })));
    expect(back.shape).toEqual([1, 2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect(back.affine).toEqual(lps);
    expect(back.applied).toHaveLength(0);
  });

  it("2D images use the first two codes", () => {
    const t = tensor([1, 2, 3], (x, y) => x + 10 * y, diag(-1, 1, 1));
    const out = img(new Orientationd({ keys: "image", axcodes: "RAS" }).call({ image: t }));
    expect(grid(out).map((col) => col.map((v) => v[0]))).toEqual([
      [1, 11, 21],
      [0, 10, 20],
    ]);
    expectAffineClose(out.affine, diag(1, 1, 1, [-1, 0, 0]));
  });
});

describe("Spacingd", () => {
  it("2x downsamples a ramp: 6 voxels become round(2.5 + 1) = 4 (numpy rounding), the last clamped to the border", () => {
    const t = tensor([1, 6, 1, 1], (x) => x);
    const out = img(new Spacingd({ keys: "image", pixdim: [2, 1, 1] }).call({ image: t }));
    expect(out.shape).toEqual([1, 4, 1, 1]);
    expectArrayClose(out.data, [0, 2, 4, 5]);
    expectAffineClose(out.affine, diag(2, 1, 1));
  });

  it("trilinear resampling of a linear function is exact; the origin stays put", () => {
    // 4x4x2 voxels of 1x1x2 mm at (10, 20, 30); value x + 10 y + 100 z
    const t = tensor([1, 4, 4, 2], (x, y, z) => x + 10 * y + 100 * z, diag(1, 1, 2, [10, 20, 30]));
    const out = img(new Spacingd({ keys: "image", pixdim: [2, 0.5, 2] }).call({ image: t }));
    // x: 0..3 -> 0..1.5 -> 2; y: 0..3 -> 0..6 -> 7; z: 2
    expect(out.shape).toEqual([1, 2, 7, 2]);
    expectAffineClose(out.affine, diag(2, 0.5, 2, [10, 20, 30]));
    // new voxel (x, y, z) is old (2x, y/2, z)
    for (let x = 0; x < 2; x++) {
      for (let y = 0; y < 7; y++) {
        for (let z = 0; z < 2; z++) {
          expect(at(out, x, y, z)).toBeCloseTo(2 * x + 5 * y + 100 * z, 4);
        }
      }
    }
  });

  it("nearest mode (labels) rounds half to even, as grid_sample", () => {
    const t = tensor([1, 1, 4, 1], (_x, y) => y + 1);
    const out = img(new Spacingd({ keys: "label", pixdim: [1, 0.5, 1], mode: "nearest" }).call({ label: t }), "label");
    // y/2 = 0, .5, 1, 1.5, 2, 2.5, 3 -> 0, 0, 1, 2, 2, 2, 3
    expectArrayClose(out.data, [1, 1, 2, 3, 3, 3, 4]);
  });

  it("per-key modes; the inverse brings back the shape and the affine", () => {
    const affine = diag(0.8, 0.8, 2.5, [-50, -60, 10]);
    const image = tensor([1, 10, 8, 5], (x, y, z) => x * y + z, affine);
    const label = tensor([1, 10, 8, 5], (x) => (x > 4 ? 1 : 0), affine);
    const xf = new Spacingd({ keys: ["image", "label"], pixdim: [1.5, 1.5, 1.5], mode: ["bilinear", "nearest"] });
    const d = xf.call({ image, label });
    // x: 0..9 * 0.8/1.5 -> 4.8 + 1 -> 6; y: 0..7 -> 3.73 + 1 -> 5; z: 0..4 * 2.5/1.5 -> 6.67 + 1 -> 8
    expect(img(d).shape).toEqual([1, 6, 5, 8]);
    expect(new Set(img(d, "label").data)).toEqual(new Set([0, 1]));
    const back = xf.inverse(d);
    expect(img(back).shape).toEqual([1, 10, 8, 5]);
    expect(img(back).affine).toEqual(affine);
    expect(img(back, "label").affine).toEqual(affine);
  });

  it("a pixdim <= 0 keeps that axis' spacing", () => {
    const t = tensor([1, 4, 4, 4], () => 1, diag(1, 1, 3));
    const out = img(new Spacingd({ keys: "image", pixdim: [2, 2, -1] }).call({ image: t }));
    expect(out.shape).toEqual([1, 2, 2, 4]);
    expectAffineClose(out.affine, diag(2, 2, 3));
  });
});

describe("Resized", () => {
  const row = (values: number[]) => tensor([1, values.length, 2, 2], (x) => values[x]!);

  it("area averages, nearest picks floor(i * in / out)", () => {
    const t = row([1, 2, 3, 4]);
    const area = img(new Resized({ keys: "image", spatialSize: [2, -1, -1] }).call({ image: t }));
    expect(area.shape).toEqual([1, 2, 2, 2]);
    expect([at(area, 0), at(area, 1), at(area, 1, 1, 1)]).toEqual([1.5, 3.5, 3.5]);
    const nearest = img(new Resized({ keys: "image", spatialSize: [2, 2, 2], mode: "nearest" }).call({ image: t }));
    expect([at(nearest, 0), at(nearest, 1)]).toEqual([1, 3]);
  });

  it("linear interpolation (align_corners false) and area upsampling", () => {
    const t = row([0, 4]);
    const linear = img(new Resized({ keys: "image", spatialSize: [4, 2, 2], mode: "trilinear" }).call({ image: t }));
    // source positions clamp(-0.25) = 0, 0.25, 0.75, 1.25 (clamped to the last voxel)
    expect([0, 1, 2, 3].map((x) => at(linear, x))).toEqual([0, 1, 3, 4]);
    const corners = img(
      new Resized({ keys: "image", spatialSize: [5, 2, 2], mode: "linear", alignCorners: true }).call({ image: t }),
    );
    expect([0, 1, 2, 3, 4].map((x) => at(corners, x))).toEqual([0, 1, 2, 3, 4]);
    const area = img(new Resized({ keys: "image", spatialSize: [4, 2, 2] }).call({ image: t }));
    expect([0, 1, 2, 3].map((x) => at(area, x))).toEqual([0, 0, 4, 4]);
  });

  it("scales the affine about the grid's outer edges", () => {
    const t = tensor([1, 4, 2, 2], () => 0, diag(1, 1, 1, [10, 0, 0]));
    const out = img(new Resized({ keys: "image", spatialSize: [2, 4, 2] }).call({ image: t }));
    // x: 2 mm voxels, first centre at 10 + 0.5; y: 0.5 mm voxels, first centre at -0.25
    expectAffineClose(out.affine, diag(2, 0.5, 1, [10.5, -0.25, 0]));
  });

  it("sizeMode longest keeps the aspect ratio", () => {
    const t = tensor([1, 8, 4, 2], () => 0);
    const out = img(new Resized({ keys: "image", spatialSize: 4, sizeMode: "longest" }).call({ image: t }));
    expect(out.shape).toEqual([1, 4, 2, 1]);
  });

  it("the inverse restores shape and affine; nearest round trips of an integer up-scale are exact", () => {
    const affine = diag(1.5, 1.5, 3, [1, 2, 3]);
    const t = tensor([1, 3, 2, 2], (x, y, z) => x + 3 * y + 6 * z, affine);
    const xf = new Resized({ keys: "image", spatialSize: [6, 4, 4], mode: "nearest" });
    const d = xf.call({ image: t });
    expect(img(d).shape).toEqual([1, 6, 4, 4]);
    const back = img(xf.inverse(d));
    expect(back.shape).toEqual([1, 3, 2, 2]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect(back.affine).toEqual(affine);
  });
});
