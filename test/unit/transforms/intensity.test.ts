import { describe, expect, it } from "vitest";
import {
  type MetaTensor,
  NormalizeIntensityd,
  ScaleIntensityd,
  ScaleIntensityRanged,
} from "../../../src/transforms/index.js";
import { expectArrayClose, tensor } from "./helpers.js";

const line = (values: number[], channels = 1) =>
  tensor([channels, values.length / channels], (x, _y, _z, c) => values[c * (values.length / channels) + x]!);

const values = (d: Record<string, unknown>, key = "image") => Array.from((d[key] as MetaTensor).data);

describe("ScaleIntensityRanged", () => {
  it("maps [aMin, aMax] onto [bMin, bMax]", () => {
    const d = new ScaleIntensityRanged({ keys: "image", aMin: -1000, aMax: 1000, bMin: 0, bMax: 1 }).call({
      image: line([-1000, 0, 1000, 2000]),
    });
    expectArrayClose(values(d), [0, 0.5, 1, 1.5]);
  });

  it("clips to [bMin, bMax]", () => {
    const d = new ScaleIntensityRanged({ keys: "image", aMin: -175, aMax: 250, bMin: 0, bMax: 1, clip: true }).call({
      image: line([-1000, -175, 37.5, 250, 3000]),
    });
    expectArrayClose(values(d), [0, 0, 0.5, 1, 1]);
  });

  it("without bMin/bMax only normalises; aMin == aMax only shifts", () => {
    expectArrayClose(
      values(new ScaleIntensityRanged({ keys: "image", aMin: 10, aMax: 20 }).call({ image: line([10, 15, 30]) })),
      [0, 0.5, 2],
    );
    expectArrayClose(
      values(new ScaleIntensityRanged({ keys: "image", aMin: 5, aMax: 5, bMin: 1 }).call({ image: line([5, 7]) })),
      [1, 3],
    );
  });

  it("keeps geometry and meta, and leaves the input tensor alone", () => {
    const image = line([0, 100]);
    image.meta.filename_or_obj = "x.nii.gz";
    const d = new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 100, bMin: 0, bMax: 1 }).call({ image });
    expect((d.image as MetaTensor).meta.filename_or_obj).toBe("x.nii.gz");
    expect(Array.from(image.data)).toEqual([0, 100]);
  });

  it("missing keys throw unless allowed", () => {
    expect(() => new ScaleIntensityRanged({ keys: "label", aMin: 0, aMax: 1 }).call({ image: line([0]) })).toThrow(
      /key "label" is not in the data/,
    );
    const d = new ScaleIntensityRanged({ keys: ["image", "label"], aMin: 0, aMax: 2, allowMissingKeys: true }).call({
      image: line([1]),
    });
    expectArrayClose(values(d), [0.5]);
  });
});

describe("ScaleIntensityd", () => {
  it("min-max rescales to [minv, maxv]", () => {
    expectArrayClose(
      values(new ScaleIntensityd({ keys: "image" }).call({ image: line([2, 4, 6, 10]) })),
      [0, 0.25, 0.5, 1],
    );
    expectArrayClose(
      values(new ScaleIntensityd({ keys: "image", minv: -1, maxv: 1 }).call({ image: line([2, 4, 6, 10]) })),
      [-1, -0.5, 0, 1],
    );
  });

  it("channel-wise uses each channel's own range", () => {
    const d = new ScaleIntensityd({ keys: "image", channelWise: true }).call({ image: line([0, 10, 100, 300], 2) });
    expectArrayClose(values(d), [0, 1, 0, 1]);
    const whole = new ScaleIntensityd({ keys: "image" }).call({ image: line([0, 10, 100, 300], 2) });
    expectArrayClose(values(whole), [0, 10 / 300, 100 / 300, 1]);
  });

  it("a constant image becomes v * minv; minv/maxv null scale by 1 + factor", () => {
    expectArrayClose(values(new ScaleIntensityd({ keys: "image", minv: 2 }).call({ image: line([3, 3]) })), [6, 6]);
    expectArrayClose(
      values(new ScaleIntensityd({ keys: "image", minv: null, maxv: null, factor: 0.5 }).call({ image: line([2, 4]) })),
      [3, 6],
    );
  });
});

describe("NormalizeIntensityd", () => {
  it("subtracts the mean and divides by the population std", () => {
    // mean 5, population std 2
    const d = new NormalizeIntensityd({ keys: "image" }).call({ image: line([2, 4, 4, 4, 5, 5, 7, 9]) });
    expectArrayClose(values(d), [-1.5, -0.5, -0.5, -0.5, 0, 0, 1, 2]);
  });

  it("nonzero: statistics and normalisation over nonzero voxels only", () => {
    // nonzero values 2, 4: mean 3, std 1
    const d = new NormalizeIntensityd({ keys: "image", nonzero: true }).call({ image: line([0, 2, 0, 4]) });
    expectArrayClose(values(d), [0, -1, 0, 1]);
  });

  it("given subtrahend and divisor (MONAI Label deepgrow's 208 / 388), per channel when channel-wise", () => {
    expectArrayClose(
      values(
        new NormalizeIntensityd({ keys: "image", subtrahend: 208, divisor: 388 }).call({ image: line([208, 596]) }),
      ),
      [0, 1],
    );
    const d = new NormalizeIntensityd({ keys: "image", channelWise: true, subtrahend: [1, 10], divisor: [1, 2] }).call({
      image: line([1, 2, 10, 14], 2),
    });
    expectArrayClose(values(d), [0, 1, 0, 2]);
    // channel-wise statistics: each channel to mean 0, std 1
    const cw = new NormalizeIntensityd({ keys: "image", channelWise: true }).call({ image: line([1, 3, 10, 30], 2) });
    expectArrayClose(values(cw), [-1, 1, -1, 1]);
  });

  it("a zero std counts as 1", () => {
    expectArrayClose(values(new NormalizeIntensityd({ keys: "image" }).call({ image: line([5, 5]) })), [0, 0]);
  });
});
