import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { InvalidImageError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import type { Volume } from "./types.js";
import { diagonalAffine, HOST_LITTLE_ENDIAN, swapBytes, validAffine } from "./voxels.js";

/**
 * NIfTI-1 and NIfTI-2 single files (".nii", ".nii.gz"): header parsing (shared with `readImageHeader`),
 * full voxel reading, and atomic NIfTI-1 writing. Layouts follow nifti1.h / nifti2.h; the quaternion
 * conversions follow nifti1_io.c (nifti_quatern_to_mat44 / nifti_mat44_to_quatern).
 */

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

export const NIFTI1_HEADER_SIZE = 348;
export const NIFTI2_HEADER_SIZE = 540;
/** Data of a file we write starts here: the 348-byte header plus the 4-byte extension flag. */
const NIFTI1_VOX_OFFSET = 352;

interface DatatypeInfo {
  code: number;
  name: string;
  /** Bytes per voxel (all components). */
  bytes: number;
  /** Values per voxel: 3 for rgb24, 4 for rgba32, 2 for complex types. */
  components: number;
}

const DATATYPE_LIST: DatatypeInfo[] = [
  { code: 2, name: "uint8", bytes: 1, components: 1 },
  { code: 4, name: "int16", bytes: 2, components: 1 },
  { code: 8, name: "int32", bytes: 4, components: 1 },
  { code: 16, name: "float32", bytes: 4, components: 1 },
  { code: 32, name: "complex64", bytes: 8, components: 2 },
  { code: 64, name: "float64", bytes: 8, components: 1 },
  { code: 128, name: "rgb24", bytes: 3, components: 3 },
  { code: 256, name: "int8", bytes: 1, components: 1 },
  { code: 512, name: "uint16", bytes: 2, components: 1 },
  { code: 768, name: "uint32", bytes: 4, components: 1 },
  { code: 1024, name: "int64", bytes: 8, components: 1 },
  { code: 1280, name: "uint64", bytes: 8, components: 1 },
  { code: 1536, name: "float128", bytes: 16, components: 1 },
  { code: 1792, name: "complex128", bytes: 16, components: 2 },
  { code: 2048, name: "complex256", bytes: 32, components: 2 },
  { code: 2304, name: "rgba32", bytes: 4, components: 4 },
];
const DATATYPE_BY_CODE = new Map(DATATYPE_LIST.map((d) => [d.code, d]));
const DATATYPE_BY_NAME = new Map(DATATYPE_LIST.map((d) => [d.name, d]));

/** The NIfTI datatype name for a code ("uint8" for 2 ...), or undefined for an unknown code. */
export function niftiDtypeName(code: number): string | undefined {
  return DATATYPE_BY_CODE.get(code)?.name;
}

export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** 348 (NIfTI-1) or 540 (NIfTI-2). */
  headerSize: number;
  /** "n+1" / "n+2" for single files. */
  magic: string;
  datatype: number;
  dtype: string;
  bitpix: number;
  /** Bytes per voxel, from the datatype (bitpix is not trusted). */
  bytesPerVoxel: number;
  /** Values per voxel: 3 for rgb24, 4 for rgba32, 2 for complex, else 1. */
  components: number;
  /** dim[1..dim[0]]. */
  dims: number[];
  /** All eight pixdim values, as stored. */
  pixdim: number[];
  /** Voxel size along the spatial axes (first min(3, ndim)): |pixdim[i]|, 1 when 0 or not finite. */
  spacing: number[];
  /** Where the voxels start in the (decompressed) file. */
  voxOffset: number;
  /** Number of voxels: the product of `dims`. */
  nvox: number;
  /** nvox * bytesPerVoxel. */
  dataBytes: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  /** srow_x, srow_y, srow_z. */
  srow: [number[], number[], number[]];
  xyztUnits: number;
  intentCode: number;
  descrip: string;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Which NIfTI version and byte order the first 4 bytes (sizeof_hdr) announce, or undefined when they
 * are not 348 or 540 in either byte order.
 */
export function detectNifti(
  bytes: Uint8Array,
): { version: 1 | 2; littleEndian: boolean; headerSize: number } | undefined {
  if (bytes.length < 4) {
    return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_SIZE) {
      return { version: 1, littleEndian, headerSize: size };
    }
    if (size === NIFTI2_HEADER_SIZE) {
      return { version: 2, littleEndian, headerSize: size };
    }
  }
  return undefined;
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  const slice = bytes.subarray(start, start + length);
  const end = slice.indexOf(0);
  return Buffer.from(end === -1 ? slice : slice.subarray(0, end)).toString("latin1");
}

