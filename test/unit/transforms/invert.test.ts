import { describe, expect, it } from "vitest";
import {
  AsDiscreted,
  Compose,
  CropForegroundd,
  EnsureChannelFirstd,
  Invertd,
  LoadImaged,
  type MetaTensor,
  Orientationd,
  Resized,
  ScaleIntensityRanged,
  Spacingd,
  SpatialPadd,
  toNearestTrace,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, tensor } from "./helpers.js";

const img = (d: Record<string, unknown>, key = "image") => d[key] as MetaTensor;

const LPS = [
  [-1.5, 0, 0, 40],
  [0, -1.2, 0, 30],
  [0, 0, 2.5, -20],
  [0, 0, 0, 1],
];

/**
 * A 12x10x8 LPS volume as LoadImaged leaves it (no channel axis), with a bright box (value 100) in x 3..8,
 * y 2..6, z 2..5 on a dim background.
 */
function phantom(): MetaTensor {
  const t = tensor(
    [1, 12, 10, 8],
    (x, y, z) => (x >= 3 && x < 9 && y >= 2 && y < 7 && z >= 2 && z < 6 ? 100 : x === 0 ? 0 : 10),
    LPS,
    { spatial_shape: [12, 10, 8], original_affine: LPS, original_channel_dim: "no_channel" },
  );
  return t.derive({ data: t.data, shape: [12, 10, 8] });
}

/** A prediction on the grid of `image`: 1 where the (scaled) image is bright. */
function predictFrom(image: MetaTensor, threshold: number): MetaTensor {
  return image.derive({ data: image.data.map((v) => (v > threshold ? 1 : 0)), shape: image.shape });
}

