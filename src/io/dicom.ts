import { open, readFile } from "node:fs/promises";
import { basename } from "node:path";
import { inflateRawSync } from "node:zlib";
import dicomParser, { type DataSet, type Element, type ParseDicomOptions } from "dicom-parser";
import { InvalidImageError } from "../errors.js";
import type { Volume } from "./types.js";
import { HOST_LITTLE_ENDIAN, swapBytes, type VoxelArray } from "./voxels.js";

/**
 * DICOM Part 10 files and series to volumes, with the `dicom-parser` package doing the parsing.
 *
 * - Uncompressed transfer syntaxes only: implicit VR little endian, explicit VR little endian, explicit
 *   VR big endian, deflated explicit VR little endian. Compressed ones (JPEG, JPEG-LS, JPEG 2000, HTJ2K,
 *   RLE, MPEG ...) are refused with an InvalidImageError naming the transfer syntax.
 * - Layout: `data` is stored x (column) fastest, then y (row), then z (slice), as every Volume is. A
 *   single-frame file read alone is 2D: shape [columns, rows]. A series, or a multi-frame file, is 3D:
 *   [columns, rows, slices]. Colour images (SamplesPerPixel 3, RGB) get a trailing channel axis with
 *   planar data ([columns, rows, 3] or [columns, rows, slices, 3]), like `readImage2d`.
 * - Values: RescaleSlope / RescaleIntercept are applied (per slice). When every slope and intercept is an
 *   integer and the rescaled range fits, the result stays integer (the stored type, else int16, uint16 or
 *   int32: a CT with intercept -1024 becomes int16 Hounsfield units); otherwise it is float32. Bits
 *   outside BitsStored are masked off and signed values sign-extended. MONOCHROME1 is not inverted, and
 *   PALETTE COLOR values are palette indices (the LUT is not applied).
 * - Geometry: slices are sorted by ImagePositionPatient projected on the slice normal (the cross product
 *   of the ImageOrientationPatient row and column directions), or by InstanceNumber when a slice has no
 *   position. The affine maps (column, row, slice) to patient coordinates, built in DICOM's LPS from the
 *   orientation, PixelSpacing (row spacing, column spacing: x spacing is PixelSpacing[1]), the first
 *   slice's position and the slice spacing (from the positions; for one slice SpacingBetweenSlices, else
 *   SliceThickness, else 1), then turned into RAS by negating the first two rows.
 */

const TS_IMPLICIT_LE = "1.2.840.10008.1.2";
const TS_EXPLICIT_LE = "1.2.840.10008.1.2.1";
const TS_DEFLATED_LE = "1.2.840.10008.1.2.1.99";
const TS_EXPLICIT_BE = "1.2.840.10008.1.2.2";

const UNCOMPRESSED_SYNTAXES: Record<string, string> = {
  [TS_IMPLICIT_LE]: "Implicit VR Little Endian",
  [TS_EXPLICIT_LE]: "Explicit VR Little Endian",
  [TS_DEFLATED_LE]: "Deflated Explicit VR Little Endian",
  [TS_EXPLICIT_BE]: "Explicit VR Big Endian",
};

/** Compressed transfer syntaxes we know by name (none of which we decode). */
export const COMPRESSED_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1)",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Lossy (Near-Lossless)",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.91": "JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component Image Compression",
  "1.2.840.10008.1.2.4.94": "JPIP Referenced",
  "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
  "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile / Main Level",
  "1.2.840.10008.1.2.4.101": "MPEG2 Main Profile / High Level",
  "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
  "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
  "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
  "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
  "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
  "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile / Level 5.1",
  "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile / Level 5.1",
  "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
  "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
  "1.2.840.10008.1.2.4.112": "JPEG XL",
  "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.202": "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.5": "RLE Lossless",
};

/** A human name for a transfer syntax UID ("RLE Lossless"), or undefined for one we do not know. */
export function transferSyntaxName(uid: string): string | undefined {
  return UNCOMPRESSED_SYNTAXES[uid] ?? COMPRESSED_TRANSFER_SYNTAXES[uid];
}

// ---------------------------------------------------------------------------------------------------
// Magic

const DICM = [0x44, 0x49, 0x43, 0x4d];

/** Whether bytes hold a DICOM Part 10 file: a 128-byte preamble, then "DICM". */
export function hasDicomMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && DICM.every((c, i) => bytes[128 + i] === c);
}

