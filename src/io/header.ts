import { createReadStream } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import sharp, { type Metadata } from "sharp";
import { InvalidImageError } from "../errors.js";
import { formatFromExtension, KNOWN_EXTENSIONS, splitImageFileName } from "./extensions.js";
import { detectNifti, isGzip, NIFTI2_HEADER_SIZE, type NiftiHeader, parseNiftiHeader } from "./nifti.js";
import { type NrrdHeader, parseNrrdHeader } from "./nrrd.js";
import type { ImageFormat, ImageHeader } from "./types.js";

/**
 * Reads and VALIDATES an uploaded image or label file: the format comes from the file name's extension,
 * the content must match it (magic bytes), and the whole file is checked, so a truncated upload is
 * refused here rather than failing later in a viewer or a model. Files are streamed: memory stays
 * constant however big a volume is (PNG and JPEG are decoded by sharp, from memory; a TIFF's structure is read
 * directly and its pixels are decoded, streaming, only up to TIFF_FULL_DECODE_MAX_PIXELS: see tiffImageHeader).
 *
 * Throws InvalidImageError (code INVALID_IMAGE) with a message naming the file and the problem.
 */
export async function readImageHeader(path: string, fileName: string): Promise<ImageHeader> {
  const { ext } = splitImageFileName(fileName);
  const format = ext ? formatFromExtension(ext) : undefined;
  if (!ext || !format) {
    throw new InvalidImageError(`${fileName}: unsupported file type; expected one of ${KNOWN_EXTENSIONS.join(", ")}`, {
      fileName,
    });
  }
  const size = (await stat(path)).size;
  if (size === 0) {
    throw new InvalidImageError(`${fileName}: empty file`, { fileName, format });
  }
  const prefix = await readPrefix(path, 16);
  const sniffed = sniff(prefix);
  const ctx: Ctx = { path, fileName, ext, format, size };
  switch (format) {
    case "nifti":
      return niftiImageHeader(ctx, sniffed);
    case "nrrd":
      if (sniffed !== "nrrd") {
        throw mismatch(ctx, sniffed, "no NRRD000x magic line");
      }
      return nrrdImageHeader(ctx);
    case "png":
    case "jpeg":
      if (sniffed !== format) {
        throw mismatch(ctx, sniffed, format === "png" ? "no PNG signature" : "no JPEG SOI marker");
      }
      return rasterImageHeader(ctx);
    case "tiff":
      if (sniffed !== "tiff") {
        throw mismatch(ctx, sniffed, 'no TIFF byte-order mark ("II*\\0", "MM\\0*", or BigTIFF "II+\\0", "MM\\0+")');
      }
      return tiffImageHeader(ctx);
  }
}

interface Ctx {
  path: string;
  fileName: string;
  ext: string;
  format: ImageFormat;
  size: number;
}

function invalid(ctx: Ctx, message: string, details: Record<string, unknown> = {}): InvalidImageError {
  return new InvalidImageError(`${ctx.fileName}: ${message}`, {
    fileName: ctx.fileName,
    format: ctx.format,
    ...details,
  });
}

type Sniffed = "png" | "jpeg" | "tiff" | "gzip" | "nrrd" | "nifti" | "unknown";

function sniff(b: Uint8Array): Sniffed {
  const starts = (sig: number[]) => sig.every((x, i) => b[i] === x);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return "png";
  }
  if (starts([0xff, 0xd8, 0xff])) {
    return "jpeg";
  }
  if (isTiffMagic(b)) {
    return "tiff";
  }
  if (isGzip(b)) {
    return "gzip";
  }
  if (/^NRRD000\d/.test(Buffer.from(b.subarray(0, 8)).toString("latin1"))) {
    return "nrrd";
  }
  if (detectNifti(b)) {
    return "nifti";
  }
  return "unknown";
}

