import { describe, expect, it } from "vitest";
import { centroids } from "../../../src/tasks/infer/basic-infer-task.js";
import { MetaTensor } from "../../../src/transforms/tensor.js";

/** The definition: per label, the mean voxel index (x fastest), rounded, as strings. */
function reference(data: Float32Array, spatial: number[], labels: Record<string, number>): Record<string, string[]> {
  const [X = 1, Y = 1] = spatial;
  const out: Record<string, string[]> = {};
  for (const [name, label] of Object.entries(labels)) {
    const sum: [number, number, number] = [0, 0, 0];
    let n = 0;
    for (let i = 0; i < spatial.reduce((a, b) => a * b, 1); i++) {
      if (data[i] === label) {
        sum[0] += i % X;
        sum[1] += Math.floor(i / X) % Y;
        sum[2] += Math.floor(i / (X * Y));
        n++;
      }
    }
    if (n > 0) {
      out[name] = sum.slice(0, spatial.length).map((s) => String(Math.round(s / n)));
    }
  }
  return out;
}

describe("centroids of a label map", () => {
  const spatial = [23, 17, 11];
  const n = 23 * 17 * 11;
  let s = 7;
  const noisy = Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % 4; // 0..3, a noisy map
  });
  const t = new MetaTensor({ data: noisy, shape: [1, ...spatial] });

  it.each<{ what: string; labels: Record<string, number> }>([
    { what: "one label (the fast path)", labels: { brain: 1 } },
    { what: "one label other than 1", labels: { tumor: 3 } },
    { what: "one label value under two names", labels: { a: 2, b: 2 } },
    { what: "several labels", labels: { a: 1, b: 2, c: 3 } },
    { what: "a label absent from the map", labels: { a: 1, none: 9 } },
  ])("$what: the mean voxel index per label", ({ labels }) => {
    expect(centroids(t, labels)).toEqual(reference(noisy, spatial, labels));
  });

  it("one label ignores fractions, NaN and -1, and works in 2D", () => {
    const data = Float32Array.from([0, 1, 1.5, Number.NaN, -1, 1, 0, 1, 1, 0, 0, 1]);
    const flat = new MetaTensor({ data, shape: [1, 4, 3] });
    expect(centroids(flat, { x: 1 })).toEqual(reference(data, [4, 3], { x: 1 }));
    expect(centroids(flat, { x: 1 })).toEqual({ x: ["2", "1"] });
  });
});
