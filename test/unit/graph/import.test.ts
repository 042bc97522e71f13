import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onnx } from "onnx-proto";
import { afterAll, describe, expect, it } from "vitest";
import { importOnnxParameters } from "../../../src/graph/import.js";
import { UNet } from "../../../src/nn/unet.js";

describe("importOnnxParameters", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) {
      await rm(d, { recursive: true, force: true });
    }
  });

  it("reads a published UNet's weights back under the network's own names", async () => {
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-import-"));
    dirs.push(dir);
    const net = new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 3 });
    await writeFile(join(dir, "m.onnx"), net.toOnnx({ inputShape: [1, 1, 16, 16] }));
    const { parameters, uncovered } = await importOnnxParameters(join(dir, "m.onnx"));
    expect(uncovered).toEqual([]);
    const own = net.parameters();
    // Every parameter is there by its name; the rest are the builder's constants.
    expect([...own.keys()].every((k) => parameters.has(k))).toBe(true);
    expect([...parameters.keys()].filter((k) => !own.has(k)).every((k) => k.includes("/const"))).toBe(true);
    for (const [name, p] of own) {
      expect(parameters.get(name)?.shape).toEqual(p.shape);
      expect(Array.from(parameters.get(name)?.data ?? [])).toEqual(Array.from(p.data));
    }
    // And they load back into a fresh network.
    const other = new UNet({ spatialDims: 2, inChannels: 1, outChannels: 1, channels: [4, 8], strides: [2], seed: 99 });
    other.loadParameters(new Map([...parameters].filter(([k]) => own.has(k))));
    expect(Array.from(other.parameters().get("model.0.conv.weight")?.data ?? [])).toEqual(
      Array.from(own.get("model.0.conv.weight")?.data ?? []),
    );
  });

  it("names the ops a foreign model uses that cannot be differentiated", async () => {
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-import-"));
    dirs.push(dir);
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: "", version: 18 }],
      graph: {
        name: "foreign",
        node: [
          { opType: "Relu", input: ["x"], output: ["r"], name: "r" },
          { opType: "TopK", input: ["r", "k"], output: ["v", "i"], name: "v" },
        ],
        initializer: [{ name: "w", dataType: 1, dims: [2], floatData: [1.5, -2] }],
      },
    });
    await writeFile(join(dir, "f.onnx"), onnx.ModelProto.encode(model).finish());
    const { parameters, uncovered } = await importOnnxParameters(join(dir, "f.onnx"));
    expect(uncovered).toEqual(["TopK"]);
    expect(Array.from(parameters.get("w")?.data ?? [])).toEqual([1.5, -2]);
  });
});