function invalid(message: string, details: Record<string, unknown> = {}): InvalidImageError {
  return new InvalidImageError(message, details);
}

/**
 * Parses and checks a NIfTI-1 or NIfTI-2 header from the first bytes of a (decompressed) file. `bytes`
 * must hold at least the header (348 or 540 bytes). Throws InvalidImageError for anything that is not
 * a readable single-file NIfTI.
 */
export function parseNiftiHeader(bytes: Uint8Array, name = "file"): NiftiHeader {
  const kind = detectNifti(bytes);
  if (!kind) {
    throw invalid(`${name}: not a NIfTI file (sizeof_hdr is neither 348 nor 540)`, { name });
  }
  const { version, littleEndian, headerSize } = kind;
  if (bytes.length < headerSize) {
    throw invalid(`${name}: truncated NIfTI-${version} header (${bytes.length} of ${headerSize} bytes)`, {
      name,
      size: bytes.length,
    });
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, headerSize);
  const le = littleEndian;
  const i16 = (o: number) => v.getInt16(o, le);
  const i32 = (o: number) => v.getInt32(o, le);
  const f32 = (o: number) => v.getFloat32(o, le);
  const f64 = (o: number) => v.getFloat64(o, le);
  const i64 = (o: number) => {
    const big = v.getBigInt64(o, le);
    const n = Number(big);
    if (!Number.isSafeInteger(n)) {
      throw invalid(`${name}: 64-bit header value ${big} is out of range`, { name });
    }
    return n;
  };

  let magic: string;
  let datatype: number;
  let bitpix: number;
  const dim: number[] = [];
  const pixdim: number[] = [];
  let voxOffsetRaw: number;
  let sclSlope: number;
  let sclInter: number;
  let qformCode: number;
  let sformCode: number;
  const q: number[] = [];
  const srow: number[][] = [[], [], []];
  let xyztUnits: number;
  let intentCode: number;
  let descrip: string;

  if (version === 1) {
    magic = cString(bytes, 344, 4);
    for (let i = 0; i < 8; i++) {
      dim.push(i16(40 + 2 * i));
      pixdim.push(f32(76 + 4 * i));
    }
    intentCode = i16(68);
    datatype = i16(70);
    bitpix = i16(72);
    voxOffsetRaw = f32(108);
    sclSlope = f32(112);
    sclInter = f32(116);
    xyztUnits = bytes[123] ?? 0;
    descrip = cString(bytes, 148, 80);
    qformCode = i16(252);
    sformCode = i16(254);
    for (let i = 0; i < 6; i++) {
      q.push(f32(256 + 4 * i));
    }
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 4; c++) {
        srow[r]!.push(f32(280 + 16 * r + 4 * c));
      }
    }
  } else {
    magic = cString(bytes, 4, 8);
    datatype = i16(12);
    bitpix = i16(14);
    for (let i = 0; i < 8; i++) {
      dim.push(i64(16 + 8 * i));
      pixdim.push(f64(104 + 8 * i));
    }
    voxOffsetRaw = i64(168);
    sclSlope = f64(176);
    sclInter = f64(184);
    descrip = cString(bytes, 240, 80);
    qformCode = i32(344);
    sformCode = i32(348);
    for (let i = 0; i < 6; i++) {
      q.push(f64(352 + 8 * i));
    }
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 4; c++) {
        srow[r]!.push(f64(400 + 32 * r + 8 * c));
      }
    }
    xyztUnits = i32(500);
    intentCode = i32(504);
  }

  const expectedMagic = version === 1 ? "n+1" : "n+2";
  if (magic !== expectedMagic) {
    if (magic === (version === 1 ? "ni1" : "ni2")) {
      throw invalid(`${name}: NIfTI header/image pairs (.hdr/.img) are not supported; save a single .nii or .nii.gz`, {
        name,
      });
    }
    throw invalid(`${name}: bad NIfTI-${version} magic ${JSON.stringify(magic)} (expected "${expectedMagic}")`, {
      name,
    });
  }

  const ndim = dim[0] ?? 0;
  if (!Number.isInteger(ndim) || ndim < 1 || ndim > 7) {
    throw invalid(`${name}: NIfTI dim[0] is ${ndim}, expected 1 to 7`, { name });
  }
  const dims = dim.slice(1, ndim + 1);
  if (dims.some((d) => d < 1)) {
    throw invalid(`${name}: NIfTI dimensions [${dims.join(", ")}] must all be at least 1`, { name, dims });
  }

  const info = DATATYPE_BY_CODE.get(datatype);
  if (!info) {
    throw invalid(`${name}: unsupported NIfTI datatype code ${datatype}`, { name, datatype });
  }

  let nvox = 1;
  for (const d of dims) {
    nvox *= d;
  }
  const dataBytes = nvox * info.bytes;
  if (!Number.isSafeInteger(dataBytes)) {
    throw invalid(`${name}: NIfTI dimensions [${dims.join(", ")}] are too large`, { name, dims });
  }

  if (!Number.isFinite(voxOffsetRaw) || voxOffsetRaw < 0 || !Number.isInteger(voxOffsetRaw)) {
    throw invalid(`${name}: bad NIfTI vox_offset ${voxOffsetRaw}`, { name });
  }
  // vox_offset 0 in a single file is a common writer bug; nibabel reads the data right after the header
  // and its 4-byte extension flag, as we do.
  const voxOffset = voxOffsetRaw === 0 ? headerSize + 4 : voxOffsetRaw;
  if (voxOffset < headerSize) {
    throw invalid(`${name}: NIfTI vox_offset ${voxOffset} lies inside the ${headerSize}-byte header`, { name });
  }

  const spacing = dims.slice(0, 3).map((_, i) => {
    const p = Math.abs(pixdim[i + 1] ?? 0);
    return Number.isFinite(p) && p > 0 ? p : 1;
  });

  return {
    version,
    littleEndian,
    headerSize,
    magic,
    datatype,
    dtype: info.name,
    bitpix,
    bytesPerVoxel: info.bytes,
    components: info.components,
    dims,
    pixdim,
    spacing,
    voxOffset,
    nvox,
    dataBytes,
    sclSlope,
    sclInter,
    qformCode,
    sformCode,
    quatern: [q[0]!, q[1]!, q[2]!],
    qoffset: [q[3]!, q[4]!, q[5]!],
    srow: [srow[0]!, srow[1]!, srow[2]!],
    xyztUnits,
    intentCode,
    descrip,
  };
}

