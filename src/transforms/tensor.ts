import type { Volume } from "../io/types.js";

/**
 * The tensor the transforms pass around: MONAI's `MetaTensor`, a channel-first array plus its geometry and
 * the record of invertible operations applied to it.
 *
 * Shape and memory layout. `shape` is `[C, X, Y(, Z)]` (channel first, spatial axes in the file's order), as
 * MONAI's. Each channel is one contiguous block of `X*Y*Z` values, and inside a block the FIRST spatial axis
 * varies fastest, as NIfTI stores it (`index = c*X*Y*Z + x + X*(y + Y*z)`). So a loaded volume needs no
 * copy, a 4D NIfTI `[X, Y, Z, T]` already is `T` contiguous channels, and `toVolume` writes back as is.
 * Right after `LoadImaged` (before `EnsureChannelFirstd`) a tensor has no channel axis (`[X, Y, Z]`, or
 * `[X, Y, Z, C]` for a 4D file) and the same memory: every spatial axis fastest-first, a channel axis slowest.
 *
 * Models exported from PyTorch expect C order (last axis fastest): `toCOrder` / `fromCOrder` convert.
 *
 * Treat `data` as read-only: transforms never write into an input's array, and an output may share its
 * input's array when the values do not change (a channel moved first, an orientation already right).
 */

/** A 4x4 voxel-to-world (RAS+) matrix, row-major. */
export type Affine = number[][];

/** One invertible operation recorded on a tensor (MONAI's `applied_operations` entry). */
export interface TraceItem {
  /** The transform that recorded it ("Spacingd", "Orientationd" ...); its inverse checks this. */
  className: string;
  /** The instance that recorded it (unique in the process); informational only. */
  id: number;
  /** Spatial shape before the operation. */
  origSize: number[];
  /** What the inverse needs: the affine before, boxes, interpolation mode ... (JSON-friendly). */
  extraInfo: Record<string, unknown>;
}

export interface MetaTensorInit {
  data: Float32Array | ArrayLike<number>;
  shape: number[];
  affine?: Affine;
  meta?: Record<string, unknown>;
  applied?: TraceItem[];
}

export function identityAffine(n = 4): Affine {
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === c ? 1 : 0)));
}

export function cloneAffine(affine: Affine): Affine {
  return affine.map((row) => [...row]);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
  }
  return n;
}

export class MetaTensor {
  /** Values, float32, in the layout described above. */
  readonly data: Float32Array;
  readonly shape: number[];
  /** 4x4 voxel-to-world matrix of the spatial axes (MONAI's `meta["affine"]`). */
  affine: Affine;
  /** Everything else MONAI keeps in `meta`: filename_or_obj, spatial_shape, original_affine, pixdim ... */
  meta: Record<string, unknown>;
  /** Invertible operations applied so far, oldest first (MONAI's `applied_operations`). */
  applied: TraceItem[];

  constructor(init: MetaTensorInit) {
    const shape = [...init.shape];
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`MetaTensor: bad shape [${shape.join(", ")}]`);
    }
    const data = init.data instanceof Float32Array ? init.data : Float32Array.from(init.data);
    if (data.length !== numel(shape)) {
      throw new Error(`MetaTensor: ${data.length} values do not fill shape [${shape.join(", ")}] (${numel(shape)})`);
    }
    this.data = data;
    this.shape = shape;
    this.affine = init.affine ? cloneAffine(init.affine) : identityAffine();
    this.meta = init.meta ?? {};
    this.applied = init.applied ? [...init.applied] : [];
  }

  /** Spatial shape of a channel-first tensor: `shape.slice(1)`. */
  get spatialShape(): number[] {
    return this.shape.slice(1);
  }

  /** Number of channels of a channel-first tensor: `shape[0]`. */
  get channels(): number {
    return this.shape[0] ?? 1;
  }

  /** Values per channel: the product of the spatial shape. */
  get channelSize(): number {
    return numel(this.shape.slice(1));
  }

  /** Channel `c` of a channel-first tensor (a view, no copy). */
  channel(c: number): Float32Array {
    const n = this.channelSize;
    return this.data.subarray(c * n, (c + 1) * n);
  }

  /**
   * A new tensor with other values and/or geometry that keeps this one's meta (shallow copy) and trace
   * (copied array): how a transform makes its output.
   */
  derive(init: Partial<MetaTensorInit> & { data: Float32Array | ArrayLike<number>; shape: number[] }): MetaTensor {
    return new MetaTensor({
      data: init.data,
      shape: init.shape,
      affine: init.affine ?? this.affine,
      meta: init.meta ?? { ...this.meta },
      applied: init.applied ?? this.applied,
    });
  }

  /** A deep copy (data, affine, meta one level deep, trace). */
  clone(): MetaTensor {
    return new MetaTensor({
      data: this.data.slice(),
      shape: this.shape,
      affine: this.affine,
      meta: { ...this.meta },
      applied: this.applied.map((t) => structuredClone(t)),
    });
  }
}

export function isMetaTensor(value: unknown): value is MetaTensor {
  return value instanceof MetaTensor;
}

/** The value at `key` as a MetaTensor, or a clear error naming the transform. */
export function tensorAt(d: Record<string, unknown>, key: string, transform: string): MetaTensor {
  const value = d[key];
  if (!(value instanceof MetaTensor)) {
    const what = value === undefined ? "nothing" : Array.isArray(value) ? "an array" : typeof value;
    throw new TypeError(`${transform}: data["${key}"] must be a MetaTensor (load it with LoadImaged), got ${what}`);
  }
  return value;
}

