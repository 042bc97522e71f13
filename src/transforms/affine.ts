import type { Affine } from "./tensor.js";

/**
 * Small dense-matrix helpers and the geometry MONAI and nibabel compute from affines: `to_affine_nd`,
 * `io_orientation`, `axcodes2ornt`, `aff2axcodes`, `zoom_affine`, `compute_shape_offset`, `scale_affine`.
 * Matrices are row-major `number[][]`, computed in float64.
 */

/** MONAI's AFFINE_TOL. */
export const AFFINE_TOL = 1e-3;

export function eye(n: number): number[][] {
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === c ? 1 : 0)));
}

export function matmul(a: number[][], b: number[][]): number[][] {
  const n = a.length;
  const m = b[0]?.length ?? 0;
  const k = b.length;
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = [];
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) {
        s += a[i]![t]! * b[t]![j]!;
      }
      row.push(s);
    }
    out.push(row);
  }
  return out;
}

export function matvec(a: number[][], v: readonly number[]): number[] {
  return a.map((row) => row.reduce((s, x, j) => s + x * (v[j] ?? 0), 0));
}

export function transpose(a: number[][]): number[][] {
  const m = a[0]?.length ?? 0;
  return Array.from({ length: m }, (_, j) => a.map((row) => row[j]!));
}

/** Inverse by Gauss-Jordan elimination with partial pivoting; throws for a singular matrix. */
export function invert(a: number[][]): number[][] {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...eye(n)[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) {
        pivot = r;
      }
    }
    const p = m[pivot]![col]!;
    if (!Number.isFinite(p) || Math.abs(p) < 1e-12) {
      throw new Error(`matrix is not invertible: ${JSON.stringify(a)}`);
    }
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    const rowC = m[col]!;
    for (let j = 0; j < 2 * n; j++) {
      rowC[j] = rowC[j]! / p;
    }
    for (let r = 0; r < n; r++) {
      if (r !== col) {
        const f = m[r]![col]!;
        if (f !== 0) {
          const row = m[r]!;
          for (let j = 0; j < 2 * n; j++) {
            row[j] = row[j]! - f * rowC[j]!;
          }
        }
      }
    }
  }
  return m.map((row) => row.slice(n));
}

export function allClose(a: number[][], b: number[][], atol = 1e-8, rtol = 1e-5): boolean {
  if (a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i++) {
    const ra = a[i]!;
    const rb = b[i]!;
    if (ra.length !== rb.length) {
      return false;
    }
    for (let j = 0; j < ra.length; j++) {
      if (Math.abs(ra[j]! - rb[j]!) > atol + rtol * Math.abs(rb[j]!)) {
        return false;
      }
    }
  }
  return true;
}

/** numpy's `round` (half to even), which MONAI's shape computations use. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * MONAI's `to_affine_nd(r, affine)`: the `(r+1)x(r+1)` affine of the first `r` spatial axes (the top-left
 * block and the translation column).
 */
export function toAffineNd(r: number, affine: Affine): number[][] {
  const out = eye(r + 1);
  const src = affine.length - 1;
  const d = Math.max(Math.min(r, src), 1);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      out[i]![j] = affine[i]![j]!;
    }
  }
  if (d > 1) {
    for (let i = 0; i < d; i++) {
      out[i]![r] = affine[i]![src]!;
    }
  }
  return out;
}

/**
 * MONAI's `to_affine_nd(base, small)`: `base` (4x4) with its first `r` spatial rows/columns and translation
 * replaced by those of the `(r+1)x(r+1)` matrix `small`.
 */
export function embedAffine(base: Affine, small: number[][]): Affine {
  const out = base.map((row) => [...row]);
  const r = small.length - 1;
  const n = out.length - 1;
  const d = Math.max(Math.min(r, n), 1);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      out[i]![j] = small[i]![j]!;
    }
    if (d > 1) {
      out[i]![n] = small[i]![r]!;
    }
  }
  return out;
}

/** Translation by `t` (voxels) as an `(r+1)x(r+1)` matrix. */
export function translation(t: readonly number[]): number[][] {
  const r = t.length;
  const m = eye(r + 1);
  for (let i = 0; i < r; i++) {
    m[i]![r] = t[i]!;
  }
  return m;
}

/** The 4x4 affine of a tensor after a crop/pad whose output voxel `v` is input voxel `v + start`. */
export function shiftAffine(affine: Affine, start: readonly number[]): Affine {
  const r = start.length;
  return embedAffine(affine, matmul(toAffineNd(r, affine), translation(start)));
}

