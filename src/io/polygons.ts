/**
 * Label mask -> polygons: the outer contour of every 4-connected region of each label value, as MONAI's
 * pathology post-transforms give them (FindContoursd: outer contours only, holes ignored, small regions
 * dropped by area).
 *
 * The contour follows pixel edges ("crack following"), so its vertices lie on pixel corners: pixel (x, y)
 * is the square [x, x+1] x [y, y+1], and the polygon of a region without holes has exactly the region's
 * pixel count as its area. Vertices are only the corners where the contour turns. A mask is stored x
 * fastest (`mask[x + width * y]`), as Volumes are.
 */
import { InvalidInputError } from "../errors.js";

export type Point = [number, number];
export type Polygon = Point[];

export interface MaskPolygonsOptions {
  /** Regions whose polygon area (pixels) is below this are dropped (MONAI's min_poly_area). Default 0. */
  minArea?: number;
  /** Regions above this area are dropped (MONAI's max_poly_area). Default: no limit. */
  maxArea?: number;
  /** Added to every vertex, e.g. the location of a region inside a whole-slide image. */
  offset?: readonly [number, number];
}

/** Polygons of one label value. */
export interface LabelPolygons {
  label: number;
  polygons: Polygon[];
}

/** Absolute shoelace area. */
export function polygonArea(polygon: readonly (readonly number[])[]): number {
  let twice = 0;
  for (let i = 0; i < polygon.length; i++) {
    const [x0 = 0, y0 = 0] = polygon[i]!;
    const [x1 = 0, y1 = 0] = polygon[(i + 1) % polygon.length]!;
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

/** Whether (x, y) lies inside the polygon (even-odd rule; points on an edge may fall either way). */
export function pointInPolygon(x: number, y: number, polygon: readonly (readonly number[])[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi = 0, yi = 0] = polygon[i]!;
    const [xj = 0, yj = 0] = polygon[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

/**
 * 4-connected components of equal non-zero values. `ids` holds each pixel's component (0 for background,
 * 1..count otherwise); components are numbered in raster order of their first (top-most, then left-most) pixel,
 * which `starts` gives as a pixel index.
 */
export function connectedComponents(
  mask: ArrayLike<number>,
  width: number,
  height: number,
): { ids: Int32Array; count: number; starts: number[]; values: number[] } {
  checkMask(mask, width, height);
  const ids = new Int32Array(width * height);
  const starts: number[] = [];
  const values: number[] = [];
  const stack: number[] = [];
  let count = 0;
  for (let p = 0; p < ids.length; p++) {
    const v = mask[p] ?? 0;
    if (v === 0 || ids[p] !== 0) {
      continue;
    }
    count++;
    starts.push(p);
    values.push(v);
    ids[p] = count;
    stack.push(p);
    while (stack.length > 0) {
      const q = stack.pop()!;
      const x = q % width;
      const visit = (r: number) => {
        if (ids[r] === 0 && mask[r] === v) {
          ids[r] = count;
          stack.push(r);
        }
      };
      if (x > 0) {
        visit(q - 1);
      }
      if (x < width - 1) {
        visit(q + 1);
      }
      if (q >= width) {
        visit(q - width);
      }
      if (q < ids.length - width) {
        visit(q + width);
      }
    }
  }
  return { ids, count, starts, values };
}

/**
 * The outer contour of component `id`, starting at the top-left corner of its first pixel and running
 * clockwise on screen (y down), with the region on the right of each edge.
 */
function traceOuter(ids: Int32Array, width: number, height: number, id: number, start: number): Polygon {
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && ids[x + width * y] === id;
  const sx = start % width;
  const sy = (start - sx) / width;
  const out: Polygon = [[sx, sy]];
  let vx = sx;
  let vy = sy;
  let dx = 1;
  let dy = 0;
  // Each edge is walked once, so 4 * pixels + 4 bounds the loop.
  for (let guard = 4 * width * height + 4; guard > 0; guard--) {
    vx += dx;
    vy += dy;
    // Right of heading (dx, dy) in y-down coordinates is (-dy, dx). The pixels just ahead of vertex v:
    // ahead-right has centre v + d/2 + r/2, ahead-left v + d/2 - r/2.
    const rx = -dy;
    const ry = dx;
    const aheadRight = inside(Math.floor(vx + (dx + rx) / 2), Math.floor(vy + (dy + ry) / 2));
    const aheadLeft = inside(Math.floor(vx + (dx - rx) / 2), Math.floor(vy + (dy - ry) / 2));
    let ndx = dx;
    let ndy = dy;
    if (!aheadRight) {
      ndx = rx;
      ndy = ry;
    } else if (aheadLeft) {
      // Both ahead pixels are in: turn left. At a diagonal-only touch the right turn above wins, which keeps
      // the contour to this 4-connected component.
      ndx = dy;
      ndy = -dx;
    }
    if (vx === sx && vy === sy && ndx === 1 && ndy === 0) {
      return out;
    }
    if (ndx !== dx || ndy !== dy) {
      out.push([vx, vy]);
    }
    dx = ndx;
    dy = ndy;
  }
  throw new Error("traceOuter: contour did not close (corrupt component map)");
}

/**
 * Outer polygons of every region of every non-zero label value, by label value ascending; regions within a
 * label in raster order of their top-left pixel.
 */
export function maskToPolygons(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: MaskPolygonsOptions = {},
): LabelPolygons[] {
  const { ids, starts, values } = connectedComponents(mask, width, height);
  const minArea = options.minArea ?? 0;
  const maxArea = options.maxArea ?? Number.POSITIVE_INFINITY;
  const [ox, oy] = options.offset ?? [0, 0];
  const byLabel = new Map<number, Polygon[]>();
  starts.forEach((start, i) => {
    const polygon = traceOuter(ids, width, height, i + 1, start);
    const area = polygonArea(polygon);
    if (area < minArea || area > maxArea) {
      return;
    }
    const label = values[i]!;
    const list = byLabel.get(label) ?? [];
    list.push(ox === 0 && oy === 0 ? polygon : polygon.map(([x, y]) => [x + ox, y + oy]));
    byLabel.set(label, list);
  });
  return [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([label, polygons]) => ({ label, polygons }));
}

function checkMask(mask: ArrayLike<number>, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidInputError(`mask size must be positive integers, got ${width} x ${height}`);
  }
  if (mask.length !== width * height) {
    throw new InvalidInputError(`mask has ${mask.length} values, ${width} x ${height} needs ${width * height}`);
  }
}
