import { describe, expect, it } from "vitest";
import {
  Activationsd,
  AsDiscreted,
  Compose,
  fusedPlan,
  KeepLargestConnectedComponentd,
  type MetaTensor,
  Restored,
  SigmoidThresholdd,
  SqueezeDimd,
  MetaTensor as Tensor,
  ToNumpyd,
  ToTensord,
} from "../../../src/transforms/index.js";
import { at, diag, expectAffineClose, expectArrayClose, tensor } from "./helpers.js";

const out = (d: Record<string, unknown>, key = "pred") => d[key] as MetaTensor;

/** A channel-first 2D tensor from rows written top to bottom (row = y, column = x), one grid per channel. */
function image2d(...channels: number[][][]): MetaTensor {
  const Y = channels[0]!.length;
  const X = channels[0]![0]!.length;
  return tensor([channels.length, X, Y], (x, y, _z, c) => channels[c]![y]![x]!);
}

function rows(t: MetaTensor, c = 0): number[][] {
  const [X, Y] = t.spatialShape as [number, number];
  return Array.from({ length: Y }, (_, y) => Array.from({ length: X }, (_, x) => at(t, x, y, 0, c)));
}

describe("Activationsd", () => {
  it("softmax over the channel axis, sigmoid element-wise", () => {
    const pred = tensor([2, 2], (x, _y, _z, c) => (c === 0 ? 0 : x === 0 ? Math.log(3) : 0));
    const soft = out(new Activationsd({ keys: "pred", softmax: true }).call({ pred }));
    // voxel 0: e^0 : e^ln3 = 1 : 3; voxel 1: equal
    expectArrayClose(soft.data, [0.25, 0.5, 0.75, 0.5]);
    const sig = out(new Activationsd({ keys: "pred", sigmoid: true }).call({ pred }));
    expectArrayClose(sig.data, [0.5, 0.5, 0.75, 0.5]);
    expect(() => new Activationsd({ keys: "pred", sigmoid: true, softmax: true })).toThrow(/incompatible/);
  });

  it("other is applied after", () => {
    const pred = tensor([1, 2], (x) => x);
    expectArrayClose(out(new Activationsd({ keys: "pred", other: (v) => 2 * v + 1 }).call({ pred })).data, [1, 3]);
  });
});

describe("sigmoid + threshold fused by Compose", () => {
  /** Values across the range, dense around each threshold's cut point, and the special values. */
  function logits(thresholds: number[]): Float32Array {
    const values: number[] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 1e-40, -1e-40];
    for (let i = -2000; i <= 2000; i++) {
      values.push(i / 50);
    }
    for (const t of thresholds) {
      const cut = Math.fround(Math.log(t / (1 - t)));
      // Every float32 within a few hundred ulps of the cut.
      const f = new Float32Array([cut]);
      const bits = new Int32Array(f.buffer);
      const base = bits[0]!;
      for (let d = -300; d <= 300; d++) {
        bits[0] = base + d;
        values.push(f[0]!);
      }
      for (let i = -100; i <= 100; i++) {
        values.push(cut + i * 1e-9, cut + i * 1e-5);
      }
    }
    return Float32Array.from(values);
  }

  it("gives bit for bit what Activationsd then AsDiscreted give, NaN and infinities included", async () => {
    const thresholds = [0.5, 0.3, 0.9, 1e-6, 0.999999];
    const data = logits(thresholds);
    for (const threshold of thresholds) {
      const pred = new Tensor({ data: data.slice(), shape: [1, data.length] });
      const steps = [new Activationsd({ keys: "pred", sigmoid: true }), new AsDiscreted({ keys: "pred", threshold })];
      const plan = fusedPlan(steps);
      expect(plan).toHaveLength(1);
      expect(plan[0]).toBeInstanceOf(SigmoidThresholdd);
      const fused = out(await new Compose(steps).call({ pred }));
      const separate = out(steps[1]!.call(steps[0]!.call({ pred })));
      expect(fused.shape).toEqual(separate.shape);
      expect(fused.data).toEqual(separate.data);
      const ones = separate.data.reduce((a, v) => a + v, 0);
      expect(ones).toBeGreaterThan(0);
      expect(ones).toBeLessThan(data.length);
    }
  });

  it("is not fused when anything else is asked for", () => {
    const sig = (o: object = {}) => new Activationsd({ keys: "pred", sigmoid: true, ...o });
    const cases = [
      [sig(), new AsDiscreted({ keys: "pred", threshold: 0.5, rounding: "torchrounding" })],
      [sig(), new AsDiscreted({ keys: "pred", argmax: true })],
      [sig(), new AsDiscreted({ keys: "other", threshold: 0.5 })],
      [sig({ other: (v: number) => v }), new AsDiscreted({ keys: "pred", threshold: 0.5 })],
      [new Activationsd({ keys: "pred", softmax: true }), new AsDiscreted({ keys: "pred", threshold: 0.5 })],
      [sig(), new AsDiscreted({ keys: "pred", threshold: 1 })],
      [sig(), new AsDiscreted({ keys: "pred", threshold: 0 })],
    ];
    for (const steps of cases) {
      expect(fusedPlan(steps)).toHaveLength(2);
    }
  });
});

