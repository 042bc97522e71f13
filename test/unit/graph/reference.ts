/**
 * Test helpers: run a serialized model in onnxruntime-node, seeded random data, and naive N-d reference
 * implementations written from the operator definitions (no code shared with src/graph).
 */
import * as ort from "onnxruntime-node";

export interface Tensor {
  data: Float32Array;
  shape: number[];
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Deterministic uniform values in [lo, hi). */
export function random(shape: readonly number[], seed = 1, lo = -1, hi = 1): Tensor {
  let s = seed >>> 0 || 1;
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    data[i] = lo + (hi - lo) * (s / 4294967296);
  }
  return { data, shape: [...shape] };
}

export interface RunResult {
  data: Float32Array | BigInt64Array | Uint8Array;
  dims: number[];
}

export async function runModel(
  bytes: Uint8Array,
  feeds: Record<string, Tensor>,
  optimization: "disabled" | "basic" | "extended" | "all" = "all",
): Promise<Record<string, RunResult>> {
  const session = await ort.InferenceSession.create(bytes, {
    logSeverityLevel: 3,
    graphOptimizationLevel: optimization,
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor("float32", t.data, t.shape);
    }
    const out = await session.run(inputs);
    const result: Record<string, RunResult> = {};
    for (const [name, t] of Object.entries(out)) {
      result[name] = { data: t.data as RunResult["data"], dims: [...t.dims] };
    }
    return result;
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`length ${a.length} vs ${b.length}`);
  }
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
  }
  return m;
}

function rowMajor(shape: readonly number[]): number[] {
  const st = Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) {
    st[i] = st[i + 1] * shape[i + 1]!;
  }
  return st;
}

/** All index tuples of a shape, in row-major order. */
function* indices(shape: readonly number[]): Generator<number[]> {
  const total = size(shape);
  const idx = Array(shape.length).fill(0);
  for (let n = 0; n < total; n++) {
    yield idx;
    for (let a = shape.length - 1; a >= 0; a--) {
      idx[a]++;
      if (idx[a] < shape[a]!) {
        break;
      }
      idx[a] = 0;
    }
  }
}

export interface WindowArgs {
  strides: number[];
  pads: number[]; // begin..., end...
  dilations: number[];
}

/** Cross-correlation as in ONNX Conv / torch.nn.ConvNd (groups = 1). */
export function conv(x: Tensor, w: Tensor, b: Float32Array | undefined, a: WindowArgs): Tensor {
  const [N, C] = x.shape as [number, number];
  const [M, Cw] = w.shape as [number, number];
  if (Cw !== C) {
    throw new Error("reference conv: groups must be 1");
  }
  const sp = x.shape.slice(2);
  const k = w.shape.slice(2);
  const d = sp.length;
  const outSp = sp.map(
    (s, i) => Math.floor((s + a.pads[i]! + a.pads[i + d]! - a.dilations[i]! * (k[i]! - 1) - 1) / a.strides[i]!) + 1,
  );
  const outShape = [N, M, ...outSp];
  const out = new Float32Array(size(outShape));
  const xs = rowMajor(x.shape);
  const ws = rowMajor(w.shape);
  let o = 0;
  for (const [n, m, ...pos] of indices(outShape)) {
    let acc = b ? b[m!]! : 0;
    for (let c = 0; c < C; c++) {
      for (const kk of indices(k)) {
        let xi = n! * xs[0]! + c * xs[1]!;
        let inside = true;
        for (let i = 0; i < d; i++) {
          const p = pos[i]! * a.strides[i]! - a.pads[i]! + kk[i]! * a.dilations[i]!;
          if (p < 0 || p >= sp[i]!) {
            inside = false;
            break;
          }
          xi += p * xs[i + 2]!;
        }
        if (!inside) {
          continue;
        }
        let wi = m! * ws[0]! + c * ws[1]!;
        for (let i = 0; i < d; i++) {
          wi += kk[i]! * ws[i + 2]!;
        }
        acc += x.data[xi]! * w.data[wi]!;
      }
    }
    out[o++] = acc;
  }
  return { data: out, shape: outShape };
}

