/**
 * Synthetic H&E-like data with exact masks: pink eosin background with texture and noise, dark purple
 * "nuclei" (ellipses). There is no labelled pathology data among labelgraph's packaged fixtures (ihc.png from
 * scikit-image has no masks), so the app's tests and quick-start train on this and check the polygons of a
 * synthetic slide against the ellipses that drew it.
 */

export interface Nucleus {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
}

export interface SyntheticImage {
  width: number;
  height: number;
  /** RGB, planar (one plane per channel), x fastest: the layout `writeImage2d` takes as [W, H, 3]. */
  rgb: Uint8Array;
  /** 1 inside a nucleus, 0 elsewhere. */
  mask: Uint8Array;
  nuclei: Nucleus[];
}

const EOSIN = [232, 182, 212];
const HAEMATOXYLIN = [92, 58, 142];

function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export const insideNucleus = (n: Nucleus, x: number, y: number) =>
  ((x + 0.5 - n.cx) / n.rx) ** 2 + ((y + 0.5 - n.cy) / n.ry) ** 2 <= 1;

/** Paints an image with these nuclei (noise from `seed`). */
export function paint(width: number, height: number, nuclei: Nucleus[], seed: number): SyntheticImage {
  const rand = rng(seed);
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  const mask = new Uint8Array(plane);
  for (const n of nuclei) {
    for (let y = Math.max(0, Math.floor(n.cy - n.ry)); y < Math.min(height, Math.ceil(n.cy + n.ry) + 1); y++) {
      for (let x = Math.max(0, Math.floor(n.cx - n.rx)); x < Math.min(width, Math.ceil(n.cx + n.rx) + 1); x++) {
        if (insideNucleus(n, x, y)) {
          mask[x + width * y] = 1;
        }
      }
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = x + width * y;
      // Fibre-like texture in the stroma, plus per-pixel noise.
      const texture = 14 * Math.sin(x / 9 + 3 * Math.sin(y / 23)) * Math.sin(y / 13);
      const base = mask[i] ? HAEMATOXYLIN : EOSIN;
      for (let c = 0; c < 3; c++) {
        const v = (base[c] ?? 0) + (mask[i] ? 0 : texture) + (rand() - 0.5) * 36;
        rgb[c * plane + i] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, rgb, mask, nuclei };
}

/** Up to `count` nuclei at random, at least `gap` pixels apart, inside the image. */
export function randomNuclei(width: number, height: number, count: number, seed: number, gap = 6): Nucleus[] {
  const rand = rng(seed + 7919);
  const out: Nucleus[] = [];
  for (let tries = 0; out.length < count && tries < count * 50; tries++) {
    const rx = 5 + rand() * 8;
    const ry = 5 + rand() * 8;
    const n = { cx: rx + 1 + rand() * (width - 2 * rx - 2), cy: ry + 1 + rand() * (height - 2 * ry - 2), rx, ry };
    if (out.every((m) => Math.hypot(m.cx - n.cx, m.cy - n.cy) > Math.max(m.rx, m.ry) + Math.max(n.rx, n.ry) + gap)) {
      out.push(n);
    }
  }
  return out;
}

/** A training tile: `size` x `size` with a random number of nuclei. */
export function syntheticTile(seed: number, size = 128): SyntheticImage {
  const count = 5 + Math.floor(rng(seed + 1)() * 8);
  return paint(size, size, randomNuclei(size, size, count, seed), seed);
}

/** The 2D volumes `writeImage2d` takes. */
export function toVolumes(img: SyntheticImage) {
  const geometry = {
    spacing: [1, 1],
    affine: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ],
    dtype: "uint8",
    meta: {},
  };
  return {
    image: { ...geometry, data: img.rgb, shape: [img.width, img.height, 3] },
    label: { ...geometry, data: img.mask, shape: [img.width, img.height] },
  };
}
