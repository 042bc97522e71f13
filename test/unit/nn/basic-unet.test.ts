import { describe, expect, it } from "vitest";
import { BasicUNet, type BasicUNetOptions } from "../../../src/nn/basic-unet.js";
import { random, runModel } from "../graph/reference.js";

const small: BasicUNetOptions = { spatialDims: 2, inChannels: 1, outChannels: 3, features: [4, 4, 8, 8, 16, 4] };

async function forward(net: BasicUNet, shape: number[]) {
  const out = await runModel(net.toOnnx({ inputShape: shape }), { image: random(shape, 3) });
  return out.pred!;
}

describe("BasicUNet", () => {
  it("has MONAI's defaults and state_dict names", () => {
    const params = new BasicUNet().parameters();
    const shape = (name: string) => params.get(name)?.shape;
    expect(shape("conv_0.conv_0.conv.weight")).toEqual([32, 1, 3, 3, 3]);
    // instance norm with affine=True
    expect(shape("conv_0.conv_0.adn.N.weight")).toEqual([32]);
    expect(shape("down_1.convs.conv_0.conv.weight")).toEqual([32, 32, 3, 3, 3]);
    expect(shape("down_4.convs.conv_1.conv.weight")).toEqual([256, 256, 3, 3, 3]);
    expect(shape("upcat_4.upsample.deconv.weight")).toEqual([256, 128, 2, 2, 2]);
    expect(shape("upcat_4.convs.conv_0.conv.weight")).toEqual([128, 256, 3, 3, 3]);
    // upcat_1 does not halve: upsampled 32 + skip 32
    expect(shape("upcat_1.upsample.deconv.weight")).toEqual([32, 32, 2, 2, 2]);
    expect(shape("upcat_1.convs.conv_0.conv.weight")).toEqual([32, 64, 3, 3, 3]);
    expect(shape("final_conv.weight")).toEqual([2, 32, 1, 1, 1]);
    // LeakyReLU has no parameters, max pooling neither
    expect([...params.keys()].some((n) => n.includes(".adn.A") || n.includes("max_pooling"))).toBe(false);
    let count = 0;
    for (const p of params.values()) {
      count += p.data.length;
    }
    // Counted by hand from MONAI's layer list (3D, k=3, affine instance norm, k2 deconvs, 1x1 final conv):
    // conv_0 28,704 + down 55,488 / 166,272 / 664,320 / 2,655,744 + upcat 1,590,144 / 397,760 / 99,552 / 91,360 + 66.
    expect(count).toBe(5_749_410);
  });

  it("2D: builds and runs with the expected output shape", async () => {
    const out = await forward(new BasicUNet(small), [2, 1, 32, 32]);
    expect(out.dims).toEqual([2, 3, 32, 32]);
  });

  it("2D with odd sizes: replicate-pads the upsampled features like MONAI's UpCat", async () => {
    const net = new BasicUNet(small);
    const graph = net.toGraph({ inputShape: [1, 1, 33, 35] });
    expect(graph.nodes.filter((n) => n.op === "Pad").length).toBeGreaterThan(0);
    expect(graph.nodes.find((n) => n.op === "Pad")?.attrs.mode).toEqual({ kind: "string", value: "edge" });
    const out = await forward(net, [1, 1, 33, 35]);
    expect(out.dims).toEqual([1, 3, 33, 35]);
  });

  it("non-trainable (linear, align_corners) upsampling with 1x1 pre-convs", async () => {
    const net = new BasicUNet({ ...small, upsample: "nontrainable" });
    expect(net.parameters().get("upcat_4.upsample.preconv.weight")?.shape).toEqual([8, 16, 1, 1]);
    expect(net.parameters().has("upcat_1.upsample.preconv.weight")).toBe(false);
    const out = await forward(net, [1, 1, 17, 32]);
    expect(out.dims).toEqual([1, 3, 17, 32]);
  });

  it("3D: builds and runs", async () => {
    const out = await forward(new BasicUNet({ ...small, spatialDims: 3 }), [1, 1, 16, 16, 16]);
    expect(out.dims).toEqual([1, 3, 16, 16, 16]);
  });

  it("is deterministic per seed and round-trips its parameters", () => {
    const shape = [1, 1, 16, 16];
    const a = new BasicUNet({ ...small, seed: 3 });
    const b = new BasicUNet({ ...small, seed: 3 });
    const c = new BasicUNet({ ...small, seed: 4 });
    const bytes = (n: BasicUNet) => Buffer.from(n.toOnnx({ inputShape: shape }));
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(bytes(a).equals(bytes(c))).toBe(false);
    c.loadParameters(a.parameters());
    expect(bytes(a).equals(bytes(c))).toBe(true);
  });

  it("rejects inputs too small for four max-pools, and wrong feature counts", () => {
    expect(() => new BasicUNet(small).toOnnx({ inputShape: [1, 1, 15, 32] })).toThrow(/spatial size 15 .* below 16/);
    expect(() => new BasicUNet({ features: [1, 2, 3] })).toThrow(/features needs 6 values/);
  });
});
