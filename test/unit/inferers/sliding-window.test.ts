import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  denseWindowStarts,
  type Float32Tensor,
  InfererError,
  importanceMap,
  type Predictor,
  resolveRoiSize,
  SimpleInferer,
  SlidingWindowInferer,
  scanInterval,
  windowStartsPerAxis,
} from "../../../src/inferers/index.js";
import { sessionPredictor } from "../../../src/runtime/predictor.js";
import { type SessionLease, SessionPool } from "../../../src/runtime/session-pool.js";
import {
  conv3x3Model,
  identityModel,
  oneToTwoChannelModel,
  scaleModel,
  writeModel,
} from "../../helpers/onnx-models.js";

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Deterministic pseudo-random values in [-1, 1) (a small LCG), float32. */
function randomTensor(shape: number[], seed = 1): Float32Tensor {
  const data = new Float32Array(numel(shape));
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { data, shape };
}

/** MONAI's window starts for one axis, by hand (see the arithmetic in each case). */
describe("window placement (MONAI _get_scan_interval / dense_patch_slices)", () => {
  const starts1d = (size: number, roi: number, overlap: number) => {
    const interval = scanInterval([size], [roi], [overlap]);
    return { interval: interval[0], starts: windowStartsPerAxis([size], [roi], interval)[0] };
  };

  it("matches values derived by hand", () => {
    // size 10, roi 4, overlap 0.25: interval = int(4 * 0.75) = 3; num = ceil(10/3) = 4;
    // first d with d*3 + 4 >= 10 is d = 2 -> 3 windows; starts 0, 3, 6 (6 + 4 - 10 = 0, no shift).
    expect(starts1d(10, 4, 0.25)).toEqual({ interval: 3, starts: [0, 3, 6] });
    // size 10, roi 4, overlap 0.5: interval = int(4 * 0.5) = 2; first d with 2d + 4 >= 10 is d = 3 -> 4 windows;
    // starts 0, 2, 4, 6.
    expect(starts1d(10, 4, 0.5)).toEqual({ interval: 2, starts: [0, 2, 4, 6] });
    // size 96, roi 64, overlap 0.25: interval = int(64 * 0.75) = 48; d = 1: 48 + 64 = 112 >= 96 -> 2 windows;
    // starts 0 and 48 - (112 - 96) = 32 (the last window is moved back to end at 96).
    expect(starts1d(96, 64, 0.25)).toEqual({ interval: 48, starts: [0, 32] });
    // size 7, roi 3, overlap 0: interval 3; d = 2: 6 + 3 = 9 >= 7 -> 3 windows; starts 0, 3, 6 - (9 - 7) = 4.
    expect(starts1d(7, 3, 0)).toEqual({ interval: 3, starts: [0, 3, 4] });
    // size 20, roi 10, overlap 0.6: interval = int(10 * 0.4) = 4; d = 3: 12 + 10 = 22 >= 20 -> 4 windows;
    // starts 0, 4, 8, 12 - 2 = 10.
    expect(starts1d(20, 10, 0.6)).toEqual({ interval: 4, starts: [0, 4, 8, 10] });
    // overlap 0.7: 1 - 0.7 = 0.30000000000000004 in doubles, * 10 = 3.0000000000000004, int -> 3.
    expect(starts1d(20, 10, 0.7).interval).toBe(3);
    // overlap 0.9: 1 - 0.9 = 0.09999999999999998, * 10 = 0.9999999999999998, int -> 0 -> at least 1;
    // size 100: first d with d + 10 >= 100 is 90 -> 91 windows, starts 0..90.
    const dense = starts1d(100, 10, 0.9);
    expect(dense.interval).toBe(1);
    expect(dense.starts).toEqual(Array.from({ length: 91 }, (_, i) => i));
    // roi == image size: interval = roi (one window), whatever the overlap.
    expect(starts1d(5, 5, 0.5)).toEqual({ interval: 5, starts: [0] });
  });

  it("enumerates windows first axis slowest, as numpy meshgrid(indexing='ij')", () => {
    // image [10, 7], roi [4, 3], overlap 0.25: axis 0 interval 3 -> starts 0, 3, 6; axis 1 interval int(2.25) = 2,
    // d = 2: 4 + 3 = 7 >= 7 -> starts 0, 2, 4.
    const interval = scanInterval([10, 7], [4, 3], [0.25, 0.25]);
    expect(interval).toEqual([3, 2]);
    expect(denseWindowStarts([10, 7], [4, 3], interval)).toEqual([
      [0, 0],
      [0, 2],
      [0, 4],
      [3, 0],
      [3, 2],
      [3, 4],
      [6, 0],
      [6, 2],
      [6, 4],
    ]);
  });

  it("falls back to the image size for non-positive roi entries", () => {
    expect(resolveRoiSize([-1, 4, 0], [9, 8, 7])).toEqual([9, 4, 7]);
    expect(resolveRoiSize(5, [9, 8])).toEqual([5, 5]);
    expect(() => resolveRoiSize([4, 4], [9, 8, 7])).toThrow(InfererError);
  });
});

