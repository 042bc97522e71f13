import { describe, expect, it } from "vitest";
import {
  CropForegroundd,
  generateSpatialBoundingBox,
  type MetaTensor,
  SpatialCropForegroundd,
  SpatialPadd,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, grid, tensor } from "./helpers.js";

const img = (d: Record<string, unknown>, key = "image") => d[key] as MetaTensor;

// 6x5x4 zeros with foreground at (2, 1, 1) and (3, 3, 2)
const blob = (affine = diag(1, 1, 1)) =>
  tensor(
    [1, 6, 5, 4],
    (x, y, z) => (x === 2 && y === 1 && z === 1 ? 5 : x === 3 && y === 3 && z === 2 ? 7 : 0),
    affine,
  );

describe("generateSpatialBoundingBox", () => {
  it("box of the foreground, grown by the margin, clamped when allowSmaller", () => {
    expect(generateSpatialBoundingBox(blob())).toEqual({ start: [2, 1, 1], end: [4, 4, 3] });
    expect(generateSpatialBoundingBox(blob(), undefined, undefined, 2, true)).toEqual({
      start: [0, 0, 0],
      end: [6, 5, 4],
    });
    expect(generateSpatialBoundingBox(blob(), undefined, undefined, [2, 2, 2], false)).toEqual({
      start: [0, -1, -1],
      end: [6, 6, 5],
    });
    expect(generateSpatialBoundingBox(blob(), (v) => v > 6)).toEqual({ start: [3, 3, 2], end: [4, 4, 3] });
    expect(generateSpatialBoundingBox(tensor([1, 3, 3, 3], () => 0))).toEqual({ start: [0, 0, 0], end: [0, 0, 0] });
  });
});

describe("CropForegroundd", () => {
  it("crops to the box plus margin, records the coordinates and shifts the origin", () => {
    const t = blob(diag(2, 2, 2, [100, 0, 0]));
    const d = new CropForegroundd({ keys: "image", sourceKey: "image", margin: 1 }).call({ image: t });
    expect(d.foreground_start_coord).toEqual([1, 0, 0]);
    expect(d.foreground_end_coord).toEqual([5, 5, 4]);
    const out = img(d);
    expect(out.shape).toEqual([1, 4, 5, 4]);
    expect(at(out, 1, 1, 1)).toBe(5);
    expect(at(out, 2, 3, 2)).toBe(7);
    expectAffineClose(out.affine, diag(2, 2, 2, [102, 0, 0]));
  });

  it("a box sticking out of the image is padded (allowSmaller false, MONAI's default) or clamped", () => {
    const padded = img(new CropForegroundd({ keys: "image", sourceKey: "image", margin: 2 }).call({ image: blob() }));
    expect(padded.shape).toEqual([1, 6, 7, 6]);
    expect(at(padded, 2, 2, 2)).toBe(5); // old (2, 1, 1)
    expectAffineClose(padded.affine, diag(1, 1, 1, [0, -1, -1]));
    const clamped = img(
      new CropForegroundd({ keys: "image", sourceKey: "image", margin: 2, allowSmaller: true }).call({ image: blob() }),
    );
    expect(clamped.shape).toEqual([1, 6, 5, 4]);
  });

  it("kDivisible grows the box about its centre", () => {
    const d = new CropForegroundd({ keys: "image", sourceKey: "image", kDivisible: 4 }).call({ image: blob() });
    // sizes 2, 3, 2 -> 4, 4, 4; starts 2 - 1, 1 - 0, 1 - 1
    expect(d.foreground_start_coord).toEqual([1, 1, 0]);
    expect(d.foreground_end_coord).toEqual([5, 5, 4]);
  });

  it("crops other keys with the source's box, and the inverse puts the crop back with zeros around", () => {
    const image = blob(diag(1, 1, 1, [3, 4, 5]));
    const label = tensor([1, 6, 5, 4], (x, y, z) => x + y + z, image.affine);
    const xf = new CropForegroundd({ keys: ["image", "label"], sourceKey: "image" });
    const d = xf.call({ image, label });
    expect(img(d, "label").shape).toEqual([1, 2, 3, 2]);
    expect(at(img(d, "label"), 0, 0, 0)).toBe(2 + 1 + 1);
    const back = xf.inverse(d);
    const l = img(back, "label");
    expect(l.shape).toEqual([1, 6, 5, 4]);
    expect(l.affine).toEqual(image.affine);
    for (let x = 0; x < 6; x++) {
      for (let y = 0; y < 5; y++) {
        for (let z = 0; z < 4; z++) {
          const inside = x >= 2 && x < 4 && y >= 1 && y < 4 && z >= 1 && z < 3;
          expect(at(l, x, y, z)).toBe(inside ? x + y + z : 0);
        }
      }
    }
    expect(Array.from(img(back).data)).toEqual(Array.from(image.data));
  });
  it("no foreground: an empty crop (as MONAI), which the inverse pads back with zeros", () => {
    const empty = tensor([1, 3, 3, 3], () => 0);
    const xf = new CropForegroundd({ keys: "image", sourceKey: "image" });
    const d = xf.call({ image: empty });
    expect(img(d).shape).toEqual([1, 0, 0, 0]);
    const back = img(xf.inverse(d));
    expect(back.shape).toEqual([1, 3, 3, 3]);
    expect(Array.from(back.data).every((v) => v === 0)).toBe(true);
  });
});

