import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { diceLoss } from "../../../src/nn/losses.js";
import { Adam } from "../../../src/nn/optim.js";
import { buildTrainStep, Trainer } from "../../../src/nn/train-step.js";
import { UNet } from "../../../src/nn/unet.js";
import { fixedBatchPredictor } from "../../../src/runtime/predictor.js";
import { CUDA_MISSING, createPlacedSession, parseDevice } from "../../../src/runtime/providers.js";
import { parseThreads } from "../../../src/tasks/train/basic-train-task.js";

describe("parseDevice", () => {
  it("takes MONAI's device parameter as a string or a list (first entry), default cpu", () => {
    expect(parseDevice(undefined)).toBe("cpu");
    expect(parseDevice([])).toBe("cpu");
    expect(parseDevice("cuda")).toBe("cuda");
    expect(parseDevice(["cuda:1", "cuda:0"])).toBe("cuda:1");
    expect(parseDevice(null, "cuda")).toBe("cuda");
  });

  it("rejects anything else with a typed error naming the value", () => {
    for (const bad of ["tpu", "cuda:x", "CUDA", 3, ["gpu"], { device: "cpu" }]) {
      expect(() => parseDevice(bad)).toThrow(InvalidInputError);
    }
    expect(() => parseDevice("tpu")).toThrow(/unknown device "tpu"/);
  });
});

describe("parseThreads", () => {
  it("takes a positive integer (or nothing), and rejects the rest with a typed error", () => {
    expect(parseThreads(undefined)).toBeUndefined();
    expect(parseThreads(4)).toBe(4);
    expect(parseThreads("2")).toBe(2);
    for (const bad of [0, -1, 1.5, "x"]) {
      expect(() => parseThreads(bad)).toThrow(InvalidInputError);
    }
  });
});

describe("training on a device", () => {
  const net = () =>
    new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 3 });
  const step = () =>
    buildTrainStep({
      network: net(),
      inputShape: [1, 1, 16, 16],
      targetShape: [1, 1, 16, 16],
      loss: (g, p, t) => diceLoss(g, p, t, { sigmoid: true }),
      optimizer: new Adam(),
    });
  const image = Float32Array.from({ length: 256 }, (_, i) => (i % 16) / 16);
  const label = Float32Array.from({ length: 256 }, (_, i) => (i % 16 > 8 ? 1 : 0));

  it("cuda without its provider libraries trains on the CPU and says why", async () => {
    const trainer = new Trainer(step(), {
      device: "cuda",
      probe: { listBackends: () => [{ name: "cpu", bundled: true }] },
    });
    try {
      const placement = await trainer.placement();
      expect(placement).toMatchObject({ device: "cuda", provider: "cpu" });
      expect(placement.warning).toContain(CUDA_MISSING);
      expect(placement.warning).toContain("no CUDA backend");
      const out = await trainer.step(image, label, 1e-2);
      expect(Number.isFinite(out.loss)).toBe(true);
    } finally {
      await trainer.release();
    }
  });

  it("a CUDA provider that fails to start falls back to the CPU with the reason; cpu gives no warning", async () => {
    const liar = new Trainer(step(), {
      device: "cuda:0",
      probe: { listBackends: () => [{ name: "cuda", bundled: false }], cudaLibraryInstalled: () => true },
    });
    const cpu = new Trainer(step());
    try {
      const placed = await liar.placement();
      // Where CUDA really works the provider is cuda and there is nothing to say.
      if (placed.provider === "cpu") {
        expect(placed.warning).toMatch(/^CUDA requested but the CUDA execution provider failed to start/);
      } else {
        expect(placed.warning).toBeUndefined();
      }
      expect(await cpu.placement()).toEqual({ device: "cpu", provider: "cpu" });
      // Same weights, same step: the fallback session computes what the CPU one does.
      const a = await liar.step(image, label, 1e-2);
      const b = await cpu.step(image, label, 1e-2);
      expect(a.loss).toBeCloseTo(b.loss, 5);
    } finally {
      await liar.release();
      await cpu.release();
    }
  });

  it("a corrupt model is an error, not a CUDA fallback", async () => {
    await expect(
      createPlacedSession(new Uint8Array([1, 2, 3]), "cuda", {}, { cudaLibraryInstalled: () => true }),
    ).rejects.toThrow();
  });
});

describe("fixedBatchPredictor", () => {
  it("pads a short call with zeros up to the model's batch, splits a long one, and cuts the output back", async () => {
    const seen: number[][] = [];
    // A "model" of batch 3: doubles each value and adds the item's index in the batch, so padding shows.
    const model = async (x: { data: Float32Array; shape: number[] }) => {
      seen.push(x.shape);
      expect(x.shape[0]).toBe(3);
      const per = x.data.length / 3;
      return { data: x.data.map((v, i) => 2 * v + Math.floor(i / per)), shape: [3, 1, 2] };
    };
    const p = fixedBatchPredictor(model, 3);
    const items = (n: number) => Float32Array.from({ length: n * 2 }, (_, i) => i + 1);
    expect(await p({ data: items(2), shape: [2, 1, 2] })).toEqual({
      data: Float32Array.from([2, 4, 7, 9]),
      shape: [2, 1, 2],
    });
    const five = await p({ data: items(5), shape: [5, 1, 2] });
    expect(five.shape).toEqual([5, 1, 2]);
    expect(Array.from(five.data)).toEqual([2, 4, 7, 9, 12, 14, 14, 16, 19, 21]);
    expect(seen).toHaveLength(3);
    expect(() => fixedBatchPredictor(model, 0)).toThrow(RangeError);
  });
});
