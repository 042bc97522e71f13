import { describe, expect, it } from "vitest";
import { ErrorCode, InvalidInputError } from "../../../src/errors.js";
import {
  AddInitialSeedPointd,
  AddRandomGuidanced,
  CheckClicksd,
  distanceTransformCdt,
  Fetch2DSliced,
  FindAllValidSlicesd,
  FindDiscrepancyRegionsd,
  RandDepthCropd,
  ResizeGuidanced,
  RestoreLabeld,
  SpatialCropGuidanced,
  sampleClick,
} from "../../../src/transforms/deepgrow.js";
import { AddGuidanceSignald, guidanceSignal } from "../../../src/transforms/guidance.js";
import { convolveSeparable, gaussianKernel1d } from "../../../src/transforms/kernels.js";
import { RandomState } from "../../../src/transforms/random.js";
import { MetaTensor } from "../../../src/transforms/tensor.js";

/** A [1, X, Y(, Z)] tensor from rows written top (y = 0) to bottom, x left to right. */
function grid2d(rows: number[][]): MetaTensor {
  const Y = rows.length;
  const X = rows[0]!.length;
  const data = new Float32Array(X * Y);
  rows.forEach((r, y) => {
    r.forEach((v, x) => {
      data[x + X * y] = v;
    });
  });
  return new MetaTensor({ data, shape: [1, X, Y] });
}

