import { describe, expect, it } from "vitest";
import {
  applyTransforms,
  Compose,
  cropBoxForCenter,
  type Data,
  EnsureChannelFirstd,
  isRandomizable,
  type MetaTensor,
  MultiSampleCompose,
  mapBinaryToIndices,
  mixSeeds,
  RandCropByPosNegLabeld,
  RandFlipd,
  RandGaussianNoised,
  RandomState,
  RandRotate90d,
  RandScaleIntensityd,
  RandShiftIntensityd,
  RandSpatialCropd,
  rot90Tensor,
  seedTransforms,
  splitAtFirstRandom,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, grid, tensor } from "./helpers.js";

const img = (d: Data, key = "image") => d[key] as MetaTensor;

describe("RandomState", () => {
  it("is deterministic per seed and covers its ranges", () => {
    const a = new RandomState(42);
    const b = new RandomState(42);
    const c = new RandomState(43);
    const sa = Array.from({ length: 20 }, () => a.nextUint32());
    expect(sa).toEqual(Array.from({ length: 20 }, () => b.nextUint32()));
    expect(sa).not.toEqual(Array.from({ length: 20 }, () => c.nextUint32()));
    const r = new RandomState(7);
    const counts = [0, 0, 0, 0, 0];
    let sum = 0;
    let sq = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = r.rand();
      expect(u >= 0 && u < 1).toBe(true);
      const k = r.randint(5);
      counts[k]! += 1;
      const v = r.randint(-3, -1);
      expect(v === -3 || v === -2).toBe(true);
      const g = r.normal(1, 2);
      sum += g;
      sq += g * g;
    }
    for (const k of counts) {
      expect(k / n).toBeGreaterThan(0.18);
      expect(k / n).toBeLessThan(0.22);
    }
    const mean = sum / n;
    expect(mean).toBeCloseTo(1, 1);
    expect(Math.sqrt(sq / n - mean * mean)).toBeCloseTo(2, 1);
    expect(r.permutation(10).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(() => r.randint(0)).toThrow(/low < high/);
    // state round trip
    const s = new RandomState(5);
    s.rand();
    const saved = s.getState();
    const x = s.rand();
    expect(new RandomState(0).setState(saved).rand()).toBe(x);
    expect(mixSeeds(1, 2, 3)).toBe(mixSeeds(1, 2, 3));
    expect(mixSeeds(1, 2, 3)).not.toBe(mixSeeds(1, 3, 2));
  });
});