/** The orthogonal factor of the polar decomposition (U V^T of the SVD) by Newton iteration. */
function polarOrthogonal(m: number[][]): number[][] {
  let x = m.map((row) => [...row]);
  for (let iter = 0; iter < 100; iter++) {
    let invT: number[][];
    try {
      invT = transpose(invert(x));
    } catch {
      return x;
    }
    const next = x.map((row, i) => row.map((v, j) => 0.5 * (v + invT[i]![j]!)));
    let diff = 0;
    for (let i = 0; i < next.length; i++) {
      for (let j = 0; j < next.length; j++) {
        diff = Math.max(diff, Math.abs(next[i]![j]! - x[i]![j]!));
      }
    }
    x = next;
    if (diff < 1e-14) {
      break;
    }
  }
  return x;
}

/** One row of an orientation: which world axis a voxel axis runs along, and in which direction. */
export interface AxisOrientation {
  axis: number;
  flip: 1 | -1;
}

/**
 * nibabel's `io_orientation` of an `(r+1)x(r+1)` affine: for each voxel axis in turn, the world axis its
 * (shear-free, unit) direction is closest to, that world axis then being taken.
 */
export function ioOrientation(affine: number[][]): AxisOrientation[] {
  const r = affine.length - 1;
  const rzs = affine.slice(0, r).map((row) => row.slice(0, r));
  for (let j = 0; j < r; j++) {
    let norm = 0;
    for (let i = 0; i < r; i++) {
      norm += rzs[i]![j]! ** 2;
    }
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < r; i++) {
      rzs[i]![j] = rzs[i]![j]! / norm;
    }
  }
  const rot = polarOrthogonal(rzs);
  const out: AxisOrientation[] = [];
  for (let j = 0; j < r; j++) {
    let best = -1;
    let bestAbs = 0;
    for (let i = 0; i < r; i++) {
      const a = Math.abs(rot[i]![j]!);
      if (a > bestAbs + 1e-12) {
        best = i;
        bestAbs = a;
      }
    }
    if (best < 0) {
      throw new Error(`affine has a zero direction for voxel axis ${j}: ${JSON.stringify(affine)}`);
    }
    out.push({ axis: best, flip: rot[best]![j]! < 0 ? -1 : 1 });
    rot[best] = rot[best]!.map(() => 0);
  }
  return out;
}

/** nibabel's default axis labels: each pair is (negative direction, positive direction) of a world axis. */
export const DEFAULT_AXIS_LABELS: readonly (readonly [string, string])[] = [
  ["L", "R"],
  ["P", "A"],
  ["I", "S"],
];

/** nibabel's `axcodes2ornt`. */
export function axcodesToOrnt(
  axcodes: string,
  labels: readonly (readonly [string, string])[] = DEFAULT_AXIS_LABELS,
): AxisOrientation[] {
  return [...axcodes].map((code) => {
    const axis = labels.findIndex((pair) => pair.includes(code));
    if (axis < 0) {
      throw new Error(`axis code ${JSON.stringify(code)} is not one of ${labels.map((p) => p.join("")).join(", ")}`);
    }
    return { axis, flip: labels[axis]![0] === code ? -1 : 1 };
  });
}

/** nibabel's `aff2axcodes` of an `(r+1)x(r+1)` affine ("RAS", "LPS", ...). */
export function aff2axcodes(
  affine: number[][],
  labels: readonly (readonly [string, string])[] = DEFAULT_AXIS_LABELS,
): string {
  return ioOrientation(affine)
    .map((o) => labels[o.axis]![o.flip < 0 ? 0 : 1])
    .join("");
}

/**
 * MONAI's `zoom_affine`: an `(r+1)x(r+1)` affine with the directions of `affine` (its Gram-Schmidt
 * orthonormalised columns, as the Cholesky factorisation gives) and voxel size `scale`; zero or negative
 * entries of `scale` keep the current size; `diagonal` drops the directions.
 */