/** Whether the file at `path` is a DICOM Part 10 file ("DICM" at byte 128). False when it cannot be read. */
export async function isDicom(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "r");
    try {
      const buf = Buffer.alloc(132);
      const { bytesRead } = await handle.read(buf, 0, 132, 0);
      return hasDicomMagic(buf.subarray(0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Parsing one file

function invalid(message: string, details: Record<string, unknown> = {}): InvalidImageError {
  return new InvalidImageError(message, details);
}

/** dicom-parser throws strings (and sometimes Errors, with the partial data set attached). */
function parserMessage(err: unknown): string {
  if (typeof err === "string") {
    return err;
  }
  if (err instanceof Error) {
    return err.message;
  }
  const exception = (err as { exception?: unknown })?.exception;
  return typeof exception === "string" ? exception : String(err);
}

/** Parses a whole Part 10 file. Throws InvalidImageError naming the file. */
export function parseDicomBytes(bytes: Uint8Array, name = "buffer"): DataSet {
  if (!hasDicomMagic(bytes)) {
    throw invalid(`${name}: not a DICOM Part 10 file (no "DICM" at byte 128)`, { name });
  }
  try {
    return dicomParser.parseDicom(bytes, {
      // Deflated transfer syntax: the bytes after the file meta information are raw deflate.
      inflater: (array: Uint8Array, position: number) => {
        const inflated = inflateRawSync(array.subarray(position));
        const full = new Uint8Array(position + inflated.length);
        full.set(array.subarray(0, position), 0);
        full.set(inflated, position);
        return full;
      },
    } as ParseDicomOptions);
  } catch (err) {
    throw invalid(`${name}: cannot parse DICOM: ${parserMessage(err)}`, { name });
  }
}

const TAG = {
  transferSyntax: "x00020010",
  sopClassUID: "x00080016",
  sopInstanceUID: "x00080018",
  modality: "x00080060",
  seriesDescription: "x0008103e",
  studyInstanceUID: "x0020000d",
  seriesInstanceUID: "x0020000e",
  seriesNumber: "x00200011",
  instanceNumber: "x00200013",
  imagePosition: "x00200032",
  imageOrientation: "x00200037",
  sliceThickness: "x00180050",
  spacingBetweenSlices: "x00180088",
  samplesPerPixel: "x00280002",
  photometric: "x00280004",
  planarConfiguration: "x00280006",
  numberOfFrames: "x00280008",
  rows: "x00280010",
  columns: "x00280011",
  pixelSpacing: "x00280030",
  bitsAllocated: "x00280100",
  bitsStored: "x00280101",
  highBit: "x00280102",
  pixelRepresentation: "x00280103",
  windowCenter: "x00281050",
  windowWidth: "x00281051",
  rescaleIntercept: "x00281052",
  rescaleSlope: "x00281053",
  gridFrameOffsetVector: "x3004000c",
  doseGridScaling: "x3004000e",
  sharedFunctionalGroups: "x52009229",
  perFrameFunctionalGroups: "x52009230",
  planePosition: "x00209113",
  planeOrientation: "x00209116",
  pixelMeasures: "x00289110",
  pixelValueTransformation: "x00289145",
  floatPixelData: "x7fe00008",
  doubleFloatPixelData: "x7fe00009",
  pixelData: "x7fe00010",
} as const;

function numbers(ds: DataSet | undefined, tag: string): number[] | undefined {
  if (!ds?.elements[tag] || ds.elements[tag].length === 0) {
    return undefined;
  }
  const n = ds.numStringValues(tag) ?? 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = ds.floatString(tag, i);
    if (v === undefined || !Number.isFinite(v)) {
      return undefined;
    }
    out.push(v);
  }
  return out.length > 0 ? out : undefined;
}

function firstNumber(ds: DataSet | undefined, tag: string): number | undefined {
  return numbers(ds, tag)?.[0];
}

/** The data set of the first item of a sequence. */
function firstItem(ds: DataSet | undefined, tag: string): DataSet | undefined {
  return ds?.elements[tag]?.items?.[0]?.dataSet;
}

/** A value from a functional group: the frame's own group first, then the shared one. */
function functional<T>(
  frameGroup: DataSet | undefined,
  shared: DataSet | undefined,
  sequence: string,
  read: (ds: DataSet) => T | undefined,
): T | undefined {
  for (const group of [frameGroup, shared]) {
    const item = firstItem(group, sequence);
    const value = item ? read(item) : undefined;
    if (value !== undefined) {
      return value;
    }
  }
  return undefined;
}

/** One frame of one file: where it is and how to rescale it. */
interface Frame {
  file: DicomImage;
  index: number;
  /** ImagePositionPatient (LPS, mm), when known. */
  position: number[] | undefined;
  slope: number;
  intercept: number;
}

/** What we need of a DICOM image file to place its frames in a volume. */
interface DicomImage {
  name: string;
  path: string | undefined;
  ds: DataSet;
  transferSyntax: string;
  littleEndian: boolean;
  seriesInstanceUID: string;
  instanceNumber: number | undefined;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  photometric: string;
  planarConfiguration: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
  /** "int" for Pixel Data, "float32" / "float64" for (Double) Float Pixel Data. */
  sampleKind: "int" | "float32" | "float64";
  pixelElement: Element;
  numberOfFrames: number;
  /** The file's own ImagePositionPatient (LPS, mm). */
  position: number[] | undefined;
  /** ImageOrientationPatient: row direction (x), then column direction (y). */
  orientation: number[] | undefined;
  /** PixelSpacing: [between rows (y), between columns (x)]. */
  pixelSpacing: [number, number] | undefined;
  sliceThickness: number | undefined;
  spacingBetweenSlices: number | undefined;
  frames: Frame[];
}

function stringTag(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === "" ? undefined : v;
}

/**
 * Describes a parsed file's image: the attributes, the checks that it is an uncompressed image we can
 * decode, and one Frame per frame. Returns undefined when the file has no pixel data (SR, RT structure
 * set, DICOMDIR ...).
 */
function describeImage(ds: DataSet, name: string, path: string | undefined): DicomImage | undefined {
  const pixelElement =
    ds.elements[TAG.pixelData] ?? ds.elements[TAG.floatPixelData] ?? ds.elements[TAG.doubleFloatPixelData];
  if (!pixelElement) {
    return undefined;
  }
  const transferSyntax = stringTag(ds, TAG.transferSyntax) ?? TS_IMPLICIT_LE;
  if (!UNCOMPRESSED_SYNTAXES[transferSyntax]) {
    const known = COMPRESSED_TRANSFER_SYNTAXES[transferSyntax];
    throw invalid(
      known
        ? `${name}: DICOM transfer syntax ${transferSyntax} (${known}) is compressed and not supported; convert the file to an uncompressed transfer syntax (e.g. explicit VR little endian: dcmdjpeg, gdcmconv --raw)`
        : `${name}: unsupported DICOM transfer syntax ${transferSyntax}`,
      { name, transferSyntax, transferSyntaxName: known },
    );
  }
  if (pixelElement.encapsulatedPixelData) {
    throw invalid(
      `${name}: encapsulated (compressed) pixel data under uncompressed transfer syntax ${transferSyntax}`,
      {
        name,
        transferSyntax,
      },
    );
  }
  const rows = ds.uint16(TAG.rows) ?? 0;
  const columns = ds.uint16(TAG.columns) ?? 0;
  if (rows < 1 || columns < 1) {
    throw invalid(`${name}: DICOM image has ${rows} rows and ${columns} columns`, { name, rows, columns });
  }
  const samplesPerPixel = ds.uint16(TAG.samplesPerPixel) ?? 1;
  const photometric = (stringTag(ds, TAG.photometric) ?? (samplesPerPixel === 3 ? "RGB" : "MONOCHROME2")).toUpperCase();
  const sampleKind =
    pixelElement.tag === TAG.floatPixelData
      ? "float32"
      : pixelElement.tag === TAG.doubleFloatPixelData
        ? "float64"
        : "int";
  const bitsAllocated =
    sampleKind === "float32" ? 32 : sampleKind === "float64" ? 64 : (ds.uint16(TAG.bitsAllocated) ?? 0);
  const bitsStored = sampleKind === "int" ? (ds.uint16(TAG.bitsStored) ?? bitsAllocated) : bitsAllocated;
  const highBit = sampleKind === "int" ? (ds.uint16(TAG.highBit) ?? bitsStored - 1) : bitsAllocated - 1;
  if (sampleKind === "int" && ![1, 8, 16, 32].includes(bitsAllocated)) {
    throw invalid(`${name}: unsupported DICOM BitsAllocated ${bitsAllocated} (1, 8, 16 or 32)`, {
      name,
      bitsAllocated,
    });
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit + 1 < bitsStored || highBit >= bitsAllocated) {
    throw invalid(
      `${name}: inconsistent BitsAllocated ${bitsAllocated}, BitsStored ${bitsStored}, HighBit ${highBit}`,
      {
        name,
      },
    );
  }
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) {
    throw invalid(`${name}: unsupported SamplesPerPixel ${samplesPerPixel} (1 or 3)`, { name, samplesPerPixel });
  }
  if (samplesPerPixel === 3 && !["RGB", "YBR_FULL"].includes(photometric)) {
    throw invalid(
      `${name}: unsupported photometric interpretation ${photometric} for uncompressed colour (RGB or YBR_FULL)`,
      { name, photometric },
    );
  }
  if (samplesPerPixel === 3 && bitsAllocated !== 8) {
    throw invalid(`${name}: colour DICOM with ${bitsAllocated} bits per sample is not supported (8)`, { name });
  }

  const numberOfFrames = Math.max(1, Math.round(firstNumber(ds, TAG.numberOfFrames) ?? 1));
  const shared = ds.elements[TAG.sharedFunctionalGroups]?.items?.[0]?.dataSet;
  const perFrame = ds.elements[TAG.perFrameFunctionalGroups]?.items;
  const firstFrameGroup = perFrame?.[0]?.dataSet;

  const orientation =
    numbers(ds, TAG.imageOrientation) ??
    functional(firstFrameGroup, shared, TAG.planeOrientation, (d) => numbers(d, TAG.imageOrientation));
  const spacing =
    numbers(ds, TAG.pixelSpacing) ??
    functional(firstFrameGroup, shared, TAG.pixelMeasures, (d) => numbers(d, TAG.pixelSpacing));
  const sliceThickness =
    firstNumber(ds, TAG.sliceThickness) ??
    functional(firstFrameGroup, shared, TAG.pixelMeasures, (d) => firstNumber(d, TAG.sliceThickness));
  const spacingBetweenSlices =
    firstNumber(ds, TAG.spacingBetweenSlices) ??
    functional(firstFrameGroup, shared, TAG.pixelMeasures, (d) => firstNumber(d, TAG.spacingBetweenSlices));

  const image: DicomImage = {
    name,
    path,
    ds,
    transferSyntax,
    littleEndian: transferSyntax !== TS_EXPLICIT_BE,
    seriesInstanceUID: stringTag(ds, TAG.seriesInstanceUID) ?? "",
    instanceNumber: firstNumber(ds, TAG.instanceNumber),
    rows,
    columns,
    samplesPerPixel,
    photometric,
    planarConfiguration: ds.uint16(TAG.planarConfiguration) ?? 0,
    bitsAllocated,
    bitsStored,
    highBit,
    signed: sampleKind === "int" && ds.uint16(TAG.pixelRepresentation) === 1,
    sampleKind,
    pixelElement,
    numberOfFrames,
    position: undefined,
    orientation: orientation?.length === 6 ? orientation : undefined,
    pixelSpacing:
      spacing && spacing.length >= 2 && spacing[0]! > 0 && spacing[1]! > 0 ? [spacing[0]!, spacing[1]!] : undefined,
    sliceThickness: sliceThickness !== undefined && sliceThickness > 0 ? sliceThickness : undefined,
    spacingBetweenSlices:
      spacingBetweenSlices !== undefined && spacingBetweenSlices > 0 ? spacingBetweenSlices : undefined,
    frames: [],
  };

  // Rescale: the file's own attributes, else (enhanced multi-frame) the pixel value transformation group.
  // RT Dose stores DoseGridScaling instead.
  const fileSlope = firstNumber(ds, TAG.rescaleSlope) ?? firstNumber(ds, TAG.doseGridScaling);
  const fileIntercept = firstNumber(ds, TAG.rescaleIntercept);
  const position = numbers(ds, TAG.imagePosition);
  image.position = position && position.length >= 3 ? position.slice(0, 3) : undefined;
  const gridOffsets = numbers(ds, TAG.gridFrameOffsetVector);
  const normal = image.orientation ? sliceNormal(image.orientation) : undefined;
  for (let index = 0; index < numberOfFrames; index++) {
    const group = perFrame?.[index]?.dataSet;
    let framePosition = functional(group, shared, TAG.planePosition, (d) => numbers(d, TAG.imagePosition));
    if (!framePosition && position) {
      if (numberOfFrames === 1) {
        framePosition = position;
      } else if (gridOffsets && gridOffsets.length === numberOfFrames && normal) {
        // RT Dose: offsets along the normal from ImagePositionPatient (relative when the first is 0).
        const offset = gridOffsets[index]! - (gridOffsets[0] === 0 ? 0 : gridOffsets[0]!);
        framePosition = position.map((p, i) => p + offset * normal[i]!);
      }
    }
    const slope =
      fileSlope ?? functional(group, shared, TAG.pixelValueTransformation, (d) => firstNumber(d, TAG.rescaleSlope));
    const intercept =
      fileIntercept ??
      functional(group, shared, TAG.pixelValueTransformation, (d) => firstNumber(d, TAG.rescaleIntercept));
    image.frames.push({
      file: image,
      index,
      position: framePosition && framePosition.length >= 3 ? framePosition.slice(0, 3) : undefined,
      slope: samplesPerPixel === 1 && slope !== undefined && slope !== 0 ? slope : 1,
      intercept: samplesPerPixel === 1 && intercept !== undefined ? intercept : 0,
    });
  }

  const needed = Math.ceil((numberOfFrames * rows * columns * samplesPerPixel * bitsAllocated) / 8);
  const available = Math.min(pixelElement.length, ds.byteArray.length - pixelElement.dataOffset);
  if (available < needed) {
    throw invalid(
      `${name}: truncated DICOM pixel data: ${Math.max(0, available)} bytes, but ${numberOfFrames} frame(s) of ${columns}x${rows}x${samplesPerPixel} at ${bitsAllocated} bits need ${needed}`,
      { name, size: available, expected: needed },
    );
  }
  return image;
}

// ---------------------------------------------------------------------------------------------------
// Geometry

type Vec3 = [number, number, number];

function sliceNormal(orientation: readonly number[]): Vec3 {
  const [rx, ry, rz, cx, cy, cz] = orientation as [number, number, number, number, number, number];
  const n: Vec3 = [ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx];
  const norm = Math.hypot(...n);
  return norm > 0 ? [n[0] / norm, n[1] / norm, n[2] / norm] : [0, 0, 1];
}

const dot = (a: readonly number[], b: readonly number[]) => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;

interface Geometry {
  /** Frames in volume order. */
  frames: Frame[];
  affine: number[][];
  spacing: [number, number, number];
  sortedBy: "position" | "instanceNumber" | "frameOrder";
  warnings: string[];
}

/**
 * Orders frames along the slice normal and derives the affine. `strict`: frames sharing a position are
 * an error (a series that is really several volumes); otherwise they keep their order with a warning.
 */
function geometry(frames: Frame[], reference: DicomImage, strict: boolean): Geometry {
  const warnings: string[] = [];
  const orientation = reference.orientation ?? [1, 0, 0, 0, 1, 0];
  const rowDir = orientation.slice(0, 3);
  const colDir = orientation.slice(3, 6);
  const normal = sliceNormal(orientation);
  const [dy, dx] = reference.pixelSpacing ?? [1, 1];
  if (!reference.orientation) {
    warnings.push("no ImageOrientationPatient: assuming axial (identity) orientation");
  }
  if (!reference.pixelSpacing) {
    warnings.push("no PixelSpacing: assuming 1 mm");
  }

  let ordered = frames;
  let sortedBy: Geometry["sortedBy"] = "frameOrder";
  const withPositions = frames.every((f) => f.position !== undefined);
  let positionsUsable = withPositions;
  if (withPositions && frames.length > 1) {
    const keyed = frames.map((frame) => ({ frame, d: dot(frame.position!, normal) }));
    keyed.sort((a, b) => a.d - b.d);
    const tolerance = 1e-4 * Math.max(1, Math.abs(dx), Math.abs(dy));
    const duplicates = keyed.some((k, i) => i > 0 && Math.abs(k.d - keyed[i - 1]!.d) < tolerance);
    if (duplicates) {
      const message = `${frames.length} images but several share a slice position (a series of several volumes: echoes, time points, segments?)`;
      if (strict) {
        throw invalid(`DICOM series: ${message}`, { slices: frames.length });
      }
      warnings.push(`${message}; kept in frame order`);
      positionsUsable = false;
    } else {
      ordered = keyed.map((k) => k.frame);
      sortedBy = "position";
    }
  }
  if (!positionsUsable && frames.length > 1 && frames.some((f) => f.file !== frames[0]!.file)) {
    // Separate files without usable positions: InstanceNumber, then file name.
    ordered = [...frames].sort(
      (a, b) =>
        (a.file.instanceNumber ?? 0) - (b.file.instanceNumber ?? 0) ||
        a.file.name.localeCompare(b.file.name) ||
        a.index - b.index,
    );
    sortedBy = "instanceNumber";
    if (!withPositions) {
      warnings.push("some images have no ImagePositionPatient: sorted by InstanceNumber");
    }
  }

  const first = ordered[0]!;
  const origin = first.position ?? first.file.position ?? [0, 0, 0];
  let dz: number;
  if (positionsUsable && ordered.length > 1) {
    const d = ordered.map((f) => dot(f.position!, normal));
    dz = (d[d.length - 1]! - d[0]!) / (d.length - 1);
    const gaps = d.slice(1).map((x, i) => x - d[i]!);
    const worst = Math.max(...gaps.map((g) => Math.abs(g - dz)));
    if (worst > 1e-2 * Math.abs(dz) + 1e-3) {
      warnings.push(
        `non-uniform slice spacing: gaps from ${Math.min(...gaps).toFixed(4)} to ${Math.max(...gaps).toFixed(4)} mm (mean ${dz.toFixed(4)})`,
      );
    }
    // Positions off the line along the normal (gantry tilt) are not representable by this affine.
    const last = ordered[ordered.length - 1]!.position!;
    const along = last.map((x, i) => x - origin[i]!);
    const off = Math.hypot(...along.map((x, i) => x - normal[i]! * dz * (ordered.length - 1)));
    if (off > 1e-2 * Math.abs(dz) * (ordered.length - 1) + 0.05) {
      warnings.push(`slice positions drift ${off.toFixed(3)} mm off the slice normal (gantry tilt?); not corrected`);
    }
  } else {
    dz = reference.spacingBetweenSlices ?? reference.sliceThickness ?? 1;
  }
  const columns = [rowDir.map((x) => x * dx), colDir.map((x) => x * dy), normal.map((x) => x * dz)];
  const lpsToRas = [-1, -1, 1];
  // (x === 0 ? 0 : x) turns -0 into 0.
  const affine = [
    ...[0, 1, 2].map((r) =>
      [columns[0]![r]!, columns[1]![r]!, columns[2]![r]!, origin[r]!].map((x) => {
        const v = lpsToRas[r]! * x;
        return v === 0 ? 0 : v;
      }),
    ),
    [0, 0, 0, 1],
  ];
  return { frames: ordered, affine, spacing: [dx, dy, Math.abs(dz)], sortedBy, warnings };
}

// ---------------------------------------------------------------------------------------------------
// Pixels

/**
 * The stored samples of every frame of a file, in file order (interleaved or planar as stored), as a
 * typed array in host byte order: 1-bit data unpacked to 0/1 bytes, bits outside BitsStored masked off,
 * signed values sign-extended.
 */
function storedSamples(image: DicomImage): VoxelArray {
  const { ds, pixelElement, bitsAllocated, bitsStored, highBit, signed } = image;
  const count = image.numberOfFrames * image.rows * image.columns * image.samplesPerPixel;
  const bytes = ds.byteArray.subarray(pixelElement.dataOffset, pixelElement.dataOffset + pixelElement.length);
  if (bitsAllocated === 1) {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = (bytes[i >> 3]! >> (i & 7)) & 1;
    }
    return out;
  }
  const size = bitsAllocated / 8;
  const copy = new Uint8Array(count * size);
  copy.set(bytes.subarray(0, count * size));
  if (image.littleEndian !== HOST_LITTLE_ENDIAN) {
    // Big endian: OW 8-bit data is stored in byte-swapped 16-bit words; wider samples swap per sample.
    if (size === 1 && pixelElement.vr === "OW") {
      swapBytes(copy, 2);
    } else {
      swapBytes(copy, size);
    }
  }
  if (image.sampleKind === "float32") {
    return new Float32Array(copy.buffer, 0, count);
  }
  if (image.sampleKind === "float64") {
    return new Float64Array(copy.buffer, 0, count);
  }
  const unsigned =
    size === 1 ? copy : size === 2 ? new Uint16Array(copy.buffer, 0, count) : new Uint32Array(copy.buffer, 0, count);
  const shift = highBit + 1 - bitsStored;
  if (bitsStored === bitsAllocated && shift === 0) {
    if (!signed) {
      return unsigned;
    }
    return size === 1
      ? new Int8Array(copy.buffer, 0, count)
      : size === 2
        ? new Int16Array(copy.buffer, 0, count)
        : new Int32Array(copy.buffer, 0, count);
  }
  const out = signed
    ? size === 1
      ? new Int8Array(count)
      : size === 2
        ? new Int16Array(count)
        : new Int32Array(count)
    : unsigned;
  const range = 2 ** bitsStored;
  const half = range / 2;
  for (let i = 0; i < count; i++) {
    let v = Math.floor(unsigned[i]! / 2 ** shift) % range;
    if (signed && v >= half) {
      v -= range;
    }
    out[i] = v;
  }
  return out;
}

