import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { InvalidImageError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import type { Volume } from "./types.js";
import {
  diagonalAffine,
  dtypeBytes,
  permuteAxes,
  prod,
  type VoxelArray,
  validAffine,
  voxelsFromBytes,
  voxelsToBytes,
} from "./voxels.js";

/**
 * NRRD header parsing (http://teem.sourceforge.net/nrrd/format.html). Only what the datastore needs to
 * describe and validate a file: sizes, type, encoding, geometry, and where the data is.
 */

export type NrrdEncoding = "raw" | "gzip" | "bzip2" | "ascii" | "hex";

export interface NrrdHeader {
  /** The version in the magic line, e.g. 4 for "NRRD0004". */
  version: number;
  dimension: number;
  /** Samples along each axis, fastest-varying first. */
  sizes: number[];
  /** The "type" field as written. */
  type: string;
  /** Normalized voxel type: uint8, int16, float32 ... */
  dtype: string;
  bytesPerElement: number;
  encoding: NrrdEncoding;
  endian: "little" | "big" | undefined;
  /** Product of `sizes`. */
  nvox: number;
  /**
   * Axes that are spatial: those with a vector in "space directions" (a "none" axis is a list/vector of
   * values per voxel, e.g. segment layers); without space directions, the first min(3, dimension) axes.
   * At most 3.
   */
  spatialAxes: number[];
  /** Voxel size along each spatial axis: the norm of its space direction, or its "spacings" value; 1 when unknown. */
  spacing: number[];
  /** Per axis: the direction vector, or null for "none"; undefined when the header has no space directions. */
  spaceDirections: (number[] | null)[] | undefined;
  space: string | undefined;
  /** "data file" / "datafile": the header is detached from its data. */
  dataFile: string | undefined;
  lineSkip: number;
  /** -1 means "the data are the last bytes of the file" (raw only). */
  byteSkip: number;
  /** Every field, lower-case name -> value as written. */
  fields: Record<string, string>;
  /** "key:=value" pairs. */
  keyValues: Record<string, string>;
}

interface TypeInfo {
  dtype: string;
  bytes: number;
}

const TYPES: Record<string, TypeInfo> = {};
function addType(dtype: string, bytes: number, names: string[]): void {
  for (const name of names) {
    TYPES[name] = { dtype, bytes };
  }
}
addType("int8", 1, ["signed char", "int8", "int8_t"]);
addType("uint8", 1, ["uchar", "unsigned char", "uint8", "uint8_t"]);
addType("int16", 2, ["short", "short int", "signed short", "signed short int", "int16", "int16_t"]);
addType("uint16", 2, ["ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"]);
addType("int32", 4, ["int", "signed int", "int32", "int32_t"]);
addType("uint32", 4, ["uint", "unsigned int", "uint32", "uint32_t"]);
addType("int64", 8, [
  "longlong",
  "long long",
  "long long int",
  "signed long long",
  "signed long long int",
  "int64",
  "int64_t",
]);
addType("uint64", 8, ["ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"]);
addType("float32", 4, ["float"]);
addType("float64", 8, ["double"]);

const ENCODINGS: Record<string, NrrdEncoding> = {
  raw: "raw",
  gzip: "gzip",
  gz: "gzip",
  bzip2: "bzip2",
  bz2: "bzip2",
  ascii: "ascii",
  text: "ascii",
  txt: "ascii",
  hex: "hex",
};

/** Field names with more than one spelling, mapped to one. */
const FIELD_ALIASES: Record<string, string> = {
  datafile: "data file",
  lineskip: "line skip",
  byteskip: "byte skip",
  centerings: "centers",
  axismins: "axis mins",
  axismaxs: "axis maxs",
  oldmin: "old min",
  oldmax: "old max",
};

function fail(message: string): never {
  throw new InvalidImageError(message);
}

function parseInteger(field: string, value: string): number {
  if (!/^[-+]?\d+$/.test(value)) {
    fail(`"${field}" must be an integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Parses "space directions" into one entry per axis: a vector or null ("none"). */
function parseSpaceDirections(value: string, dimension: number): (number[] | null)[] {
  const tokens = value.match(/none|\([^)]*\)/g) ?? [];
  const rest = value.replace(/none|\([^)]*\)/g, "").trim();
  if (rest !== "" || tokens.length !== dimension) {
    fail(`"space directions" must give "none" or a (x,y,z) vector for each of the ${dimension} axes`);
  }
  return tokens.map((token) => {
    if (token === "none") {
      return null;
    }
    const parts = token
      .slice(1, -1)
      .split(",")
      .map((x) => x.trim());
    const vector = parts.map(Number);
    if (parts.some((x) => x === "") || vector.some((x) => !Number.isFinite(x))) {
      fail(`bad "space directions" vector ${token}`);
    }
    return vector;
  });
}

/** A usable voxel size: |x|, or 1 when x is 0, NaN or missing. */
const voxelSize = (x: number | undefined) => (x !== undefined && Number.isFinite(x) && x !== 0 ? Math.abs(x) : 1);

/**
 * Parses the text of an NRRD header: the magic line, then fields, up to (not including) the blank line
 * that ends it. Throws InvalidImageError on a missing or malformed required field.
 */
export function parseNrrdHeader(text: string): NrrdHeader {
  const lines = text.split(/\r?\n/);
  const magic = lines[0] ?? "";
  const magicMatch = /^NRRD000(\d)$/.exec(magic.trim());
  if (!magicMatch) {
    fail(`first line must be "NRRD000x", got ${JSON.stringify(magic.slice(0, 40))}`);
  }
  const fields: Record<string, string> = {};
  const keyValues: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") {
      break;
    }
    if (line.startsWith("#")) {
      continue;
    }
    const kv = line.indexOf(":=");
    const colon = line.indexOf(":");
    if (kv >= 0 && kv === colon) {
      keyValues[line.slice(0, kv)] = line.slice(kv + 2);
      continue;
    }
    if (colon <= 0) {
      fail(`line ${i + 1} is neither a field nor a comment: ${JSON.stringify(line.slice(0, 60))}`);
    }
    const rawName = line.slice(0, colon).trim().toLowerCase();
    const name = FIELD_ALIASES[rawName] ?? rawName;
    fields[name] = line.slice(colon + 1).trim();
  }

  const required = (name: string): string => {
    const value = fields[name];
    if (value === undefined || value === "") {
      fail(`missing required field "${name}"`);
    }
    return value;
  };

  const dimension = parseInteger("dimension", required("dimension"));
  if (dimension < 1 || dimension > 16) {
    fail(`"dimension" must be 1 to 16, got ${dimension}`);
  }
  const sizes = required("sizes").split(/\s+/);
  if (sizes.length !== dimension) {
    fail(`"sizes" has ${sizes.length} values but "dimension" is ${dimension}`);
  }
  const sizeValues = sizes.map((s) => parseInteger("sizes", s));
  if (sizeValues.some((s) => s < 1)) {
    fail(`"sizes" must all be at least 1, got ${sizes.join(" ")}`);
  }

  const type = required("type");
  const typeInfo = TYPES[type.toLowerCase().replace(/\s+/g, " ")];
  if (!typeInfo) {
    fail(`unsupported "type" ${JSON.stringify(type)}`);
  }

  const encodingName = required("encoding").toLowerCase();
  const encoding = ENCODINGS[encodingName];
  if (!encoding) {
    fail(`unknown "encoding" ${JSON.stringify(encodingName)}`);
  }

  const endianValue = fields.endian?.toLowerCase();
  if (endianValue !== undefined && endianValue !== "little" && endianValue !== "big") {
    fail(`"endian" must be little or big, got ${JSON.stringify(fields.endian)}`);
  }

  let nvox = 1;
  for (const s of sizeValues) {
    nvox *= s;
  }
  if (!Number.isSafeInteger(nvox * typeInfo.bytes)) {
    fail(`"sizes" ${sizes.join(" ")} are too large`);
  }

  const lineSkip = fields["line skip"] !== undefined ? parseInteger("line skip", fields["line skip"]) : 0;
  if (lineSkip < 0) {
    fail(`"line skip" must not be negative`);
  }
  const byteSkip = fields["byte skip"] !== undefined ? parseInteger("byte skip", fields["byte skip"]) : 0;
  if (byteSkip < -1) {
    fail(`"byte skip" must be -1 or more`);
  }

  let spaceDirections: (number[] | null)[] | undefined;
  let spatialAxes: number[];
  let spacing: number[];
  if (fields["space directions"] !== undefined) {
    spaceDirections = parseSpaceDirections(fields["space directions"], dimension);
    spatialAxes = spaceDirections.flatMap((d, axis) => (d ? [axis] : [])).slice(0, 3);
    spacing = spatialAxes.map((axis) => voxelSize(Math.hypot(...(spaceDirections?.[axis] ?? []))));
  } else {
    spatialAxes = sizeValues.slice(0, 3).map((_, axis) => axis);
    const spacings = fields.spacings?.split(/\s+/);
    if (spacings !== undefined && spacings.length !== dimension) {
      fail(`"spacings" has ${spacings.length} values but "dimension" is ${dimension}`);
    }
    spacing = spatialAxes.map((axis) => voxelSize(spacings ? Number(spacings[axis]) : undefined));
  }

  const dataFile = fields["data file"];
  return {
    version: Number(magicMatch[1]),
    dimension,
    sizes: sizeValues,
    type,
    dtype: typeInfo.dtype,
    bytesPerElement: typeInfo.bytes,
    encoding,
    endian: endianValue as "little" | "big" | undefined,
    nvox,
    spatialAxes,
    spacing,
    spaceDirections,
    space: fields.space,
    dataFile: dataFile === undefined || dataFile === "" ? undefined : dataFile,
    lineSkip,
    byteSkip,
    fields,
    keyValues,
  };
}

// ---------------------------------------------------------------------------------------------------
// Voxels: reading and writing whole volumes

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

/** Space names (lower-case) mapped to the sign flips that turn their coordinates into RAS. */
const SPACE_TO_RAS: Record<string, [number, number, number]> = {
  "right-anterior-superior": [1, 1, 1],
  ras: [1, 1, 1],
  "right-anterior-superior-time": [1, 1, 1],
  rast: [1, 1, 1],
  "left-anterior-superior": [-1, 1, 1],
  las: [-1, 1, 1],
  "left-anterior-superior-time": [-1, 1, 1],
  last: [-1, 1, 1],
  "left-posterior-superior": [-1, -1, 1],
  lps: [-1, -1, 1],
  "left-posterior-superior-time": [-1, -1, 1],
  lpst: [-1, -1, 1],
};

/** NRRD "type" names we write, by voxel type. */
const NRRD_TYPE_NAMES: Record<string, string> = {
  int8: "int8",
  uint8: "uint8",
  int16: "int16",
  uint16: "uint16",
  int32: "int32",
  uint32: "uint32",
  int64: "int64",
  uint64: "uint64",
  float32: "float",
  float64: "double",
};

/** Parses a "(x,y,z)" vector, as in "space origin". */
function parseVector(field: string, value: string): number[] {
  const match = /^\(([^)]*)\)$/.exec(value.trim());
  const parts = match?.[1]?.split(",").map((x) => x.trim()) ?? [];
  const vector = parts.map(Number);
  if (!match || parts.some((x) => x === "") || vector.some((x) => !Number.isFinite(x))) {
    fail(`bad "${field}" ${JSON.stringify(value)}: expected a (x,y,z) vector`);
  }
  return vector;
}

const pad3 = (v: readonly number[]) => [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0];

function cross(a: readonly number[], b: readonly number[]): number[] {
  return [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
}

/**
 * The voxel-to-RAS affine of an NRRD header, over its spatial axes (in order). Space directions are the
 * columns and space origin the translation, in the header's space; an LPS ("left-posterior-superior") or
 * LAS space is turned into RAS by negating the flipped rows. Spaces with no anatomical meaning
 * (scanner-xyz, 3D-right-handed ...) are taken as RAS. Without space directions: diag(spacings), origin
 * from "space origin" or 0. When fewer than 3 axes are spatial, the missing columns are unit vectors
 * (the normal of the first two for a 2D image).
 */
export function nrrdAffine(header: NrrdHeader): number[][] {
  const flip = SPACE_TO_RAS[header.space?.toLowerCase() ?? ""] ?? [1, 1, 1];
  const originField = header.fields["space origin"];
  const origin =
    originField !== undefined && originField !== "none" ? pad3(parseVector("space origin", originField)) : [0, 0, 0];
  let columns: number[][];
  if (header.spaceDirections) {
    const directions = header.spaceDirections;
    columns = header.spatialAxes.map((axis) => pad3(directions[axis] ?? []));
  } else {
    const diagonal = diagonalAffine(header.spacing);
    columns = header.spatialAxes.map((_, i) => [0, 1, 2].map((r) => diagonal[r]![i]!));
  }
  if (columns.length === 0) {
    columns.push([1, 0, 0]);
  }
  if (columns.length === 1) {
    columns.push([0, 1, 0]);
  }
  if (columns.length === 2) {
    const n = cross(columns[0]!, columns[1]!);
    const norm = Math.hypot(...n);
    columns.push(norm > 0 && Number.isFinite(norm) ? n.map((x) => x / norm) : [0, 0, 1]);
  }
  // (v === 0 ? 0 : v) turns -0 into 0.
  return [
    ...[0, 1, 2].map((r) =>
      [columns[0]![r]!, columns[1]![r]!, columns[2]![r]!, origin[r]!].map((x) => {
        const v = flip[r]! * x;
        return v === 0 ? 0 : v;
      }),
    ),
    [0, 0, 0, 1],
  ];
}

/** Offset just past the blank line that ends an NRRD header, or -1. `text` is the file as Latin-1. */
function nrrdHeaderEnd(text: string): number {
  const match = /\r?\n\r?\n/.exec(text);
  return match ? match.index + match[0].length : -1;
}

/** Offset just past `lines` more newlines from `start`. */
function skipDataLines(bytes: Uint8Array, start: number, lines: number, name: string): number {
  let offset = start;
  for (let remaining = lines; remaining > 0; remaining--) {
    const nl = bytes.indexOf(0x0a, offset);
    if (nl < 0) {
      throw new InvalidImageError(`${name}: NRRD "line skip: ${lines}" runs past the end of the file`, { name });
    }
    offset = nl + 1;
  }
  return offset;
}

function parseAsciiValues(bytes: Uint8Array, dtype: string, count: number, name: string): VoxelArray {
  const tokens = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString("latin1")
    .split(/[\s,]+/)
    .filter((t) => t !== "");
  if (tokens.length < count) {
    throw new InvalidImageError(
      `${name}: truncated NRRD data: ${tokens.length} ascii values, but sizes need ${count}`,
      {
        name,
        values: tokens.length,
        expected: count,
      },
    );
  }
  const out = new (dtype === "int64" || dtype === "uint64" ? Float64Array : typedCtor(dtype))(count);
  for (let i = 0; i < count; i++) {
    const v = Number(tokens[i]);
    if (Number.isNaN(v) && !/^[-+]?nan$/i.test(tokens[i]!)) {
      throw new InvalidImageError(`${name}: bad NRRD ascii value ${JSON.stringify(tokens[i])}`, { name });
    }
    out[i] = v;
  }
  return out;
}

function typedCtor(dtype: string): new (length: number) => VoxelArray {
  const ctors: Record<string, new (length: number) => VoxelArray> = {
    uint8: Uint8Array,
    int8: Int8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    uint32: Uint32Array,
    float32: Float32Array,
    float64: Float64Array,
  };
  return ctors[dtype] ?? Float64Array;
}

function hexToBytes(bytes: Uint8Array, needed: number, name: string): Uint8Array {
  const out = new Uint8Array(needed);
  let n = 0;
  let high = -1;
  for (let i = 0; i < bytes.length && n < needed; i++) {
    const c = bytes[i]!;
    let d: number;
    if (c >= 0x30 && c <= 0x39) {
      d = c - 0x30;
    } else if (c >= 0x41 && c <= 0x46) {
      d = c - 0x41 + 10;
    } else if (c >= 0x61 && c <= 0x66) {
      d = c - 0x61 + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = d;
    } else {
      out[n++] = (high << 4) | d;
      high = -1;
    }
  }
  if (n < needed) {
    throw new InvalidImageError(`${name}: truncated NRRD data (hex): ${n} bytes, but sizes x type need ${needed}`, {
      name,
      size: n,
      expected: needed,
    });
  }
  return out;
}

/**
 * Reads an NRRD file with attached data (a path, or the file's bytes): raw, gzip, ascii or hex encoding,
 * either byte order, every scalar type (int64/uint64 become a Float64Array). `data` is in file order,
 * except that axes without a space direction ("none": a list, vector or RGB axis, e.g. the layers of a
 * .seg.nrrd) are moved after the spatial axes, so the volume is stored x fastest as `Volume` requires
 * (`meta.axisOrder` then gives the file axis of each volume axis). The affine is RAS (see `nrrdAffine`).
 * Detached data ("data file") and bzip2 are refused with InvalidImageError.
 */
export async function readNrrd(source: string | Uint8Array): Promise<Volume> {
  const name = typeof source === "string" ? basename(source) : "buffer";
  const bytes: Uint8Array = typeof source === "string" ? await readFile(source) : source;
  if (bytes.length === 0) {
    throw new InvalidImageError(`${name}: empty file`, { name });
  }
  // Latin-1 maps each byte to one char, so string offsets are byte offsets. The header is short: look in
  // the first MiB only.
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 1 << 20)).toString("latin1");
  if (!head.startsWith("NRRD000")) {
    throw new InvalidImageError(`${name}: not an NRRD file (no NRRD000x magic line)`, { name });
  }
  const headerEnd = nrrdHeaderEnd(head);
  if (headerEnd < 0) {
    throw new InvalidImageError(`${name}: NRRD header is not followed by a blank line and data (file truncated?)`, {
      name,
    });
  }
  let header: NrrdHeader;
  let affine: number[][];
  try {
    header = parseNrrdHeader(head.slice(0, headerEnd));
    affine = nrrdAffine(header);
  } catch (err) {
    if (err instanceof InvalidImageError) {
      throw new InvalidImageError(`${name}: bad NRRD header: ${err.message}`, { name });
    }
    throw err;
  }
  if (header.dataFile !== undefined) {
    throw new InvalidImageError(
      `${name}: detached NRRD data ("data file: ${header.dataFile}") is not supported; save the volume as a single .nrrd with attached data`,
      { name },
    );
  }

  const dataStart = skipDataLines(bytes, headerEnd, header.lineSkip, name);
  const expected = header.nvox * header.bytesPerElement;
  const littleEndian = header.endian !== "big";
  let data: VoxelArray;
  const truncated = (available: number, encoding: string) =>
    new InvalidImageError(
      `${name}: truncated NRRD data (${encoding}): ${Math.max(0, available)} bytes, but sizes x type need ${expected}`,
      { name, size: Math.max(0, available), expected },
    );
  switch (header.encoding) {
    case "raw": {
      const start = header.byteSkip === -1 ? bytes.length - expected : dataStart + header.byteSkip;
      if (start < dataStart || bytes.length - start < expected) {
        throw truncated(bytes.length - Math.max(start, dataStart), "raw");
      }
      data = voxelsFromBytes(bytes.subarray(start, start + expected), header.dtype, header.nvox, littleEndian);
      break;
    }
    case "gzip": {
      if (header.byteSkip === -1) {
        throw new InvalidImageError(`${name}: NRRD "byte skip: -1" is only allowed with raw encoding`, { name });
      }
      let raw: Uint8Array;
      try {
        raw = await gunzipAsync(bytes.subarray(dataStart));
      } catch (err) {
        const code = (err as { code?: unknown })?.code;
        if (typeof code === "string" && code.startsWith("Z_")) {
          throw new InvalidImageError(`${name}: corrupt or truncated gzip data (${(err as Error).message})`, {
            name,
            zlibCode: code,
          });
        }
        throw err;
      }
      if (raw.length - header.byteSkip < expected) {
        throw truncated(raw.length - header.byteSkip, "gzip, after decompression");
      }
      data = voxelsFromBytes(raw.subarray(header.byteSkip), header.dtype, header.nvox, littleEndian);
      break;
    }
    case "ascii":
      data = parseAsciiValues(bytes.subarray(dataStart), header.dtype, header.nvox, name);
      break;
    case "hex":
      data = voxelsFromBytes(
        hexToBytes(bytes.subarray(dataStart), expected, name),
        header.dtype,
        header.nvox,
        littleEndian,
      );
      break;
    default:
      throw new InvalidImageError(`${name}: NRRD encoding "${header.encoding}" is not supported; use raw or gzip`, {
        name,
        encoding: header.encoding,
      });
  }

  // Spatial axes first, then the others in file order.
  const axisOrder = [
    ...header.spatialAxes,
    ...header.sizes.map((_, axis) => axis).filter((axis) => !header.spatialAxes.includes(axis)),
  ];
  const identity = axisOrder.every((axis, i) => axis === i);
  if (!identity) {
    data = permuteAxes(data, header.sizes, axisOrder);
  }
  const kinds = header.fields.kinds?.split(/\s+/);
  const originField = header.fields["space origin"];
  return {
    data,
    shape: axisOrder.map((axis) => header.sizes[axis]!),
    spacing: [...header.spacing],
    affine,
    dtype: header.dtype,
    meta: {
      format: "nrrd",
      storedDtype: header.dtype,
      encoding: header.encoding,
      endian: header.endian,
      space: header.space,
      spaceDirections: header.spaceDirections,
      spaceOrigin:
        originField !== undefined && originField !== "none" ? parseVector("space origin", originField) : undefined,
      ...(kinds ? { kinds: axisOrder.map((axis) => kinds[axis]) } : {}),
      ...(identity ? {} : { axisOrder }),
      spatialAxes: header.spatialAxes.length,
      keyValues: { ...header.keyValues },
    },
  };
}

export interface WriteNrrdOptions {
  /**
   * The space the header declares: "LPS" (left-posterior-superior, the default: what ITK and 3D Slicer
   * write) or "RAS" (right-anterior-superior). The geometry is the same either way.
   */
  space?: "LPS" | "RAS";
  /** "gzip" (the default) or "raw". */
  encoding?: "gzip" | "raw";
  /** "key:=value" pairs to write (e.g. a .seg.nrrd's Segment0_Name). */
  keyValues?: Record<string, string>;
}

const formatNumber = (x: number) => (Object.is(x, -0) ? "0" : String(x));
const formatVector = (v: readonly number[]) => `(${v.map(formatNumber).join(",")})`;

/**
 * Encodes a volume as an NRRD file (NRRD0004, attached data, little-endian). The first min(3, ndim)
 * axes are spatial, with space directions and origin from the affine (RAS, written in the chosen
 * space); further axes get "none" and kind "list". An rgb24/rgba32 volume (interleaved components)
 * becomes uint8 with a leading RGB-color / RGBA-color axis.
 */
export async function encodeNrrd(volume: Volume, options: WriteNrrdOptions = {}): Promise<Uint8Array> {
  const { shape } = volume;
  const space = options.space ?? "LPS";
  const encoding = options.encoding ?? "gzip";
  if (shape.length < 1 || shape.length > 15 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InvalidImageError(`cannot write shape [${shape.join(", ")}] as NRRD`, { shape });
  }
  const components = volume.dtype === "rgb24" ? 3 : volume.dtype === "rgba32" ? 4 : 1;
  const dtype = components > 1 ? "uint8" : volume.dtype;
  const typeName = NRRD_TYPE_NAMES[dtype];
  if (!typeName || dtypeBytes(dtype) === undefined) {
    throw new InvalidImageError(`cannot write NRRD voxels of type ${JSON.stringify(volume.dtype)}`, {
      dtype: volume.dtype,
    });
  }
  const nvox = prod(shape) * components;
  if (volume.data.length !== nvox) {
    throw new InvalidImageError(
      `volume data has ${volume.data.length} values, but shape [${shape.join(", ")}] of ${volume.dtype} needs ${nvox}`,
      { shape, length: volume.data.length },
    );
  }
  const affine = validAffine(volume.affine) ?? diagonalAffine(volume.spacing);
  const flip = space === "LPS" ? [-1, -1, 1] : [1, 1, 1];
  const nSpatial = Math.min(3, shape.length);
  const sizes: number[] = [];
  const directions: string[] = [];
  const kinds: string[] = [];
  if (components > 1) {
    sizes.push(components);
    directions.push("none");
    kinds.push(components === 3 ? "RGB-color" : "RGBA-color");
  }
  shape.forEach((size, axis) => {
    sizes.push(size);
    if (axis < nSpatial) {
      directions.push(formatVector([0, 1, 2].map((r) => flip[r]! * affine[r]![axis]!)));
      kinds.push("domain");
    } else {
      directions.push("none");
      kinds.push("list");
    }
  });
  const lines = [
    "NRRD0004",
    "# Complete NRRD file format specification at:",
    "# http://teem.sourceforge.net/nrrd/format.html",
    `type: ${typeName}`,
    `dimension: ${sizes.length}`,
    `space: ${space === "LPS" ? "left-posterior-superior" : "right-anterior-superior"}`,
    `sizes: ${sizes.join(" ")}`,
    `space directions: ${directions.join(" ")}`,
    `kinds: ${kinds.join(" ")}`,
    ...(dtypeBytes(dtype)! > 1 ? ["endian: little"] : []),
    `encoding: ${encoding}`,
    `space origin: ${formatVector([0, 1, 2].map((r) => flip[r]! * affine[r]![3]!))}`,
  ];
  for (const [key, value] of Object.entries(options.keyValues ?? {})) {
    if (/[\r\n]/.test(key) || /[\r\n]/.test(value) || key.includes(":=")) {
      throw new InvalidImageError(`NRRD key/value ${JSON.stringify(key)} must be one line without ":="`, { key });
    }
    lines.push(`${key}:=${value}`);
  }
  const headerBytes = Buffer.from(`${lines.join("\n")}\n\n`, "latin1");
  let body = voxelsToBytes(volume.data, dtype, true);
  if (encoding === "gzip") {
    body = await gzipAsync(body, { level: 1 });
  }
  const out = new Uint8Array(headerBytes.length + body.length);
  out.set(headerBytes, 0);
  out.set(body, headerBytes.length);
  return out;
}

/** Writes a volume as NRRD (see `encodeNrrd`), atomically (temporary file, then rename). */
export async function writeNrrd(volume: Volume, path: string, options: WriteNrrdOptions = {}): Promise<void> {
  await writeFileAtomic(path, await encodeNrrd(volume, options));
}
