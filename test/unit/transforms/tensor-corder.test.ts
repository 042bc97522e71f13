import { describe, expect, it } from "vitest";
import { fromCOrder, MetaTensor, toCOrder } from "../../../src/transforms/tensor.js";

/** The definition, index by index: MetaTensor [C, X, Y, Z] (x fastest) -> C order (z fastest). */
function referenceCOrder(data: Float32Array, shape: number[]): Float32Array {
  const [C = 1, X = 1, Y = 1, Z = 1] = shape;
  const out = new Float32Array(data.length);
  for (let c = 0; c < C; c++) {
    for (let x = 0; x < X; x++) {
      for (let y = 0; y < Y; y++) {
        for (let z = 0; z < Z; z++) {
          out[((c * X + x) * Y + y) * Z + z] = data[c * X * Y * Z + x + X * (y + Y * z)] as number;
        }
      }
    }
  }
  return out;
}

describe("toCOrder / fromCOrder (tiled transposes)", () => {
  // Sizes below, at and across the 16-voxel tile, 1D to 3D, one and several channels.
  const shapes = [
    [1, 7],
    [2, 5, 3],
    [1, 16, 16],
    [3, 17, 1, 33],
    [2, 33, 18, 15],
    [1, 1, 40, 1],
    [1, 48, 7, 32],
  ];

  it.each(shapes)("matches the index-by-index definition and round-trips, shape %j", (...shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
    const t = new MetaTensor({ data, shape });
    const c = toCOrder(t);
    expect(c).toEqual(referenceCOrder(data, shape));
    const back = fromCOrder(c, shape, t);
    expect(back.data).toEqual(data);
    expect(back.shape).toEqual(shape);
    expect(back.affine).toEqual(t.affine);
  });

  it("fromCOrder reads any array-like and checks the length", () => {
    const shape = [1, 2, 3, 2];
    const data = Float32Array.from({ length: 12 }, (_, i) => i);
    const c = Array.from(toCOrder(new MetaTensor({ data, shape })));
    expect(fromCOrder(c, shape).data).toEqual(data);
    expect(() => fromCOrder(c.slice(1), shape)).toThrow(/11 values do not fill shape/);
  });
});
