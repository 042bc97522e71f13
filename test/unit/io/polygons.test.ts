import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import {
  connectedComponents,
  maskToPolygons,
  type Polygon,
  pointInPolygon,
  polygonArea,
} from "../../../src/io/polygons.js";

function maskOf(width: number, height: number, on: (x: number, y: number) => number): Uint8Array {
  const m = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      m[x + width * y] = on(x, y);
    }
  }
  return m;
}

/** Pixels whose centre the polygon contains. */
function rasterize(p: Polygon, width: number, height: number): Set<number> {
  const out = new Set<number>();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pointInPolygon(x + 0.5, y + 0.5, p)) {
        out.add(x + width * y);
      }
    }
  }
  return out;
}

describe("maskToPolygons", () => {
  it("traces a rectangle as its four pixel corners, clockwise from the top-left", () => {
    const m = maskOf(8, 6, (x, y) => (x >= 2 && x < 5 && y >= 1 && y < 3 ? 1 : 0));
    expect(maskToPolygons(m, 8, 6)).toEqual([
      {
        label: 1,
        polygons: [
          [
            [2, 1],
            [5, 1],
            [5, 3],
            [2, 3],
          ],
        ],
      },
    ]);
  });

  it("gives an L shape six vertices and its pixel count as area", () => {
    const m = maskOf(6, 6, (x, y) => ((x === 1 && y >= 1 && y < 5) || (y === 4 && x >= 1 && x < 4) ? 1 : 0));
    const [{ polygons }] = maskToPolygons(m, 6, 6) as unknown as [{ polygons: Polygon[] }];
    expect(polygons).toHaveLength(1);
    expect(polygons[0]).toHaveLength(6);
    expect(polygonArea(polygons[0]!)).toBe(6);
  });

  it("traces a disc touching the image border exactly: area = pixels, inside = the disc", () => {
    const W = 40;
    const H = 30;
    const disc = maskOf(W, H, (x, y) => ((x - 30) ** 2 + (y - 20) ** 2 <= 12 ** 2 ? 1 : 0));
    const count = disc.reduce((a, b) => a + b, 0);
    const [{ polygons }] = maskToPolygons(disc, W, H) as unknown as [{ polygons: Polygon[] }];
    expect(polygons).toHaveLength(1);
    expect(polygonArea(polygons[0]!)).toBe(count);
    const inside = rasterize(polygons[0]!, W, H);
    expect(inside.size).toBe(count);
    for (const p of inside) {
      expect(disc[p]).toBe(1);
    }
  });

  it("keeps diagonal-only neighbours apart (4-connectivity) and ignores holes", () => {
    const diag = maskOf(4, 4, (x, y) => ((x === 1 && y === 1) || (x === 2 && y === 2) ? 1 : 0));
    const [{ polygons }] = maskToPolygons(diag, 4, 4) as unknown as [{ polygons: Polygon[] }];
    expect(polygons.map(polygonArea)).toEqual([1, 1]);

    const ring = maskOf(7, 7, (x, y) => (x >= 1 && x < 6 && y >= 1 && y < 6 && !(x === 3 && y === 3) ? 1 : 0));
    const [{ polygons: outer }] = maskToPolygons(ring, 7, 7) as unknown as [{ polygons: Polygon[] }];
    expect(outer).toHaveLength(1);
    expect(polygonArea(outer[0]!)).toBe(25);
  });

  it("groups regions by label value, filters by area and shifts by an offset", () => {
    const m = maskOf(20, 10, (x, y) => {
      // 16 px of label 2, then 4 px and 30 px of label 1.
      const two = x < 4 && y < 4;
      const one = (x >= 10 && x < 12 && y < 2) || (x >= 14 && y >= 5);
      return two ? 2 : one ? 1 : 0;
    });
    const all = maskToPolygons(m, 20, 10);
    expect(all.map((l) => [l.label, l.polygons.map(polygonArea)])).toEqual([
      [1, [4, 30]],
      [2, [16]],
    ]);
    const big = maskToPolygons(m, 20, 10, { minArea: 10, maxArea: 20, offset: [1000, 500] });
    expect(big).toEqual([
      {
        label: 2,
        polygons: [
          [
            [1000, 500],
            [1004, 500],
            [1004, 504],
            [1000, 504],
          ],
        ],
      },
    ]);
  });

  it("on random masks, every region's pixels lie inside its polygon and hole-free regions match exactly", () => {
    let s = 12345;
    const rand = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    };
    const W = 24;
    const H = 17;
    for (let trial = 0; trial < 20; trial++) {
      const m = maskOf(W, H, () => (rand() < 0.45 ? 1 + Math.floor(rand() * 2) : 0));
      const { ids, count } = connectedComponents(m, W, H);
      const polys = maskToPolygons(m, W, H).flatMap((l) => l.polygons);
      expect(polys).toHaveLength(count);
      let exact = 0;
      for (const p of polys) {
        const inside = rasterize(p, W, H);
        const ownIds = new Set([...inside].map((i) => ids[i]).filter((id) => id !== 0));
        // The region is the component that owns the polygon's first corner pixel.
        const [x0, y0] = p[0]!;
        const id = ids[x0 + W * y0]!;
        const pixels = [...ids.keys()].filter((i) => ids[i] === id);
        for (const i of pixels) {
          expect(inside.has(i)).toBe(true);
        }
        if (inside.size === pixels.length) {
          exact++;
          expect(polygonArea(p)).toBe(pixels.length);
          expect(ownIds).toEqual(new Set([id]));
        }
      }
      expect(exact).toBeGreaterThan(count / 2);
    }
  });

  it("rejects a mask that does not fill its size", () => {
    expect(() => maskToPolygons(new Uint8Array(5), 2, 3)).toThrow(InvalidInputError);
    expect(() => maskToPolygons(new Uint8Array(0), 0, 0)).toThrow(/positive integers/);
  });
});
