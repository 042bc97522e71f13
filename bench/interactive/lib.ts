/**
 * bench/interactive's helpers (also used by test/integration/interactive.test.ts): Dice, the simulated
 * annotator (each new click at the centre of the largest error region), and a printed table.
 */

import { distanceTransformCdt } from "../../src/transforms/deepgrow.js";
import { labelComponents, type Shape3 } from "../../src/transforms/kernels.js";

export function dice(pred: ArrayLike<number>, label: ArrayLike<number>): number {
  let inter = 0;
  let p = 0;
  let t = 0;
  for (let i = 0; i < label.length; i++) {
    const a = (pred[i] ?? 0) > 0.5 ? 1 : 0;
    const b = (label[i] ?? 0) > 0.5 ? 1 : 0;
    inter += a * b;
    p += a;
    t += b;
  }
  return p + t === 0 ? 1 : (2 * inter) / (p + t);
}

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
 * The simulated annotator's next click: the largest connected error region (label XOR prediction, 8/26-
 * connected), clicked at its centre, i.e. its voxel farthest from the region's border (chessboard distance,
 * first in scan order on ties). Null when prediction and label agree.
 */
export function nextClick(pred: ArrayLike<number>, label: ArrayLike<number>, spatial: readonly number[]): Click | null {
  const shape = [spatial[0] ?? 1, spatial[1] ?? 1, spatial[2] ?? 1] as Shape3;
  const rank = spatial.length;
  const error = new Uint8Array(label.length);
  for (let i = 0; i < label.length; i++) {
    error[i] = ((pred[i] ?? 0) > 0.5 ? 1 : 0) !== ((label[i] ?? 0) > 0.5 ? 1 : 0) ? 1 : 0;
  }
  const { labels, sizes } = labelComponents(error, shape, rank, rank);
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
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === biggest + 1) {
      const x = i % X;
      const y = Math.floor(i / X) % Y;
      const z = Math.floor(i / (X * Y));
      padded[x + o[0] + PX * (y + o[1] + PY * (z + o[2]))] = 1;
    }
  }
  const dist = distanceTransformCdt(padded, [PX, PY, PZ]);
  let best = -1;
  let at = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === biggest + 1) {
      const x = i % X;
      const y = Math.floor(i / X) % Y;
      const z = Math.floor(i / (X * Y));
      const v = dist[x + o[0] + PX * (y + o[1] + PY * (z + o[2]))]!;
      if (v > best) {
        best = v;
        at = i;
      }
    }
  }
  const point = [at % X, Math.floor(at / X) % Y, Math.floor(at / (X * Y))].slice(0, rank);
  return { kind: (label[at] ?? 0) > 0.5 ? "foreground" : "background", point, size: sizes[biggest]!, depth: best };
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
