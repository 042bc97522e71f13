/**
 * Voxel kernels behind the transforms. They work on `channels` contiguous blocks of a 3D grid `[X, Y, Z]`
 * stored x-fastest (1D and 2D grids are padded with trailing 1s, which does not change the memory), and
 * compute in float64, storing float32.
 */

export type Shape3 = [number, number, number];

function strides(shape: Shape3): Shape3 {
  return [1, shape[0], shape[0] * shape[1]];
}

function volume(shape: Shape3): number {
  return shape[0] * shape[1] * shape[2];
}

// ---------------------------------------------------------------------------------------------------
// Crop and pad

/** numpy/torch padding modes. "replicate" = "edge", "circular" = "wrap"; torch's "reflect" = numpy's. */
export type PadMode = "constant" | "edge" | "replicate" | "reflect" | "symmetric" | "wrap" | "circular";

export const PAD_MODES: readonly PadMode[] = [
  "constant",
  "edge",
  "replicate",
  "reflect",
  "symmetric",
  "wrap",
  "circular",
];

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** Where padded index `i` reads from in an axis of length `n`; -1 for a constant fill. */
function padIndex(i: number, n: number, mode: PadMode): number {
  if (i >= 0 && i < n) {
    return i;
  }
  if (n === 0) {
    return -1;
  }
  switch (mode) {
    case "constant":
      return -1;
    case "edge":
    case "replicate":
      return i < 0 ? 0 : n - 1;
    case "reflect": {
      if (n === 1) {
        return 0;
      }
      const period = 2 * (n - 1);
      const k = mod(i, period);
      return k >= n ? period - k : k;
    }
    case "symmetric": {
      const k = mod(i, 2 * n);
      return k >= n ? 2 * n - 1 - k : k;
    }
    case "wrap":
    case "circular":
      return mod(i, n);
  }
}

/**
 * Crop and/or pad: output voxel `v` takes input voxel `v + start` (so a negative `start` pads before, an
 * output larger than the input pads after); outside the input the value follows `mode` (`value` for
 * "constant").
 */