const SNIFFED_NAMES: Record<Sniffed, string> = {
  png: "a PNG image",
  jpeg: "a JPEG image",
  tiff: "a TIFF image",
  gzip: "gzip-compressed data",
  nrrd: "an NRRD file",
  nifti: "an uncompressed NIfTI file",
  unknown: "not recognized",
};

function mismatch(ctx: Ctx, sniffed: Sniffed, what: string): InvalidImageError {
  const content = sniffed === "unknown" ? what : `the content is ${SNIFFED_NAMES[sniffed]}`;
  return invalid(ctx, `not a valid ${ctx.ext} file (${content})`, { detected: sniffed });
}

async function readPrefix(path: string, length: number): Promise<Uint8Array> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function zlibToInvalid(ctx: Ctx, err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("Z_")) {
    const message = (err as Error).message;
    const hint = code === "Z_BUF_ERROR" ? "the gzip stream is truncated" : "the gzip stream is corrupt";
    return invalid(ctx, `${hint} (${message})`, { zlibCode: code });
  }
  return err;
}

/** Streams `path` from byte `start` (through gunzip when `gz`) and returns how many bytes came out. */
async function countStream(
  ctx: Ctx,
  start: number,
  gz: boolean,
  onChunk?: (chunk: Buffer, offset: number) => void,
): Promise<number> {
  let total = 0;
  // An error thrown by onChunk tears the pipeline down, which may then reject with an AbortError instead:
  // keep ours to rethrow it.
  let chunkError: unknown;
  const sink = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      try {
        onChunk?.(chunk, total);
      } catch (err) {
        chunkError = err;
        throw err;
      }
      total += chunk.length;
    }
  };
  const input = createReadStream(ctx.path, { start });
  try {
    if (gz) {
      await pipeline(input, createGunzip(), sink);
    } else {
      await pipeline(input, sink);
    }
  } catch (err) {
    throw chunkError ?? zlibToInvalid(ctx, err);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------
// NIfTI

async function niftiImageHeader(ctx: Ctx, sniffed: Sniffed): Promise<ImageHeader> {
  const gz = ctx.ext === ".nii.gz";
  if (gz && sniffed !== "gzip") {
    throw invalid(
      ctx,
      sniffed === "nifti"
        ? "named .nii.gz but not gzip-compressed; name it .nii"
        : `not a valid .nii.gz file (${sniffed === "unknown" ? "no gzip signature" : `the content is ${SNIFFED_NAMES[sniffed]}`})`,
      { detected: sniffed },
    );
  }
  if (!gz && sniffed === "gzip") {
    throw invalid(ctx, "named .nii but gzip-compressed; name it .nii.gz", { detected: sniffed });
  }
  if (!gz && sniffed !== "nifti") {
    throw mismatch(ctx, sniffed, "sizeof_hdr is neither 348 nor 540");
  }

  if (!gz) {
    const head = await readPrefix(ctx.path, NIFTI2_HEADER_SIZE);
    const header = parseNiftiHeader(head, ctx.fileName);
    const needed = header.voxOffset + header.dataBytes;
    if (ctx.size < needed) {
      throw truncatedNifti(ctx, ctx.size, needed, header);
    }
    return niftiToImageHeader(ctx, header);
  }

  // .nii.gz: decompress the whole stream (to check it is complete and its CRC), keeping only the header.
  const head = Buffer.alloc(NIFTI2_HEADER_SIZE);
  let headLength = 0;
  let header: NiftiHeader | undefined;
  const total = await countStream(ctx, 0, true, (chunk) => {
    if (header || headLength >= NIFTI2_HEADER_SIZE) {
      return;
    }
    headLength += chunk.copy(head, headLength);
    if (headLength >= 4 && !detectNifti(head.subarray(0, headLength))) {
      throw invalid(ctx, "the decompressed content is not a NIfTI file (sizeof_hdr is neither 348 nor 540)");
    }
    const kind = detectNifti(head.subarray(0, headLength));
    if (kind && headLength >= kind.headerSize) {
      header = parseNiftiHeader(head.subarray(0, headLength), ctx.fileName);
    }
  });
  if (!header) {
    // Fewer bytes than a header: parse what there is for the precise message.
    header = parseNiftiHeader(head.subarray(0, headLength), ctx.fileName);
  }
  const needed = header.voxOffset + header.dataBytes;
  if (total < needed) {
    throw truncatedNifti(ctx, total, needed, header);
  }
  return niftiToImageHeader(ctx, header);
}

function truncatedNifti(ctx: Ctx, size: number, needed: number, header: NiftiHeader): InvalidImageError {
  return invalid(
    ctx,
    `truncated NIfTI data: ${size} bytes${ctx.ext === ".nii.gz" ? " after decompression" : ""}, but vox_offset ${header.voxOffset} + ${header.nvox} voxels x ${header.bytesPerVoxel} bytes needs ${needed}`,
    { size, expected: needed },
  );
}

function niftiToImageHeader(ctx: Ctx, header: NiftiHeader): ImageHeader {
  return {
    format: "nifti",
    extension: ctx.ext,
    dimensions: [...header.dims],
    spatialShape: header.dims.slice(0, 3),
    channels: 1,
    spacing: [...header.spacing],
    dtype: header.dtype,
  };
}

// ---------------------------------------------------------------------------------------------------
// NRRD

/** The header must end (blank line) within this many bytes. */
const NRRD_MAX_HEADER = 1 << 20;

async function nrrdImageHeader(ctx: Ctx): Promise<ImageHeader> {
  // Read until the blank line that ends the header (or the end of the file).
  const handle = await open(ctx.path, "r");
  let text = "";
  let headerEnd = -1;
  try {
    const buf = Buffer.alloc(64 * 1024);
    let position = 0;
    while (position < NRRD_MAX_HEADER) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) {
        break;
      }
      text += buf.subarray(0, bytesRead).toString("latin1");
      position += bytesRead;
      headerEnd = findBlankLine(text);
      if (headerEnd >= 0) {
        break;
      }
    }
  } finally {
    await handle.close();
  }
  if (headerEnd < 0 && ctx.size > NRRD_MAX_HEADER) {
    throw invalid(ctx, `NRRD header does not end (no blank line) within ${NRRD_MAX_HEADER} bytes`);
  }
  const headerText = headerEnd >= 0 ? text.slice(0, headerEnd) : text;
  let header: NrrdHeader;
  try {
    header = parseNrrdHeader(headerText);
  } catch (err) {
    if (err instanceof Error && !(err instanceof InvalidImageError)) {
      throw err;
    }
    throw invalid(ctx, `bad NRRD header: ${(err as Error).message}`);
  }
  if (header.dataFile !== undefined) {
    throw invalid(
      ctx,
      `detached NRRD data ("data file: ${header.dataFile}") is not supported; save the volume as a single .nrrd with attached data`,
    );
  }
  if (headerEnd < 0) {
    throw invalid(ctx, "NRRD header is not followed by a blank line and data (file truncated?)");
  }

  // Latin-1 maps each byte to one char, so string offsets are byte offsets.
  let dataStart = headerEnd;
  if (header.lineSkip > 0) {
    dataStart = await skipLines(ctx, dataStart, header.lineSkip);
  }

  const expected = header.nvox * header.bytesPerElement;
  const enc = header.encoding;
  if (enc === "raw") {
    const available = ctx.size - dataStart - Math.max(0, header.byteSkip);
    if (available < expected) {
      throw truncatedNrrd(ctx, available, expected, "raw");
    }
  } else if (enc === "gzip") {
    const count = await countStream(ctx, dataStart, true);
    const available = count - Math.max(0, header.byteSkip);
    if (available < expected) {
      throw truncatedNrrd(ctx, available, expected, "gzip (after decompression)");
    }
  } else if (enc === "ascii") {
    const tokens = await countAsciiValues(ctx, dataStart);
    if (tokens < header.nvox) {
      throw invalid(ctx, `truncated NRRD data: ${tokens} ascii values, but sizes need ${header.nvox}`, {
        values: tokens,
        expected: header.nvox,
      });
    }
  } else if (enc === "hex") {
    const digits = await countHexDigits(ctx, dataStart);
    if (digits < 2 * expected) {
      throw truncatedNrrd(ctx, Math.floor(digits / 2), expected, "hex");
    }
  } else {
    throw invalid(ctx, `NRRD encoding "${enc}" is not supported; use raw or gzip`);
  }

  return {
    format: "nrrd",
    extension: ctx.ext,
    dimensions: [...header.sizes],
    spatialShape: header.spatialAxes.map((axis) => header.sizes[axis]!),
    channels: 1,
    spacing: [...header.spacing],
    dtype: header.dtype,
  };
}

