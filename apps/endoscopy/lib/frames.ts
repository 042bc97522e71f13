import sharp from "sharp";

/**
 * Endoscopy-like frames for the app's tests and quick start. No labelled endoscopy video is packaged with
 * labelgraph, so:
 *  - in-body frames are crops of scikit-image's retina.jpg (a real fundus-camera image: red-orange tissue and
 *    vessels seen through a round aperture);
 *  - out-of-body frames are crops of other real photographs (astronaut.png, camera.png);
 *  - tool frames are in-body frames with a synthetic grey instrument shaft drawn in, whose mask is exact.
 */

export interface Frame {
  size: number;
  /** RGB, planar, x fastest: the [W, H, 3] layout `writeImage2d` takes. */
  rgb: Uint8Array;
}

export interface ToolFrame extends Frame {
  /** 1 on the instrument, 0 elsewhere. */
  mask: Uint8Array;
}

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

/** A random square crop of an image file, resized to size x size RGB. */
export async function cropFrame(
  path: string,
  size: number,
  seed: number,
  minCrop = 0.25,
  maxCrop = 0.45,
): Promise<Frame> {
  const rand = rng(seed);
  const meta = await sharp(path).metadata();
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  const side = Math.round(Math.min(w, h) * (minCrop + rand() * (maxCrop - minCrop)));
  // Stay near the centre so retina crops show tissue, not the black surround.
  const left = Math.round(w / 2 - side / 2 + (rand() - 0.5) * (w - side) * 0.5);
  const top = Math.round(h / 2 - side / 2 + (rand() - 0.5) * (h - side) * 0.5);
  const { data } = await sharp(path)
    .extract({ left, top, width: side, height: side })
    .resize(size, size)
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const plane = size * size;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      rgb[c * plane + i] = data[i * 3 + c]!;
    }
  }
  return { size, rgb };
}

/** Draws a grey shaft entering from a frame edge (random angle and width) onto a copy of the frame. */
export function drawTool(frame: Frame, seed: number): ToolFrame {
  const rand = rng(seed + 101);
  const { size } = frame;
  const plane = size * size;
  const rgb = frame.rgb.slice();
  const mask = new Uint8Array(plane);
  // From a point on the bottom or right edge towards a tip inside the frame.
  const fromBottom = rand() < 0.5;
  const x0 = fromBottom ? size * (0.2 + 0.6 * rand()) : size;
  const y0 = fromBottom ? size : size * (0.2 + 0.6 * rand());
  const x1 = size * (0.25 + 0.35 * rand());
  const y1 = size * (0.25 + 0.35 * rand());
  const half = size * (0.06 + 0.04 * rand());
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = ((x + 0.5 - x0) * dx + (y + 0.5 - y0) * dy) / len2;
      if (t < 0 || t > 1) {
        continue;
      }
      const px = x0 + t * dx;
      const py = y0 + t * dy;
      const dist = Math.hypot(x + 0.5 - px, y + 0.5 - py);
      if (dist <= half) {
        const i = x + size * y;
        mask[i] = 1;
        // Metallic shading: bright along the axis, darker at the rims.
        const shade = 200 - 60 * (dist / half) ** 2 + (rand() - 0.5) * 20;
        rgb[i] = Math.round(shade);
        rgb[plane + i] = Math.round(shade);
        rgb[2 * plane + i] = Math.round(shade + 8);
      }
    }
  }
  return { ...frame, rgb, mask };
}

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

/** The 2D volumes `writeImage2d` takes: the frame, and a mask (or a constant class label). */
export function frameVolume(frame: Frame) {
  return { ...geometry, data: frame.rgb, shape: [frame.size, frame.size, 3] };
}

export function labelVolume(size: number, data: Uint8Array | number) {
  return {
    ...geometry,
    data: typeof data === "number" ? new Uint8Array(size * size).fill(data) : data,
    shape: [size, size],
  };
}
