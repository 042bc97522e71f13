import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { InvalidImageError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import type { Volume } from "./types.js";

/**
 * PNG, JPEG and TIFF (and whatever else libvips decodes: the format is in `meta.format`) via sharp. A TIFF
 * gives its first page (the full-resolution level of a pyramid), tiled or in strips.
 *
 * Layout: a grey image is shape [width, height]; an image with C > 1 channels (grey+alpha 2, RGB 3,
 * RGBA 4) is [width, height, C], channels last as in MONAI's LoadImage (PILReader gives spatial
 * (W, H) with channels last). As for every Volume the first axis is fastest, so `data` is one row-major
 * plane per channel (planar, not interleaved): pixel (x, y) of channel c is at x + W * (y + H * c). That
 * is also the memory order of an NCHW model input.
 *
 * Values are as stored: uint8, or uint16 for 16-bit PNGs and TIFFs; no EXIF rotation, no ICC conversion, no alpha
 * premultiplication. Spacing is [1, 1] and the affine the identity.
 */

/** sharp's default limitInputPixels: bigger images (whole slides) are read by region (`region.ts`). */
export const MAX_WHOLE_PIXELS = 0x3fff * 0x3fff;

/** libvips messages repeat over several lines; the first says it. */
const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split("\n")[0];

/**
 * Reads a 2D image (a path, or the file's bytes) into a Volume (see the module comment). Throws
 * InvalidImageError when sharp cannot decode every pixel.
 */
export async function readImage2d(source: string | Uint8Array): Promise<Volume> {
  const name = typeof source === "string" ? basename(source) : "buffer";
  // Decode from memory: libvips caches decoded files by path, which would hide a file replaced in place.
  const bytes = typeof source === "string" ? await readFile(source) : source;
  if (bytes.length === 0) {
    throw new InvalidImageError(`${name}: empty file`, { name });
  }
  // No pixel limit from sharp: MAX_WHOLE_PIXELS below says why an image is refused.
  const options = { failOn: "error", ignoreIcc: true, autoOrient: false, limitInputPixels: false } as const;
  const input = () => sharp(bytes, options);
  let meta: Metadata;
  try {
    meta = await input().metadata();
  } catch (err) {
    throw new InvalidImageError(`${name}: cannot read the image header: ${firstLine(err)}`, { name });
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1) {
    throw new InvalidImageError(`${name}: not a readable 2D image (decoder saw ${meta.format ?? "nothing"})`, { name });
  }
  if (width * height > MAX_WHOLE_PIXELS) {
    throw new InvalidImageError(
      `${name}: ${width} x ${height} pixels is too large to load whole (limit ${MAX_WHOLE_PIXELS}); read regions of it instead (WSI inference)`,
      { name, width, height },
    );
  }
  const sixteen = meta.depth === "ushort" || meta.depth === "short";
  const cmyk = meta.space === "cmyk";
  // Channels we return: what the file holds (palette images are expanded to RGB(A); CMYK becomes RGB).
  const fileChannels = cmyk ? 3 : (meta.channels ?? 1);
  const grey = fileChannels <= 2 && !cmyk;
  // Grey alone: decode as grey. Grey + alpha: decode as RGBA and keep R and A (libvips' grey output drops
  // alpha). Colour: sRGB.
  const space = fileChannels === 1 ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb";
  let raw: { data: Buffer; info: OutputInfo };
  try {
    // libvips reports a TIFF strip or tile libtiff cannot decode as a warning only (and reads it as zeros).
    raw = await (meta.format === "tiff" ? sharp(bytes, { ...options, failOn: "warning" }) : input())
      .toColourspace(space)
      .raw(sixteen ? { depth: "ushort" } : undefined)
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new InvalidImageError(`${name}: corrupt or truncated image data: ${firstLine(err)}`, { name });
  }
  const got = raw.info.channels;
  const pick = fileChannels === 2 ? [0, got - 1] : Array.from({ length: fileChannels }, (_, c) => c);
  if (got < fileChannels || (fileChannels === 2 && got !== 4)) {
    throw new InvalidImageError(`${name}: decoder returned ${got} channels for a ${fileChannels}-channel image`, {
      name,
    });
  }
  const plane = width * height;
  const samples = sixteen
    ? new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2)
    : new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
  const data = sixteen ? new Uint16Array(plane * pick.length) : new Uint8Array(plane * pick.length);
  if (got === 1) {
    data.set(samples.subarray(0, plane));
  } else {
    pick.forEach((channel, c) => {
      const dst = c * plane;
      for (let i = 0; i < plane; i++) {
        data[dst + i] = samples[i * got + channel]!;
      }
    });
  }
  return {
    data,
    shape: pick.length === 1 ? [width, height] : [width, height, pick.length],
    spacing: [1, 1],
    affine: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ],
    dtype: sixteen ? "uint16" : "uint8",
    meta: {
      format: meta.format,
      width,
      height,
      channels: pick.length,
      hasAlpha: pick.length === 2 || pick.length === 4,
      grey,
      bitDepth: sixteen ? 16 : 8,
      colourSpace: meta.space,
      ...(meta.isPalette ? { palette: true } : {}),
      ...(meta.orientation !== undefined ? { exifOrientation: meta.orientation } : {}),
    },
  };
}

