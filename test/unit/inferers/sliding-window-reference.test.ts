import { describe, expect, it } from "vitest";
import {
  denseWindowStarts,
  type Float32Tensor,
  importanceMap,
  type Predictor,
  resolveRoiSize,
  SlidingWindowInferer,
  scanInterval,
} from "../../../src/inferers/index.js";

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function randomTensor(shape: number[], seed: number): Float32Tensor {
  const data = new Float32Array(numel(shape));
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { data, shape };
}

/**
 * A predictor whose output depends on the position inside the window (so overlapping windows disagree and the
 * blending shows), with two output channels; -0 and exact zeros come out where the input is 0.
 */
const nonlinear: Predictor = async (x) => {
  const [k, c, ...spatial] = x.shape as [number, number, ...number[]];
  const vol = numel(spatial);
  const out = new Float32Array(k * 2 * vol);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < vol; i++) {
      const v = x.data[j * c * vol + i] as number;
      out[(j * 2 + 0) * vol + i] = v * v * 3 - v + (i % 7) * 0.013;
      out[(j * 2 + 1) * vol + i] = -v * ((i % 5) - 2);
    }
  }
  return { data: out, shape: [k, 2, ...spatial] };
};

/**
 * MONAI's blending written the plain way, as the inferer did before its per-axis counts: pad, a weight volume
 * summed window by window, predictions times weights summed window by window in `precision`, divided, cropped.
 */
async function reference(
  input: Float32Tensor,
  predictor: Predictor,
  opts: { roi: number[]; overlap: number; mode: "constant" | "gaussian"; precision: "float32" | "float64" },
): Promise<Float32Tensor> {
  const [batch, channels, ...sizeIn] = input.shape as [number, number, ...number[]];
  const dims = sizeIn.length;
  const roi = resolveRoiSize(opts.roi, sizeIn);
  const size = sizeIn.map((s, i) => Math.max(s, roi[i] as number));
  const pad = size.map((s, i) => Math.floor((s - (sizeIn[i] as number)) / 2));
  const strides = (shape: number[]) => shape.map((_, i) => numel(shape.slice(i + 1)));
  const sIn = strides(sizeIn);
  const sImg = strides(size);
  const sRoi = strides(roi);
  const vol = numel(size);
  const volIn = numel(sizeIn);
  const roiVol = numel(roi);
  const image = new Float32Array(batch * channels * vol);
  for (let bc = 0; bc < batch * channels; bc++) {
    for (let i = 0; i < volIn; i++) {
      let o = 0;
      for (let a = 0; a < dims; a++) {
        o += (Math.floor(i / (sIn[a] as number)) % (sizeIn[a] as number)) * (sImg[a] as number) + 0;
        o += (pad[a] as number) * (sImg[a] as number);
      }
      image[bc * vol + o] = input.data[bc * volIn + i] as number;
    }
  }
  const starts = denseWindowStarts(size, roi, scanInterval(size, roi, new Array(dims).fill(opts.overlap)));
  const weights = importanceMap(roi, opts.mode);
  const Acc = opts.precision === "float64" ? Float64Array : Float32Array;
  const count = new Acc(vol);
  const at = (s: number[], w: number) => {
    let o = 0;
    for (let a = 0; a < dims; a++) {
      o += ((s[a] as number) + (Math.floor(w / (sRoi[a] as number)) % (roi[a] as number))) * (sImg[a] as number);
    }
    return o;
  };
  for (const s of starts) {
    for (let w = 0; w < roiVol; w++) {
      count[at(s, w)] = (count[at(s, w)] as number) + (weights[w] as number);
    }
  }
  let acc: Float64Array | Float32Array | undefined;
  let oc = 0;
  for (let b = 0; b < batch; b++) {
    for (const s of starts) {
      const win = new Float32Array(channels * roiVol);
      for (let c = 0; c < channels; c++) {
        for (let w = 0; w < roiVol; w++) {
          win[c * roiVol + w] = image[(b * channels + c) * vol + at(s, w)] as number;
        }
      }
      const out = await predictor({ data: win, shape: [1, channels, ...roi] });
      oc = out.shape[1] as number;
      acc ??= new Acc(batch * oc * vol);
      for (let c = 0; c < oc; c++) {
        for (let w = 0; w < roiVol; w++) {
          const o = (b * oc + c) * vol + at(s, w);
          const v = out.data[c * roiVol + w] as number;
          acc[o] = (acc[o] as number) + (opts.mode === "constant" ? v : v * (weights[w] as number));
        }
      }
    }
  }
  const result = new Float32Array(batch * oc * volIn);
  for (let plane = 0; plane < batch * oc; plane++) {
    for (let i = 0; i < volIn; i++) {
      let o = 0;
      for (let a = 0; a < dims; a++) {
        o += ((Math.floor(i / (sIn[a] as number)) % (sizeIn[a] as number)) + (pad[a] as number)) * (sImg[a] as number);
      }
      result[plane * volIn + i] = (acc?.[plane * vol + o] as number) / (count[o] as number);
    }
  }
  return { data: result, shape: [batch, oc, ...sizeIn] };
}

describe("SlidingWindowInferer equals the plain window-by-window blending bit for bit", () => {
  const cases = [
    { shape: [1, 1, 23, 19, 17], roi: [8, 8, 8], overlap: 0.25 },
    { shape: [2, 1, 13, 9, 11], roi: [5, 12, 4], overlap: 0.5 }, // padded along y
    { shape: [1, 2, 29, 31], roi: [10, 7], overlap: 0.6 },
    { shape: [1, 1, 6, 40], roi: [9, -1], overlap: 0 }, // padded along x, whole axis along y
  ];
  for (const mode of ["constant", "gaussian"] as const) {
    for (const precision of ["float32", "float64"] as const) {
      it.each(cases)(`${mode}, ${precision}: shape $shape, roi $roi, overlap $overlap`, async (c) => {
        const input = randomTensor(c.shape, numel(c.shape));
        // Some exact zeros in the input, so the predictor makes -0 and 0 values to blend.
        for (let i = 0; i < input.data.length; i += 5) {
          input.data[i] = 0;
        }
        const expected = await reference(input, nonlinear, { ...c, mode, precision });
        const inferer = new SlidingWindowInferer({ roiSize: c.roi, overlap: c.overlap, mode, precision });
        const out = await inferer.infer(input, nonlinear);
        expect(out.shape).toEqual(expected.shape);
        // Bit for bit, signs of zero included.
        expect(Buffer.from(out.data.buffer).equals(Buffer.from(expected.data.buffer))).toBe(true);
      });
    }
  }
});