// ---------------------------------------------------------------------------------------------------
// Affine <-> quaternion

type Mat3 = number[][];

/** qform (nifti_quatern_to_mat44): rotation from the quaternion, scaled by pixdim, qfac flips z. */
export function quaternToAffine(
  quatern: readonly [number, number, number],
  qoffset: readonly [number, number, number],
  pixdim: readonly number[],
): number[][] {
  let [b, c, d] = quatern;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const scale = (p: number | undefined) => (p !== undefined && p > 0 ? p : 1);
  const xd = scale(pixdim[1]);
  const yd = scale(pixdim[2]);
  let zd = scale(pixdim[3]);
  if ((pixdim[0] ?? 1) < 0) {
    zd = -zd;
  }
  return [
    [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, qoffset[0]],
    [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, qoffset[1]],
    [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, qoffset[2]],
    [0, 0, 0, 1],
  ];
}

function det3(m: Mat3): number {
  const [r0, r1, r2] = [m[0]!, m[1]!, m[2]!];
  return (
    r0[0]! * (r1[1]! * r2[2]! - r1[2]! * r2[1]!) -
    r0[1]! * (r1[0]! * r2[2]! - r1[2]! * r2[0]!) +
    r0[2]! * (r1[0]! * r2[1]! - r1[1]! * r2[0]!)
  );
}