/** Offset just past the first empty line (the end of an NRRD header), or -1. */
function findBlankLine(text: string): number {
  const match = /\r?\n\r?\n/.exec(text);
  return match ? match.index + match[0].length : -1;
}

function truncatedNrrd(ctx: Ctx, available: number, expected: number, encoding: string): InvalidImageError {
  return invalid(
    ctx,
    `truncated NRRD data (${encoding}): ${Math.max(0, available)} bytes, but sizes x type need ${expected}`,
    {
      size: available,
      expected,
    },
  );
}

async function skipLines(ctx: Ctx, start: number, lines: number): Promise<number> {
  let remaining = lines;
  let offset = start;
  const stream = createReadStream(ctx.path, { start });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] === 0x0a && --remaining === 0) {
          return offset + i + 1;
        }
      }
      offset += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  throw invalid(ctx, `NRRD "line skip: ${lines}" runs past the end of the file`);
}

async function countAsciiValues(ctx: Ctx, start: number): Promise<number> {
  let count = 0;
  let inToken = false;
  await countStream(ctx, start, false, (chunk) => {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      const sep = c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x2c;
      if (!sep && !inToken) {
        count++;
      }
      inToken = !sep;
    }
  });
  return count;
}

async function countHexDigits(ctx: Ctx, start: number): Promise<number> {
  let count = 0;
  await countStream(ctx, start, false, (chunk) => {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)) {
        count++;
      }
    }
  });
  return count;
}