describe("AsDiscreted", () => {
  it("argmax over channels keeps a channel of 1; ties go to the first maximum", () => {
    const pred = tensor(
      [3, 4],
      (x, _y, _z, c) =>
        [
          [0, 5, 1, 3],
          [2, 1, 1, 3],
          [1, 0, 1, 2],
        ][c]![x]!,
    );
    const d = out(new AsDiscreted({ keys: "pred", argmax: true }).call({ pred }));
    expect(d.shape).toEqual([1, 4]);
    expect(Array.from(d.data)).toEqual([1, 0, 0, 0]);
  });

  it("one-hot, threshold and rounding", () => {
    const labels = tensor([1, 3], (x) => [2, 0, 1][x]!);
    const onehot = out(new AsDiscreted({ keys: "pred", toOnehot: 3 }).call({ pred: labels }));
    expect(onehot.shape).toEqual([3, 3]);
    expect(Array.from(onehot.data)).toEqual([0, 1, 0, 0, 0, 1, 1, 0, 0]);
    const probs = tensor([1, 4], (x) => [0.2, 0.5, 0.7, 1][x]!);
    expect(Array.from(out(new AsDiscreted({ keys: "pred", threshold: 0.5 }).call({ pred: probs })).data)).toEqual([
      0, 1, 1, 1,
    ]);
    const halves = tensor([1, 4], (x) => [0.5, 1.5, 2.5, -0.5][x]!);
    expect(
      Array.from(out(new AsDiscreted({ keys: "pred", rounding: "torchrounding" }).call({ pred: halves })).data),
    ).toEqual([0, 2, 2, -0]);
  });
});

