/**
 * The arithmetic of MONAI Label's scoring methods, on flat voxel arrays (fastest axis first, as io/ stores
 * volumes), kept free of I/O so that each formula is tested by hand.
 */
type Voxels = ArrayLike<number>;

function sameLength(y: Voxels, yPred: Voxels) {
  if (y.length !== yPred.length) {
    throw new RangeError(`dice: ${y.length} voxels against ${yPred.length}`);
  }
}

/** MONAI's Dice over raw values: 2·Σ(y·ŷ) / (Σy + Σŷ), or 1 when both are empty. */
export function dice(y: Voxels, yPred: Voxels): number {
  sameLength(y, yPred);
  let inter = 0;
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    const a = y[i] as number;
    const b = yPred[i] as number;
    inter += a * b;
    sum += a + b;
  }
  return sum === 0 ? 1 : (2 * inter) / sum;
}

/**
 * Dice per label value (every value > 0 found in either volume): 2·|y=v ∧ ŷ=v| / (|y=v| + |ŷ=v|). For a
 * binary mask it equals `dice`; for a multi-label map it is what `dice` (MONAI's, value-weighted) is not.
 */
export function dicePerLabel(y: Voxels, yPred: Voxels): Map<number, number> {
  sameLength(y, yPred);
  const counts = new Map<number, [number, number, number]>();
  const at = (v: number) => {
    let c = counts.get(v);
    if (!c) {
      c = [0, 0, 0];
      counts.set(v, c);
    }
    return c;
  };
  for (let i = 0; i < y.length; i++) {
    const a = y[i] as number;
    const b = yPred[i] as number;
    if (a > 0) {
      at(a)[0]++;
    }
    if (b > 0) {
      at(b)[1]++;
    }
    if (a > 0 && a === b) {
      at(a)[2]++;
    }
  }
  const out = new Map<number, number>();
  for (const v of [...counts.keys()].sort((p, q) => p - q)) {
    const [ny, np, both] = counts.get(v) as [number, number, number];
    out.set(v, (2 * both) / (ny + np));
  }
  return out;
}

/**
 * MONAI's Sum: the sum of the label's values (truncated to an integer, as `int(np.sum())`) and the indices
 * along the first axis (x for a NIfTI volume) of the slices that hold any value > 0.
 */
export function labelSum(data: Voxels, shape: readonly number[]): { sum: number; slices: number[] } {
  const first = shape[0] ?? data.length;
  const hit = new Uint8Array(first);
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    sum += v;
    if (v > 0) {
      hit[i % first] = 1;
    }
  }
  const slices: number[] = [];
  for (let x = 0; x < first; x++) {
    if (hit[x]) {
      slices.push(x);
    }
  }
  return { sum: Math.trunc(sum), slices };
}

export type Activation = "softmax" | "sigmoid" | "none";

/**
 * Monte-Carlo dropout entropy, MONAI's `entropy_3d_volume`: for each pass the model's output [C, S] (C order,
 * channel slowest) is activated, values <= 0 are clamped to 5e-5, and per voxel the channel means over the
 * passes give Σ_c −mean·log(mean); the result is that entropy averaged over the voxels (NaN skipped).
 */
export class EntropyAccumulator {
  private readonly sums: Float64Array;
  private passes = 0;

  constructor(
    readonly channels: number,
    readonly voxels: number,
    readonly activation: Activation,
  ) {
    this.sums = new Float64Array(channels * voxels);
  }

  add(output: Float32Array): void {
    const { channels: C, voxels: S } = this;
    if (output.length !== C * S) {
      throw new RangeError(`entropy: a pass gave ${output.length} values, expected ${C} x ${S}`);
    }
    const p = new Float64Array(C);
    for (let s = 0; s < S; s++) {
      activate(output, s, S, this.activation, p);
      for (let c = 0; c < C; c++) {
        const v = p[c] as number;
        this.sums[c * S + s] = (this.sums[c * S + s] as number) + (v <= 0 ? 5e-5 : v);
      }
    }
    this.passes++;
  }

  get count(): number {
    return this.passes;
  }

  /** Mean voxel entropy over the passes added so far. */
  entropy(): number {
    const { channels: C, voxels: S } = this;
    let total = 0;
    let n = 0;
    for (let s = 0; s < S; s++) {
      let h = 0;
      for (let c = 0; c < C; c++) {
        const mean = (this.sums[c * S + s] as number) / this.passes;
        h -= mean * Math.log(mean);
      }
      if (!Number.isNaN(h)) {
        total += h;
        n++;
      }
    }
    return n === 0 ? Number.NaN : total / n;
  }
}

/** The activated channel values of voxel `s` into `out`. */
function activate(output: Float32Array, s: number, S: number, activation: Activation, out: Float64Array): void {
  const C = out.length;
  if (activation === "softmax") {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < C; c++) {
      max = Math.max(max, output[c * S + s] as number);
    }
    let z = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp((output[c * S + s] as number) - max);
      out[c] = e;
      z += e;
    }
    for (let c = 0; c < C; c++) {
      out[c] = (out[c] as number) / z;
    }
    return;
  }
  for (let c = 0; c < C; c++) {
    const v = output[c * S + s] as number;
    out[c] = activation === "sigmoid" ? 1 / (1 + Math.exp(-v)) : v;
  }
}