/** Transpose of the inverse of a 3x3 matrix (its cofactor matrix over the determinant). */
function inverseTranspose3(m: Mat3): Mat3 | undefined {
  const det = det3(m);
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) {
    return undefined;
  }
  const at = (r: number, c: number) => m[r]![c]!;
  const cof = (r: number, c: number) => {
    const rs = [0, 1, 2].filter((i) => i !== r);
    const cs = [0, 1, 2].filter((i) => i !== c);
    const minor = at(rs[0]!, cs[0]!) * at(rs[1]!, cs[1]!) - at(rs[0]!, cs[1]!) * at(rs[1]!, cs[0]!);
    return ((r + c) % 2 === 0 ? 1 : -1) * minor;
  };
  return [0, 1, 2].map((r) => [0, 1, 2].map((c) => cof(r, c) / det));
}

/** The orthogonal matrix nearest to `m` (polar decomposition by Newton iteration). */
function nearestOrthogonal(m: Mat3): Mat3 {
  let x = m.map((row) => [...row]);
  for (let iter = 0; iter < 100; iter++) {
    const it = inverseTranspose3(x);
    if (!it) {
      return [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ];
    }
    const next = x.map((row, r) => row.map((value, c) => 0.5 * (value + it[r]![c]!)));
    let diff = 0;
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        diff = Math.max(diff, Math.abs(next[r]![c]! - x[r]![c]!));
      }
    }
    x = next;
    if (diff < 1e-12) {
      break;
    }
  }
  return x;
}

/** The qform parameters (nifti_mat44_to_quatern) that best represent an affine's rotation. */
export function affineToQuatern(affine: readonly (readonly number[])[]): {
  quatern: [number, number, number];
  qoffset: [number, number, number];
  qfac: 1 | -1;
} {
  const r: Mat3 = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i]?.[j] ?? (i === j ? 1 : 0)));
  // Normalize each column; a zero column becomes its unit axis.
  for (let j = 0; j < 3; j++) {
    const norm = Math.hypot(r[0]![j]!, r[1]![j]!, r[2]![j]!);
    for (let i = 0; i < 3; i++) {
      r[i]![j] = norm > 0 && Number.isFinite(norm) ? r[i]![j]! / norm : i === j ? 1 : 0;
    }
  }
  const o = nearestOrthogonal(r);
  let qfac: 1 | -1 = 1;
  if (det3(o) < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) {
      o[i]![2] = -o[i]![2]!;
    }
  }
  const [r11, r12, r13] = o[0]! as [number, number, number];
  const [r21, r22, r23] = o[1]! as [number, number, number];
  const [r31, r32, r33] = o[2]! as [number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return {
    quatern: [b, c, d],
    qoffset: [affine[0]?.[3] ?? 0, affine[1]?.[3] ?? 0, affine[2]?.[3] ?? 0],
    qfac,
  };
}

