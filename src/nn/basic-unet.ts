import type { GraphBuilder } from "../graph/builder.js";
import { formatShape, type Value } from "../graph/ir.js";
import { type ActSpec, ConvLayer, Convolution, type NormSpec, Sequential } from "./layers.js";
import { Module, Network } from "./module.js";

interface BlockOptions {
  spatialDims: number;
  act: ActSpec;
  norm: NormSpec;
  bias: boolean;
  dropout: number;
}

/** MONAI's TwoConv: two 3x3 Convolution blocks (conv_0, conv_1), padding 1. */
export class TwoConv extends Sequential {
  constructor(o: BlockOptions, inChannels: number, outChannels: number) {
    super();
    const common = { spatialDims: o.spatialDims, act: o.act, norm: o.norm, bias: o.bias, dropout: o.dropout };
    this.append("conv_0", new Convolution({ ...common, inChannels, outChannels, padding: 1 }));
    this.append("conv_1", new Convolution({ ...common, inChannels: outChannels, outChannels, padding: 1 }));
  }
}

class MaxPool2 extends Module {
  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    return g.scope(prefix.slice(0, -1), () => g.maxPool(x, { kernelShape: 2 }));
  }
}

/** MONAI's Down: max_pooling (kernel 2) then convs (TwoConv). */
export class Down extends Sequential {
  constructor(o: BlockOptions, inChannels: number, outChannels: number) {
    super();
    this.append("max_pooling", new MaxPool2());
    this.append("convs", new TwoConv(o, inChannels, outChannels));
  }
}

export type UpsampleMode = "deconv" | "nontrainable";

/** MONAI's UpSample for scale 2: "deconv" (k2 s2 transposed conv) or "nontrainable" (1x1 preconv + linear). */
class UpSample extends Sequential {
  constructor(spatialDims: number, inChannels: number, outChannels: number, mode: UpsampleMode, bias: boolean) {
    super();
    if (mode === "deconv") {
      this.append(
        "deconv",
        new ConvLayer({ spatialDims, inChannels, outChannels, kernelSize: 2, strides: 2, bias, transposed: true }),
      );
      return;
    }
    if (inChannels !== outChannels) {
      this.append("preconv", new ConvLayer({ spatialDims, inChannels, outChannels, kernelSize: 1, bias }));
    }
    this.append("upsample_non_trainable", new LinearUpsample2());
  }
}

/** nn.Upsample(scale_factor=2, mode=(bi/tri)linear, align_corners=True), as BasicUNet's UpCat asks for. */
class LinearUpsample2 extends Module {
  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    return g.scope(prefix.slice(0, -1), () =>
      g.resize(x, { scales: 2, mode: "linear", coordinateTransformationMode: "align_corners" }),
    );
  }
}

/**
 * MONAI's UpCat: upsample x, pad its far end by one voxel (replicate) on axes where the encoder feature is one
 * larger (odd sizes before a max-pool), concatenate [encoder feature, upsampled] and run TwoConv.
 */
export class UpCat extends Module {
  constructor(
    o: BlockOptions,
    inChannels: number,
    catChannels: number,
    outChannels: number,
    upsample: UpsampleMode,
    halves = true,
  ) {
    super();
    const upChannels = halves ? Math.floor(inChannels / 2) : inChannels;
    this.addModule("upsample", new UpSample(o.spatialDims, inChannels, upChannels, upsample, o.bias));
    this.addModule("convs", new TwoConv(o, catChannels + upChannels, outChannels));
  }

  forward(_g: GraphBuilder, x: Value, prefix: string): Value {
    throw new Error(`UpCat '${prefix}' needs the encoder feature; call forwardCat (${formatShape(x.shape)})`);
  }

  forwardCat(g: GraphBuilder, x: Value, encoder: Value, prefix: string): Value {
    let up = this.child(g, prefix, "upsample", x);
    const spatial = x.shape.length - 2;
    const grow = encoder.shape.slice(2).map((size, i) => size - up.shape[i + 2]!);
    if (grow.some((d) => d !== 0 && d !== 1)) {
      throw new Error(
        `UpCat '${prefix.slice(0, -1)}': upsampled ${formatShape(up.shape)} cannot be padded to ${formatShape(encoder.shape)}`,
      );
    }
    const scope = prefix.slice(0, -1);
    if (grow.some((d) => d === 1)) {
      const pads = [...Array(spatial + 2).fill(0), 0, 0, ...grow];
      up = g.scope(scope, () => g.pad(up, pads, { mode: "edge" }));
    }
    const cat = g.scope(scope, () => g.concat([encoder, up], 1));
    return this.child(g, prefix, "convs", cat);
  }
}