export function cropPad(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  start: readonly number[],
  outShape: Shape3,
  mode: PadMode = "constant",
  value = 0,
): Float32Array {
  const nIn = volume(inShape);
  const nOut = volume(outShape);
  const out = new Float32Array(channels * nOut);
  const st = strides(inShape);
  const maps = [0, 1, 2].map((a) => {
    const m = new Int32Array(outShape[a]!);
    for (let i = 0; i < m.length; i++) {
      const j = padIndex(i + (start[a] ?? 0), inShape[a]!, mode);
      m[i] = j < 0 ? -1 : j * st[a]!;
    }
    return m;
  }) as [Int32Array, Int32Array, Int32Array];
  const [mx, my, mz] = maps;
  for (let c = 0; c < channels; c++) {
    const inBase = c * nIn;
    let o = c * nOut;
    for (let z = 0; z < outShape[2]; z++) {
      const iz = mz[z]!;
      for (let y = 0; y < outShape[1]; y++) {
        const iy = my[y]!;
        const rowOk = iz >= 0 && iy >= 0;
        const rowBase = inBase + iz + iy;
        for (let x = 0; x < outShape[0]; x++) {
          const ix = mx[x]!;
          out[o++] = rowOk && ix >= 0 ? src[rowBase + ix]! : value;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Axis permutation and flips

/**
 * Output axis `j` is input axis `perm[j]`, reversed when `flip[j]`. Returns the data and output shape.
 */
export function permuteFlip(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  perm: readonly number[],
  flip: readonly boolean[],
): { data: Float32Array; shape: Shape3 } {
  const st = strides(inShape);
  const outShape = [0, 1, 2].map((j) => inShape[perm[j]!]!) as Shape3;
  const step = [0, 1, 2].map((j) => (flip[j] ? -1 : 1) * st[perm[j]!]!);
  let offset = 0;
  for (let j = 0; j < 3; j++) {
    if (flip[j]) {
      offset += (inShape[perm[j]!]! - 1) * st[perm[j]!]!;
    }
  }
  const n = volume(inShape);
  const out = new Float32Array(channels * n);
  const [sx, sy, sz] = step as Shape3;
  for (let c = 0; c < channels; c++) {
    let o = c * n;
    const base = c * n + offset;
    for (let z = 0; z < outShape[2]; z++) {
      for (let y = 0; y < outShape[1]; y++) {
        let i = base + y * sy + z * sz;
        for (let x = 0; x < outShape[0]; x++) {
          out[o++] = src[i]!;
          i += sx;
        }
      }
    }
  }
  return { data: out, shape: outShape };
}

// ---------------------------------------------------------------------------------------------------
// Affine resampling (MONAI SpatialResample: grid_sample with align_corners=False in voxel terms)

export type GridSampleMode = "bilinear" | "nearest";
export type GridSamplePadMode = "border" | "zeros" | "reflection";

/** numpy's rint / torch's nearbyint: round half to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** grid_sample's reflection (align_corners=False: about -0.5 and n-0.5), then clipped to [0, n-1]. */
function reflectCoord(x: number, n: number): number {
  if (n <= 1) {
    return 0;
  }
  const span = n;
  const d = Math.abs(x + 0.5);
  const extra = d % span;
  const flips = Math.floor(d / span);
  const y = flips % 2 === 0 ? extra - 0.5 : span - extra - 0.5;
  return Math.min(Math.max(y, 0), n - 1);
}

/**
 * `out[v] = interpolate(src, xform @ v)`: `xform` (4x4, row-major) maps output voxel indices to input voxel
 * indices. "bilinear" is (tri)linear; "border" clamps coordinates into the grid, "zeros" reads 0 outside,
 * "reflection" mirrors.
 */
export function resampleAffine(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  xform: number[][],
  outShape: Shape3,
  mode: GridSampleMode = "bilinear",
  padding: GridSamplePadMode = "border",
): Float32Array {
  const [X, Y, Z] = inShape;
  const nIn = volume(inShape);
  const nOut = volume(outShape);
  const out = new Float32Array(channels * nOut);
  const m = xform;
  const row = (i: number) => m[i]!;
  const [r0, r1, r2] = [row(0), row(1), row(2)];
  const fix = (v: number, n: number) => (padding === "border" ? Math.min(Math.max(v, 0), n - 1) : reflectCoord(v, n));
  let o = 0;
  for (let z = 0; z < outShape[2]; z++) {
    for (let y = 0; y < outShape[1]; y++) {
      for (let x = 0; x < outShape[0]; x++, o++) {
        let px = r0[0]! * x + r0[1]! * y + r0[2]! * z + r0[3]!;
        let py = r1[0]! * x + r1[1]! * y + r1[2]! * z + r1[3]!;
        let pz = r2[0]! * x + r2[1]! * y + r2[2]! * z + r2[3]!;
        if (padding !== "zeros") {
          px = fix(px, X);
          py = fix(py, Y);
          pz = fix(pz, Z);
        }
        if (mode === "nearest") {
          const ix = rint(px);
          const iy = rint(py);
          const iz = rint(pz);
          if (ix < 0 || iy < 0 || iz < 0 || ix >= X || iy >= Y || iz >= Z) {
            continue; // zeros padding
          }
          const i = ix + X * (iy + Y * iz);
          for (let c = 0; c < channels; c++) {
            out[c * nOut + o] = src[c * nIn + i]!;
          }
          continue;
        }
        const x0 = Math.floor(px);
        const y0 = Math.floor(py);
        const z0 = Math.floor(pz);
        const fx = px - x0;
        const fy = py - y0;
        const fz = pz - z0;
        // the 8 corners with their weights; out-of-grid corners read zero
        for (let c = 0; c < channels; c++) {
          const base = c * nIn;
          let s = 0;
          for (let dz = 0; dz < 2; dz++) {
            const zz = z0 + dz;
            const wz = dz ? fz : 1 - fz;
            if (wz === 0 || zz < 0 || zz >= Z) {
              continue;
            }
            for (let dy = 0; dy < 2; dy++) {
              const yy = y0 + dy;
              const wy = dy ? fy : 1 - fy;
              if (wy === 0 || yy < 0 || yy >= Y) {
                continue;
              }
              const rowBase = base + X * (yy + Y * zz);
              for (let dx = 0; dx < 2; dx++) {
                const xx = x0 + dx;
                const wx = dx ? fx : 1 - fx;
                if (wx === 0 || xx < 0 || xx >= X) {
                  continue;
                }
                s += wx * wy * wz * src[rowBase + xx]!;
              }
            }
          }
          out[c * nOut + o] = s;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Separable resizing (torch.nn.functional.interpolate) and filtering

/**
 * torch's interpolate modes. "linear", "bilinear" and "trilinear" are all n-linear here (torch would pick the
 * one matching the rank); "area" is adaptive average pooling.
 */
export type InterpolateMode = "nearest" | "nearest-exact" | "linear" | "bilinear" | "trilinear" | "bicubic" | "area";

interface Taps {
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

function resizeTaps(inLen: number, outLen: number, mode: InterpolateMode, alignCorners: boolean | undefined): Taps {
  const starts: number[] = [0];
  const index: number[] = [];
  const weight: number[] = [];
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    switch (mode) {
      case "nearest": {
        index.push(Math.min(Math.floor(o * scale), inLen - 1));
        weight.push(1);
        break;
      }
      case "nearest-exact": {
        index.push(Math.min(Math.floor((o + 0.5) * scale), inLen - 1));
        weight.push(1);
        break;
      }
      case "area": {
        const s = Math.floor((o * inLen) / outLen);
        const e = Math.ceil(((o + 1) * inLen) / outLen);
        for (let i = s; i < e; i++) {
          index.push(i);
          weight.push(1 / (e - s));
        }
        break;
      }
      case "linear":
      case "bilinear":
      case "trilinear": {
        let srcPos: number;
        if (alignCorners) {
          srcPos = outLen > 1 ? (o * (inLen - 1)) / (outLen - 1) : 0;
        } else {
          srcPos = Math.max((o + 0.5) * scale - 0.5, 0);
        }
        const i0 = Math.min(Math.floor(srcPos), inLen - 1);
        const i1 = Math.min(i0 + 1, inLen - 1);
        const l1 = srcPos - i0;
        index.push(i0);
        weight.push(1 - l1);
        if (l1 > 0 && i1 !== i0) {
          index.push(i1);
          weight.push(l1);
        } else if (l1 > 0) {
          weight[weight.length - 1] = 1;
        }
        break;
      }
      default:
        throw new Error(`interpolation mode ${JSON.stringify(mode)} is not supported here`);
    }
    starts.push(index.length);
  }
  return { start: Int32Array.from(starts), index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

/** Applies per-output-index taps along one axis. */
function applyTaps(
  src: Float32Array,
  channels: number,
  shape: Shape3,
  axis: number,
  outLen: number,
  taps: Taps,
): { data: Float32Array; shape: Shape3 } {
  const outShape = [...shape] as Shape3;
  outShape[axis] = outLen;
  const inSt = strides(shape);
  const outSt = strides(outShape);
  const nIn = volume(shape);
  const nOut = volume(outShape);
  const out = new Float32Array(channels * nOut);
  const others = [0, 1, 2].filter((a) => a !== axis) as [number, number];
  const [a, b] = others;
  const sIn = inSt[axis]!;
  const sOut = outSt[axis]!;
  for (let c = 0; c < channels; c++) {
    for (let j = 0; j < shape[b]!; j++) {
      for (let i = 0; i < shape[a]!; i++) {
        const inBase = c * nIn + i * inSt[a]! + j * inSt[b]!;
        const outBase = c * nOut + i * outSt[a]! + j * outSt[b]!;
        for (let o = 0; o < outLen; o++) {
          let s = 0;
          for (let t = taps.start[o]!; t < taps.start[o + 1]!; t++) {
            s += taps.weight[t]! * src[inBase + taps.index[t]! * sIn]!;
          }
          out[outBase + o * sOut] = s;
        }
      }
    }
  }
  return { data: out, shape: outShape };
}

/** torch `interpolate(size=outShape, mode, align_corners)` of each channel, one axis at a time. */
export function resize(
  src: Float32Array,
  channels: number,
  inShape: Shape3,
  outShape: Shape3,
  mode: InterpolateMode,
  alignCorners?: boolean,
): Float32Array {
  let data = src;
  let shape = [...inShape] as Shape3;
  for (let axis = 0; axis < 3; axis++) {
    if (shape[axis] !== outShape[axis]) {
      if (shape[axis] === 0) {
        throw new Error(`cannot resize an empty axis to ${outShape[axis]}`);
      }
      const taps = resizeTaps(shape[axis]!, outShape[axis]!, mode, alignCorners);
      ({ data, shape } = applyTaps(data, channels, shape, axis, outShape[axis]!, taps));
    }
  }
  return data === src ? src.slice() : data;
}

function erf(x: number): number {
  // Maclaurin series near 0, the erfc continued fraction (Lentz) further out; ~1e-13 absolute error.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) {
        break;
      }
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = D === 0 ? 1e-300 : 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) {
      break;
    }
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

/**
 * MONAI's `gaussian_1d(sigma, truncated=4.0, approx="erf", normalize=False)`: the integral of the unit
 * Gaussian over each voxel `[x-0.5, x+0.5]`, `x` in `[-tail, tail]`, `tail = int(max(4 sigma, 0.5) + 0.5)`.
 */
export function gaussianKernel1d(sigma: number, truncated = 4): Float64Array {
  const tail = Math.floor(Math.max(Math.abs(sigma) * truncated, 0.5) + 0.5);
  const t = Math.SQRT1_2 / Math.abs(sigma);
  const out = new Float64Array(2 * tail + 1);
  for (let i = 0; i < out.length; i++) {
    const x = i - tail;
    out[i] = Math.max(0.5 * (erf(t * (x + 0.5)) - erf(t * (x - 0.5))), 0);
  }
  return out;
}

/** Zero-padded "same" convolution of each channel with a symmetric 1D kernel along `axes`. */
export function convolveSeparable(
  src: Float32Array,
  channels: number,
  shape: Shape3,
  kernel: Float64Array,
  axes: readonly number[],
): Float32Array {
  let data = src;
  const tail = (kernel.length - 1) / 2;
  for (const axis of axes) {
    const n = shape[axis]!;
    const starts: number[] = [0];
    const index: number[] = [];
    const weight: number[] = [];
    for (let o = 0; o < n; o++) {
      for (let k = -tail; k <= tail; k++) {
        const i = o + k;
        if (i >= 0 && i < n) {
          index.push(i);
          weight.push(kernel[k + tail]!);
        }
      }
      starts.push(index.length);
    }
    const taps = { start: Int32Array.from(starts), index: Int32Array.from(index), weight: Float64Array.from(weight) };
    data = applyTaps(data, channels, shape, axis, n, taps).data;
  }
  return data === src ? src.slice() : data;
}

// ---------------------------------------------------------------------------------------------------
// Connected components

/**
 * Neighbour offsets of a `rank`-D grid for skimage's `connectivity` (1 = faces; `rank` = full, 8/26; an
 * offset is a neighbour when at most `connectivity` of its coordinates are nonzero).
 */
function neighbourOffsets(rank: number, connectivity: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const r = (a: number) => (a < rank ? [-1, 0, 1] : [0]);
  for (const dz of r(2)) {
    for (const dy of r(1)) {
      for (const dx of r(0)) {
        const nz = (dx !== 0 ? 1 : 0) + (dy !== 0 ? 1 : 0) + (dz !== 0 ? 1 : 0);
        if (nz > 0 && nz <= connectivity) {
          out.push([dx, dy, dz]);
        }
      }
    }
  }
  return out;
}

/**
 * Labels the connected components of `mask` (nonzero = foreground): component ids 1..n in scan order
 * (x fastest), with their voxel counts (`sizes[id - 1]`).
 */
export function labelComponents(
  mask: Uint8Array,
  shape: Shape3,
  rank: number,
  connectivity?: number,
): { labels: Int32Array; sizes: number[] } {
  const [X, Y, Z] = shape;
  const conn = connectivity === undefined || connectivity === null ? rank : Math.min(Math.max(connectivity, 1), rank);
  const offsets = neighbourOffsets(rank, conn);
  const labels = new Int32Array(mask.length);
  const sizes: number[] = [];
  const stack = new Int32Array(mask.length);
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start] !== 0) {
      continue;
    }
    next += 1;
    let top = 0;
    stack[top++] = start;
    labels[start] = next;
    let count = 0;
    while (top > 0) {
      const i = stack[--top]!;
      count += 1;
      const x = i % X;
      const y = Math.floor(i / X) % Y;
      const z = Math.floor(i / (X * Y));
      for (const [dx, dy, dz] of offsets) {
        const xx = x + dx;
        const yy = y + dy;
        const zz = z + dz;
        if (xx < 0 || yy < 0 || zz < 0 || xx >= X || yy >= Y || zz >= Z) {
          continue;
        }
        const j = xx + X * (yy + Y * zz);
        if (mask[j] && labels[j] === 0) {
          labels[j] = next;
          stack[top++] = j;
        }
      }
    }
    sizes.push(count);
  }
  return { labels, sizes };
}

/**
 * MONAI's `get_largest_connected_component_mask`: the `numComponents` largest components of `mask` (all of
 * it when it has no more components than that). Ties go to the component met first in scan order.
 */
export function largestComponentsMask(
  mask: Uint8Array,
  shape: Shape3,
  rank: number,
  connectivity?: number,
  numComponents = 1,
): Uint8Array {
  const { labels, sizes } = labelComponents(mask, shape, rank, connectivity);
  if (sizes.length <= numComponents) {
    return mask.map((v) => (v ? 1 : 0));
  }
  const order = sizes.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const keep = new Uint8Array(sizes.length + 1);
  for (const [, i] of order.slice(0, numComponents)) {
    keep[i + 1] = 1;
  }
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    out[i] = keep[labels[i]!]!;
  }
  return out;
}
