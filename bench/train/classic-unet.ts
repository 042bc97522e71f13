/**
 * The "classic" U-Net of the feasibility study (shared/reference/onnx-training.md, Q3/Q6), rebuilt from
 * BasicUNet's blocks: per level two 3x3 convolutions without bias + InstanceNorm + ReLU (TwoConv), 2x max-pool
 * down (Down), k2 s2 transposed convolution up to half the channels, concatenation with the encoder feature and
 * TwoConv (UpCat), a 1x1 output convolution. With channels [16, 32, 64] in 2D it has 116,385 parameters (the
 * study's "3 levels, base 16, 117k params") and with [8, 16] in 3D 18,529 (the study's 18.7k), so this is most
 * likely the network behind the PyTorch figures (153 / 485 ms); MONAI's UNet with the same channel lists
 * is a much lighter network (stride-2 convolutions, one convolution per level).
 */
import type { GraphBuilder } from "../../src/graph/builder.js";
import type { Value } from "../../src/graph/ir.js";
import { Down, TwoConv, UpCat } from "../../src/nn/basic-unet.js";
import { ConvLayer } from "../../src/nn/layers.js";
import { Network } from "../../src/nn/module.js";

export class ClassicUNet extends Network {
  readonly spatialDims: number;
  readonly inChannels = 1;
  readonly outChannels = 1;
  readonly channels: readonly number[];

  constructor(spatialDims: 2 | 3, channels: readonly number[], seed = 0) {
    super();
    this.spatialDims = spatialDims;
    this.channels = [...channels];
    const o = { spatialDims, act: "RELU" as const, norm: "INSTANCE" as const, bias: false, dropout: 0 };
    this.addModule("conv_0", new TwoConv(o, this.inChannels, channels[0]!));
    for (let i = 1; i < channels.length; i++) {
      this.addModule(`down_${i}`, new Down(o, channels[i - 1]!, channels[i]!));
    }
    for (let i = channels.length - 1; i >= 1; i--) {
      this.addModule(`upcat_${i}`, new UpCat(o, channels[i]!, channels[i - 1]!, channels[i - 1]!, "deconv"));
    }
    this.addModule(
      "final_conv",
      new ConvLayer({ spatialDims, inChannels: channels[0]!, outChannels: this.outChannels, kernelSize: 1 }),
    );
    this.resetParameters(seed);
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const skips = [this.child(g, prefix, "conv_0", x)];
    for (let i = 1; i < this.channels.length; i++) {
      skips.push(this.child(g, prefix, `down_${i}`, skips.at(-1)!));
    }
    let y = skips.at(-1)!;
    for (let i = this.channels.length - 1; i >= 1; i--) {
      y = this.submodule<UpCat>(`upcat_${i}`).forwardCat(g, y, skips[i - 1]!, `${prefix}upcat_${i}.`);
    }
    return this.child(g, prefix, "final_conv", y);
  }
}
