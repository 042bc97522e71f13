import { describe, expect, it } from "vitest";
import { nextClick } from "../../../bench/interactive/lib.js";

/**
 * The interactive bench's simulated annotator on hand-drawn 2D masks (x fastest): the largest error region,
 * clicked at its centre, missed and extra regions apart unless "xor".
 */
const grid = (rows: string[]) => Float32Array.from(rows.join(""), (c) => (c === "#" ? 1 : 0));

describe("nextClick (bench/interactive's simulated annotator)", () => {
  it("clicks the centre of the largest missed region as foreground", () => {
    const label = grid(["#######", "#######", "#######", "#######", "#######"]);
    const pred = grid(["#######", "#......", "#......", "#......", "#######"]);
    // Missed: the 6x3 block x 1..6, y 1..3; its centre (farthest from the border, first in scan order) is (2, 2).
    expect(nextClick(pred, label, [7, 5])).toEqual({ kind: "foreground", point: [2, 2], size: 18, depth: 2 });
  });

  it("clicks an extra region as background, and prefers the larger of the two kinds", () => {
    const label = grid(["......", "......", "......", "......", "......"]);
    const pred = grid(["......", ".###..", ".###..", ".###..", "......"]);
    expect(nextClick(pred, label, [6, 5])).toEqual({ kind: "background", point: [2, 2], size: 9, depth: 2 });
    // A 2-voxel missed region loses to the 9-voxel extra one.
    const label2 = grid(["....##", "......", "......", "......", "......"]);
    expect(nextClick(pred, label2, [6, 5])?.kind).toBe("background");
  });

  it("keeps touching missed and extra regions apart; xor merges them", () => {
    // Missed column x 0..1 (10 voxels) touching an extra column x 2..4 (15 voxels).
    const label = grid(["##...", "##...", "##...", "##...", "##..."]);
    const pred = grid(["..###", "..###", "..###", "..###", "..###"]);
    // The extra column's centre: x 3 (2 from the missed column and from the image border), first row at depth 2.
    expect(nextClick(pred, label, [5, 5])).toEqual({ kind: "background", point: [3, 1], size: 15, depth: 2 });
    const merged = nextClick(pred, label, [5, 5], "xor");
    expect(merged?.size).toBe(25);
    expect(merged?.point).toEqual([2, 2]);
    expect(merged?.kind).toBe("background");
  });

  it("returns null when the prediction matches, and works in 3D", () => {
    const label = grid(["##", "##"]);
    expect(nextClick(label, label, [2, 2])).toBeNull();
    // 3x3x3 label, empty prediction: the centre voxel (1, 1, 1), 2 from the padded border.
    const cube = new Float32Array(27).fill(1);
    expect(nextClick(new Float32Array(27), cube, [3, 3, 3])).toEqual({
      kind: "foreground",
      point: [1, 1, 1],
      size: 27,
      depth: 2,
    });
  });
});