describe("RandFlipd", () => {
  it("with prob 1 flips every key exactly and moves the affine; inverse undoes it", () => {
    const t = tensor([1, 3, 2], (x, y) => 10 * x + y, diag(2, 3, 1, [5, 7, 0]));
    const label = tensor([1, 3, 2], (x, y) => (x === 0 && y === 1 ? 1 : 0), diag(2, 3, 1, [5, 7, 0]));
    const flip = new RandFlipd({ keys: ["image", "label"], prob: 1, spatialAxis: 0 }).setRandomState(0);
    const d = flip.call({ image: t, label });
    expect(grid(img(d))).toEqual([
      [[20], [21]],
      [[10], [11]],
      [[0], [1]],
    ]);
    expect(grid(img(d, "label"))).toEqual([
      [[0], [0]],
      [[0], [0]],
      [[0], [1]],
    ]);
    // voxel 0 now holds what was voxel 2: world x = 5 + 2*2
    expectAffineClose(img(d).affine, [
      [-2, 0, 0, 9],
      [0, 3, 0, 7],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
    const back = flip.inverse(d);
    expect(Array.from(img(back).data)).toEqual(Array.from(t.data));
    expectAffineClose(img(back).affine, t.affine);
    expect(img(back).applied).toHaveLength(0);

    const all = new RandFlipd({ keys: "image", prob: 1 }).call({ image: t });
    expect(grid(img(all))).toEqual([
      [[21], [20]],
      [[11], [10]],
      [[1], [0]],
    ]);
    const none = new RandFlipd({ keys: "image", prob: 0 }).call({ image: t });
    expect(Array.from(img(none).data)).toEqual(Array.from(t.data));
  });

  it("flips about half the time with prob 0.5", () => {
    const flip = new RandFlipd({ keys: "image", prob: 0.5, spatialAxis: [0] }).setRandomState(3);
    const t = tensor([1, 2], (x) => x);
    let flipped = 0;
    for (let i = 0; i < 400; i++) {
      flipped += at(img(flip.call({ image: t })), 0) === 1 ? 1 : 0;
    }
    expect(flipped).toBeGreaterThan(160);
    expect(flipped).toBeLessThan(240);
  });
});

describe("RandRotate90d", () => {
  it("k=1 on a 2x3 is np.rot90 (first axis towards the second), for every key; inverse undoes it", () => {
    // [[1, 2, 3], [4, 5, 6]]: x is the row, y the column
    const m = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const t = tensor([1, 2, 3], (x, y) => m[x]![y]!);
    const rot = new RandRotate90d({ keys: ["image", "label"], prob: 1, maxK: 1 }).setRandomState(1);
    const d = rot.call({ image: t, label: t });
    expect(rot.k).toBe(1);
    expect(img(d).shape).toEqual([1, 3, 2]);
    const rows = (r: MetaTensor) => grid(r).map((row) => row.map((v) => v[0]));
    // np.rot90([[1,2,3],[4,5,6]]) == [[3,6],[2,5],[1,4]]
    expect(rows(img(d))).toEqual([
      [3, 6],
      [2, 5],
      [1, 4],
    ]);
    expect(rows(img(d, "label"))).toEqual(rows(img(d)));
    expect(rows(rot90Tensor(t, 2, [0, 1]))).toEqual([
      [6, 5, 4],
      [3, 2, 1],
    ]);
    expect(rows(rot90Tensor(t, 3, [0, 1]))).toEqual([
      [4, 1],
      [5, 2],
      [6, 3],
    ]);
    expect(rows(rot90Tensor(t, -1, [0, 1]))).toEqual(rows(rot90Tensor(t, 3, [0, 1])));
    const back = rot.inverse(d);
    expect(img(back).shape).toEqual([1, 2, 3]);
    expect(Array.from(img(back).data)).toEqual(Array.from(t.data));
  });

  it("keeps every voxel's world position (affine follows the rotation)", () => {
    const t = tensor([1, 4, 3, 2], (x, y, z) => x + 4 * y + 12 * z, diag(1.5, 2, 3, [10, -4, 2]));
    const r = rot90Tensor(t, 1, [0, 2]);
    expect(r.shape).toEqual([1, 2, 3, 4]);
    const [X, Y, Z] = r.spatialShape as [number, number, number];
    const world = (a: number[][], v: number[]) =>
      [0, 1, 2].map((i) => a[i]![0]! * v[0]! + a[i]![1]! * v[1]! + a[i]![2]! * v[2]! + a[i]![3]!);
    for (let x = 0; x < X; x++) {
      for (let y = 0; y < Y; y++) {
        for (let z = 0; z < Z; z++) {
          const v = at(r, x, y, z);
          const src = [v % 4, Math.floor(v / 4) % 3, Math.floor(v / 12)];
          expect(world(r.affine, [x, y, z])).toEqual(world(t.affine, src));
        }
      }
    }
  });
});

// A 3D image with a few bright blobs away from the edges; the label is exactly its mask (> 50).
const blobs = () =>
  tensor([1, 24, 20, 12], (x, y, z) => {
    const inBlob =
      (Math.abs(x - 6) <= 1 && Math.abs(y - 5) <= 1 && Math.abs(z - 5) <= 1) ||
      (Math.abs(x - 16) <= 2 && Math.abs(y - 13) <= 1 && z === 7);
    return inBlob ? 100 + x + y + z : ((x * 7 + y * 3 + z * 5) % 40) + (x === 0 ? 0 : 1);
  });
const maskOf = (t: MetaTensor, thr = 50) => t.derive({ data: t.data.map((v) => (v > thr ? 1 : 0)), shape: t.shape });

describe("RandCropByPosNegLabeld", () => {
  const roi = [6, 5, 4];

  it("pos=1, neg=0: every crop is centred on foreground, in bounds, image and label aligned", () => {
    const image = blobs();
    const label = maskOf(image);
    const crop = new RandCropByPosNegLabeld({
      keys: ["image", "label"],
      labelKey: "label",
      spatialSize: roi,
      pos: 1,
      neg: 0,
      numSamples: 4,
    }).setRandomState(123);
    const centres = new Set<string>();
    for (let call = 0; call < 60; call++) {
      const out = crop.call({ image, label, other: "kept" });
      expect(out).toHaveLength(4);
      out.forEach((d, i) => {
        expect(d.other).toBe("kept");
        const ci = img(d);
        const cl = img(d, "label");
        expect(ci.shape).toEqual([1, ...roi]);
        expect(cl.shape).toEqual([1, ...roi]);
        expect(ci.meta.patch_index).toBe(i);
        const c = ci.meta.crop_center as number[];
        centres.add(c.join(","));
        // the blobs are away from the edges: the centre is not moved, and it is a foreground voxel
        expect(at(label, c[0]!, c[1]!, c[2]!)).toBe(1);
        expect(at(cl, 3, 2, 2)).toBe(1);
        const start = c.map((v, a) => v - Math.floor(roi[a]! / 2));
        start.forEach((s, a) => {
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s + roi[a]!).toBeLessThanOrEqual(image.spatialShape[a]!);
        });
        // pixel identity with the source, and the label is the crop's own mask
        for (let z = 0; z < roi[2]!; z++) {
          for (let y = 0; y < roi[1]!; y++) {
            for (let x = 0; x < roi[0]!; x++) {
              const v = at(ci, x, y, z);
              expect(v).toBe(at(image, start[0]! + x, start[1]! + y, start[2]! + z));
              expect(at(cl, x, y, z)).toBe(v > 50 ? 1 : 0);
            }
          }
        }
        // the affine moved with the crop origin
        expect(ci.affine[0]![3]).toBe(start[0]);
      });
    }
    // both blobs got sampled (27 + 15 foreground voxels)
    expect(centres.size).toBeGreaterThan(20);
  });

  it("pos=0, neg=1: centres on background, only inside the image's threshold with imageKey", () => {
    const image = blobs();
    const label = maskOf(image);
    const crop = new RandCropByPosNegLabeld({
      keys: ["image", "label"],
      labelKey: "label",
      spatialSize: roi,
      pos: 0,
      neg: 1,
      numSamples: 3,
      imageKey: "image",
      imageThreshold: 30,
    }).setRandomState(9);
    for (let call = 0; call < 40; call++) {
      for (const d of crop.call({ image, label })) {
        expect(img(d).shape).toEqual([1, ...roi]);
      }
      // the drawn voxels (before the centre is moved inside): background, above the image threshold
      const voxels = crop.randomize(label, image);
      for (const v of voxels) {
        expect(at(label, v[0]!, v[1]!, v[2]!)).toBe(0);
        expect(at(image, v[0]!, v[1]!, v[2]!)).toBeGreaterThan(30);
      }
    }
  });

  it("centres shift so the crop stays inside; a smaller image is padded (or cropped smaller)", () => {
    expect(cropBoxForCenter([0, 9], [4, 4], [10, 10])).toEqual({ start: [0, 6], size: [4, 4], center: [2, 8] });
    expect(cropBoxForCenter([5, 5], [5, 3], [10, 10])).toEqual({ start: [3, 4], size: [5, 3], center: [5, 5] });
    expect(cropBoxForCenter([9, 9], [5, 3], [10, 10]).start).toEqual([5, 7]);
    const image = tensor([1, 4, 10], (x, y) => 1 + x + 10 * y);
    const label = tensor([1, 4, 10], (_x, y) => (y === 9 ? 1 : 0));
    const padded = new RandCropByPosNegLabeld({
      keys: ["image", "label"],
      labelKey: "label",
      spatialSize: [6, 6],
      pos: 1,
      neg: 0,
    })
      .setRandomState(1)
      .call({ image, label });
    const p = img(padded[0]!);
    expect(p.shape).toEqual([1, 6, 6]);
    // x: one column of zeros each side; y: the last 6 rows (centre 9 moved to 7)
    const row = (x: number) => Array.from({ length: 6 }, (_, y) => 1 + x + 10 * (y + 4));
    expect(grid(p).map((r) => r.map((v) => v[0]))).toEqual([
      [0, 0, 0, 0, 0, 0],
      row(0),
      row(1),
      row(2),
      row(3),
      [0, 0, 0, 0, 0, 0],
    ]);
    const smaller = new RandCropByPosNegLabeld({
      keys: "image",
      labelKey: "label",
      spatialSize: [6, 6],
      allowSmaller: true,
    }).call({ image, label });
    expect(img(smaller[0]!).shape).toEqual([1, 4, 6]);
    // spatialSize <= 0 takes the image's size
    const whole = new RandCropByPosNegLabeld({ keys: "image", labelKey: "label", spatialSize: [-1, 3] }).call({
      image,
      label,
    });
    expect(img(whole[0]!).shape).toEqual([1, 4, 3]);
  });

  it("same seed gives the same crops, another seed others; precomputed indices give the same draws", () => {
    const image = blobs();
    const label = maskOf(image);
    const make = (seed: number) =>
      new RandCropByPosNegLabeld({
        keys: ["image", "label"],
        labelKey: "label",
        spatialSize: roi,
        numSamples: 5,
        fgIndicesKey: "fg",
        bgIndicesKey: "bg",
      }).setRandomState(seed);
    const centres = (out: Data[]) => out.map((d) => img(d).meta.crop_center);
    const a = centres(make(5).call({ image, label }));
    expect(centres(make(5).call({ image, label }))).toEqual(a);
    expect(centres(make(6).call({ image, label }))).not.toEqual(a);
    const { fg, bg } = mapBinaryToIndices(label);
    expect(fg.length).toBe(27 + 15);
    expect(bg.length).toBe(label.data.length - 42);
    const withIdx = make(5).call({ image, label, fg, bg });
    expect(centres(withIdx)).toEqual(a);
    expect(withIdx[0]).not.toHaveProperty("fg");
  });

  it("one-hot labels skip channel 0; no foreground falls back to background; inverse pads back", () => {
    const image = tensor([1, 8, 8], (x, y) => x + 8 * y);
    // channel 0 (background) is nonzero everywhere, channel 1 only at (6, 1)
    const onehot = tensor([2, 8, 8], (x, y, _z, c) => (c === 0 ? 1 : x === 6 && y === 1 ? 1 : 0));
    const crop = new RandCropByPosNegLabeld({
      keys: ["image"],
      labelKey: "label",
      spatialSize: [3, 3],
      pos: 1,
      neg: 0,
    }).setRandomState(4);
    const [d] = crop.call({ image, label: onehot });
    expect(img(d!).meta.crop_center).toEqual([6, 1]);
    const back = crop.inverse(d!);
    expect(img(back).shape).toEqual([1, 8, 8]);
    expect(at(img(back), 6, 1)).toBe(14);
    expect(at(img(back), 0, 0)).toBe(0);
    const empty = tensor([1, 8, 8], () => 0);
    for (const s of crop.call({ image, label: empty })) {
      expect(img(s).shape).toEqual([1, 3, 3]);
    }
    expect(
      () => new RandCropByPosNegLabeld({ keys: "image", labelKey: "label", spatialSize: 3, pos: 0, neg: 0 }),
    ).toThrow(/pos and neg/);
  });
});

describe("RandSpatialCropd", () => {
  it("crops roiSize at a random position, the same box for every key", () => {
    const t = tensor([1, 10, 8, 6], (x, y, z) => x + 10 * y + 80 * z);
    const crop = new RandSpatialCropd({ keys: ["image", "label"], roiSize: [4, 3, -1] }).setRandomState(2);
    const starts = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const d = crop.call({ image: t, label: t });
      expect(img(d).shape).toEqual([1, 4, 3, 6]);
      expect(Array.from(img(d, "label").data)).toEqual(Array.from(img(d).data));
      const v = at(img(d), 0, 0, 0);
      const s = [v % 10, Math.floor(v / 10) % 8, Math.floor(v / 80)];
      expect(s[0]).toBeLessThanOrEqual(6);
      expect(s[1]).toBeLessThanOrEqual(5);
      expect(s[2]).toBe(0);
      starts.add(s.join(","));
    }
    expect(starts.size).toBeGreaterThan(5);
    const center = new RandSpatialCropd({ keys: "image", roiSize: [4, 4, 2], randomCenter: false }).call({ image: t });
    expect(at(img(center), 0, 0, 0)).toBe(3 + 10 * 2 + 80 * 2);
    const bigger = new RandSpatialCropd({ keys: "image", roiSize: [20, 3, 2] }).call({ image: t });
    expect(img(bigger).shape).toEqual([1, 10, 3, 2]);
    const sized = new RandSpatialCropd({ keys: "image", roiSize: [2, 2, 2], maxRoiSize: [5, 5, 5], randomSize: true });
    for (let i = 0; i < 20; i++) {
      const s = img(sized.call({ image: t })).spatialShape;
      s.forEach((v) => {
        expect(v).toBeGreaterThanOrEqual(2);
        expect(v).toBeLessThanOrEqual(5);
      });
    }
    const back = crop.inverse(crop.call({ image: t, label: t }));
    expect(img(back).shape).toEqual([1, 10, 8, 6]);
  });
});

