import sharp, { type OutputInfo } from "sharp";
import { InvalidImageError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import type { Volume } from "./types.js";

/**
 * Regions of large 2D images (whole-slide images saved as PNG, JPEG or TIFF, tiled or not) through sharp:
 * libvips decodes only what the region needs (for a tiled TIFF, the tiles it touches; for PNG, the rows down
 * to the region's last), so a region of a slide far larger than memory can be read. Pixels come out as
 * `readImage2d` gives them: no ICC conversion, no EXIF rotation.
 */

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

const open = (path: string) =>
  // WSIs exceed libvips' default pixel limit (~268 Mpx) by design.
  sharp(path, { failOn: "error", ignoreIcc: true, autoOrient: false, limitInputPixels: false });

const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split("\n")[0];

/** Width, height and channels of the image at `path`, from its header. */
export async function regionImageSize(path: string): Promise<{ width: number; height: number; channels: number }> {
  try {
    const meta = await open(path).metadata();
    if (!meta.width || !meta.height) {
      throw new Error(`no pixel size in the header (${meta.format ?? "unknown format"})`);
    }
    return { width: meta.width, height: meta.height, channels: meta.channels ?? 1 };
  } catch (err) {
    throw new InvalidImageError(`cannot read the image header: ${firstLine(err)}`);
  }
}

function checkRect(rect: Rect, size: { width: number; height: number }): void {
  const { left, top, width, height } = rect;
  const ints = [left, top, width, height].every(Number.isInteger);
  if (!ints || left < 0 || top < 0 || width < 1 || height < 1) {
    throw new InvalidImageError(`bad region ${JSON.stringify(rect)}: integers, offset >= 0, size >= 1`);
  }
  if (left + width > size.width || top + height > size.height) {
    throw new InvalidImageError(
      `region ${JSON.stringify(rect)} reaches outside the ${size.width} x ${size.height} image`,
      { ...rect, imageWidth: size.width, imageHeight: size.height },
    );
  }
}

/** Writes one region of the image at `path` as a PNG file (atomically), for a 2D infer task to load. */
export async function writeRegionPng(path: string, rect: Rect, out: string): Promise<void> {
  checkRect(rect, await regionImageSize(path));
  let png: Buffer;
  try {
    // Fast deflate: the file lives only for one tile's inference.
    png = await open(path).extract(rect).png({ compressionLevel: 1 }).toBuffer();
  } catch (err) {
    throw new InvalidImageError(`cannot decode region ${JSON.stringify(rect)}: ${firstLine(err)}`);
  }
  await writeFileAtomic(out, png);
}

/** One region as a uint8 Volume [width, height, C] (planar channels, as `readImage2d`). */
export async function readRegion(path: string, rect: Rect): Promise<Volume> {
  checkRect(rect, await regionImageSize(path));
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await open(path).extract(rect).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new InvalidImageError(`cannot decode region ${JSON.stringify(rect)}: ${firstLine(err)}`);
  }
  const { width, height, channels } = raw.info;
  const plane = width * height;
  const data = new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      data[c * plane + i] = raw.data[i * channels + c]!;
    }
  }
  return {
    data,
    shape: channels === 1 ? [width, height] : [width, height, channels],
    spacing: [1, 1],
    affine: [
      [1, 0, 0, rect.left],
      [0, 1, 0, rect.top],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ],
    dtype: "uint8",
    meta: { region: rect },
  };
}