/** The voxel-to-world matrix a header declares: sform, else qform, else pixdim scaling (NIfTI "method 1"). */
export function niftiAffine(header: NiftiHeader): number[][] {
  if (header.sformCode > 0) {
    return [[...header.srow[0]], [...header.srow[1]], [...header.srow[2]], [0, 0, 0, 1]];
  }
  if (header.qformCode > 0) {
    return quaternToAffine(header.quatern, header.qoffset, header.pixdim);
  }
  const s = [0, 1, 2].map((i) => header.spacing[i] ?? 1);
  return [
    [s[0]!, 0, 0, 0],
    [0, s[1]!, 0, 0],
    [0, 0, s[2]!, 0],
    [0, 0, 0, 1],
  ];
}

// ---------------------------------------------------------------------------------------------------
// Reading

type VoxelArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** Copies the voxel bytes into a fresh typed array of the file's type, in host byte order. */
function voxelArray(bytes: Uint8Array, header: NiftiHeader, name: string): VoxelArray {
  const copy = new Uint8Array(header.dataBytes);
  copy.set(bytes.subarray(header.voxOffset, header.voxOffset + header.dataBytes));
  const elementSize = header.bytesPerVoxel / header.components;
  if (elementSize > 1 && header.littleEndian !== HOST_LITTLE_ENDIAN) {
    swapBytes(copy, elementSize);
  }
  const buf = copy.buffer;
  const n = header.nvox;
  switch (header.dtype) {
    case "uint8":
      return copy;
    case "rgb24":
    case "rgba32":
      return copy;
    case "int8":
      return new Int8Array(buf, 0, n);
    case "int16":
      return new Int16Array(buf, 0, n);
    case "uint16":
      return new Uint16Array(buf, 0, n);
    case "int32":
      return new Int32Array(buf, 0, n);
    case "uint32":
      return new Uint32Array(buf, 0, n);
    case "float32":
      return new Float32Array(buf, 0, n);
    case "float64":
      return new Float64Array(buf, 0, n);
    case "int64":
    case "uint64": {
      // JavaScript numbers hold integers exactly up to 2^53; labels and images never come near that.
      const big = header.dtype === "int64" ? new BigInt64Array(buf, 0, n) : new BigUint64Array(buf, 0, n);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = Number(big[i]!);
      }
      return out;
    }
    default:
      throw invalid(`${name}: NIfTI datatype ${header.dtype} cannot be read into voxels`, {
        name,
        dtype: header.dtype,
      });
  }
}

function hasScaling(slope: number, inter: number): boolean {
  return Number.isFinite(slope) && slope !== 0 && !(slope === 1 && (inter === 0 || !Number.isFinite(inter)));
}

function wrapZlibError(err: unknown, name: string): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("Z_")) {
    return invalid(`${name}: corrupt or truncated gzip data (${(err as Error).message})`, { name, zlibCode: code });
  }
  return err;
}

/**
 * Reads a NIfTI-1 or NIfTI-2 file (a path, or the file's bytes), gzip-compressed or not, in either byte
 * order. `data` is the typed array of the file's datatype (int64/uint64 become a Float64Array; rgb24 and
 * rgba32 a Uint8Array of interleaved components). When scl_slope is nonzero and the scaling is not
 * (1, 0), values are scaled into a Float32Array and `dtype` is "float32" (the stored type is in
 * `meta.storedDtype`). The affine comes from the sform (sform_code > 0), else the qform, else pixdim.
 */