export interface BasicUNetOptions {
  spatialDims?: 1 | 2 | 3;
  inChannels?: number;
  outChannels?: number;
  /** Six feature counts: five encoder levels and the last decoder level (default 32, 32, 64, 128, 256, 32). */
  features?: readonly number[];
  /** Default ["LEAKYRELU", { negativeSlope: 0.1 }], as MONAI's. */
  act?: ActSpec;
  /** Default ["INSTANCE", { affine: true }], as MONAI's. */
  norm?: NormSpec;
  bias?: boolean;
  dropout?: number;
  upsample?: UpsampleMode;
  seed?: number;
}

/** MONAI's `monai.networks.nets.BasicUNet`: four max-pool levels, TwoConv blocks, UpCat decoder, 1x1 final conv. */
export class BasicUNet extends Network {
  readonly spatialDims: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly features: readonly number[];

  constructor(options: BasicUNetOptions = {}) {
    super();
    this.spatialDims = options.spatialDims ?? 3;
    this.inChannels = options.inChannels ?? 1;
    this.outChannels = options.outChannels ?? 2;
    const fea = [...(options.features ?? [32, 32, 64, 128, 256, 32])];
    if (fea.length === 1) {
      fea.push(...Array(5).fill(fea[0]));
    }
    if (fea.length !== 6) {
      throw new Error(`BasicUNet: features needs 6 values (or 1 to repeat), got ${fea.length}`);
    }
    this.features = fea;
    const o: BlockOptions = {
      spatialDims: this.spatialDims,
      act: options.act ?? ["LEAKYRELU", { negativeSlope: 0.1 }],
      norm: options.norm ?? ["INSTANCE", { affine: true }],
      bias: options.bias ?? true,
      dropout: options.dropout ?? 0,
    };
    const up = options.upsample ?? "deconv";
    const [f0, f1, f2, f3, f4, f5] = fea as [number, number, number, number, number, number];
    this.addModule("conv_0", new TwoConv(o, this.inChannels, f0));
    this.addModule("down_1", new Down(o, f0, f1));
    this.addModule("down_2", new Down(o, f1, f2));
    this.addModule("down_3", new Down(o, f2, f3));
    this.addModule("down_4", new Down(o, f3, f4));
    this.addModule("upcat_4", new UpCat(o, f4, f3, f3, up));
    this.addModule("upcat_3", new UpCat(o, f3, f2, f2, up));
    this.addModule("upcat_2", new UpCat(o, f2, f1, f1, up));
    this.addModule("upcat_1", new UpCat(o, f1, f0, f5, up, false));
    this.addModule(
      "final_conv",
      new ConvLayer({ spatialDims: this.spatialDims, inChannels: f5, outChannels: this.outChannels, kernelSize: 1 }),
    );
    this.resetParameters(options.seed ?? 0);
  }

  /** Four 2x max-pools need every spatial size >= 16. */
  protected override checkInput(shape: readonly number[]): void {
    super.checkInput(shape);
    shape.slice(2).forEach((size, axis) => {
      if (size < 16) {
        throw new Error(
          `BasicUNet: spatial size ${size} (axis ${axis + 2} of input ${formatShape(shape)}) is below 16; ` +
            "four 2x max-pools would leave nothing (PyTorch fails the same input)",
        );
      }
    });
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const x0 = this.child(g, prefix, "conv_0", x);
    const x1 = this.child(g, prefix, "down_1", x0);
    const x2 = this.child(g, prefix, "down_2", x1);
    const x3 = this.child(g, prefix, "down_3", x2);
    const x4 = this.child(g, prefix, "down_4", x3);
    const u4 = this.upcat(g, prefix, "upcat_4", x4, x3);
    const u3 = this.upcat(g, prefix, "upcat_3", u4, x2);
    const u2 = this.upcat(g, prefix, "upcat_2", u3, x1);
    const u1 = this.upcat(g, prefix, "upcat_1", u2, x0);
    return this.child(g, prefix, "final_conv", u1);
  }

  private upcat(g: GraphBuilder, prefix: string, name: string, x: Value, encoder: Value): Value {
    return this.submodule<UpCat>(name).forwardCat(g, x, encoder, `${prefix}${name}.`);
  }
}