function storedDtype(image: DicomImage): string {
  if (image.sampleKind !== "int") {
    return image.sampleKind;
  }
  if (image.bitsAllocated <= 8) {
    return image.signed ? "int8" : "uint8";
  }
  return `${image.signed ? "int" : "uint"}${image.bitsAllocated}`;
}

const INTEGER_RANGES: Record<string, [number, number]> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
};

const CTORS: Record<string, new (length: number) => VoxelArray> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/**
 * Builds the volume's voxels from ordered frames: samples placed x fastest, then y, then frame, then
 * channel (planar), rescaled per frame.
 */
function assemble(
  ordered: Frame[],
  reference: DicomImage,
): { data: VoxelArray; dtype: string; storedDtype: string; rescaled: boolean } {
  const { rows, columns, samplesPerPixel: spp } = reference;
  const plane = rows * columns;
  const nFrames = ordered.length;
  const stored = storedDtype(reference);
  const cache = new Map<DicomImage, VoxelArray>();
  const samplesOf = (image: DicomImage) => {
    let s = cache.get(image);
    if (!s) {
      s = storedSamples(image);
      cache.set(image, s);
    }
    return s;
  };

  const rescaled = ordered.some((f) => f.slope !== 1 || f.intercept !== 0);
  let dtype = stored;
  if (rescaled) {
    const integral = ordered.every((f) => Number.isInteger(f.slope) && Number.isInteger(f.intercept));
    dtype = "float32";
    if (integral && stored in INTEGER_RANGES) {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const frame of ordered) {
        const samples = samplesOf(frame.file);
        const start = frame.index * plane;
        let lo = Number.POSITIVE_INFINITY;
        let hi = Number.NEGATIVE_INFINITY;
        for (let i = start; i < start + plane; i++) {
          const v = samples[i]!;
          if (v < lo) {
            lo = v;
          }
          if (v > hi) {
            hi = v;
          }
        }
        const a = lo * frame.slope + frame.intercept;
        const b = hi * frame.slope + frame.intercept;
        min = Math.min(min, a, b);
        max = Math.max(max, a, b);
      }
      const fits = (t: string) => min >= INTEGER_RANGES[t]![0] && max <= INTEGER_RANGES[t]![1];
      dtype = [stored, "int16", "uint16", "int32"].find(fits) ?? "float32";
    }
  }

  const out = new CTORS[dtype]!(plane * nFrames * spp);
  const ybr = reference.photometric === "YBR_FULL";
  ordered.forEach((frame, z) => {
    const samples = samplesOf(frame.file);
    if (frame.file.numberOfFrames === 1) {
      cache.delete(frame.file); // used once: let it go
    }
    if (spp === 1) {
      const start = frame.index * plane;
      const dst = z * plane;
      if (!rescaled) {
        out.set(samples.subarray(start, start + plane), dst);
      } else {
        const { slope, intercept } = frame;
        for (let i = 0; i < plane; i++) {
          out[dst + i] = samples[start + i]! * slope + intercept;
        }
      }
      return;
    }
    // Colour: interleaved (planar configuration 0) or planar (1) within the frame; output planar by channel.
    const start = frame.index * plane * spp;
    const planar = frame.file.planarConfiguration === 1;
    const channelStride = plane * nFrames;
    for (let i = 0; i < plane; i++) {
      let c0 = planar ? samples[start + i]! : samples[start + i * spp]!;
      let c1 = planar ? samples[start + plane + i]! : samples[start + i * spp + 1]!;
      let c2 = planar ? samples[start + 2 * plane + i]! : samples[start + i * spp + 2]!;
      if (ybr) {
        const y = c0;
        const cb = c1 - 128;
        const cr = c2 - 128;
        c0 = y + 1.402 * cr;
        c1 = y - 0.344136 * cb - 0.714136 * cr;
        c2 = y + 1.772 * cb;
      }
      const dst = z * plane + i;
      out[dst] = clampByte(c0);
      out[dst + channelStride] = clampByte(c1);
      out[dst + 2 * channelStride] = clampByte(c2);
    }
  });
  return { data: out, dtype, storedDtype: stored, rescaled };
}

