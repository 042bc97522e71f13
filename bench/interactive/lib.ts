/**
 * bench/interactive's helpers (also used by test/integration/interactive.test.ts): Dice, the simulated
 * annotator (each new click at the centre of the largest error region), and a printed table.
 */

import { thresholdedDice } from "../../src/tasks/train/basic-train-task.js";
import { discrepancy, distanceTransformCdt } from "../../src/transforms/deepgrow.js";
import { labelComponents, type Shape3 } from "../../src/transforms/kernels.js";

/** Dice of pred > 0.5 against label > 0.5 (1 when both are empty), as validation scores it. */
export const dice = (pred: ArrayLike<number>, label: ArrayLike<number>): number => thresholdedDice(pred, label, 0.5);

export interface Click {
  /** "foreground" where the prediction missed the label, "background" where it overshot. */
  kind: "foreground" | "background";
  /** Voxel coordinates (x, y[, z]) of the item's grid. */
  point: number[];
  /** Voxels of the error region clicked. */
  size: number;
  /** Chessboard distance from the click to the region's border (1: a one-voxel-thin region). */
  depth: number;
}

/**
 * How the simulated annotator sees errors: "split" (default) as MONAI's FindDiscrepancyRegionsd does, missed
 * regions (label, not predicted) apart from extra ones (predicted, not label), so that a region is one kind of
 * error and one kind of click fixes it; "xor" as one error map (label XOR prediction), where a missed sliver
 * touching an extra one makes a single region and the click's kind is that of its centre voxel.
 */
export type ErrorRegions = "split" | "xor";

/**
 * The simulated annotator's next click: the largest connected error region (8/26-connected; see
 * ErrorRegions), clicked at its centre, i.e. its voxel farthest from the region's border (chessboard distance,
 * first in scan order on ties; a missed region before an extra one of the same size). Null when prediction and
 * label agree.
 */
export function nextClick(
  pred: ArrayLike<number>,
  label: ArrayLike<number>,
  spatial: readonly number[],
  regions: ErrorRegions = "split",
): Click | null {
  // MONAI's discrepancy maps (src/transforms/deepgrow.ts): [missed, extra].
  const [missedMask, extraMask] = discrepancy(label, pred, label.length);
  if (regions === "xor") {
    const c = centreOfLargest(
      missedMask.map((m, i) => m | extraMask[i]!),
      spatial,
    );
    return c && { kind: missedMask[c.index] ? "foreground" : "background", ...c.click };
  }
  const missed = centreOfLargest(missedMask, spatial);
  const extra = centreOfLargest(extraMask, spatial);
  if (missed && (!extra || missed.click.size >= extra.click.size)) {
    return { kind: "foreground", ...missed.click };
  }
  return extra && { kind: "background", ...extra.click };
}

/**
 * The largest connected region of `mask` and its centre (see nextClick), with the centre's flat index; null when
 * the mask is empty.
 */
function centreOfLargest(
  mask: Uint8Array,
  spatial: readonly number[],
): { click: Omit<Click, "kind">; index: number } | null {
  const shape = [spatial[0] ?? 1, spatial[1] ?? 1, spatial[2] ?? 1] as Shape3;
  const rank = spatial.length;
  const { labels, sizes } = labelComponents(mask, shape, rank, rank);
  if (sizes.length === 0) {
    return null;
  }
  let biggest = 0;
  sizes.forEach((s, i) => {
    if (s > sizes[biggest]!) {
      biggest = i;
    }
  });
  const [X, Y, Z] = shape;
  // Zero-padded by one voxel on the image's axes so that the image border counts as the region's border too.
  const p = (n: number, axis: number) => (axis < rank ? n + 2 : n);
  const [PX, PY, PZ] = [p(X, 0), p(Y, 1), p(Z, 2)];
  const o = [1, 1, 1].map((v, a) => (a < rank ? v : 0)) as [number, number, number];
  const padded = new Uint8Array(PX * PY * PZ);
  const paddedIndex = (i: number) => {
    const x = i % X;
    const y = Math.floor(i / X) % Y;
    const z = Math.floor(i / (X * Y));
    return x + o[0] + PX * (y + o[1] + PY * (z + o[2]));
  };
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === biggest + 1) {
      padded[paddedIndex(i)] = 1;
    }
  }
  const dist = distanceTransformCdt(padded, [PX, PY, PZ]);
  let best = -1;
  let at = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === biggest + 1) {
      const v = dist[paddedIndex(i)]!;
      if (v > best) {
        best = v;
        at = i;
      }
    }
  }
  const point = [at % X, Math.floor(at / X) % Y, Math.floor(at / (X * Y))].slice(0, rank);
  return { click: { point, size: sizes[biggest]!, depth: best }, index: at };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
