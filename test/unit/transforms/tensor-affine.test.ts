import { describe, expect, it } from "vitest";
import {
  aff2axcodes,
  axcodesToOrnt,
  computeShapeOffset,
  fromCOrder,
  invert,
  ioOrientation,
  MetaTensor,
  matmul,
  roundHalfEven,
  scaleAffine,
  toAffineNd,
  toCOrder,
  toVolume,
  zoomAffine,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, tensor } from "./helpers.js";

describe("MetaTensor", () => {
  it("is channel-first with each channel contiguous and x fastest", () => {
    const t = tensor([2, 2, 3, 4], (x, y, z, c) => 1000 * c + 100 * z + 10 * y + x);
    expect(t.shape).toEqual([2, 2, 3, 4]);
    expect(t.spatialShape).toEqual([2, 3, 4]);
    expect(t.channels).toBe(2);
    expect(t.channelSize).toBe(24);
    expect(Array.from(t.data.subarray(0, 4))).toEqual([0, 1, 10, 11]);
    expect(t.data[24]).toBe(1000);
    expect(at(t, 1, 2, 3, 1)).toBe(1321);
    expect(Array.from(t.channel(1).subarray(0, 2))).toEqual([1000, 1001]);
  });

  it("rejects data that do not fill the shape", () => {
    expect(() => new MetaTensor({ data: [1, 2, 3], shape: [1, 2, 2] })).toThrow(/3 values do not fill shape/);
  });

  it("converts to and from C order (last axis fastest) for models", () => {
    const t = tensor([2, 2, 3, 4], (x, y, z, c) => 1000 * c + 100 * z + 10 * y + x);
    const c = toCOrder(t);
    // C order [C, X, Y, Z]: index ((c*X + x)*Y + y)*Z + z
    expect(c[((1 * 2 + 1) * 3 + 2) * 4 + 3]).toBe(1321);
    expect(Array.from(c.subarray(0, 4))).toEqual([0, 100, 200, 300]);
    const back = fromCOrder(c, [2, 2, 3, 4], t);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
  });

  it("toVolume: one channel gives a 3D volume, several a 4D [X, Y, Z, C] one, with the spacing of the affine", () => {
    const one = tensor([1, 2, 3, 4], () => 1, diag(2, 3, 4));
    expect(toVolume(one, "uint8")).toMatchObject({ shape: [2, 3, 4], spacing: [2, 3, 4], dtype: "uint8" });
    const two = tensor([2, 2, 3, 4], () => 1, diag(-2, 3, 4));
    expect(toVolume(two).shape).toEqual([2, 3, 4, 2]);
    expect(toVolume(two).spacing).toEqual([2, 3, 4]);
  });
});

describe("affine geometry", () => {
  it("roundHalfEven is numpy's round", () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -0, -2, 2, 3]);
  });

  it("invert", () => {
    const a = [
      [0, 2, 0, 5],
      [-1, 0, 0, 3],
      [0, 0, 3, 1],
      [0, 0, 0, 1],
    ];
    expectAffineClose(matmul(a, invert(a)), diag(1, 1, 1));
    expect(() =>
      invert([
        [1, 2],
        [2, 4],
      ]),
    ).toThrow(/not invertible/);
  });

  it("io orientation and axis codes (nibabel's)", () => {
    expect(aff2axcodes(diag(1, 1, 1))).toBe("RAS");
    expect(aff2axcodes(diag(-1, -1, 1))).toBe("LPS");
    // voxel axes along world y, z, x
    const permuted = [
      [0, 0, 2, 0],
      [1.5, 0, 0, 0],
      [0, -1, 0, 0],
      [0, 0, 0, 1],
    ];
    expect(ioOrientation(permuted)).toEqual([
      { axis: 1, flip: 1 },
      { axis: 2, flip: -1 },
      { axis: 0, flip: 1 },
    ]);
    expect(aff2axcodes(permuted)).toBe("AIR");
    // a slightly oblique affine still picks the dominant axes
    const c = Math.cos(0.2);
    const s = Math.sin(0.2);
    expect(
      aff2axcodes([
        [c, -s, 0, 0],
        [s, c, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ]),
    ).toBe("RAS");
    expect(axcodesToOrnt("PLI")).toEqual([
      { axis: 1, flip: -1 },
      { axis: 0, flip: -1 },
      { axis: 2, flip: -1 },
    ]);
    expect(() => axcodesToOrnt("RAX")).toThrow(/axis code "X"/);
  });

  it("to_affine_nd keeps the first r axes and the translation", () => {
    const a = [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11, 12],
      [0, 0, 0, 1],
    ];
    expect(toAffineNd(2, a)).toEqual([
      [1, 2, 4],
      [5, 6, 8],
      [0, 0, 1],
    ]);
  });

  it("zoom_affine keeps the directions and sets the voxel size", () => {
    expectAffineClose(zoomAffine(diag(-1, -2, 3, [5, 6, 7]), [2, 2, 0]), diag(-2, -2, 3));
    expectAffineClose(zoomAffine(diag(-1, -2, 3), [2, 2, 2], true), diag(2, 2, 2));
  });

  it("compute_shape_offset: rounds half to even and puts the origin at the minimal corner", () => {
    // 6 voxels of 1 mm onto 2 mm: corners 0..5 -> 0..2.5 in output voxels, 3.5 rounds to 4
    expect(computeShapeOffset([6, 1, 1], diag(1, 1, 1), diag(2, 1, 1))).toEqual({
      shape: [4, 1, 1],
      offset: [0, 0, 0],
    });
    // 5 voxels: 0..2 -> 3
    expect(computeShapeOffset([5, 1, 1], diag(1, 1, 1), diag(2, 1, 1)).shape).toEqual([3, 1, 1]);
    // a flipped axis: the minimal output corner is the input's last voxel
    const { shape, offset } = computeShapeOffset([4, 2, 2], diag(-1, 1, 1, [10, 0, 0]), diag(-2, 1, 1));
    expect(shape).toEqual([2, 2, 2]);
    expect(offset).toEqual([10, 0, 0]);
  });

  it("scale_affine is centred", () => {
    expect(scaleAffine([4, 2], [2, 4])).toEqual([
      [2, 0, 0.5],
      [0, 0.5, -0.25],
      [0, 0, 1],
    ]);
  });
});