/** Transposed convolution by scattering each input element (torch.nn.ConvTransposeNd, groups = 1). */
export function convTranspose(
  x: Tensor,
  w: Tensor,
  b: Float32Array | undefined,
  a: WindowArgs & { outputPadding: number[] },
): Tensor {
  const N = x.shape[0]!;
  const M = w.shape[1]!;
  const sp = x.shape.slice(2);
  const k = w.shape.slice(2);
  const d = sp.length;
  const outSp = sp.map(
    (s, i) =>
      a.strides[i]! * (s - 1) + a.outputPadding[i]! + a.dilations[i]! * (k[i]! - 1) + 1 - a.pads[i]! - a.pads[i + d]!,
  );
  const outShape = [N, M, ...outSp];
  const out = new Float32Array(size(outShape));
  const os = rowMajor(outShape);
  const ws = rowMajor(w.shape);
  const xs = rowMajor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      for (const pos of indices(outSp)) {
        let oi = n * os[0]! + m * os[1]!;
        for (let i = 0; i < d; i++) {
          oi += pos[i]! * os[i + 2]!;
        }
        out[oi] = b ? b[m]! : 0;
      }
    }
  }
  for (const [n, c, ...pos] of indices(x.shape)) {
    const xv = x.data[n! * xs[0]! + c! * xs[1]! + pos.reduce((acc, p, i) => acc + p * xs[i + 2]!, 0)]!;
    for (const kk of indices(k)) {
      let inside = true;
      let oSp = 0;
      for (let i = 0; i < d; i++) {
        const p = pos[i]! * a.strides[i]! - a.pads[i]! + kk[i]! * a.dilations[i]!;
        if (p < 0 || p >= outSp[i]!) {
          inside = false;
          break;
        }
        oSp += p * os[i + 2]!;
      }
      if (!inside) {
        continue;
      }
      for (let m = 0; m < M; m++) {
        let wi = c! * ws[0]! + m * ws[1]!;
        for (let i = 0; i < d; i++) {
          wi += kk[i]! * ws[i + 2]!;
        }
        out[n! * os[0]! + m * os[1]! + oSp]! += xv * w.data[wi]!;
      }
    }
  }
  return { data: out, shape: outShape };
}

/** Per (n, c): (x - mean) / sqrt(biased var + eps) * scale + bias, accumulated in float64. */
export function instanceNorm(x: Tensor, scale: ArrayLike<number>, bias: ArrayLike<number>, eps = 1e-5): Tensor {
  const [N, C] = x.shape as [number, number];
  const inner = size(x.shape.slice(2));
  const out = new Float32Array(x.data.length);
  for (let nc = 0; nc < N * C; nc++) {
    const c = nc % C;
    const base = nc * inner;
    let mean = 0;
    for (let i = 0; i < inner; i++) {
      mean += x.data[base + i]!;
    }
    mean /= inner;
    let v = 0;
    for (let i = 0; i < inner; i++) {
      v += (x.data[base + i]! - mean) ** 2;
    }
    v /= inner;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < inner; i++) {
      out[base + i] = (x.data[base + i]! - mean) * inv * scale[c]! + bias[c]!;
    }
  }
  return { data: out, shape: [...x.shape] };
}

export function maxPool(x: Tensor, kernel: number[], a: WindowArgs): Tensor {
  const [N, C] = x.shape as [number, number];
  const sp = x.shape.slice(2);
  const d = sp.length;
  const outSp = sp.map(
    (s, i) =>
      Math.floor((s + a.pads[i]! + a.pads[i + d]! - a.dilations[i]! * (kernel[i]! - 1) - 1) / a.strides[i]!) + 1,
  );
  const outShape = [N, C, ...outSp];
  const out = new Float32Array(size(outShape));
  const xs = rowMajor(x.shape);
  let o = 0;
  for (const [n, c, ...pos] of indices(outShape)) {
    let best = Number.NEGATIVE_INFINITY;
    for (const kk of indices(kernel)) {
      let xi = n! * xs[0]! + c! * xs[1]!;
      let inside = true;
      for (let i = 0; i < d; i++) {
        const p = pos[i]! * a.strides[i]! - a.pads[i]! + kk[i]! * a.dilations[i]!;
        if (p < 0 || p >= sp[i]!) {
          inside = false;
          break;
        }
        xi += p * xs[i + 2]!;
      }
      if (inside) {
        best = Math.max(best, x.data[xi]!);
      }
    }
    out[o++] = best;
  }
  return { data: out, shape: outShape };
}