const clampByte = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

// ---------------------------------------------------------------------------------------------------
// Volumes

function checkConsistent(images: DicomImage[]): void {
  const ref = images[0]!;
  const keys = [
    "rows",
    "columns",
    "samplesPerPixel",
    "bitsAllocated",
    "signed",
    "sampleKind",
    "photometric",
  ] as const satisfies readonly (keyof DicomImage)[];
  for (const image of images.slice(1)) {
    for (const key of keys) {
      if (image[key] !== ref[key]) {
        throw invalid(
          `DICOM series: ${image.name} has ${key} ${JSON.stringify(image[key])} but ${ref.name} has ${JSON.stringify(ref[key])}`,
          { key, file: image.name, reference: ref.name },
        );
      }
    }
    if (ref.orientation && image.orientation) {
      const diff = Math.max(...ref.orientation.map((x, i) => Math.abs(x - image.orientation![i]!)));
      if (diff > 1e-3) {
        throw invalid(
          `DICOM series: ${image.name} has ImageOrientationPatient [${image.orientation.join(", ")}] but ${ref.name} has [${ref.orientation.join(", ")}]`,
          { file: image.name, reference: ref.name },
        );
      }
    }
  }
}

function volumeFrom(images: DicomImage[], options: { strict: boolean; twoD: boolean }): Volume {
  checkConsistent(images);
  const reference = images[0]!;
  const frames = images.flatMap((image) => image.frames);
  const geo = geometry(frames, reference, options.strict);
  const { data, dtype, storedDtype: stored, rescaled } = assemble(geo.frames, reference);
  const { columns, rows, samplesPerPixel } = reference;
  const spatial = options.twoD && geo.frames.length === 1 ? [columns, rows] : [columns, rows, geo.frames.length];
  const shape = samplesPerPixel > 1 ? [...spatial, samplesPerPixel] : spatial;
  const ds = reference.ds;
  const orderedFiles: string[] = [];
  for (const frame of geo.frames) {
    const last = orderedFiles[orderedFiles.length - 1];
    const file = frame.file.path ?? frame.file.name;
    if (last !== file) {
      orderedFiles.push(file);
    }
  }
  return {
    data,
    shape,
    spacing: spatial.length === 2 ? geo.spacing.slice(0, 2) : [...geo.spacing],
    affine: geo.affine,
    dtype,
    meta: {
      format: "dicom",
      transferSyntaxUID: reference.transferSyntax,
      transferSyntax: transferSyntaxName(reference.transferSyntax),
      sopClassUID: stringTag(ds, TAG.sopClassUID),
      modality: stringTag(ds, TAG.modality),
      studyInstanceUID: stringTag(ds, TAG.studyInstanceUID),
      seriesInstanceUID: reference.seriesInstanceUID || undefined,
      seriesNumber: firstNumber(ds, TAG.seriesNumber),
      seriesDescription: stringTag(ds, TAG.seriesDescription),
      photometricInterpretation: reference.photometric,
      samplesPerPixel,
      bitsAllocated: reference.bitsAllocated,
      bitsStored: reference.bitsStored,
      pixelRepresentation: reference.signed ? 1 : 0,
      storedDtype: stored,
      rescaled,
      rescaleSlope: geo.frames[0]!.slope,
      rescaleIntercept: geo.frames[0]!.intercept,
      imageOrientationPatient: reference.orientation,
      imagePositionPatient: geo.frames[0]!.position,
      pixelSpacing: reference.pixelSpacing,
      sliceThickness: reference.sliceThickness,
      spacingBetweenSlices: reference.spacingBetweenSlices,
      windowCenter: firstNumber(ds, TAG.windowCenter),
      windowWidth: firstNumber(ds, TAG.windowWidth),
      numberOfFrames: reference.numberOfFrames,
      slices: geo.frames.length,
      sortedBy: geo.sortedBy,
      files: orderedFiles,
      warnings: geo.warnings,
    },
  };
}

