import { describe, expect, it } from "vitest";
import { dice, dicePerLabel, EntropyAccumulator, labelSum } from "../../../src/tasks/scoring/metrics.js";

describe("dice", () => {
  it("is 2·|y∩ŷ| / (|y|+|ŷ|) for masks, 1 when both are empty", () => {
    expect(dice([1, 1, 0, 0], [1, 0, 1, 0])).toBe(0.5);
    expect(dice([1, 1, 1, 0], [1, 1, 1, 0])).toBe(1);
    expect(dice([1, 0], [0, 1])).toBe(0);
    expect(dice([0, 0], [0, 0])).toBe(1);
  });

  it("keeps MONAI's raw-value formula for label maps; per label it is the usual Dice", () => {
    const y = [1, 2, 2, 0];
    const yPred = [1, 2, 0, 2];
    // MONAI: 2·(1·1 + 2·2) / (5 + 5) = 1, although label 2 only half agrees.
    expect(dice(y, yPred)).toBe(1);
    expect([...dicePerLabel(y, yPred)]).toEqual([
      [1, 1],
      [2, 0.5],
    ]);
  });

  it("refuses volumes of different sizes", () => {
    expect(() => dice([1], [1, 0])).toThrow(RangeError);
  });
});

describe("labelSum", () => {
  it("sums the values and lists the first-axis (x) slices holding a label", () => {
    // shape [3, 2, 2], x fastest: index = x + 3·(y + 2·z)
    const data = new Uint8Array(12);
    data[0] = 1; // x=0, y=0, z=0
    data[2 + 3 * (1 + 2 * 1)] = 2; // x=2, y=1, z=1
    expect(labelSum(data, [3, 2, 2])).toEqual({ sum: 3, slices: [0, 2] });
    expect(labelSum(new Uint8Array(12), [3, 2, 2])).toEqual({ sum: 0, slices: [] });
    expect(labelSum(Float32Array.of(0.5, 0.75), [2, 1, 1])).toEqual({ sum: 1, slices: [0, 1] });
  });
});

describe("EntropyAccumulator (MONAI's entropy_3d_volume)", () => {
  const H = (...p: number[]) => -p.reduce((s, v) => s + v * Math.log(v), 0);

  it("averages the passes' probabilities, then takes Σ −p·log p per voxel", () => {
    const one = new EntropyAccumulator(2, 1, "softmax");
    one.add(Float32Array.of(Math.log(3), 0)); // softmax [3/4, 1/4]
    expect(one.entropy()).toBeCloseTo(H(0.75, 0.25), 6);
    // Two passes that disagree average to [1/2, 1/2]: maximal uncertainty.
    const two = new EntropyAccumulator(2, 1, "softmax");
    two.add(Float32Array.of(Math.log(3), 0));
    two.add(Float32Array.of(0, Math.log(3)));
    expect(two.count).toBe(2);
    expect(two.entropy()).toBeCloseTo(Math.log(2), 6);
  });

  it("averages over voxels, channel-slowest layout", () => {
    // 2 channels x 2 voxels: voxel 0 logits [0, 0], voxel 1 logits [ln 3, 0].
    const acc = new EntropyAccumulator(2, 2, "softmax");
    acc.add(Float32Array.of(0, Math.log(3), 0, 0));
    expect(acc.entropy()).toBeCloseTo((Math.log(2) + H(0.75, 0.25)) / 2, 6);
  });

  it("sigmoid for one channel sums over that channel only, as MONAI does; values <= 0 become 5e-5", () => {
    const sig = new EntropyAccumulator(1, 1, "sigmoid");
    sig.add(Float32Array.of(0));
    expect(sig.entropy()).toBeCloseTo(H(0.5), 6);
    const raw = new EntropyAccumulator(1, 1, "none");
    raw.add(Float32Array.of(-1));
    expect(raw.entropy()).toBeCloseTo(H(5e-5), 9);
  });
});
