import { describe, expect, it } from "vitest";
import {
  AddInitialSeedPointMissingLabelsd,
  AddRandomGuidanceDeepEditd,
  FindAllValidSlicesMissingLabelsd,
  FindDiscrepancyRegionsDeepEditd,
} from "../../../src/transforms/deepedit.js";
import { AddGuidanceSignalDeepEditd } from "../../../src/transforms/guidance.js";
import { MetaTensor } from "../../../src/transforms/tensor.js";

const labelNames = { brain: 1, background: 0 };
const row = (values: number[]) => new MetaTensor({ data: Float32Array.from(values), shape: [1, values.length, 1] });

describe("deepedit click simulation (per label, background included)", () => {
  it("AddInitialSeedPointMissingLabelsd seeds every label present, -1 for a missing one", () => {
    // brain at x 0, background at x 1: one voxel each, so each seed is certain
    const d = new AddInitialSeedPointMissingLabelsd({ labelNames }).call({ label: row([1, 0]) });
    expect(d.guidance).toEqual({ brain: [[1, 0, 0]], background: [[1, 1, 0]] });
    const missing = new AddInitialSeedPointMissingLabelsd({ labelNames }).call({ label: row([0, 0]) });
    expect((missing.guidance as Record<string, number[][]>).brain).toEqual([[-1, -1, -1]]);
  });

  it("FindAllValidSlicesMissingLabelsd lists each label's depth slices", () => {
    const data = new Float32Array(2 * 1 * 3);
    data[2] = 1; // (x 0, z 1)
    const label = new MetaTensor({ data, shape: [1, 2, 1, 3] });
    expect(new FindAllValidSlicesMissingLabelsd({ labelNames }).call({ label }).sids).toEqual({
      brain: [1],
      background: [0, 1, 2],
    });
  });

  it("FindDiscrepancyRegionsDeepEditd: a label's missed voxels, and background's (= the label's extra ones)", () => {
    const d = new FindDiscrepancyRegionsDeepEditd({ labelNames }).call({
      label: row([1, 0, 0, 1]),
      pred: row([1, 1, 0, 0]),
    });
    const discr = d.discrepancy as Record<string, Uint8Array[]>;
    expect(discr.brain!.map((a) => Array.from(a))).toEqual([
      [0, 0, 0, 1],
      [0, 1, 0, 0],
    ]);
    expect(discr.background!.map((a) => Array.from(a))).toEqual([
      [0, 1, 0, 0],
      [0, 0, 0, 1],
    ]);
  });

  it("AddRandomGuidanceDeepEditd clicks a brain voxel the prediction missed and a background voxel it took", () => {
    let d: Record<string, unknown> = {
      label: row([1, 0, 0, 1]),
      pred: row([1, 1, 0, 0]),
      guidance: { brain: [[1, 0, 0]], background: [[-1, -1, -1]] },
    };
    d = new FindDiscrepancyRegionsDeepEditd({ labelNames }).call(d);
    d = new AddRandomGuidanceDeepEditd({ labelNames }).call(d);
    expect(d.guidance).toEqual({
      brain: [
        [1, 0, 0],
        [1, 3, 0],
      ],
      background: [
        [-1, -1, -1],
        [1, 1, 0],
      ],
    });
    // and AddGuidanceSignalDeepEditd turns that into one channel per label, in label order
    const image = new MetaTensor({ data: new Float32Array(4), shape: [1, 4, 1] });
    const t = new AddGuidanceSignalDeepEditd({ keys: "image", sigma: 0.5 }).call({ ...d, image }).image as MetaTensor;
    expect(t.shape).toEqual([3, 4, 1]);
    expect(t.data[4 + 0]).toBeCloseTo(1);
    expect(t.data[4 + 3]).toBeCloseTo(1);
    expect(t.data[8 + 1]).toBeCloseTo(1);
    expect(t.data[8 + 3]).toBeCloseTo(0);
  });

  it("adds nothing with click probability 0 or nothing missed", () => {
    const base = {
      label: row([1, 0]),
      pred: row([1, 0]),
      guidance: { brain: [[1, 0, 0]], background: [[1, 1, 0]] },
    };
    const d = new AddRandomGuidanceDeepEditd({ labelNames }).call(
      new FindDiscrepancyRegionsDeepEditd({ labelNames }).call(base),
    );
    expect(d.guidance).toEqual(base.guidance);
    const p0 = new AddRandomGuidanceDeepEditd({ labelNames }).call({
      ...new FindDiscrepancyRegionsDeepEditd({ labelNames }).call({ ...base, pred: row([0, 1]) }),
      probability: 0,
    });
    expect(p0.guidance).toEqual(base.guidance);
  });
});