async function loadImageFile(path: string): Promise<DicomImage | undefined> {
  const name = basename(path);
  const bytes = await readFile(path);
  return describeImage(parseDicomBytes(bytes, name), name, path);
}

/**
 * Reads one DICOM file (a path, or the file's bytes). A single-frame image is 2D ([columns, rows], or
 * [columns, rows, 3] for colour); a multi-frame image is 3D ([columns, rows, frames]), its frames
 * sorted by position when each has one (enhanced multi-frame, RT Dose grid offsets), else kept in file
 * order. See the module comment for values and geometry.
 */
export async function readDicomFile(source: string | Uint8Array): Promise<Volume> {
  const name = typeof source === "string" ? basename(source) : "buffer";
  const bytes = typeof source === "string" ? await readFile(source) : source;
  const image = describeImage(parseDicomBytes(bytes, name), name, typeof source === "string" ? source : undefined);
  if (!image) {
    throw invalid(`${name}: DICOM file has no pixel data (not an image)`, { name });
  }
  return volumeFrom([image], { strict: false, twoD: true });
}

export interface DicomSeriesInfo {
  seriesInstanceUID: string;
  modality: string | undefined;
  seriesDescription: string | undefined;
  /** Image files of the series, in the order given. */
  files: string[];
}

export interface ReadDicomSeriesOptions {
  /** Which series to read when the files hold several; by default the one with the most images. */
  seriesInstanceUID?: string;
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function loadSeriesImages(paths: readonly string[]): Promise<{ images: DicomImage[]; skipped: string[] }> {
  if (paths.length === 0) {
    throw invalid("DICOM series: no files given");
  }
  const loaded = await mapLimited(paths, 8, loadImageFile);
  const images = loaded.filter((image): image is DicomImage => image !== undefined);
  const skipped = paths.filter((_, i) => loaded[i] === undefined).map((p) => basename(p));
  return { images, skipped };
}

function groupBySeries(images: DicomImage[]): Map<string, DicomImage[]> {
  const groups = new Map<string, DicomImage[]>();
  for (const image of images) {
    const group = groups.get(image.seriesInstanceUID);
    if (group) {
      group.push(image);
    } else {
      groups.set(image.seriesInstanceUID, [image]);
    }
  }
  return groups;
}

/** The image series among DICOM files (files without pixel data are left out), largest first. */
export async function listDicomSeries(paths: readonly string[]): Promise<DicomSeriesInfo[]> {
  const { images } = await loadSeriesImages(paths);
  return [...groupBySeries(images).entries()]
    .map(([uid, group]) => ({
      seriesInstanceUID: uid,
      modality: stringTag(group[0]!.ds, TAG.modality),
      seriesDescription: stringTag(group[0]!.ds, TAG.seriesDescription),
      files: group.map((image) => image.path ?? image.name),
    }))
    .sort((a, b) => b.files.length - a.files.length || a.seriesInstanceUID.localeCompare(b.seriesInstanceUID));
}

/**
 * Reads DICOM files as one 3D volume ([columns, rows, slices], plus a trailing channel axis for colour),
 * whatever order the paths come in. Files are grouped by SeriesInstanceUID and one series is read
 * (`options.seriesInstanceUID`, else the one with the most images; `meta.otherSeries` lists the rest).
 * Files without pixel data are skipped (`meta.skippedFiles`). Slices are sorted along the slice normal;
 * two slices at the same position, or slices that differ in size, type or orientation, are an error.
 * A series of one multi-frame file reads as that file's frames; several multi-frame files are refused.
 */
export async function readDicomSeries(paths: readonly string[], options: ReadDicomSeriesOptions = {}): Promise<Volume> {
  const { images, skipped } = await loadSeriesImages(paths);
  if (images.length === 0) {
    throw invalid(`DICOM series: none of the ${paths.length} file(s) holds an image`, { files: paths.length });
  }
  const groups = groupBySeries(images);
  let uid = options.seriesInstanceUID;
  if (uid === undefined) {
    uid = [...groups.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0]![0];
  }
  const series = groups.get(uid);
  if (!series) {
    throw invalid(`DICOM series: no image of series ${uid} among the ${paths.length} file(s)`, {
      seriesInstanceUID: uid,
      found: [...groups.keys()],
    });
  }
  if (series.length > 1 && series.some((image) => image.numberOfFrames > 1)) {
    throw invalid(
      `DICOM series ${uid}: ${series.length} files of which some are multi-frame; read multi-frame files one at a time`,
      { seriesInstanceUID: uid },
    );
  }
  const volume = volumeFrom(series, { strict: series.length > 1, twoD: false });
  volume.meta.skippedFiles = skipped;
  volume.meta.otherSeries = [...groups.keys()].filter((other) => other !== uid);
  return volume;
}
