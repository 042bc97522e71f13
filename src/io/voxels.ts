import { endianness } from "node:os";
import { InvalidImageError } from "../errors.js";

/**
 * Typed-array helpers shared by the NRRD, DICOM and 2D readers and writers: bytes in either byte order to
 * the typed array of a voxel type and back, and axis permutation of a volume stored fastest axis first.
 */

export const HOST_LITTLE_ENDIAN = endianness() === "LE";

export type VoxelArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

interface VoxelCtor {
  new (length: number): VoxelArray;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): VoxelArray;
  readonly BYTES_PER_ELEMENT: number;
}

const CTORS: Record<string, VoxelCtor> = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** Bytes per element of a scalar voxel type ("uint8", "int16" ... "int64", "float64"), or undefined. */
export function dtypeBytes(dtype: string): number | undefined {
  if (dtype === "int64" || dtype === "uint64") {
    return 8;
  }
  return CTORS[dtype]?.BYTES_PER_ELEMENT;
}

/** A zero-filled typed array for a scalar voxel type; int64/uint64 get a Float64Array. */
export function allocVoxels(dtype: string, length: number): VoxelArray {
  const ctor = CTORS[dtype] ?? (dtype === "int64" || dtype === "uint64" ? Float64Array : undefined);
  if (!ctor) {
    throw new InvalidImageError(`unsupported voxel type ${JSON.stringify(dtype)}`, { dtype });
  }
  return new ctor(length);
}

/** Reverses the byte order of every `size`-byte element, in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size <= 1) {
    return;
  }
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo]!;
      bytes[lo] = bytes[hi]!;
      bytes[hi] = t;
    }
  }
}

/**
 * Copies `count` elements of `dtype` from `bytes` (stored in the given byte order) into a fresh typed
 * array in host order. int64/uint64 become a Float64Array (exact up to 2^53).
 */
export function voxelsFromBytes(bytes: Uint8Array, dtype: string, count: number, littleEndian: boolean): VoxelArray {
  const size = dtypeBytes(dtype);
  if (size === undefined) {
    throw new InvalidImageError(`unsupported voxel type ${JSON.stringify(dtype)}`, { dtype });
  }
  if (bytes.length < count * size) {
    throw new InvalidImageError(`expected ${count * size} bytes of ${dtype} voxels, got ${bytes.length}`);
  }
  const copy = new Uint8Array(count * size);
  copy.set(bytes.subarray(0, count * size));
  if (littleEndian !== HOST_LITTLE_ENDIAN) {
    swapBytes(copy, size);
  }
  if (dtype === "int64" || dtype === "uint64") {
    const big =
      dtype === "int64" ? new BigInt64Array(copy.buffer, 0, count) : new BigUint64Array(copy.buffer, 0, count);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = Number(big[i]!);
    }
    return out;
  }
  const ctor = CTORS[dtype]!;
  return new ctor(copy.buffer, 0, count);
}

/**
 * The bytes of `data` as elements of `dtype` in the given byte order. Integer types round values (and
 * wrap, as typed arrays do, when out of range: callers check ranges first where it matters).
 */
export function voxelsToBytes(data: ArrayLike<number>, dtype: string, littleEndian = true): Uint8Array {
  const size = dtypeBytes(dtype);
  if (size === undefined) {
    throw new InvalidImageError(`unsupported voxel type ${JSON.stringify(dtype)}`, { dtype });
  }
  let bytes: Uint8Array;
  if (dtype === "int64" || dtype === "uint64") {
    const out = dtype === "int64" ? new BigInt64Array(data.length) : new BigUint64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      out[i] = BigInt(Math.round(data[i]!));
    }
    bytes = new Uint8Array(out.buffer);
  } else {
    const ctor = CTORS[dtype]!;
    let typed: VoxelArray;
    if (data instanceof ctor) {
      typed = data as VoxelArray;
    } else {
      typed = new ctor(data.length);
      const integer = !dtype.startsWith("float");
      for (let i = 0; i < data.length; i++) {
        typed[i] = integer ? Math.round(data[i]!) : data[i]!;
      }
    }
    bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  if (littleEndian !== HOST_LITTLE_ENDIAN && size > 1) {
    bytes = bytes.slice();
    swapBytes(bytes, size);
  }
  return bytes;
}

/** The typed array for `dtype` holding `data`: `data` itself when it already is one, else a copy. */
export function asVoxelArray(data: ArrayLike<number>, dtype: string): VoxelArray {
  const ctor = CTORS[dtype];
  if (ctor && data instanceof ctor) {
    return data as VoxelArray;
  }
  const out = allocVoxels(dtype, data.length);
  for (let i = 0; i < data.length; i++) {
    out[i] = data[i]!;
  }
  return out;
}

/**
 * Reorders the axes of an array stored fastest axis first: output axis i is input axis `order[i]`.
 * Returns a new array of the same type.
 */
export function permuteAxes<T extends VoxelArray>(data: T, shape: readonly number[], order: readonly number[]): T {
  const n = shape.length;
  const inStrides: number[] = [];
  let stride = 1;
  for (let i = 0; i < n; i++) {
    inStrides.push(stride);
    stride *= shape[i]!;
  }
  const outShape = order.map((axis) => shape[axis]!);
  const steps = order.map((axis) => inStrides[axis]!);
  const out = new (data.constructor as new (length: number) => T)(data.length);
  const counter = new Array<number>(n).fill(0);
  let src = 0;
  for (let dst = 0; dst < data.length; dst++) {
    out[dst] = data[src]!;
    // Odometer over the output axes, fastest first.
    for (let axis = 0; axis < n; axis++) {
      src += steps[axis]!;
      if (++counter[axis]! < outShape[axis]!) {
        break;
      }
      src -= steps[axis]! * outShape[axis]!;
      counter[axis] = 0;
    }
  }
  return out;
}

/** Product of a shape's sizes. */
export const prod = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A copy of a 4x4 affine when it is one (finite numbers, at least 3 rows of 4), with the last row [0,0,0,1]. */
export function validAffine(affine: unknown): number[][] | undefined {
  if (!Array.isArray(affine) || affine.length < 3) {
    return undefined;
  }
  const rows = affine.slice(0, 3);
  for (const row of rows) {
    if (
      !Array.isArray(row) ||
      row.length < 4 ||
      row.slice(0, 4).some((x) => typeof x !== "number" || !Number.isFinite(x))
    ) {
      return undefined;
    }
  }
  return [...(rows as number[][]).map((row) => row.slice(0, 4)), [0, 0, 0, 1]];
}

/** diag(spacing[0..2], 1), with 1 for a missing or unusable spacing. */
export function diagonalAffine(spacing: readonly number[]): number[][] {
  const s = [0, 1, 2].map((i) => {
    const x = spacing[i];
    return x !== undefined && Number.isFinite(x) && x > 0 ? x : 1;
  });
  return [
    [s[0]!, 0, 0, 0],
    [0, s[1]!, 0, 0],
    [0, 0, s[2]!, 0],
    [0, 0, 0, 1],
  ];
}
