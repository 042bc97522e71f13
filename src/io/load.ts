import type { Dirent } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { InvalidImageError, LabelgraphError } from "../errors.js";
import { hasDicomMagic, isDicom, readDicomFile, readDicomSeries } from "./dicom.js";
import { formatFromExtension, KNOWN_EXTENSIONS, splitImageFileName } from "./extensions.js";
import { isTiffMagic } from "./header.js";
import { readImage2d, writeImage2d } from "./image2d.js";
import { detectNifti, isGzip, readNifti, writeNifti } from "./nifti.js";
import { readNrrd, type WriteNrrdOptions, writeNrrd } from "./nrrd.js";
import type { Volume } from "./types.js";

/** What `loadImage` found at a path. */
export type LoadFormat = "nifti" | "nrrd" | "png" | "jpeg" | "tiff" | "dicom" | "dicom-series";

const DICOM_EXTENSIONS = [".dcm", ".dicom", ".ima"];

/** Extensions `saveImage` writes, lower-case with their dot: TIFF is read, not written (save labels as PNG). */
export const SAVE_EXTENSIONS: readonly string[] = KNOWN_EXTENSIONS.filter((e) => formatFromExtension(e) !== "tiff");

function fsError(err: unknown, name: string): unknown {
  const code = (err as { code?: unknown })?.code;
  if (!(err instanceof LabelgraphError) && typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return new InvalidImageError(`${name}: cannot read (${code}: ${(err as Error).message})`, { name, code });
  }
  return err;
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

/** The format of a file from its first bytes (132 are enough), or undefined when nothing matches. */
export function sniffImageFormat(prefix: Uint8Array): Exclude<LoadFormat, "dicom-series"> | undefined {
  const starts = (sig: number[]) => sig.every((x, i) => prefix[i] === x);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return "png";
  }
  if (starts([0xff, 0xd8, 0xff])) {
    return "jpeg";
  }
  if (/^NRRD000\d/.test(Buffer.from(prefix.subarray(0, 8)).toString("latin1"))) {
    return "nrrd";
  }
  // Gzip: the only compressed single-file format we read is .nii.gz.
  if (isGzip(prefix) || detectNifti(prefix)) {
    return "nifti";
  }
  // DICOM before TIFF: a DICOM file's 128-byte preamble may hold a TIFF header (dual-personality files).
  if (hasDicomMagic(prefix)) {
    return "dicom";
  }
  if (isTiffMagic(prefix)) {
    return "tiff";
  }
  return undefined;
}

/**
 * Which reader `loadImage` would use for `path` (see there), without reading the image. Undefined when
 * neither the content nor the name says.
 */
export async function detectLoadFormat(path: string, fileName?: string): Promise<LoadFormat | undefined> {
  const name = fileName ?? basename(path);
  try {
    const info = await stat(path);
    if (info.isDirectory()) {
      return "dicom-series";
    }
    if (info.size === 0) {
      throw new InvalidImageError(`${name}: empty file`, { name });
    }
    const sniffed = sniffImageFormat(await readPrefix(path, 132));
    if (sniffed) {
      return sniffed;
    }
  } catch (err) {
    throw fsError(err, name);
  }
  const { ext } = splitImageFileName(name);
  const byExtension = ext ? formatFromExtension(ext) : undefined;
  if (byExtension) {
    return byExtension;
  }
  return DICOM_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e)) ? "dicom" : undefined;
}

/** The DICOM Part 10 files directly in a directory (not recursive; hidden files are skipped). */
export async function listDicomFiles(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw fsError(err, basename(dir));
  }
  const candidates = entries
    .filter((e) => !e.name.startsWith(".") && (e.isFile() || e.isSymbolicLink()))
    .map((e) => join(dir, e.name))
    .sort();
  const flags = await Promise.all(candidates.map((p) => isDicom(p)));
  return candidates.filter((_, i) => flags[i]);
}

/**
 * Reads an image into a Volume, whatever its format:
 * - a directory: the DICOM files in it (not recursive) as one series (`readDicomSeries`);
 * - a file: by its content first (PNG and JPEG signatures, NRRD magic, gzip or a NIfTI header, "DICM" at
 *   byte 128, a TIFF or BigTIFF byte-order mark), then by the extension of `fileName` (default: the path's
 *   base name; give it when the path is an upload's temporary file): .nii/.nii.gz (readNifti),
 *   .nrrd/.seg.nrrd (readNrrd), .png/.jpg/.jpeg/.tif/.tiff (readImage2d: the first page of a TIFF, 8- or
 *   16-bit, grey or colour), .dcm/.dicom/.ima (readDicomFile).
 *
 * Anything unreadable (missing file, unknown format, corrupt data) throws InvalidImageError.
 */
export async function loadImage(path: string, fileName?: string): Promise<Volume> {
  const name = fileName ?? basename(path);
  const format = await detectLoadFormat(path, fileName);
  try {
    switch (format) {
      case "dicom-series": {
        const files = await listDicomFiles(path);
        if (files.length === 0) {
          throw new InvalidImageError(`${name}: directory holds no DICOM files (no "DICM" at byte 128)`, { name });
        }
        return await readDicomSeries(files);
      }
      case "nifti":
        return await readNifti(path);
      case "nrrd":
        return await readNrrd(path);
      case "png":
      case "jpeg":
      case "tiff":
        return await readImage2d(path);
      case "dicom":
        return await readDicomFile(path);
      case undefined:
        throw new InvalidImageError(
          `${name}: unrecognized image format; expected NIfTI, NRRD, PNG, JPEG, TIFF or DICOM (${[...KNOWN_EXTENSIONS, ...DICOM_EXTENSIONS].join(", ")}, or a directory of DICOM files)`,
          { name },
        );
    }
  } catch (err) {
    throw fsError(err, name);
  }
}

export interface SaveImageOptions {
  /** NRRD only: see `WriteNrrdOptions`. */
  nrrd?: WriteNrrdOptions;
}

/**
 * Writes a volume in the format its path's extension names: .nii / .nii.gz (writeNifti), .nrrd /
 * .seg.nrrd (writeNrrd, gzip, LPS), .png (writeImage2d), .jpg / .jpeg (writeImage2d, JPEG). Every
 * writer is atomic. Other extensions, TIFF and DICOM included (both are read, not written), throw
 * InvalidImageError.
 */
export async function saveImage(volume: Volume, path: string, options: SaveImageOptions = {}): Promise<void> {
  const name = basename(path);
  const { ext } = splitImageFileName(name);
  switch (ext ? formatFromExtension(ext) : undefined) {
    case "nifti":
      return writeNifti(volume, path);
    case "nrrd":
      return writeNrrd(volume, path, options.nrrd);
    case "png":
    case "jpeg":
      return writeImage2d(volume, path);
    case "tiff":
    case undefined: {
      const lower = name.toLowerCase();
      const why = DICOM_EXTENSIONS.some((e) => lower.endsWith(e))
        ? " (writing DICOM is not supported)"
        : /\.tiff?$/.test(lower)
          ? " (writing TIFF is not supported; TIFF is read only)"
          : "";
      throw new InvalidImageError(
        `${name}: cannot save an image with this extension; use one of ${SAVE_EXTENSIONS.join(", ")}${why}`,
        { name },
      );
    }
  }
}