export async function readNifti(source: string | Uint8Array): Promise<Volume> {
  const name = typeof source === "string" ? basename(source) : "buffer";
  let bytes: Uint8Array = typeof source === "string" ? await readFile(source) : source;
  if (bytes.length === 0) {
    throw invalid(`${name}: empty file`, { name });
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (err) {
      throw wrapZlibError(err, name);
    }
  }
  const header = parseNiftiHeader(bytes, name);
  const needed = header.voxOffset + header.dataBytes;
  if (bytes.length < needed) {
    throw invalid(
      `${name}: truncated NIfTI data: ${bytes.length} bytes, but vox_offset ${header.voxOffset} + ${header.nvox} voxels x ${header.bytesPerVoxel} bytes needs ${needed}`,
      { name, size: bytes.length, expected: needed },
    );
  }
  let data: VoxelArray = voxelArray(bytes, header, name);
  let dtype = header.dtype;
  const scaled = header.components === 1 && hasScaling(header.sclSlope, header.sclInter);
  if (scaled) {
    const slope = header.sclSlope;
    const inter = Number.isFinite(header.sclInter) ? header.sclInter : 0;
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      out[i] = data[i]! * slope + inter;
    }
    data = out;
    dtype = "float32";
  }
  return {
    data,
    shape: [...header.dims],
    spacing: [...header.spacing],
    affine: niftiAffine(header),
    dtype,
    meta: {
      format: "nifti",
      niftiVersion: header.version,
      littleEndian: header.littleEndian,
      datatype: header.datatype,
      storedDtype: header.dtype,
      components: header.components,
      sclSlope: header.sclSlope,
      sclInter: header.sclInter,
      scaled,
      qformCode: header.qformCode,
      sformCode: header.sformCode,
      pixdim: [...header.pixdim],
      xyztUnits: header.xyztUnits,
      intentCode: header.intentCode,
      descrip: header.descrip,
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Writing

type TypedCtor = {
  new (length: number): VoxelArray;
  from(values: ArrayLike<number>, map: (v: number) => number): VoxelArray;
};

const TYPED_CTORS: Record<string, TypedCtor> = {
  uint8: Uint8Array,
  rgb24: Uint8Array,
  rgba32: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

const isIntegerDtype = (dtype: string) => !dtype.startsWith("float");

/** The voxel bytes of `data` in `dtype`, little-endian. */
function voxelBytes(data: ArrayLike<number>, dtype: string): Uint8Array {
  let bytes: Uint8Array;
  if (dtype === "int64" || dtype === "uint64") {
    const out = dtype === "int64" ? new BigInt64Array(data.length) : new BigUint64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      out[i] = BigInt(Math.round(data[i]!));
    }
    bytes = new Uint8Array(out.buffer);
  } else {
    const ctor = TYPED_CTORS[dtype]!;
    let typed: VoxelArray;
    if (data instanceof ctor) {
      typed = data as VoxelArray;
    } else {
      // A plain loop: TypedArray.from with a callback costs ~1.3 s for Colin27's 7.1M voxels (bench/infer).
      typed = new ctor(data.length) as VoxelArray;
      if (isIntegerDtype(dtype)) {
        for (let i = 0; i < data.length; i++) {
          typed[i] = Math.round(data[i] as number);
        }
      } else {
        for (let i = 0; i < data.length; i++) {
          typed[i] = data[i] as number;
        }
      }
    }
    bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  const elementSize = DATATYPE_BY_NAME.get(dtype)!.bytes / DATATYPE_BY_NAME.get(dtype)!.components;
  if (!HOST_LITTLE_ENDIAN && elementSize > 1) {
    bytes = bytes.slice();
    swapBytes(bytes, elementSize);
  }
  return bytes;
}

const WRITABLE_DTYPES = new Set([...Object.keys(TYPED_CTORS), "int64", "uint64"]);

function metaNumber(meta: Record<string, unknown>, key: string): number | undefined {
  const v = meta[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * Encodes a volume as an uncompressed NIfTI-1 little-endian file: vox_offset 352, sform and qform both
 * set from the affine (codes from meta.sformCode / meta.qformCode when they are positive, else 1,
 * scanner), pixdim[1..3] from `spacing`, no scaling (scl_slope 1, scl_inter 0), units mm and s.
 */
export function encodeNifti(volume: Volume): Uint8Array {
  const { shape, dtype } = volume;
  if (shape.length < 1 || shape.length > 7) {
    throw invalid(`cannot write a ${shape.length}-dimensional volume as NIfTI (1 to 7 axes)`, { shape });
  }
  if (shape.some((d) => !Number.isInteger(d) || d < 1 || d > 32767)) {
    throw invalid(`cannot write shape [${shape.join(", ")}] as NIfTI-1 (each axis 1 to 32767)`, { shape });
  }
  const info = DATATYPE_BY_NAME.get(dtype);
  if (!info || !WRITABLE_DTYPES.has(dtype)) {
    throw invalid(`cannot write NIfTI voxels of type ${JSON.stringify(dtype)}`, { dtype });
  }
  const nvox = shape.reduce((a, b) => a * b, 1);
  if (volume.data.length !== nvox * info.components) {
    throw invalid(
      `volume data has ${volume.data.length} values, but shape [${shape.join(", ")}] of ${dtype} needs ${nvox * info.components}`,
      { shape, length: volume.data.length },
    );
  }
  const voxels = voxelBytes(volume.data, dtype);

  const out = new Uint8Array(NIFTI1_VOX_OFFSET + voxels.byteLength);
  const v = new DataView(out.buffer);
  const le = true;
  v.setInt32(0, NIFTI1_HEADER_SIZE, le);
  out[38] = 0x72; // regular = 'r'
  v.setInt16(40, shape.length, le);
  for (let i = 1; i < 8; i++) {
    v.setInt16(40 + 2 * i, shape[i - 1] ?? 1, le);
  }
  v.setInt16(70, info.code, le);
  v.setInt16(72, info.bytes * 8, le);

  const affine = validAffine(volume.affine) ?? diagonalAffine(volume.spacing);
  const { quatern, qoffset, qfac } = affineToQuatern(affine);
  const metaPixdim = Array.isArray(volume.meta.pixdim) ? (volume.meta.pixdim as unknown[]) : [];
  v.setFloat32(76, qfac, le);
  for (let i = 1; i < 8; i++) {
    let p: number;
    if (i <= 3) {
      const s = volume.spacing[i - 1];
      p = s !== undefined && Number.isFinite(s) && s > 0 ? s : 1;
    } else {
      const m = metaPixdim[i];
      p = typeof m === "number" && Number.isFinite(m) ? m : 1;
    }
    v.setFloat32(76 + 4 * i, p, le);
  }
  v.setFloat32(108, NIFTI1_VOX_OFFSET, le);
  v.setFloat32(112, 1, le);
  v.setFloat32(116, 0, le);
  out[123] = 2 | 8; // NIFTI_UNITS_MM | NIFTI_UNITS_SEC
  const descrip = Buffer.from("labelgraph", "latin1");
  out.set(descrip, 148);
  const qformCode = metaNumber(volume.meta, "qformCode");
  const sformCode = metaNumber(volume.meta, "sformCode");
  v.setInt16(252, qformCode !== undefined && qformCode > 0 ? qformCode : 1, le);
  v.setInt16(254, sformCode !== undefined && sformCode > 0 ? sformCode : 1, le);
  for (let i = 0; i < 3; i++) {
    v.setFloat32(256 + 4 * i, quatern[i]!, le);
    v.setFloat32(268 + 4 * i, qoffset[i]!, le);
  }
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      v.setFloat32(280 + 16 * r + 4 * c, affine[r]![c]!, le);
    }
  }
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  // bytes 348..351: extension flag, all zero (no extensions)
  out.set(voxels, NIFTI1_VOX_OFFSET);
  return out;
}

/**
 * Writes a volume as NIfTI-1 little-endian (see `encodeNifti`), gzip-compressed when the path ends with
 * ".gz". Atomic: the bytes go to a hidden temporary file in the same folder, which is synced and then
 * renamed over `path`, so readers never see a partial file.
 */
export async function writeNifti(volume: Volume, path: string): Promise<void> {
  let bytes = encodeNifti(volume);
  if (path.toLowerCase().endsWith(".gz")) {
    // Level 1, as nibabel (and so MONAI's writer) compresses: level 6 tripled the write time for little gain.
    bytes = await gzipAsync(bytes, { level: 1 });
  }
  await writeFileAtomic(path, bytes);
}