describe("SpatialPadd", () => {
  const t = tensor([1, 2, 3], (x, y) => 1 + x + 2 * y, diag(1, 1, 1, [10, 20, 0]));

  it("symmetric: half before, the rest after; the origin moves back", () => {
    const out = img(new SpatialPadd({ keys: "image", spatialSize: [5, 4] }).call({ image: t }));
    expect(out.shape).toEqual([1, 5, 4]);
    // x: 3 more -> (1, 2); y: 1 more -> (0, 1)
    expect(grid(out).map((col) => col.map((v) => v[0]))).toEqual([
      [0, 0, 0, 0],
      [1, 3, 5, 0],
      [2, 4, 6, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    expectAffineClose(out.affine, diag(1, 1, 1, [9, 20, 0]));
  });

  it("end, edge mode, and axes already large enough are left alone", () => {
    const out = img(
      new SpatialPadd({ keys: "image", spatialSize: [4, 2], method: "end", mode: "edge" }).call({ image: t }),
    );
    expect(out.shape).toEqual([1, 4, 3]);
    expect(grid(out).map((col) => col.map((v) => v[0]))).toEqual([
      [1, 3, 5],
      [2, 4, 6],
      [2, 4, 6],
      [2, 4, 6],
    ]);
    expectAffineClose(out.affine, t.affine);
  });

  it("the inverse crops the padding off", () => {
    const xf = new SpatialPadd({ keys: "image", spatialSize: [7, 7], value: -1 });
    const d = xf.call({ image: t });
    expect(at(img(d), 0, 0)).toBe(-1);
    const back = img(xf.inverse(d));
    expect(back.shape).toEqual([1, 2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect(back.affine).toEqual(t.affine);
  });
});

describe("SpatialCropForegroundd (MONAI Label)", () => {
  // 10^3 with foreground in x 2..3, y 4..5, z 6..7
  const cube = () =>
    tensor([1, 10, 10, 10], (x, y, z) => (x >= 2 && x < 4 && y >= 4 && y < 6 && z >= 6 && z < 8 ? 1 : 0));

  it("a box smaller than spatialSize on every axis: a spatialSize patch about its centre", () => {
    const d = new SpatialCropForegroundd({ keys: "image", sourceKey: "image", spatialSize: [4, 4, 4] }).call({
      image: cube(),
    });
    const out = img(d);
    // centre (3, 5, 7), start centre - 2
    expect(out.shape).toEqual([1, 4, 4, 4]);
    expect(out.meta.foreground_start_coord).toEqual([1, 3, 5]);
    expect(out.meta.foreground_end_coord).toEqual([5, 7, 9]);
    expect(out.meta.foreground_original_shape).toEqual([1, 10, 10, 10]);
    expect(out.meta.foreground_cropped_shape).toEqual([1, 4, 4, 4]);
    expect(at(out, 1, 1, 1)).toBe(1);
    expectAffineClose(out.affine, diag(1, 1, 1, [1, 3, 5]));
  });

  it("otherwise the foreground box itself; patches are cut at the image edge", () => {
    const big = img(
      new SpatialCropForegroundd({ keys: "image", sourceKey: "image", spatialSize: [2, 8, 8] }).call({ image: cube() }),
    );
    expect(big.shape).toEqual([1, 2, 2, 2]);
    const edge = tensor([1, 6, 6, 6], (x, y, z) => (x < 2 && y < 2 && z < 2 ? 1 : 0));
    const cut = img(
      new SpatialCropForegroundd({ keys: "image", sourceKey: "image", spatialSize: [8, 8, 8] }).call({ image: edge }),
    );
    // centre 1: start max(1 - 4, 0) = 0, end 8, cut to 6
    expect(cut.meta.foreground_start_coord).toEqual([0, 0, 0]);
    expect(cut.meta.foreground_end_coord).toEqual([8, 8, 8]);
    expect(cut.shape).toEqual([1, 6, 6, 6]);
  });

  it("invertible, also with resizeMode (crop, then resize to spatialSize)", () => {
    const t = cube();
    const xf = new SpatialCropForegroundd({ keys: "image", sourceKey: "image", spatialSize: [4, 4, 4] });
    const back = img(xf.inverse(xf.call({ image: t })));
    expect(back.shape).toEqual([1, 10, 10, 10]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect(back.affine).toEqual(t.affine);

    const resizing = new SpatialCropForegroundd({
      keys: "image",
      sourceKey: "image",
      spatialSize: [8, 8, 8],
      margin: 1,
      resizeMode: "nearest",
    });
    const small = tensor([1, 10, 10, 10], (x, y, z) => (x >= 1 && x < 9 && y >= 1 && y < 9 && z >= 2 && z < 6 ? 1 : 0));
    const d = resizing.call({ image: small });
    // box (0, 0, 1)-(10, 10, 7) is not smaller than 8 on every axis: cropped to 10x10x6, resized to 8^3
    expect(img(d).shape).toEqual([1, 8, 8, 8]);
    expect(img(d).meta.foreground_cropped_shape).toEqual([1, 10, 10, 6]);
    const restored = img(resizing.inverse(d));
    expect(restored.shape).toEqual([1, 10, 10, 10]);
    expect(restored.affine).toEqual(small.affine);
  });
});