// ---------------------------------------------------------------------------------------------------
// PNG / JPEG

const SHARP_DEPTH: Record<string, string> = {
  uchar: "uint8",
  char: "int8",
  ushort: "uint16",
  short: "int16",
  uint: "uint32",
  int: "int32",
  float: "float32",
  double: "float64",
};

/** libvips messages repeat over several lines; the first says it. */
const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split("\n")[0];

async function rasterImageHeader(ctx: Ctx): Promise<ImageHeader> {
  // Decode from memory: libvips caches decoded files by path, which would hide a file replaced in place.
  const bytes = await readFile(ctx.path);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { failOn: "error" }).metadata();
  } catch (err) {
    throw invalid(ctx, `cannot read the ${ctx.format.toUpperCase()} header: ${firstLine(err)}`);
  }
  if (meta.format !== ctx.format || !meta.width || !meta.height) {
    throw invalid(ctx, `not a valid ${ctx.format.toUpperCase()} image (decoder saw ${meta.format ?? "nothing"})`);
  }
  try {
    // Decode every pixel: a truncated or corrupt image fails here.
    await sharp(bytes, { failOn: "error" }).stats();
  } catch (err) {
    throw invalid(ctx, `corrupt or truncated ${ctx.format.toUpperCase()} data: ${firstLine(err)}`);
  }
  return {
    format: ctx.format,
    extension: ctx.ext,
    dimensions: [meta.width, meta.height],
    spatialShape: [meta.width, meta.height],
    channels: meta.channels ?? 1,
    spacing: [1, 1],
    dtype: SHARP_DEPTH[meta.depth ?? "uchar"] ?? String(meta.depth),
  };
}

// ---------------------------------------------------------------------------------------------------
// TIFF