describe("random intensity transforms", () => {
  const t = tensor([2, 10, 10, 10], (x, y, z, c) => 1 + x + y + z + 100 * c);
  const ratios = (a: MetaTensor, b: MetaTensor) => Array.from(a.data, (v, i) => v / b.data[i]!);

  it("RandScaleIntensityd: v * (1 + f), f in the range, shared by keys", () => {
    const s = new RandScaleIntensityd({ keys: ["image", "label"], factors: 0.3, prob: 1 }).setRandomState(8);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const d = s.call({ image: t, label: t });
      const r = ratios(img(d), t);
      expect(Math.max(...r) - Math.min(...r)).toBeLessThan(1e-5);
      expect(r[0]!).toBeGreaterThanOrEqual(0.7 - 1e-6);
      expect(r[0]!).toBeLessThanOrEqual(1.3 + 1e-6);
      expect(ratios(img(d, "label"), t)[0]).toBeCloseTo(r[0]!, 6);
      seen.add(Math.round(r[0]! * 1e4));
    }
    expect(seen.size).toBeGreaterThan(15);
    const cw = new RandScaleIntensityd({ keys: "image", factors: [0.1, 0.5], prob: 1, channelWise: true });
    const r = ratios(img(cw.call({ image: t })), t);
    expect(r[0]!).toBeGreaterThanOrEqual(1.1 - 1e-6);
    expect(r[1999]!).toBeLessThanOrEqual(1.5 + 1e-6);
    expect(r[0]).not.toBeCloseTo(r[1999]!, 6);
    const off = new RandScaleIntensityd({ keys: "image", factors: 0.3, prob: 0 }).call({ image: t });
    expect(img(off)).toBe(t);
  });

  it("RandShiftIntensityd: v + o, o in the range, shared by keys", () => {
    const s = new RandShiftIntensityd({ keys: ["image", "label"], offsets: [2, 5], prob: 1 }).setRandomState(1);
    for (let i = 0; i < 20; i++) {
      const d = s.call({ image: t, label: t });
      const diff = Array.from(img(d).data, (v, j) => v - t.data[j]!);
      expect(Math.max(...diff) - Math.min(...diff)).toBeLessThan(1e-3);
      expect(diff[0]!).toBeGreaterThanOrEqual(2 - 1e-4);
      expect(diff[0]!).toBeLessThanOrEqual(5 + 1e-4);
      expect(img(d, "label").data[5]! - t.data[5]!).toBeCloseTo(diff[0]!, 4);
    }
  });

  it("RandGaussianNoised: N(mean, std) noise, the same field on every key", () => {
    const flat = tensor([1, 50, 40, 10], () => 3);
    const s = new RandGaussianNoised({ keys: ["image", "label"], prob: 1, mean: 0.5, std: 2, sampleStd: false });
    const d = s.setRandomState(11).call({ image: flat, label: flat });
    const noise = Array.from(img(d).data, (v) => v - 3);
    const mean = noise.reduce((a, b) => a + b, 0) / noise.length;
    const std = Math.sqrt(noise.reduce((a, b) => a + (b - mean) ** 2, 0) / noise.length);
    expect(mean).toBeCloseTo(0.5, 1);
    expect(std).toBeCloseTo(2, 1);
    expect(Array.from(img(d, "label").data)).toEqual(Array.from(img(d).data));
    // sampleStd: the std drawn in [0, std]
    const sampled = new RandGaussianNoised({ keys: "image", prob: 1, std: 0.2 }).setRandomState(3);
    for (let i = 0; i < 5; i++) {
      const n = Array.from(img(sampled.call({ image: flat })).data, (v) => v - 3);
      const sd = Math.sqrt(n.reduce((a, b) => a + b * b, 0) / n.length);
      expect(sd).toBeLessThan(0.21);
    }
  });
});