describe("Invertd", () => {
  it("Orientationd, Spacingd, CropForegroundd, SpatialPadd, Resized: the prediction comes back in the original shape and affine", async () => {
    const pre = new Compose([
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      new Orientationd({ keys: "image", axcodes: "RAS" }),
      new Spacingd({ keys: "image", pixdim: [1, 1, 1] }),
      new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 100, bMin: 0, bMax: 1 }),
      new CropForegroundd({ keys: "image", sourceKey: "image", selectFn: (v) => v > 0.5, margin: 2 }),
      new SpatialPadd({ keys: "image", spatialSize: [16, 16, 16] }),
      new Resized({ keys: "image", spatialSize: [8, 8, 8] }),
    ]);
    const d = await pre.call({ image: phantom() });
    const image = img(d);
    expect(image.shape).toEqual([1, 8, 8, 8]);
    expect(image.applied.map((t) => t.className)).toEqual([
      "Orientationd",
      "Spacingd",
      "CropForegroundd",
      "SpatialPadd",
      "Resized",
    ]);

    const inv = new Invertd({ keys: "pred", transform: pre, origKeys: "image" });
    const out = img(inv.call({ ...d, pred: predictFrom(image, 0.5) }), "pred");
    expect(out.shape).toEqual([1, 12, 10, 8]);
    expectAffineClose(out.affine, LPS);
    expect(out.applied).toHaveLength(0);
    // nearest interpolation: still a label map, mostly over the bright box
    expect(new Set(out.data)).toEqual(new Set([0, 1]));
    expect(at(out, 5, 4, 3)).toBe(1);
    expect(at(out, 11, 9, 0)).toBe(0);
    // the image itself is untouched by inverting the prediction
    expect(img(d).shape).toEqual([1, 8, 8, 8]);
  });

  it("exact cases (orientation flips, crop, pad) give back the original values", async () => {
    const label = phantom();
    const pre = new Compose([
      new EnsureChannelFirstd({ keys: ["image", "label"] }),
      new Orientationd({ keys: ["image", "label"], axcodes: "RAS" }),
      new CropForegroundd({ keys: ["image", "label"], sourceKey: "image", selectFn: (v) => v > 50 }),
      new SpatialPadd({ keys: ["image", "label"], spatialSize: [9, 9, 9] }),
    ]);
    const d = await pre.call({ image: phantom(), label });
    expect(img(d).shape).toEqual([1, 9, 9, 9]);
    const out = img(
      new Invertd({ keys: "pred", transform: pre, origKeys: "image" }).call({ ...d, pred: img(d, "label") }),
      "pred",
    );
    expect(out.shape).toEqual([1, 12, 10, 8]);
    expect(out.affine).toEqual(LPS);
    // inside the foreground box every value is back; outside the crop it is 0
    for (let x = 0; x < 12; x++) {
      for (let y = 0; y < 10; y++) {
        for (let z = 0; z < 8; z++) {
          const inBox = x >= 3 && x < 9 && y >= 2 && y < 7 && z >= 2 && z < 6;
          expect(at(out, x, y, z)).toBe(inBox ? 100 : 0);
        }
      }
    }
    // Compose.inverse of the whole dictionary undoes both keys
    const both = pre.inverse(d);
    expect(Array.from(img(both, "label").data)).toEqual(Array.from(out.data));
  });

  it("nearestInterp (default) keeps labels discrete; without it the inverse interpolates", async () => {
    const pre = new Compose([
      new EnsureChannelFirstd({ keys: "image" }),
      new Spacingd({ keys: "image", pixdim: [3, 2.4, 5] }),
    ]);
    const d = await pre.call({ image: phantom() });
    const pred = predictFrom(img(d), 50);
    const nearest = img(new Invertd({ keys: "pred", transform: pre, origKey: "image" }).call({ ...d, pred }), "pred");
    expect(new Set(nearest.data)).toEqual(new Set([0, 1]));
    const linear = img(
      new Invertd({ keys: "pred", transform: pre, origKeys: "image", nearestInterp: false }).call({ ...d, pred }),
      "pred",
    );
    expect(linear.data.some((v) => v > 0 && v < 1)).toBe(true);
    expect(linear.shape).toEqual([1, 12, 10, 8]);
  });

  it("accepts a plain { data, shape } prediction on the transformed grid, with its own channels", async () => {
    const pre = new Compose([
      new EnsureChannelFirstd({ keys: "image" }),
      new Orientationd({ keys: "image", axcodes: "RAS" }),
    ]);
    const d = await pre.call({ image: phantom() });
    const logits = { data: new Float32Array(2 * 12 * 10 * 8).fill(0.25), shape: [2, 12, 10, 8] };
    const out = img(
      new Invertd({ keys: "pred", transform: pre, origKeys: "image" }).call({ ...d, pred: logits }),
      "pred",
    );
    expect(out.shape).toEqual([2, 12, 10, 8]);
    expect(out.affine).toEqual(LPS);
    const discrete = new AsDiscreted({ keys: "pred", argmax: true }).call({ pred: out });
    expect(img(discrete, "pred").shape).toEqual([1, 12, 10, 8]);
  });

  it("refuses a prediction on another grid; skips a missing orig key", async () => {
    const pre = new Compose([
      new EnsureChannelFirstd({ keys: "image" }),
      new Resized({ keys: "image", spatialSize: 4 }),
    ]);
    const d = await pre.call({ image: phantom() });
    const wrong = tensor([1, 12, 10, 8], () => 0);
    expect(() => new Invertd({ keys: "pred", transform: pre, origKeys: "image" }).call({ ...d, pred: wrong })).toThrow(
      /must be on the transformed image's grid/,
    );
    const skipped = new Invertd({ keys: "pred", transform: pre, origKeys: "nothing" }).call({ pred: wrong });
    expect(skipped.pred).toBe(wrong);
  });

  it("an inverse applied out of order says so", () => {
    const t = tensor([1, 4, 4, 4], () => 1, diag(-1, 1, 1));
    const orientation = new Orientationd({ keys: "image" });
    const spacing = new Spacingd({ keys: "image", pixdim: 2 });
    const d = spacing.call(orientation.call({ image: t }));
    expect(() => orientation.inverse(d)).toThrow(/most recent operation on data\["image"\] was Spacingd/);
    expect(() => spacing.inverse({ image: t })).toThrow(/no recorded operation/);
  });

  it("toNearestTrace switches interpolation modes only", () => {
    const trace = toNearestTrace([
      { className: "Spacingd", id: 1, origSize: [2], extraInfo: { mode: "bilinear", alignCorners: false } },
      { className: "Resized", id: 2, origSize: [2], extraInfo: { mode: "area" } },
      { className: "SpatialPadd", id: 3, origSize: [2], extraInfo: { padded: [[0, 1]] } },
    ]);
    expect(trace.map((t) => t.extraInfo)).toEqual([{ mode: "nearest" }, { mode: "nearest" }, { padded: [[0, 1]] }]);
  });
});