/** "II*\0" / "MM\0*" (classic TIFF) or "II+\0" / "MM\0+" (BigTIFF): byte order, then 42 or 43. */
export function isTiffMagic(b: Uint8Array): boolean {
  if (b.length < 4) {
    return false;
  }
  if (b[0] === 0x49 && b[1] === 0x49) {
    return (b[2] === 0x2a || b[2] === 0x2b) && b[3] === 0;
  }
  if (b[0] === 0x4d && b[1] === 0x4d) {
    return b[2] === 0 && (b[3] === 0x2a || b[3] === 0x2b);
  }
  return false;
}

/**
 * TIFFs with at most this many pixels (first page) are decoded in full at upload, so a corrupt strip or
 * tile is refused there. Bigger ones (whole-slide images) are checked without decoding: the structure of
 * the first image directory (every strip or tile it lists must lie inside the file) and the header as
 * sharp reads it. Memory stays bounded either way: the file is never read whole.
 */
export const TIFF_FULL_DECODE_MAX_PIXELS = 4096 * 4096;

/** The entries of one image directory (IFD) we need, by tag. */
const TIFF_TAGS = {
  width: 256,
  height: 257,
  bitsPerSample: 258,
  stripOffsets: 273,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  planarConfig: 284,
  tileWidth: 322,
  tileLength: 323,
  tileOffsets: 324,
  tileByteCounts: 325,
} as const;

/** Bytes per value of each TIFF field type (BYTE .. IFD8); 0 for unknown types. */
const TIFF_TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8];

interface TiffEntry {
  tag: number;
  type: number;
  count: number;
  /** The value field as stored (4 bytes classic, 8 BigTIFF): the values when they fit, else their offset. */
  field: Buffer;
}

interface TiffReader {
  handle: Awaited<ReturnType<typeof open>>;
  little: boolean;
  big: boolean;
}

/** Values read from an IFD array at a time: memory stays bounded for slides with a million tiles. */
const TIFF_VALUE_CHUNK = 8192;

async function readExactly(ctx: Ctx, r: TiffReader, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = position < ctx.size ? await r.handle.read(buf, 0, length, position) : { bytesRead: 0 };
  if (bytesRead < length) {
    throw invalid(
      ctx,
      `truncated TIFF: ${what} at byte ${position} (${length} bytes) runs past the end of the ${ctx.size}-byte file`,
      { size: ctx.size, expected: position + length },
    );
  }
  return buf;
}

function tiffUint(r: TiffReader, buf: Buffer, offset: number, bytes: number): number {
  switch (bytes) {
    case 1:
      return buf[offset]!;
    case 2:
      return r.little ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
    case 4:
      return r.little ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
    default:
      return Number(r.little ? buf.readBigUInt64LE(offset) : buf.readBigUInt64BE(offset));
  }
}

/** Values `start` .. `start + n` of an integer entry (BYTE, SHORT, LONG, LONG8), inline or at their offset. */
async function tiffValues(ctx: Ctx, r: TiffReader, entry: TiffEntry, start: number, n: number): Promise<number[]> {
  const size = TIFF_TYPE_SIZE[entry.type] ?? 0;
  if (![1, 3, 4, 16].includes(entry.type)) {
    throw invalid(ctx, `TIFF tag ${entry.tag} has field type ${entry.type}; an unsigned integer type is required`);
  }
  let buf: Buffer;
  let at = 0;
  if (entry.count * size <= entry.field.length) {
    buf = entry.field;
    at = start * size;
  } else {
    const base = tiffUint(r, entry.field, 0, entry.field.length);
    buf = await readExactly(ctx, r, base + start * size, n * size, `the values of TIFF tag ${entry.tag}`);
  }
  return Array.from({ length: n }, (_, i) => tiffUint(r, buf, at + i * size, size));
}

async function tiffScalar(ctx: Ctx, r: TiffReader, entry: TiffEntry | undefined): Promise<number | undefined> {
  return entry && entry.count > 0 ? (await tiffValues(ctx, r, entry, 0, 1))[0] : undefined;
}