export function zoomAffine(affine: number[][], scale: readonly number[], diagonal = false): number[][] {
  const r = affine.length - 1;
  const cols = Array.from({ length: r }, (_, j) => Array.from({ length: r }, (_, i) => affine[i]![j]!));
  const norms = cols.map((c) => Math.hypot(...c));
  const s = Array.from({ length: r }, (_, i) => {
    const v = scale[i] ?? norms[i]!;
    const fallback = v > 0 ? v : norms[i]!;
    return fallback === 0 ? 1 : fallback;
  });
  const out = eye(r + 1);
  if (diagonal) {
    for (let i = 0; i < r; i++) {
      out[i]![i] = s[i]!;
    }
    return out;
  }
  // rotation = rzs @ inv(zs) where zs is the upper Cholesky factor of rzs^T rzs: the Q of a QR
  // decomposition with a positive diagonal, i.e. Gram-Schmidt of the columns.
  const q: number[][] = [];
  for (let j = 0; j < r; j++) {
    const v = [...cols[j]!];
    for (const u of q) {
      const dot = u.reduce((acc, x, i) => acc + x * cols[j]![i]!, 0);
      for (let i = 0; i < r; i++) {
        v[i] = v[i]! - dot * u[i]!;
      }
    }
    const n = Math.hypot(...v);
    q.push(n > 0 ? v.map((x) => x / n) : Array.from({ length: r }, (_, i) => (i === j ? 1 : 0)));
  }
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      out[i]![j] = q[j]![i]! * Math.abs(s[j]!);
    }
  }
  return out;
}

/**
 * MONAI's `compute_shape_offset`: the output grid shape covering the input grid's corners once mapped into
 * `outAffine`'s voxels, and the world offset that puts the output origin at the input's minimal corner (or,
 * when no corner is minimal on every axis, centre-aligns the two grids).
 */
export function computeShapeOffset(
  spatialShape: readonly number[],
  inAffine: number[][],
  outAffine: number[][],
  scaleExtent = false,
): { shape: number[]; offset: number[] } {
  const r = spatialShape.length;
  const inA = toAffineNd(r, inAffine);
  const outA = toAffineNd(r, outAffine);
  const ranges = spatialShape.map((d) => (scaleExtent ? [-0.5, d - 0.5] : [0, d - 1]));
  const corners: number[][] = [];
  const total = 1 << r;
  for (let k = 0; k < total; k++) {
    // meshgrid(indexing="ij").reshape: the last axis varies fastest
    const c: number[] = [];
    for (let i = 0; i < r; i++) {
      const bit = (k >> (r - 1 - i)) & 1;
      c.push(ranges[i]![bit]!);
    }
    c.push(1);
    corners.push(c);
  }
  const xf = matmul(invert(outA), inA);
  const out = corners.map((c) => matvec(xf, c));
  const world = corners.map((c) => matvec(inA, c));
  const shape: number[] = [];
  for (let i = 0; i < r; i++) {
    const vals = out.map((c) => c[i]! / c[r]!);
    const ptp = Math.max(...vals) - Math.min(...vals);
    shape.push(roundHalfEven(scaleExtent ? ptp : ptp + 1));
  }
  let offset: number[] | undefined;
  for (let k = 0; k < out.length; k++) {
    let ok = true;
    for (let i = 0; i < r && ok; i++) {
      let mn = Number.POSITIVE_INFINITY;
      for (const c of out) {
        mn = Math.min(mn, c[i]! - out[k]![i]!);
      }
      ok = Math.abs(mn) <= 1e-8;
    }
    if (ok) {
      offset = world[k]!.slice(0, r);
      break;
    }
  }
  if (!offset) {
    const a = matvec(inA, [...spatialShape.map((d) => (d - 1) / 2), 1]);
    const b = matvec(outA, [...shape.map((d) => (d - 1) / 2), 1]);
    offset = a.slice(0, r).map((v, i) => v - b[i]!);
  }
  return { shape, offset };
}

/**
 * MONAI's `scale_affine`: the voxel transform of a resize from `spatialSize` to `newSize`, centred so the
 * grid's outer edges stay put (`v_old = s * v_new + (s - 1) / 2`, `s = old / new`).
 */
export function scaleAffine(spatialSize: readonly number[], newSize: readonly number[], centered = true): number[][] {
  const r = Math.max(spatialSize.length, newSize.length);
  const m = eye(r + 1);
  for (let i = 0; i < r; i++) {
    const o = spatialSize[i] ?? 1;
    const n = newSize[i] ?? 1;
    const s = o / Math.max(n, 1);
    m[i]![i] = s;
    if (centered) {
      m[i]![r] = (s - 1) / 2;
    }
  }
  return m;
}
