import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import type { Parameter } from "../../../src/nn/module.js";
import { UNet, type UNetOptions } from "../../../src/nn/unet.js";
import * as ref from "../graph/reference.js";
import { maxAbsDiff, random, runModel } from "../graph/reference.js";

const small2d: UNetOptions = { spatialDims: 2, inChannels: 1, outChannels: 2, channels: [4, 8, 16], strides: [2, 2] };
const small3d: UNetOptions = { ...small2d, spatialDims: 3 };

async function forward(net: UNet, shape: number[], seed = 5) {
  const out = await runModel(net.toOnnx({ inputShape: shape }), { image: random(shape, seed) });
  return out.pred!;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("UNet", () => {
  it("has MONAI's module tree and state_dict names", () => {
    const names = [...new UNet(small2d).parameters()].map(([name, p]) => `${name} [${p.shape.join(",")}]`);
    expect(names).toEqual([
      "model.0.conv.weight [4,1,3,3]",
      "model.0.conv.bias [4]",
      "model.0.adn.A.weight [1]",
      "model.1.submodule.0.conv.weight [8,4,3,3]",
      "model.1.submodule.0.conv.bias [8]",
      "model.1.submodule.0.adn.A.weight [1]",
      "model.1.submodule.1.submodule.conv.weight [16,8,3,3]",
      "model.1.submodule.1.submodule.conv.bias [16]",
      "model.1.submodule.1.submodule.adn.A.weight [1]",
      // transposed: [in, out, k, k]; in = skip (8) + bottom (16)
      "model.1.submodule.2.conv.weight [24,4,3,3]",
      "model.1.submodule.2.conv.bias [4]",
      "model.1.submodule.2.adn.A.weight [1]",
      // top up layer is conv_only: no norm, no activation
      "model.2.conv.weight [8,2,3,3]",
      "model.2.conv.bias [2]",
    ]);
  });

  it("with residual units and batch norm, names follow ResidualUnit and BatchNorm", () => {
    const net = new UNet({ ...small3d, numResUnits: 2, norm: "BATCH" });
    const params = net.parameters();
    const names = [...params.keys()];
    expect(names.slice(0, 7)).toEqual([
      "model.0.conv.unit0.conv.weight",
      "model.0.conv.unit0.conv.bias",
      "model.0.conv.unit0.adn.N.weight",
      "model.0.conv.unit0.adn.N.bias",
      "model.0.conv.unit0.adn.N.running_mean",
      "model.0.conv.unit0.adn.N.running_var",
      "model.0.conv.unit0.adn.A.weight",
    ]);
    expect(params.get("model.0.residual.weight")?.shape).toEqual([4, 1, 3, 3, 3]);
    // bottom: stride 1, 8 -> 16 channels, so the residual is a 1x1x1 conv
    expect(params.get("model.1.submodule.1.submodule.residual.weight")?.shape).toEqual([16, 8, 1, 1, 1]);
    expect(params.get("model.2.0.conv.weight")?.shape).toEqual([8, 2, 3, 3, 3]);
    // the top ResidualUnit's last conv is conv_only
    expect(names.filter((n) => n.startsWith("model.2.1."))).toEqual([
      "model.2.1.conv.unit0.conv.weight",
      "model.2.1.conv.unit0.conv.bias",
    ]);
    expect(params.get("model.0.conv.unit0.adn.N.running_mean")?.trainable).toBe(false);
    // In the graph, buffers are initializers that a training transform must not update.
    const graph = net.toGraph({ inputShape: [1, 1, 8, 8, 8] });
    const init = (name: string) => graph.initializers.find((i) => i.name === name);
    expect(init("model.0.conv.unit0.adn.N.running_var")?.trainable).toBe(false);
    expect(init("model.0.conv.unit0.adn.N.weight")?.trainable).toBe(true);
    expect(graph.initializers.filter((i) => i.trainable).length).toBe(
      [...params.values()].filter((p) => p.trainable).length,
    );
    expect(params.get("model.0.conv.unit0.adn.N.running_var")?.data.every((v) => v === 1)).toBe(true);
  });

  it("2D: builds, serializes, runs in onnxruntime-node with the expected output shape", async () => {
    const out = await forward(new UNet(small2d), [2, 1, 32, 24]);
    expect(out.dims).toEqual([2, 2, 32, 24]);
    expect((out.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it("3D: builds, serializes, runs", async () => {
    const out = await forward(new UNet(small3d), [1, 1, 16, 16, 12]);
    expect(out.dims).toEqual([1, 2, 16, 16, 12]);
  });

  it("3D with residual units, batch norm, dropout and anisotropic strides", async () => {
    const net = new UNet({
      ...small3d,
      strides: [
        [2, 2, 1],
        [2, 2, 1],
      ],
      numResUnits: 2,
      norm: "BATCH",
      act: "RELU",
      dropout: 0.1,
    });
    const out = await forward(net, [1, 1, 16, 16, 6]);
    expect(out.dims).toEqual([1, 2, 16, 16, 6]);
  });

  it("2D with LeakyReLU, no norm, kernel 5, up kernel 3, no bias", async () => {
    const net = new UNet({
      ...small2d,
      act: ["LEAKYRELU", { negativeSlope: 0.2 }],
      norm: "NONE",
      kernelSize: 5,
      bias: false,
    });
    expect([...net.parameters().keys()].some((n) => n.endsWith("bias"))).toBe(false);
    expect(net.parameters().get("model.0.conv.weight")?.shape).toEqual([4, 1, 5, 5]);
    const out = await forward(net, [1, 1, 8, 8]);
    expect(out.dims).toEqual([1, 2, 8, 8]);
  });

  it("computes MONAI's forward: down conv, bottom, concat [skip, deeper], transposed conv", async () => {
    const net = new UNet({ spatialDims: 2, inChannels: 1, outChannels: 3, channels: [2, 4], strides: [2] });
    const p = (name: string) => net.parameters().get(name)!;
    const t = (name: string) => ({ data: p(name).data, shape: [...p(name).shape] });
    const x = random([1, 1, 8, 6], 9);
    const same1 = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] };
    const block = (input: ref.Tensor, prefix: string, strides: number[]) => {
      const c = ref.conv(input, t(`${prefix}.conv.weight`), p(`${prefix}.conv.bias`).data, { ...same1, strides });
      const n = ref.instanceNorm(c, new Float32Array(c.shape[1]!).fill(1), new Float32Array(c.shape[1]!));
      return ref.prelu(n, p(`${prefix}.adn.A.weight`).data[0]!);
    };
    const down = block(x, "model.0", [2, 2]);
    const bottom = block(down, "model.1.submodule", [1, 1]);
    const cat = ref.concatChannels([down, bottom]);
    const want = ref.convTranspose(cat, t("model.2.conv.weight"), p("model.2.conv.bias").data, {
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      dilations: [1, 1],
      outputPadding: [1, 1],
    });
    const got = await runModel(net.toOnnx({ inputShape: x.shape }), { image: x });
    expect(got.pred!.dims).toEqual(want.shape);
    expect(maxAbsDiff(got.pred!.data as Float32Array, want.data)).toBeLessThan(1e-5);
  });

  it("can be applied twice in one graph, sharing its weights", async () => {
    const net = new UNet(small2d);
    const g = new GraphBuilder({ name: "twice" });
    const a = g.input("a", "float32", [1, 1, 8, 8]);
    const b = g.input("b", "float32", [1, 1, 8, 8]);
    g.output(net.build(g, a), "ya");
    g.output(net.build(g, b), "yb");
    expect(g.graph().initializers.filter((i) => i.trainable)).toHaveLength(net.parameters().size);
    const x = random([1, 1, 8, 8], 4);
    const out = await runModel(g.serialize(), { a: x, b: x });
    expect(maxAbsDiff(out.ya!.data as Float32Array, out.yb!.data as Float32Array)).toBe(0);
  });

  it("is deterministic: same seed, same bytes; another seed, other weights", () => {
    const a = new UNet({ ...small3d, seed: 42 }).toOnnx({ inputShape: [1, 1, 8, 8, 8] });
    const b = new UNet({ ...small3d, seed: 42 }).toOnnx({ inputShape: [1, 1, 8, 8, 8] });
    const c = new UNet({ ...small3d, seed: 43 }).toOnnx({ inputShape: [1, 1, 8, 8, 8] });
    expect(same(a, b)).toBe(true);
    expect(same(a, c)).toBe(false);
  });

  it("initializes like PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv weights and biases, 0.25 for PReLU", () => {
    const params = new UNet({ ...small3d, seed: 7 }).parameters();
    const check = (name: string, fanIn: number) => {
      const data = params.get(name)!.data;
      const bound = 1 / Math.sqrt(fanIn);
      const maxAbs = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxAbs, name).toBeLessThanOrEqual(bound);
      expect(maxAbs, name).toBeGreaterThan(0.8 * bound);
    };
    check("model.1.submodule.0.conv.weight", 4 * 27); // Conv3d 4 -> 8: fan_in = in * k^3
    check("model.1.submodule.0.conv.bias", 4 * 27);
    check("model.1.submodule.2.conv.weight", 4 * 27); // ConvTranspose3d 24 -> 4: fan_in = weight.size(1) * k^3
    expect([...params.get("model.0.adn.A.weight")!.data]).toEqual([0.25]);
  });

  it("loadParameters round-trips, and is shape-checked with a clear error", async () => {
    const a = new UNet({ ...small2d, seed: 1 });
    const b = new UNet({ ...small2d, seed: 2 });
    const shape = [1, 1, 16, 16];
    expect(same(a.toOnnx({ inputShape: shape }), b.toOnnx({ inputShape: shape }))).toBe(false);
    const copy = new Map([...a.parameters()].map(([k, v]) => [k, { data: v.data.slice(), shape: v.shape }]));
    b.loadParameters(copy);
    expect(same(a.toOnnx({ inputShape: shape }), b.toOnnx({ inputShape: shape }))).toBe(true);
    const [ya, yb] = [await forward(a, shape), await forward(b, shape)];
    expect(maxAbsDiff(ya.data as Float32Array, yb.data as Float32Array)).toBe(0);

    const bad = new Map<string, Pick<Parameter, "data" | "shape">>(copy);
    bad.set("model.0.conv.weight", { data: new Float32Array(8 * 9), shape: [8, 1, 3, 3] });
    bad.delete("model.2.conv.bias");
    bad.set("model.9.weight", { data: new Float32Array(1), shape: [1] });
    expect(() => b.loadParameters(bad)).toThrow(
      "UNet.loadParameters: 'model.0.conv.weight': checkpoint shape [8, 1, 3, 3], network shape [4, 1, 3, 3]; " +
        "unexpected parameter 'model.9.weight'; missing parameter 'model.2.conv.bias'",
    );
    // Nothing was copied by the failed load.
    expect(same(a.toOnnx({ inputShape: shape }), b.toOnnx({ inputShape: shape }))).toBe(true);
    // Non-strict loads what matches by name; a wrong shape still fails.
    b.loadParameters(new Map([["model.9.weight", { data: new Float32Array(1), shape: [1] }]]), { strict: false });
    expect(() =>
      b.loadParameters(new Map([["model.0.conv.weight", bad.get("model.0.conv.weight")!]]), { strict: false }),
    ).toThrow(/checkpoint shape \[8, 1, 3, 3\]/);
  });

  it("rejects a spatial size not divisible by the product of the strides, at build time", () => {
    const net = new UNet(small2d);
    expect(() => net.toOnnx({ inputShape: [1, 1, 30, 32] })).toThrow(
      /UNet: spatial size 30 \(axis 2 of input \[1, 1, 30, 32\]\) is not divisible by 4/,
    );
    expect(() => net.toOnnx({ inputShape: [1, 2, 32, 32] })).toThrow(/input has 2 channels, the network takes 1/);
    expect(() => net.toOnnx({ inputShape: [1, 1, 32, 32, 32] })).toThrow(/must be \[N, C, 2 spatial sizes\]/);
  });

  it("validates its options like MONAI", () => {
    expect(() => new UNet({ ...small2d, channels: [4] })).toThrow(/no less than 2/);
    expect(() => new UNet({ ...small2d, strides: [2] })).toThrow(/len\(channels\) - 1/);
    expect(() => new UNet({ ...small2d, kernelSize: [3, 3, 3] })).toThrow(/kernelSize/);
    expect(() => new UNet({ ...small2d, kernelSize: 4 })).toThrow(/same padding not available for kernelSize=4/);
    // extra strides are ignored, as MONAI does (with a warning there)
    expect(new UNet({ ...small2d, strides: [2, 2, 2] }).divisor()).toEqual([4, 4]);
  });
});