describe("KeepLargestConnectedComponentd", () => {
  // a 2x2 block with a diagonal neighbour (5 voxels with 8-connectivity), and a vertical bar of 3
  const pattern = [
    [1, 1, 0, 0, 0, 0],
    [1, 1, 0, 0, 1, 0],
    [0, 0, 1, 0, 1, 0],
    [0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0],
  ];

  it("full connectivity by default (8 in 2D): the diagonal voxel joins the block", () => {
    const d = out(new KeepLargestConnectedComponentd({ keys: "pred" }).call({ pred: image2d(pattern) }));
    expect(rows(d)).toEqual([
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [0, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
    ]);
  });

  it("connectivity 1 (4 in 2D): the block alone is the largest", () => {
    const d = out(
      new KeepLargestConnectedComponentd({ keys: "pred", connectivity: 1 }).call({ pred: image2d(pattern) }),
    );
    expect(rows(d)).toEqual([
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
    ]);
    const two = out(
      new KeepLargestConnectedComponentd({ keys: "pred", connectivity: 1, numComponents: 2 }).call({
        pred: image2d(pattern),
      }),
    );
    expect(rows(two)[2]).toEqual([0, 0, 0, 0, 1, 0]);
  });

  it("each label on its own, or only the applied ones", () => {
    const labels = [
      [1, 0, 2, 2],
      [0, 0, 0, 0],
      [1, 1, 0, 2],
    ];
    expect(rows(out(new KeepLargestConnectedComponentd({ keys: "pred" }).call({ pred: image2d(labels) })))).toEqual([
      [0, 0, 2, 2],
      [0, 0, 0, 0],
      [1, 1, 0, 0],
    ]);
    expect(
      rows(out(new KeepLargestConnectedComponentd({ keys: "pred", applyToLabels: 2 }).call({ pred: image2d(labels) }))),
    ).toEqual([
      [1, 0, 2, 2],
      [0, 0, 0, 0],
      [1, 1, 0, 0],
    ]);
    // independent false: labels 1 and 2 as one foreground; its largest component is the 1-2 pair
    const union = [
      [1, 2, 0, 1],
      [0, 0, 0, 0],
    ];
    expect(
      rows(
        out(new KeepLargestConnectedComponentd({ keys: "pred", independent: false }).call({ pred: image2d(union) })),
      ),
    ).toEqual([
      [1, 2, 0, 0],
      [0, 0, 0, 0],
    ]);
  });

  it("one-hot input: channels > 0 are processed; 26-connectivity in 3D", () => {
    const onehot = tensor([2, 3, 3, 3], (x, y, z, c) => {
      const fg = (x === 0 && y === 0 && z === 0) || (x === 1 && y === 1 && z === 1) || (x === 2 && y === 0 && z === 2);
      return c === 1 ? (fg ? 1 : 0) : fg ? 0 : 1;
    });
    const d = out(new KeepLargestConnectedComponentd({ keys: "pred" }).call({ pred: onehot }));
    // (1,1,1) touches both others at a corner: one component of 3 with 26-connectivity
    expect([at(d, 0, 0, 0, 1), at(d, 1, 1, 1, 1), at(d, 2, 0, 2, 1)]).toEqual([1, 1, 1]);
    // with 6-connectivity three components of 1: the tie goes to the first in scan order
    const six = out(new KeepLargestConnectedComponentd({ keys: "pred", connectivity: 1 }).call({ pred: onehot }));
    expect([at(six, 0, 0, 0, 1), at(six, 1, 1, 1, 1), at(six, 2, 0, 2, 1)]).toEqual([1, 0, 0]);
    // channel 0 (background) untouched
    expect(Array.from(six.channel(0))).toEqual(Array.from(onehot.channel(0)));
  });
});

describe("type conversions, SqueezeDimd, Restored", () => {
  it("ToTensord / ToNumpyd keep the tensor", () => {
    const pred = tensor([1, 2], (x) => x);
    expect(new ToTensord({ keys: "pred" }).call({ pred }).pred).toBe(pred);
    expect(new ToNumpyd({ keys: "pred" }).call({ pred }).pred).toBe(pred);
  });

  it("SqueezeDimd drops a channel of 1", () => {
    const pred = tensor([1, 2, 3], () => 0);
    expect(out(new SqueezeDimd({ keys: "pred" }).call({ pred })).shape).toEqual([2, 3]);
    expect(() => new SqueezeDimd({ keys: "pred" }).call({ pred: tensor([2, 2], () => 0) })).toThrow(/singleton/);
  });

  it("Restored resizes back to the original spatial shape (nearest), drops the channel and takes the original affine", () => {
    const original = diag(-1, -1, 2, [5, 6, 7]);
    const image = tensor([1, 2, 2, 2], () => 0, diag(2, 2, 4), {
      spatial_shape: [4, 4, 2],
      original_affine: original,
    });
    const pred = tensor([1, 2, 2, 2], (x, y) => x + 2 * y, diag(2, 2, 4));
    const d = new Restored({ keys: "pred", refImage: "image" }).call({ image, pred });
    const p = out(d);
    expect(p.shape).toEqual([4, 4, 2]);
    expect(p.data[1]).toBe(0); // x = 1 -> floor(1 * 2 / 4) = 0
    expect(p.data[2]).toBe(1);
    expectAffineClose(p.affine, original);
    expect((d.pred_meta_dict as { affine: number[][] }).affine).toEqual(original);
  });
});