export interface WriteImage2dOptions {
  /** "png" (lossless, the default unless the path ends with .jpg / .jpeg) or "jpeg" (8-bit only). */
  format?: "png" | "jpeg";
  /** JPEG quality, 1 to 100 (default 95). */
  quality?: number;
}

/**
 * Encodes a 2D volume as PNG (lossless) or JPEG. Accepted layouts: [W, H] or [W, H, 1] grey, [W, H, C]
 * with C = 2 (grey + alpha), 3 (RGB) or 4 (RGBA) in planar order (as `readImage2d` returns), the same
 * with a singleton slice axis ([W, H, 1, C]), or dtype rgb24 / rgba32 [W, H] (interleaved, as
 * `readNifti` returns). uint8 data gives an 8-bit image and uint16 a 16-bit PNG; other types are accepted
 * when every value is an integer in 0..255 (8-bit) or 0..65535 (16-bit), else InvalidImageError.
 */
export async function encodeImage2d(volume: Volume, options: WriteImage2dOptions = {}): Promise<Uint8Array> {
  const format = options.format ?? "png";
  let shape = [...volume.shape];
  let interleaved = false;
  let channels: number;
  if (volume.dtype === "rgb24" || volume.dtype === "rgba32") {
    while (shape.length > 2 && shape[shape.length - 1] === 1) {
      shape.pop();
    }
    channels = volume.dtype === "rgb24" ? 3 : 4;
    interleaved = true;
  } else {
    if (shape.length === 4 && shape[2] === 1) {
      shape = [shape[0]!, shape[1]!, shape[3]!];
    }
    channels = shape.length === 3 ? shape[2]! : 1;
    shape = shape.slice(0, 2);
  }
  const [width, height] = shape as [number, number];
  if (
    shape.length !== 2 ||
    volume.shape.some((d) => !Number.isInteger(d) || d < 1) ||
    channels < 1 ||
    channels > 4 ||
    (volume.shape.length > 3 && !(volume.shape.length === 4 && volume.shape[2] === 1))
  ) {
    throw new InvalidImageError(
      `cannot write shape [${volume.shape.join(", ")}] as a 2D image: expected [W, H] or [W, H, C] with C <= 4`,
      { shape: volume.shape },
    );
  }
  const plane = width * height;
  const count = plane * channels;
  if (volume.data.length !== count) {
    throw new InvalidImageError(
      `volume data has ${volume.data.length} values, but shape [${volume.shape.join(", ")}] needs ${count}`,
      { shape: volume.shape, length: volume.data.length },
    );
  }

  let sixteen: boolean;
  if (volume.dtype === "uint8" || interleaved) {
    sixteen = false;
  } else if (volume.dtype === "uint16") {
    sixteen = true;
  } else {
    let max = 0;
    for (let i = 0; i < count; i++) {
      const v = volume.data[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 65535) {
        throw new InvalidImageError(
          `cannot write ${volume.dtype} value ${v} to a PNG/JPEG: values must be integers in 0..65535 (convert the volume to uint8 or uint16 first)`,
          { dtype: volume.dtype },
        );
      }
      if (v > max) {
        max = v;
      }
    }
    sixteen = max > 255;
  }
  if (sixteen && format === "jpeg") {
    throw new InvalidImageError("JPEG holds 8-bit samples only; write 16-bit data as PNG", { dtype: volume.dtype });
  }
  if (format === "jpeg" && (channels === 2 || channels === 4)) {
    throw new InvalidImageError("JPEG has no alpha channel; write grey+alpha or RGBA as PNG", { channels });
  }

  // Interleave for libvips.
  const pixels = sixteen ? new Uint16Array(count) : new Uint8Array(count);
  if (interleaved || channels === 1) {
    for (let i = 0; i < count; i++) {
      pixels[i] = volume.data[i]!;
    }
  } else {
    for (let c = 0; c < channels; c++) {
      const src = c * plane;
      for (let i = 0; i < plane; i++) {
        pixels[i * channels + c] = volume.data[src + i]!;
      }
    }
  }
  const space = channels <= 2 ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb";
  let image = sharp(pixels, { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } }).toColourspace(space);
  image =
    format === "jpeg"
      ? image.jpeg({ quality: options.quality ?? 95, chromaSubsampling: "4:4:4" })
      : image.png({ compressionLevel: 6, adaptiveFiltering: true });
  return image.toBuffer();
}

/**
 * Writes a 2D volume as PNG (or JPEG when the path ends with .jpg / .jpeg; see `encodeImage2d`),
 * atomically (temporary file, then rename).
 */
export async function writeImage2d(volume: Volume, path: string, options: WriteImage2dOptions = {}): Promise<void> {
  const ext = extname(path).toLowerCase();
  const format = options.format ?? (ext === ".jpg" || ext === ".jpeg" ? "jpeg" : "png");
  await writeFileAtomic(path, await encodeImage2d(volume, { ...options, format }));
}