/** Softmax over axis 1 of [N, C, ...]. */
export function softmaxChannels(x: Tensor): Tensor {
  const [N, C] = x.shape as [number, number];
  const inner = size(x.shape.slice(2));
  const out = new Float32Array(x.data.length);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < inner; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < C; c++) {
        max = Math.max(max, x.data[(n * C + c) * inner + i]!);
      }
      let sum = 0;
      for (let c = 0; c < C; c++) {
        sum += Math.exp(x.data[(n * C + c) * inner + i]! - max);
      }
      for (let c = 0; c < C; c++) {
        out[(n * C + c) * inner + i] = Math.exp(x.data[(n * C + c) * inner + i]! - max) / sum;
      }
    }
  }
  return { data: out, shape: [...x.shape] };
}

export function concatChannels(parts: readonly Tensor[]): Tensor {
  const N = parts[0]!.shape[0]!;
  const inner = size(parts[0]!.shape.slice(2));
  const C = parts.reduce((acc, p) => acc + p.shape[1]!, 0);
  const out = new Float32Array(N * C * inner);
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (const p of parts) {
      const block = p.shape[1]! * inner;
      out.set(p.data.subarray(n * block, (n + 1) * block), o);
      o += block;
    }
  }
  return { data: out, shape: [N, C, ...parts[0]!.shape.slice(2)] };
}

/** Nearest-neighbour upsampling by an integer factor with PyTorch's rule: src = floor(dst / scale). */
export function resizeNearest(x: Tensor, scale: number): Tensor {
  const outShape = [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map((s) => s * scale)];
  const out = new Float32Array(size(outShape));
  const xs = rowMajor(x.shape);
  let o = 0;
  for (const [n, c, ...pos] of indices(outShape)) {
    let xi = n! * xs[0]! + c! * xs[1]!;
    pos.forEach((p, i) => {
      xi += Math.floor(p / scale) * xs[i + 2]!;
    });
    out[o++] = x.data[xi]!;
  }
  return { data: out, shape: outShape };
}

/** PReLU with one shared slope. */
export function prelu(x: Tensor, slope: number): Tensor {
  return { data: x.data.map((v) => (v >= 0 ? v : v * slope)), shape: [...x.shape] };
}

/** Bilinear resize of [N, C, H, W] with align_corners=True: src = dst * (in - 1) / (out - 1). */
export function resizeBilinearAlignCorners(x: Tensor, outH: number, outW: number): Tensor {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const out = new Float32Array(N * C * outH * outW);
  const src = (o: number, n: number, size: number) => (size === 1 ? 0 : (o * (n - 1)) / (size - 1));
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < outH; i++) {
      const y = src(i, H, outH);
      const y0 = Math.floor(y);
      const y1 = Math.min(y0 + 1, H - 1);
      for (let j = 0; j < outW; j++) {
        const xx = src(j, W, outW);
        const x0 = Math.floor(xx);
        const x1 = Math.min(x0 + 1, W - 1);
        const at = (r: number, c: number) => x.data[(nc * H + r) * W + c]!;
        const top = at(y0, x0) * (1 - (xx - x0)) + at(y0, x1) * (xx - x0);
        const bottom = at(y1, x0) * (1 - (xx - x0)) + at(y1, x1) * (xx - x0);
        out[o++] = top * (1 - (y - y0)) + bottom * (y - y0);
      }
    }
  }
  return { data: out, shape: [N, C, outH, outW] };
}
