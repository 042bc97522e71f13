import { InvalidImageError } from "../errors.js";

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