interface TiffLayout {
  width: number;
  height: number;
  tiled: boolean;
  /** Strips or tiles of the first image. */
  blocks: number;
}

/**
 * Reads the first image directory (the image sharp decodes: page 0, the full-resolution level of a pyramid)
 * and checks that every strip or tile it lists lies inside the file, reading at most TIFF_VALUE_CHUNK
 * offsets at a time. Throws INVALID_IMAGE for a directory or data past the end of the file (a truncated
 * upload) and for directories that cannot describe an image.
 */
async function readTiffLayout(ctx: Ctx): Promise<TiffLayout> {
  const handle = await open(ctx.path, "r");
  try {
    const head = Buffer.alloc(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    const little = head[0] === 0x49;
    const big = head[little ? 2 : 3] === 0x2b;
    const r: TiffReader = { handle, little, big };
    if (bytesRead < (big ? 16 : 8)) {
      throw invalid(ctx, `truncated TIFF: ${bytesRead} bytes, shorter than the TIFF header`, { size: ctx.size });
    }
    if (big && (tiffUint(r, head, 4, 2) !== 8 || tiffUint(r, head, 6, 2) !== 0)) {
      throw invalid(ctx, "bad BigTIFF header: the offset size must be 8");
    }
    const ifd = big ? tiffUint(r, head, 8, 8) : tiffUint(r, head, 4, 4);
    if (ifd < (big ? 16 : 8)) {
      throw invalid(ctx, `bad TIFF header: the first image directory offset is ${ifd}`);
    }
    const countBytes = big ? 8 : 2;
    const entryBytes = big ? 20 : 12;
    const fieldBytes = big ? 8 : 4;
    const n = tiffUint(r, await readExactly(ctx, r, ifd, countBytes, "the first image directory"), 0, countBytes);
    if (n === 0 || n > 4096) {
      throw invalid(ctx, `bad TIFF image directory: ${n} entries`);
    }
    const raw = await readExactly(ctx, r, ifd + countBytes, n * entryBytes, "the first image directory");
    const entries = new Map<number, TiffEntry>();
    for (let i = 0; i < n; i++) {
      const at = i * entryBytes;
      const entry: TiffEntry = {
        tag: tiffUint(r, raw, at, 2),
        type: tiffUint(r, raw, at + 2, 2),
        count: tiffUint(r, raw, at + 4, big ? 8 : 4),
        field: raw.subarray(at + entryBytes - fieldBytes, at + entryBytes),
      };
      entries.set(entry.tag, entry);
    }
    const T = TIFF_TAGS;
    const width = await tiffScalar(ctx, r, entries.get(T.width));
    const height = await tiffScalar(ctx, r, entries.get(T.height));
    if (!width || !height) {
      throw invalid(ctx, "bad TIFF image directory: no ImageWidth / ImageLength");
    }
    const samples = (await tiffScalar(ctx, r, entries.get(T.samplesPerPixel))) ?? 1;
    const planes = (await tiffScalar(ctx, r, entries.get(T.planarConfig))) === 2 ? samples : 1;
    const tiled = entries.has(T.tileWidth) || entries.has(T.tileOffsets);
    let blocks: number;
    let offsets: TiffEntry | undefined;
    let counts: TiffEntry | undefined;
    if (tiled) {
      const tw = await tiffScalar(ctx, r, entries.get(T.tileWidth));
      const th = await tiffScalar(ctx, r, entries.get(T.tileLength));
      if (!tw || !th) {
        throw invalid(ctx, "bad TIFF image directory: tiled, but no TileWidth / TileLength");
      }
      blocks = Math.ceil(width / tw) * Math.ceil(height / th) * planes;
      offsets = entries.get(T.tileOffsets);
      counts = entries.get(T.tileByteCounts);
    } else {
      const rows = Math.min((await tiffScalar(ctx, r, entries.get(T.rowsPerStrip))) ?? height, height) || height;
      blocks = Math.ceil(height / rows) * planes;
      offsets = entries.get(T.stripOffsets);
      counts = entries.get(T.stripByteCounts);
    }
    const kind = tiled ? "tile" : "strip";
    if (!offsets || !counts) {
      throw invalid(
        ctx,
        `bad TIFF image directory: no ${tiled ? "TileOffsets / TileByteCounts" : "StripOffsets / StripByteCounts"}`,
      );
    }
    if (offsets.count < blocks || counts.count !== offsets.count) {
      throw invalid(
        ctx,
        `bad TIFF image directory: ${offsets.count} ${kind} offsets and ${counts.count} byte counts, but a ${width} x ${height} image needs ${blocks} ${kind}s`,
      );
    }
    let end = 0;
    let last = -1;
    for (let start = 0; start < blocks; start += TIFF_VALUE_CHUNK) {
      const m = Math.min(TIFF_VALUE_CHUNK, blocks - start);
      const [offs, lens] = await Promise.all([
        tiffValues(ctx, r, offsets, start, m),
        tiffValues(ctx, r, counts, start, m),
      ]);
      for (let i = 0; i < m; i++) {
        // A zero byte count is an empty (sparse) block: libtiff reads it as zeros.
        const blockEnd = lens[i]! > 0 ? offs[i]! + lens[i]! : 0;
        if (blockEnd > end) {
          end = blockEnd;
          last = start + i;
        }
      }
    }
    if (end > ctx.size) {
      throw invalid(
        ctx,
        `truncated TIFF data: the file has ${ctx.size} bytes, but ${kind} ${last} of ${blocks} ends at byte ${end}`,
        { size: ctx.size, expected: end },
      );
    }
    return { width, height, tiled, blocks };
  } finally {
    await handle.close();
  }
}

/**
 * TIFF (.tif, .tiff; classic or BigTIFF, strips or tiles, any compression libtiff reads): the first image
 * directory is checked by readTiffLayout, then sharp reads the header from the file (not decoding pixels)
 * and, up to TIFF_FULL_DECODE_MAX_PIXELS, decodes every pixel, streaming. The header is that of page 0.
 */
async function tiffImageHeader(ctx: Ctx): Promise<ImageHeader> {
  const layout = await readTiffLayout(ctx);
  // From the path, so memory is bounded. libvips caches opened files by name: "[revalidate=true]" reopens a
  // file replaced in place (a studies-folder file rewritten under the same name).
  const input = (failOn: "error" | "warning") =>
    sharp(`${ctx.path}[revalidate=true]`, { failOn, limitInputPixels: false, sequentialRead: true });
  let meta: Metadata;
  try {
    meta = await input("error").metadata();
  } catch (err) {
    throw invalid(ctx, `cannot read the TIFF header: ${firstLine(err)}`);
  }
  if (meta.format !== "tiff" || !meta.width || !meta.height) {
    throw invalid(ctx, `not a valid TIFF image (decoder saw ${meta.format ?? "nothing"})`);
  }
  if (meta.width !== layout.width || meta.height !== layout.height) {
    throw invalid(
      ctx,
      `TIFF decoder saw ${meta.width} x ${meta.height}, but the first image directory says ${layout.width} x ${layout.height}`,
    );
  }
  if (meta.width * meta.height <= TIFF_FULL_DECODE_MAX_PIXELS) {
    try {
      // libvips reports a strip or tile libtiff cannot decode as a warning (and reads it as zeros).
      await input("warning").stats();
    } catch (err) {
      throw invalid(ctx, `corrupt or truncated TIFF data: ${firstLine(err)}`);
    }
  }
  return {
    format: "tiff",
    extension: ctx.ext,
    dimensions: [meta.width, meta.height],
    spatialShape: [meta.width, meta.height],
    channels: meta.channels ?? 1,
    spacing: [1, 1],
    dtype: SHARP_DEPTH[meta.depth ?? "uchar"] ?? String(meta.depth),
  };
}