describe("distanceTransformCdt (scipy's chessboard distance_transform_cdt)", () => {
  it("gives the chessboard distance to the nearest zero", () => {
    const t = grid2d([
      [0, 0, 0, 0, 0],
      [0, 1, 1, 1, 0],
      [0, 1, 1, 1, 0],
      [0, 1, 1, 1, 0],
      [0, 0, 0, 0, 0],
    ]);
    const d = distanceTransformCdt(t.data, [5, 5, 1]);
    expect(Array.from(d)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 2, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("does not count outside the array as zero, and goes diagonally in 3D", () => {
    expect(Array.from(distanceTransformCdt([0, 1, 1, 1], [4, 1, 1]))).toEqual([0, 1, 2, 3]);
    // A 3x3x3 cube of ones with a zero corner: the far corner is 2 away (chessboard), not 6.
    const cube = new Float32Array(27).fill(1);
    cube[0] = 0;
    const d = distanceTransformCdt(cube, [3, 3, 3]);
    expect(d[26]).toBe(2);
    expect(d[13]).toBe(1);
  });
});

describe("click sampling", () => {
  it("draws voxels with probability exp(distance) - 1 (centre of a 3x3 block: (e^2-1)/(e^2-1+8(e-1)))", () => {
    const t = grid2d([
      [0, 0, 0, 0, 0],
      [0, 1, 1, 1, 0],
      [0, 1, 1, 1, 0],
      [0, 1, 1, 1, 0],
      [0, 0, 0, 0, 0],
    ]);
    const R = new RandomState(5);
    let centre = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const p = sampleClick(t.data, [5, 5, 1], 2, R)!;
      expect(p[0]).toBe(p[1] === 2 && p[2] === 2 ? 2 : 1);
      expect(t.data[p[1]! + 5 * p[2]!]).toBe(1);
      centre += p[1] === 2 && p[2] === 2 ? 1 : 0;
    }
    const expected = (Math.E ** 2 - 1) / (Math.E ** 2 - 1 + 8 * (Math.E - 1));
    expect(centre / n).toBeGreaterThan(expected - 0.03);
    expect(centre / n).toBeLessThan(expected + 0.03);
  });
});

describe("AddInitialSeedPointd", () => {
  it("seeds one click per connected region in scan order, with -1 negatives (2D)", () => {
    const label = grid2d([
      [0, 0, 0, 0, 0],
      [0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 1],
    ]);
    const d = new AddInitialSeedPointd({}).call({ label });
    expect(d.guidance).toEqual([
      [
        [1, 1, 1],
        [1, 4, 3],
      ],
      [
        [-1, -1, -1],
        [-1, -1, -1],
      ],
    ]);
  });

  it("seeds a 3D label on one of its valid slices (FindAllValidSlicesd), as [dist, x, y, z]", () => {
    const data = new Float32Array(4 * 4 * 3);
    data[2 + 4 * 1 + 16 * 1] = 1; // (x 2, y 1, z 1)
    const label = new MetaTensor({ data, shape: [1, 4, 4, 3] });
    const withSids = new FindAllValidSlicesd({}).call({ label });
    expect(withSids.sids).toEqual([1]);
    expect(new AddInitialSeedPointd({}).call(withSids).guidance).toEqual([[[1, 2, 1, 1]], [[-1, -1, -1, -1]]]);
  });

  it("rejects an empty label with a typed error", () => {
    const label = grid2d([[0, 0]]);
    expect(() => new AddInitialSeedPointd({}).call({ label })).toThrow(InvalidInputError);
  });
});

describe("FindDiscrepancyRegionsd and AddRandomGuidanced", () => {
  it("splits the disagreement into missed (label, not pred) and extra (pred, not label) at 0.5", () => {
    const label = grid2d([[0, 1, 1, 0]]);
    const pred = grid2d([[0.2, 0.9, 0.3, 0.7]]);
    const d = new FindDiscrepancyRegionsd({}).call({ label, pred });
    const [pos, neg] = d.discrepancy as Uint8Array[];
    expect(Array.from(pos!)).toEqual([0, 0, 1, 0]);
    expect(Array.from(neg!)).toEqual([0, 0, 0, 1]);
  });

  it("clicks in the larger region and pads the other list", () => {
    const label = grid2d([[0, 0, 0, 0, 0]]);
    const base = { label, guidance: [[[3, 1, 0]], [[-1, -1, -1]]] };
    // missed 1 voxel, extra 0: a positive click there
    const pos = new AddRandomGuidanced({}).call({
      ...base,
      discrepancy: [Uint8Array.from([0, 0, 1, 0, 0]), new Uint8Array(5)],
    });
    expect(pos.guidance).toEqual([
      [
        [3, 1, 0],
        [1, 2, 0],
      ],
      [
        [-1, -1, -1],
        [-1, -1, -1],
      ],
    ]);
    // missed 1, extra 2 (x 3..4; x 4 is deeper since outside is not background): a negative click
    const neg = new AddRandomGuidanced({}).setRandomState(1).call({
      ...base,
      discrepancy: [Uint8Array.from([1, 0, 0, 0, 0]), Uint8Array.from([0, 0, 0, 1, 1])],
    });
    const [p, n] = neg.guidance as number[][][];
    expect(p![1]).toEqual([-1, -1, -1]);
    expect([3, 4]).toContain(n![1]![1]);
    // probability 0: no click at all
    const none = new AddRandomGuidanced({}).call({
      ...base,
      probability: 0,
      discrepancy: [Uint8Array.from([0, 0, 1, 0, 0]), new Uint8Array(5)],
    });
    expect(none.guidance).toEqual([
      [
        [3, 1, 0],
        [-1, -1, -1],
      ],
      [
        [-1, -1, -1],
        [-1, -1, -1],
      ],
    ]);
  });

  it("feeds AddGuidanceSignald: the padded entries give no signal", () => {
    const image = new MetaTensor({ data: new Float32Array(25), shape: [1, 5, 5] });
    const d = new AddGuidanceSignald({ sigma: 1 }).call({
      image,
      guidance: [
        [
          [2, 2, 2],
          [-1, -1, -1],
        ],
        [[-1, -1, -1]],
      ],
    });
    const t = d.image as MetaTensor;
    expect(t.shape).toEqual([3, 5, 5]);
    expect(t.data[25 + 2 + 5 * 2]).toBeCloseTo(1);
    expect(t.data[25 + 0]).toBeCloseTo(0);
    expect(Math.max(...t.data.subarray(50))).toBe(0);
  });
});

describe("crop around the clicks and restore", () => {
  const image = () => {
    const data = new Float32Array(10 * 8 * 3);
    for (let i = 0; i < data.length; i++) {
      data[i] = i;
    }
    return new MetaTensor({ data, shape: [1, 10, 8, 3], meta: { spatial_shape: [10, 8, 3] } });
  };

  it("Fetch2DSliced -> SpatialCropGuidanced -> ResizeGuidanced, by hand", () => {
    let d: Record<string, unknown> = { image: image(), guidance: [[[2, 3]], [], 2] };
    d = new Fetch2DSliced({ keys: "image" }).call(d);
    const slice = d.image as MetaTensor;
    expect(slice.shape).toEqual([1, 10, 8]);
    expect(slice.data[0]).toBe(160); // (0, 0, z 2)
    // bbox of (2, 3) with margin 0 grown to 4x4 around its centre: x 0..3, y 1..4
    d = new SpatialCropGuidanced({ keys: "image", spatialSize: [4, 4], margin: 0 }).call(d);
    const crop = d.image as MetaTensor;
    expect(crop.shape).toEqual([1, 4, 4]);
    expect(crop.meta.foreground_start_coord).toEqual([0, 1]);
    expect(crop.meta.foreground_end_coord).toEqual([4, 5]);
    expect(crop.data[0]).toBe(160 + 10); // (x 0, y 1)
    expect(crop.data[3 + 4 * 3]).toBe(160 + 3 + 10 * 4); // (x 3, y 4)
    expect((d.guidance as unknown[])[0]).toEqual([[2, 2]]);
    const resized = crop.derive({ data: new Float32Array(64), shape: [1, 8, 8] });
    d = new ResizeGuidanced({}).call({ ...d, image: resized });
    expect((d.guidance as unknown[])[0]).toEqual([[4, 4]]);
  });

  it("RestoreLabeld undoes resize, crop and slice onto the image grid", () => {
    let d: Record<string, unknown> = { image: image(), guidance: [[[2, 3]], [], 2] };
    d = new Fetch2DSliced({ keys: "image" }).call(d);
    d = new SpatialCropGuidanced({ keys: "image", spatialSize: [4, 4], margin: 0 }).call(d);
    const crop = d.image as MetaTensor;
    d.image = crop.derive({ data: new Float32Array(64), shape: [1, 8, 8] });
    d.pred = new MetaTensor({ data: new Float32Array(64).fill(1), shape: [1, 8, 8] });
    const out = new RestoreLabeld({ keys: "pred" }).call(d).pred as MetaTensor;
    expect(out.shape).toEqual([1, 10, 8, 3]);
    const on: number[][] = [];
    out.data.forEach((v, i) => {
      if (v > 0) {
        on.push([i % 10, Math.floor(i / 10) % 8, Math.floor(i / 80)]);
      }
    });
    expect(on.length).toBe(16);
    expect(on.every(([x, y, z]) => x! <= 3 && y! >= 1 && y! <= 4 && z === 2)).toBe(true);
  });

  it("CheckClicksd rejects clicks outside the image with INVALID_INPUT", () => {
    const check = new CheckClicksd({});
    expect(() => check.call({ image: image(), foreground: [[9, 7, 2]] })).not.toThrow();
    for (const bad of [[[10, 0, 0]], [[0, -1, 0]], [[0, 0, 3]], [[1, 2]], "nope"]) {
      let err: unknown;
      try {
        check.call({ image: image(), foreground: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).code).toBe(ErrorCode.INVALID_INPUT);
    }
  });
});

describe("guidanceSignal (only each click's neighbourhood is computed)", () => {
  it("equals MONAI's recipe on the whole grid: one-hot, Gaussian filter with zero padding, min-max", () => {
    const spatial = [23, 17, 9];
    const points = [
      [3, 4, 2],
      [20, 16, 8],
      [3, 4, 2],
      [12, 8, 4],
      [-1, -1, -1],
    ];
    const sigma = 2;
    const shape: [number, number, number] = [23, 17, 9];
    const onehot = new Float32Array(23 * 17 * 9);
    for (const [x, y, z] of points.filter((p) => p[0]! >= 0)) {
      onehot[x! + 23 * (y! + 17 * z!)] = 1;
    }
    const full = convolveSeparable(onehot, 1, shape, gaussianKernel1d(sigma), [0, 1, 2]);
    const lo = Math.min(...full);
    const hi = Math.max(...full);
    const fast = guidanceSignal(spatial, points, sigma);
    for (let i = 0; i < full.length; i++) {
      expect(Math.abs(fast[i]! - (full[i]! - lo) / (hi - lo))).toBeLessThan(1e-6);
    }
    expect(Array.from(guidanceSignal([4, 4], [[-1, -1]], 2))).toEqual(new Array(16).fill(0));
  });
});

describe("RandDepthCropd (training slices / slabs from whole volumes)", () => {
  it("takes a window of slices around a labelled slice; depth 1 drops the axis; 2D and thin items pass", () => {
    const data = new Float32Array(2 * 2 * 10);
    for (let i = 0; i < data.length; i++) {
      data[i] = i;
    }
    const label = new Float32Array(40);
    label.fill(1, 7 * 4, 8 * 4); // only slice 7
    const d = {
      image: new MetaTensor({ data, shape: [1, 2, 2, 10] }),
      label: new MetaTensor({ data: label, shape: [1, 2, 2, 10] }),
    };
    const slab = new RandDepthCropd({ keys: ["image", "label"], depth: 4 }).call(d);
    expect((slab.image as MetaTensor).shape).toEqual([1, 2, 2, 4]);
    expect(Array.from((slab.image as MetaTensor).data.subarray(0, 4))).toEqual([20, 21, 22, 23]); // z 5..8
    const slice = new RandDepthCropd({ keys: ["image", "label"], depth: 1, random: false }).call(d);
    expect((slice.image as MetaTensor).shape).toEqual([1, 2, 2]);
    expect(Array.from((slice.label as MetaTensor).data)).toEqual([1, 1, 1, 1]);
    const flat = { image: grid2d([[1, 2]]), label: grid2d([[1, 0]]) };
    expect(new RandDepthCropd({ keys: ["image", "label"], depth: 1 }).call(flat)).toBe(flat);
  });
});