describe("importance map (MONAI compute_importance_map)", () => {
  it("constant mode is all ones", () => {
    expect(Array.from(importanceMap([2, 3], "constant"))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("gaussian mode: exp(-x^2 / (2 sigma^2)) per axis, sigma = 0.125 * roi, outer product", () => {
    // p = 5: sigma = 0.625, 2 sigma^2 = 0.78125; x = -2..2 -> exp(-4/0.78125), exp(-1/0.78125), 1, ...
    const g = Array.from(importanceMap([5], "gaussian"));
    const expected = [-2, -1, 0, 1, 2].map((x) => Math.exp(-(x * x) / 0.78125));
    g.forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i] as number, 6);
    });
    // 2D [5, 4]: the outer product of the two 1D maps (sigma 0.625 and 0.5); corners fall under 1e-3 and are
    // clamped up to it (the minimum, 6.6e-5, is below 1e-3, so the floor is 1e-3).
    const g4 = [-1.5, -0.5, 0.5, 1.5].map((x) => Math.exp(-(x * x) / 0.5));
    const m = importanceMap([5, 4], "gaussian");
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 4; j++) {
        const v = Math.max((expected[i] as number) * (g4[j] as number), Math.fround(1e-3));
        expect(m[i * 4 + j]).toBeCloseTo(v, 6);
      }
    }
  });

  it("gaussian mode clamps small weights up to 1e-3", () => {
    // p = 16: sigma = 2; the edge x = 7.5 gives exp(-56.25 / 8) = 8.8e-4 < 1e-3, so it is raised to 1e-3.
    const g = importanceMap([16], "gaussian");
    expect(g[0]).toBe(Math.fround(1e-3));
    expect(g[15]).toBe(Math.fround(1e-3));
    expect(g[1]).toBeCloseTo(Math.exp(-(6.5 * 6.5) / 8), 6);
    expect(g[7]).toBeCloseTo(Math.exp(-0.25 / 8), 6);
  });
});

