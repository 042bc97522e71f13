import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEEPEDIT, deepEditFromDeepGrow, deepgrow3dNetwork } from "../lib/interactive.js";

/** DeepEdit's start from a DeepGrow 3D model: same brain probability, two-class softmax head. */
describe("deepEditFromDeepGrow", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "labelgraph-deepedit-init-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives softmax(brain) = sigmoid(DeepGrow's logit) on every voxel, background = 1 - brain", async () => {
    const shape = [1, 3, ...DEEPEDIT.modelSize];
    const net = deepgrow3dNetwork();
    // Trained-looking weights: re-drawn from another seed, so the head's bias is not zero.
    net.resetParameters(5);
    const head = net.parameters().get("model.2.conv.bias")!;
    head.data[0] = 0.7;
    await writeFile(join(dir, "deepgrow.onnx"), net.toOnnx({ inputShape: shape }));
    await deepEditFromDeepGrow(join(dir, "deepgrow.onnx"), join(dir, "deepedit.onnx"));

    const n = shape.reduce((a, b) => a * b, 1);
    const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * (i % 3 === 0 ? 1 : 0.5));
    const run = async (path: string) => {
      const session = await ort.InferenceSession.create(await readFile(path));
      const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", input, shape) });
      await session.release();
      return out[session.outputNames[0]!]!;
    };
    const grow = await run(join(dir, "deepgrow.onnx"));
    const edit = await run(join(dir, "deepedit.onnx"));
    expect(grow.dims).toEqual([1, 1, ...DEEPEDIT.modelSize]);
    expect(edit.dims).toEqual([1, 2, ...DEEPEDIT.modelSize]);
    const z = grow.data as Float32Array;
    const e = edit.data as Float32Array;
    const m = z.length;
    let worst = 0;
    let [lo, hi] = [Infinity, -Infinity];
    for (let i = 0; i < m; i++) {
      lo = Math.min(lo, z[i]!);
      hi = Math.max(hi, z[i]!);
      const brain = 1 / (1 + Math.exp(-(e[m + i]! - e[i]!)));
      worst = Math.max(worst, Math.abs(brain - 1 / (1 + Math.exp(-z[i]!))));
      expect(e[m + i]).toBeCloseTo(-e[i]!, 4);
    }
    expect(worst).toBeLessThan(1e-5);
    // Not a trivial network: its logits vary.
    expect(hi - lo).toBeGreaterThan(0.1);
  });

  it("names a parameter the source lacks", async () => {
    const other = deepgrow3dNetwork();
    // A 2-level UNet with other channel counts has other parameters: refused with the missing name.
    const { UNet } = await import("labelgraph");
    const small = new UNet({ spatialDims: 3, inChannels: 3, outChannels: 1, channels: [4, 8], strides: [2] });
    await writeFile(join(dir, "small.onnx"), small.toOnnx({ inputShape: [1, 3, 8, 8, 8] }));
    expect(other.parameters().size).toBeGreaterThan(small.parameters().size);
    await expect(deepEditFromDeepGrow(join(dir, "small.onnx"), join(dir, "x.onnx"))).rejects.toThrow(
      /small\.onnx has no parameter model\./,
    );
  });
});