/** Pads a spatial shape of rank 1 to 3 with trailing 1s (the memory layout does not change). */
export function pad3(spatial: readonly number[]): [number, number, number] {
  if (spatial.length < 1 || spatial.length > 3) {
    throw new Error(`expected 1 to 3 spatial axes, got [${spatial.join(", ")}]`);
  }
  return [spatial[0] ?? 1, spatial[1] ?? 1, spatial[2] ?? 1];
}

/** The spatial shape of a channel-first tensor, checked to have 1 to 3 axes. */
export function spatialOf(t: MetaTensor, transform: string): number[] {
  const s = t.spatialShape;
  if (t.shape.length < 2 || s.length > 3) {
    throw new Error(
      `${transform}: expected a channel-first tensor [C, X(, Y, Z)] with 1 to 3 spatial axes, got shape [${t.shape.join(", ")}] (add EnsureChannelFirstd)`,
    );
  }
  return s;
}

/** Voxel sizes of an affine: the norms of its first `r` columns. */
export function affineToSpacing(affine: Affine, r = 3): number[] {
  const out: number[] = [];
  for (let c = 0; c < r; c++) {
    let s = 0;
    for (let row = 0; row < Math.min(r, affine.length - 1); row++) {
      const v = affine[row]?.[c] ?? 0;
      s += v * v;
    }
    out.push(Math.sqrt(s));
  }
  return out;
}

/** Side of the square tiles `reverseAxes3` copies through (16 floats = one 64-byte cache line). */
const TILE = 16;

/**
 * dst[(c * B + b) * A + a] = src[(a * B + b) * C + c] (offsets added): the C-order array [A, B, C] as the
 * C-order array [C, B, A]. Copied in TILE x TILE tiles of the (a, c) plane, so that both the reads and the
 * strided writes stay within a few cache lines at a time, where a plain loop misses the cache on every strided
 * access (bench/infer times both directions on Colin27: the toCOrder / fromCOrder rows).
 */
function reverseAxes3(
  src: ArrayLike<number>,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  A: number,
  B: number,
  C: number,
): void {
  const srcStrideA = B * C;
  const dstStrideC = B * A;
  for (let b = 0; b < B; b++) {
    for (let a0 = 0; a0 < A; a0 += TILE) {
      const a1 = Math.min(a0 + TILE, A);
      for (let c0 = 0; c0 < C; c0 += TILE) {
        const c1 = Math.min(c0 + TILE, C);
        for (let a = a0; a < a1; a++) {
          const s = srcOff + a * srcStrideA + b * C;
          let o = dstOff + c0 * dstStrideC + b * A + a;
          for (let c = c0; c < c1; c++) {
            dst[o] = src[s + c] as number;
            o += dstStrideC;
          }
        }
      }
    }
  }
}

/**
 * A `[C, X, Y, Z]` tensor as a C-order array (last axis fastest), the layout of a PyTorch/ONNX input once a
 * batch axis of 1 is put in front.
 */
export function toCOrder(t: MetaTensor): Float32Array {
  const [X, Y, Z] = pad3(t.spatialShape);
  const C = t.channels;
  const out = new Float32Array(t.data.length);
  const n = X * Y * Z;
  for (let c = 0; c < C; c++) {
    // Each channel, x fastest, is the C-order array [Z, Y, X]; reversed, [X, Y, Z].
    reverseAxes3(t.data, c * n, out, c * n, Z, Y, X);
  }
  return out;
}

/**
 * The inverse of `toCOrder`: C-order values of shape `[C, X, Y(, Z)]` (e.g. a model output without its batch
 * axis) as a MetaTensor, taking geometry, meta and trace from `like` when given.
 */
export function fromCOrder(data: ArrayLike<number>, shape: number[], like?: MetaTensor): MetaTensor {
  const [X, Y, Z] = pad3(shape.slice(1));
  const C = shape[0] ?? 1;
  const n = X * Y * Z;
  if (data.length !== C * n) {
    throw new Error(`fromCOrder: ${data.length} values do not fill shape [${shape.join(", ")}]`);
  }
  const out = new Float32Array(C * n);
  for (let c = 0; c < C; c++) {
    reverseAxes3(data, c * n, out, c * n, X, Y, Z);
  }
  return like ? like.derive({ data: out, shape }) : new MetaTensor({ data: out, shape });
}

/**
 * A channel-first tensor as a Volume for `writeNifti`: one channel becomes a 3D (or 2D) volume, several
 * channels a 4D `[X, Y, Z, C]` volume (the same memory). `dtype` (default "float32") is what the writer stores;
 * it rounds for integer types.
 */
export function toVolume(t: MetaTensor, dtype = "float32"): Volume {
  const spatial = t.shape.length >= 2 ? t.spatialShape : [...t.shape];
  const shape = t.shape.length >= 2 && t.channels > 1 ? [...pad3(spatial), t.channels] : spatial;
  const r = Math.min(spatial.length, 3);
  const spacing = affineToSpacing(t.affine, 3).slice(0, r);
  return {
    data: t.data,
    shape,
    spacing,
    affine: cloneAffine(t.affine),
    dtype,
    meta: { ...t.meta },
  };
}