describe("seeding and pipelines of samples", () => {
  const image = blobs();
  const label = maskOf(image);
  const pipeline = () => [
    new RandCropByPosNegLabeld({ keys: ["image", "label"], labelKey: "label", spatialSize: [8, 8, 4], numSamples: 3 }),
    new RandFlipd({ keys: ["image", "label"], prob: 0.5 }),
    new RandRotate90d({ keys: ["image", "label"], prob: 0.5 }),
    new RandScaleIntensityd({ keys: "image", factors: 0.2, prob: 0.5 }),
    new RandShiftIntensityd({ keys: "image", offsets: 0.2, prob: 0.5 }),
    new RandGaussianNoised({ keys: "image", prob: 0.5 }),
  ];
  const run = async (seed: number) => {
    const c = new MultiSampleCompose(pipeline()).setRandomState(seed);
    const out = (await c.call({ image, label })) as Data[];
    return out.map((d) => [Array.from(img(d).data), Array.from(img(d, "label").data)]);
  };

  it("same seed gives the same outputs, another seed others", async () => {
    const a = await run(100);
    expect(a).toHaveLength(3);
    expect(await run(100)).toEqual(a);
    expect(await run(101)).not.toEqual(a);
    // seedTransforms on a plain list seeds the same way as MultiSampleCompose.setRandomState
    const list = pipeline();
    seedTransforms(list, 100);
    const again = (await applyTransforms(list, { image, label })) as Data[];
    expect(again.map((d) => [Array.from(img(d).data), Array.from(img(d, "label").data)])).toEqual(a);
  });

  it("seedTransforms reaches into a Compose", () => {
    const flips = () => [new RandFlipd({ keys: "image", prob: 0.5 }), new RandFlipd({ keys: "image", prob: 0.5 })];
    const a = flips();
    const b = flips();
    seedTransforms(new Compose(a), 77);
    seedTransforms(b, 77);
    expect(a.map((t) => t.R.nextUint32())).toEqual(b.map((t) => t.R.nextUint32()));
  });

  it("a list output makes the following transforms apply to each sample (flattened)", async () => {
    let calls = 0;
    const count = {
      call: (d: Data) => {
        calls++;
        return { ...d, n: calls };
      },
    };
    const twice = { call: (d: Data) => [d, { ...d, copy: true }] };
    const c = new MultiSampleCompose([
      new EnsureChannelFirstd({ keys: "x", channelDim: "no_channel" }),
      new RandCropByPosNegLabeld({ keys: "image", labelKey: "label", spatialSize: [4, 4, 4], numSamples: 3 }),
      count,
      twice,
      new RandFlipd({ keys: "image", prob: 1 }),
    ]);
    const x = tensor([1, 2], () => 0).derive({ data: [0, 0], shape: [2] });
    const out = await c.callList({ image, label, x });
    expect(out).toHaveLength(6);
    expect(calls).toBe(3);
    expect(out.map((d) => d.n)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(out.every((d) => img(d).shape.join() === "1,4,4,4")).toBe(true);
    expect((out[0]!.x as MetaTensor).shape).toEqual([1, 2]);
    // list inputs are mapped too
    expect(await applyTransforms([count], [{ a: 1 }, { a: 2 }])).toHaveLength(2);
    const { deterministic, random } = splitAtFirstRandom(c);
    expect(deterministic).toHaveLength(1);
    expect(random).toHaveLength(4);
    expect(isRandomizable(random[0])).toBe(true);
    expect(isRandomizable(count)).toBe(false);
    // inverse through the invertible ones (RandFlipd, RandCropByPosNegLabeld)
    const back = c.inverse(out[0]!);
    expect(img(back).shape).toEqual([1, 24, 20, 12]);
  });
});