describe("inferers over onnxruntime models", () => {
  let dir: string;
  let pool: SessionPool;
  const leases: SessionLease[] = [];
  const predictors: Record<"identity" | "x2" | "oneToTwo" | "conv2d" | "conv3d", Predictor> = {} as never;
  // A 3x3 kernel with distinct weights, so a wrong neighbour would show.
  const w2 = [0.1, -0.2, 0.3, 0.4, 1.5, -0.6, 0.7, 0.8, -0.9];
  const w3 = Array.from({ length: 27 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "labelgraph-inferers-"));
    pool = new SessionPool({ threads: 2 });
    const models = {
      identity: identityModel(),
      x2: scaleModel(2),
      oneToTwo: oneToTwoChannelModel(),
      conv2d: conv3x3Model(w2, { dims: 2, bias: 0.25 }),
      conv3d: conv3x3Model(w3, { dims: 3 }),
    };
    for (const [name, bytes] of Object.entries(models)) {
      const lease = await pool.acquire({ path: writeModel(join(dir, `${name}.onnx`), bytes) });
      leases.push(lease);
      predictors[name as keyof typeof predictors] = sessionPredictor(lease);
    }
  });

  afterAll(async () => {
    for (const lease of leases) {
      lease.release();
    }
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  type Case = { shape: number[]; roi: number | number[]; what: string };
  const cases: Case[] = [
    { shape: [1, 1, 13, 17], roi: [5, 6], what: "2D odd size, roi smaller" },
    { shape: [2, 2, 11, 9], roi: [20, 12], what: "2D roi larger than the image (padded)" },
    { shape: [1, 1, 16, 30], roi: [21, 8], what: "2D roi larger on one axis, smaller on the other" },
    { shape: [1, 1, 12, 10], roi: [-1, 4], what: "2D roi -1 (whole axis)" },
    { shape: [1, 1, 7, 9, 11], roi: [4, 5, 6], what: "3D odd size, roi smaller" },
    { shape: [2, 1, 6, 5, 9], roi: [8, 3, 12], what: "3D roi mixed larger/smaller" },
  ];

  describe.each(["constant", "gaussian"] as const)("identity model, %s blending", (mode) => {
    for (const c of cases) {
      for (const overlap of [0, 0.25, 0.5]) {
        for (const swBatchSize of [1, 3]) {
          it(`${c.what}, overlap ${overlap}, swBatchSize ${swBatchSize}: output == input exactly`, async () => {
            const input = randomTensor(c.shape, c.shape.length * 31 + swBatchSize);
            const inferer = new SlidingWindowInferer({ roiSize: c.roi, overlap, swBatchSize, mode });
            const out = await inferer.infer(input, predictors.identity);
            expect(out.shape).toEqual(c.shape);
            expect(out.data).toEqual(input.data);
            const total = inferer.lastWindowCount * (c.shape[0] as number);
            expect(inferer.lastPredictorCalls).toBe(Math.ceil(total / swBatchSize));
          });
        }
      }
    }
  });

  it("float32 accumulation (MONAI's) is close to exact", async () => {
    const input = randomTensor([1, 1, 9, 10, 11], 5);
    const inferer = new SlidingWindowInferer({ roiSize: 4, overlap: 0.5, mode: "gaussian", precision: "float32" });
    const out = await inferer.infer(input, predictors.identity);
    for (let i = 0; i < input.data.length; i++) {
      expect(Math.abs((out.data[i] as number) - (input.data[i] as number))).toBeLessThan(1e-6);
    }
  });

  it("x2 model gives 2 * input, 2D and 3D", async () => {
    for (const shape of [
      [2, 3, 19, 14],
      [1, 2, 9, 8, 13],
    ]) {
      const input = randomTensor(shape, 9);
      const inferer = new SlidingWindowInferer({ roiSize: 6, overlap: 0.25, swBatchSize: 4, mode: "gaussian" });
      const out = await inferer.infer(input, predictors.x2);
      expect(out.shape).toEqual(shape);
      expect(out.data).toEqual(input.data.map((v) => 2 * v));
    }
  });

  it("output channels may differ from input channels (1 -> 2)", async () => {
    const input = randomTensor([2, 1, 15, 12], 3);
    const inferer = new SlidingWindowInferer({ roiSize: [8, 8], overlap: 0.5, swBatchSize: 3, mode: "gaussian" });
    const out = await inferer.infer(input, predictors.oneToTwo);
    expect(out.shape).toEqual([2, 2, 15, 12]);
    const vol = 15 * 12;
    for (let b = 0; b < 2; b++) {
      const x = input.data.subarray(b * vol, (b + 1) * vol);
      expect(out.data.subarray(2 * b * vol, (2 * b + 1) * vol)).toEqual(x);
      expect(out.data.subarray((2 * b + 1) * vol, (2 * b + 2) * vol)).toEqual(
        x.map((v) => Math.fround(Math.fround(2 * v) + 1)),
      );
    }
  });

  /**
   * Voxels whose conv output is the same in every window that covers them: along each axis the voxel is not on a
   * window face that lies inside the image (there the window's zero padding replaces real neighbours).
   */
  function fullContextMask(imageSize: number[], roi: number[], overlap: number): Uint8Array {
    const starts = denseWindowStarts(imageSize, roi, scanInterval(imageSize, roi, new Array(roi.length).fill(overlap)));
    const mask = new Uint8Array(numel(imageSize)).fill(1);
    const strides = imageSize.map((_, i) => numel(imageSize.slice(i + 1)));
    for (let idx = 0; idx < mask.length; idx++) {
      const p = imageSize.map((_, i) => Math.floor(idx / (strides[i] as number)) % (imageSize[i] as number));
      for (const s of starts) {
        const covers = p.every((v, i) => v >= (s[i] as number) && v < (s[i] as number) + (roi[i] as number));
        const onInnerFace = p.some((v, i) => {
          const lo = s[i] as number;
          const hi = lo + (roi[i] as number) - 1;
          return (v === lo && lo > 0) || (v === hi && hi < (imageSize[i] as number) - 1);
        });
        if (covers && onInnerFace) {
          mask[idx] = 0;
        }
      }
    }
    return mask;
  }

  it.each([
    { dims: 2, shape: [1, 1, 40, 37], roi: [16, 16], overlap: 0.5, swBatchSize: 3 },
    { dims: 3, shape: [1, 1, 20, 18, 17], roi: [8, 8, 8], overlap: 0.25, swBatchSize: 2 },
  ])(
    "3x3 conv ($dims D): sliding window with gaussian blending == whole image where windows see full context",
    async ({ dims, shape, roi, overlap, swBatchSize }) => {
      const predictor = dims === 2 ? predictors.conv2d : predictors.conv3d;
      const input = randomTensor(shape, 17);
      const whole = await new SimpleInferer().infer(input, predictor);
      const inferer = new SlidingWindowInferer({ roiSize: roi, overlap, swBatchSize, mode: "gaussian" });
      const sw = await inferer.infer(input, predictor);
      expect(sw.shape).toEqual(whole.shape);
      const mask = fullContextMask(shape.slice(2), roi, overlap);
      let inside = 0;
      let maxInside = 0;
      let maxBorder = 0;
      for (let i = 0; i < mask.length; i++) {
        const d = Math.abs((sw.data[i] as number) - (whole.data[i] as number));
        if (mask[i]) {
          inside++;
          maxInside = Math.max(maxInside, d);
        } else {
          maxBorder = Math.max(maxBorder, d);
        }
      }
      expect(inside).toBeGreaterThan(mask.length / 3);
      expect(maxInside).toBeLessThan(1e-5);
      // On inner window faces the window's zero padding differs from the real neighbours (MONAI does the same).
      expect(maxBorder).toBeGreaterThan(1e-3);
    },
  );

  it("stacks swBatchSize windows per predictor call, across batch items", async () => {
    // image [10, 7], roi [4, 3], overlap 0.25 -> 3 x 3 = 9 windows per image; 2 images -> 18; swBatchSize 4 ->
    // ceil(18 / 4) = 5 calls of 4, 4, 4, 4, 2 windows.
    const calls: number[][] = [];
    const counting: Predictor = (input) => {
      calls.push(input.shape);
      return predictors.identity(input);
    };
    const input = randomTensor([2, 3, 10, 7], 4);
    const inferer = new SlidingWindowInferer({ roiSize: [4, 3], swBatchSize: 4 });
    const out = await inferer.infer(input, counting);
    expect(out.data).toEqual(input.data);
    expect(calls.map((s) => s[0])).toEqual([4, 4, 4, 4, 2]);
    expect(calls.every((s) => s.slice(1).join() === "3,4,3")).toBe(true);
    expect(inferer.lastWindowCount).toBe(9);
    expect(inferer.lastPredictorCalls).toBe(5);
  });

  it("pads with cval where the image is smaller than the roi, and crops back", async () => {
    const seen: number[] = [];
    const spy: Predictor = async (input) => {
      seen.push(...input.data);
      return predictors.identity(input);
    };
    const input = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [1, 1, 2, 3] };
    const inferer = new SlidingWindowInferer({ roiSize: [5, 4], cval: -7 });
    const out = await inferer.infer(input, spy);
    // rows padded 5 - 2 = 3 -> 1 before, 2 after; columns 4 - 3 = 1 -> 0 before, 1 after.
    expect(seen).toEqual([-7, -7, -7, -7, 1, 2, 3, -7, 4, 5, 6, -7, -7, -7, -7, -7, -7, -7, -7, -7]);
    expect(out).toEqual(input);
  });

  it("rejects predictor outputs of another spatial size or batch, and bad options", async () => {
    const input = randomTensor([1, 1, 8, 8], 2);
    const upsample: Predictor = async (x) => {
      const shape = [x.shape[0] as number, 1, 2 * (x.shape[2] as number), 2 * (x.shape[3] as number)];
      return { data: new Float32Array(numel(shape)), shape };
    };
    await expect(new SlidingWindowInferer({ roiSize: 4 }).infer(input, upsample)).rejects.toThrow(
      /spatial size \[8, 8\] for a window of \[4, 4\]/,
    );
    const dropBatch: Predictor = async (x) => ({
      data: x.data.slice(0, numel(x.shape.slice(1))),
      shape: [1, ...x.shape.slice(1)],
    });
    await expect(new SlidingWindowInferer({ roiSize: 4, swBatchSize: 2 }).infer(input, dropBatch)).rejects.toThrow(
      /batch 1 for 2 stacked windows/,
    );
    await expect(new SlidingWindowInferer({ roiSize: [4, 4, 4] }).infer(input, predictors.identity)).rejects.toThrow(
      InfererError,
    );
    await expect(
      new SlidingWindowInferer({ roiSize: 4 }).infer(
        { data: new Float32Array(3), shape: [1, 1, 2, 2] },
        predictors.identity,
      ),
    ).rejects.toThrow(/needs 4 values/);
    expect(() => new SlidingWindowInferer({ roiSize: 4, overlap: 1 })).toThrow(/overlap must be >= 0 and < 1/);
    expect(() => new SlidingWindowInferer({ roiSize: 4, swBatchSize: 0 })).toThrow(InfererError);
    expect(() => new SlidingWindowInferer({ roiSize: 4, mode: "cosine" as never })).toThrow(/blend mode/);
    expect(() => new SlidingWindowInferer({ roiSize: 2.5 })).toThrow(/integers/);
  });

  it("stops between predictor calls when aborted, and reports progress", async () => {
    const controller = new AbortController();
    const progress: Array<[number, number]> = [];
    const inferer = new SlidingWindowInferer({ roiSize: 4, overlap: 0 });
    const input = randomTensor([1, 1, 8, 12], 6); // 2 x 3 windows
    const full = await inferer.infer(input, predictors.identity, { onProgress: (d, t) => progress.push([d, t]) });
    expect(full.data).toEqual(input.data);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((d) => [d, 6]));
    const stopping: Predictor = async (x) => {
      controller.abort(new Error("stopped by user"));
      return predictors.identity(x);
    };
    await expect(inferer.infer(input, stopping, { signal: controller.signal })).rejects.toThrow("stopped by user");
    expect(inferer.lastPredictorCalls).toBe(1);
  });

  it("SimpleInferer runs the whole input once and checks the batch", async () => {
    const input = randomTensor([2, 1, 6, 5], 8);
    const out = await new SimpleInferer().infer(input, predictors.x2);
    expect(out.data).toEqual(input.data.map((v) => 2 * v));
    const bad: Predictor = async () => ({ data: new Float32Array(2), shape: [1, 2] });
    await expect(new SimpleInferer().infer(input, bad)).rejects.toThrow(/batch size 1/);
  });

  it("measures sliding-window overhead: 96^3 volume, roi 64^3, identity model", async () => {
    const input = randomTensor([1, 1, 96, 96, 96], 12);
    let predictorMs = 0;
    const timed: Predictor = async (x) => {
      const t = performance.now();
      const out = await predictors.identity(x);
      predictorMs += performance.now() - t;
      return out;
    };
    const time = async (fn: () => Promise<unknown>) => {
      const t = performance.now();
      await fn();
      return performance.now() - t;
    };
    // Best of 3 runs after a warm-up (the machine may be shared; no timing is asserted).
    const best = async (fn: () => Promise<unknown>) => {
      await fn();
      let ms = Number.POSITIVE_INFINITY;
      let inPredictor = 0;
      for (let i = 0; i < 3; i++) {
        predictorMs = 0;
        const t = await time(fn);
        if (t < ms) {
          ms = t;
          inPredictor = predictorMs;
        }
      }
      return { ms, inPredictor };
    };
    const lines: string[] = [];
    const raw = await best(() => new SimpleInferer().infer(input, timed));
    lines.push(`raw predictor, whole 96^3 volume in one call: ${raw.ms.toFixed(1)} ms`);
    for (const [mode, precision, swBatchSize] of [
      ["constant", "float64", 1],
      ["gaussian", "float64", 1],
      ["gaussian", "float32", 1],
      ["gaussian", "float64", 4],
    ] as const) {
      const inferer = new SlidingWindowInferer({ roiSize: 64, overlap: 0.25, mode, precision, swBatchSize });
      const r = await best(() => inferer.infer(input, timed));
      lines.push(
        `sliding window ${mode} ${precision} swBatch ${swBatchSize}: ${inferer.lastWindowCount} windows of 64^3, ` +
          `${inferer.lastPredictorCalls} calls, total ${r.ms.toFixed(1)} ms, in predictor ${r.inPredictor.toFixed(1)} ms, ` +
          `overhead ${(r.ms - r.inPredictor).toFixed(1)} ms`,
      );
      expect(inferer.lastWindowCount).toBe(8);
    }
    console.log(`[sliding-window benchmark]\n  ${lines.join("\n  ")}`);
  });
});
