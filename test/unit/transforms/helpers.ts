import { expect } from "vitest";
import { type Affine, MetaTensor } from "../../../src/transforms/index.js";

/**
 * A channel-first tensor whose value at channel c, voxel (x, y, z) is `f(x, y, z, c)` (layout: each channel
 * contiguous, x fastest).
 */
export function tensor(
  shape: number[],
  f: (x: number, y: number, z: number, c: number) => number,
  affine?: Affine,
  meta: Record<string, unknown> = {},
): MetaTensor {
  const [C, X, Y = 1, Z = 1] = shape as [number, number, number?, number?];
  const data = new Float32Array(C * X * Y * Z);
  let i = 0;
  for (let c = 0; c < C; c++) {
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        for (let x = 0; x < X; x++) {
          data[i++] = f(x, y, z, c);
        }
      }
    }
  }
  return new MetaTensor({ data, shape, affine, meta: { spatial_shape: shape.slice(1), ...meta } });
}

/** The value of `t` at channel c, voxel (x, y, z). */
export function at(t: MetaTensor, x: number, y = 0, z = 0, c = 0): number {
  const [X = 1, Y = 1, Z = 1] = t.spatialShape;
  return t.data[c * X * Y * Z + x + X * (y + Y * z)]!;
}

/** Channel c of a tensor as nested arrays [x][y][z] (easy to compare with hand-written expectations). */
export function grid(t: MetaTensor, c = 0): number[][][] {
  const [X = 1, Y = 1, Z = 1] = t.spatialShape;
  return Array.from({ length: X }, (_, x) =>
    Array.from({ length: Y }, (_, y) => Array.from({ length: Z }, (_, z) => at(t, x, y, z, c))),
  );
}

export function expectAffineClose(actual: Affine, expected: Affine, digits = 6): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, r) => {
    row.forEach((v, c) => {
      expect(v, `affine[${r}][${c}]`).toBeCloseTo(expected[r]![c]!, digits);
    });
  });
}

export function expectArrayClose(actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(actual[i], `index ${i}`).toBeCloseTo(expected[i]!, digits);
  }
}

export function diag(sx: number, sy: number, sz: number, t: [number, number, number] = [0, 0, 0]): Affine {
  return [
    [sx, 0, 0, t[0]],
    [0, sy, 0, t[1]],
    [0, 0, sz, t[2]],
    [0, 0, 0, 1],
  ];
}
