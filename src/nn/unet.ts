import type { GraphBuilder } from "../graph/builder.js";
import { formatShape, type Value } from "../graph/ir.js";
import {
  type ActSpec,
  Convolution,
  expandSpatial,
  type NormSpec,
  parseAct,
  parseNorm,
  ResidualUnit,
  Sequential,
  type SpatialArg,
} from "./layers.js";
import { Module, Network } from "./module.js";

/** MONAI's SkipConnection in "cat" mode: concat([x, submodule(x)]) on the channel axis. */
export class SkipConnection extends Module {
  constructor(submodule: Module) {
    super();
    this.addModule("submodule", submodule);
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const y = this.child(g, prefix, "submodule", x);
    return g.scope(prefix.slice(0, -1), () => g.concat([x, y], 1));
  }
}

export interface UNetOptions {
  spatialDims: 1 | 2 | 3;
  inChannels: number;
  outChannels: number;
  /** Channels per level, top to bottom; at least 2. */
  channels: readonly number[];
  /** Stride of each down level (len(channels) - 1 are used, as in MONAI); a number or one per spatial axis. */
  strides: readonly SpatialArg[];
  kernelSize?: SpatialArg;
  upKernelSize?: SpatialArg;
  numResUnits?: number;
  act?: ActSpec;
  norm?: NormSpec;
  dropout?: number;
  bias?: boolean;
  adnOrdering?: string;
  /** Seed of the deterministic initialization (default 0). */
  seed?: number;
}

/**
 * MONAI's `monai.networks.nets.UNet`, same structure and parameter names: `model` is
 * Sequential(down, SkipConnection(next level), up), recursively, with the bottom layer (stride 1) as the
 * innermost submodule. Down layers are Convolution blocks (or ResidualUnits with numResUnits > 0); up layers
 * are transposed Convolutions of the concatenated skip and deeper features, the top one without norm/act.
 */
export class UNet extends Network {
  readonly spatialDims: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly channels: readonly number[];
  /** The strides actually used, one list per down level. */
  readonly strides: readonly number[][];
  private readonly kernelSize: SpatialArg;
  private readonly upKernelSize: SpatialArg;
  private readonly numResUnits: number;
  private readonly act: ActSpec;
  private readonly norm: NormSpec;
  private readonly dropout: number;
  private readonly bias: boolean;
  private readonly adnOrdering: string;

  constructor(options: UNetOptions) {
    super();
    const d = options.spatialDims;
    if (![1, 2, 3].includes(d)) {
      throw new Error(`UNet: spatialDims must be 1, 2 or 3, got ${d}`);
    }
    if (options.channels.length < 2) {
      throw new Error("UNet: the length of `channels` should be no less than 2.");
    }
    if (options.strides.length < options.channels.length - 1) {
      throw new Error("UNet: the length of `strides` should equal to `len(channels) - 1`.");
    }
    // As in MONAI, strides beyond len(channels) - 1 are not used.
    this.strides = options.strides.slice(0, options.channels.length - 1).map((s) => expandSpatial(s, d, "strides"));
    for (const name of ["kernelSize", "upKernelSize"] as const) {
      const v = options[name];
      if (Array.isArray(v) && v.length !== d) {
        throw new Error(`UNet: the length of \`${name}\` should equal to \`spatialDims\`.`);
      }
    }
    this.spatialDims = d;
    this.inChannels = options.inChannels;
    this.outChannels = options.outChannels;
    this.channels = [...options.channels];
    this.kernelSize = options.kernelSize ?? 3;
    this.upKernelSize = options.upKernelSize ?? 3;
    this.numResUnits = options.numResUnits ?? 0;
    this.act = options.act ?? "PRELU";
    this.norm = options.norm ?? "INSTANCE";
    parseAct(this.act);
    parseNorm(this.norm);
    this.dropout = options.dropout ?? 0;
    this.bias = options.bias ?? true;
    this.adnOrdering = options.adnOrdering ?? "NDA";

    this.addModule("model", this.createBlock(this.inChannels, this.outChannels, this.channels, this.strides, true));
    this.resetParameters(options.seed ?? 0);
  }

  private createBlock(
    inc: number,
    outc: number,
    channels: readonly number[],
    strides: readonly number[][],
    isTop: boolean,
  ): Module {
    const c = channels[0]!;
    const s = strides[0]!;
    let subblock: Module;
    let upc: number;
    if (channels.length > 2) {
      subblock = this.createBlock(c, c, channels.slice(1), strides.slice(1), false);
      upc = c * 2;
    } else {
      subblock = this.downLayer(c, channels[1]!, 1);
      upc = c + channels[1]!;
    }
    const down = this.downLayer(inc, c, s);
    const up = this.upLayer(upc, outc, s, isTop);
    return new Sequential([down, new SkipConnection(subblock), up]);
  }

  private common() {
    return {
      spatialDims: this.spatialDims,
      act: this.act,
      norm: this.norm,
      dropout: this.dropout,
      bias: this.bias,
      adnOrdering: this.adnOrdering,
    };
  }

  private downLayer(inChannels: number, outChannels: number, strides: SpatialArg): Module {
    const options = { ...this.common(), inChannels, outChannels, strides, kernelSize: this.kernelSize };
    if (this.numResUnits > 0) {
      return new ResidualUnit({ ...options, subunits: this.numResUnits });
    }
    return new Convolution(options);
  }

  private upLayer(inChannels: number, outChannels: number, strides: SpatialArg, isTop: boolean): Module {
    const conv = new Convolution({
      ...this.common(),
      inChannels,
      outChannels,
      strides,
      kernelSize: this.upKernelSize,
      convOnly: isTop && this.numResUnits === 0,
      isTransposed: true,
    });
    if (this.numResUnits === 0) {
      return conv;
    }
    const ru = new ResidualUnit({
      ...this.common(),
      inChannels: outChannels,
      outChannels,
      strides: 1,
      kernelSize: this.kernelSize,
      subunits: 1,
      lastConvOnly: isTop,
    });
    return new Sequential([conv, ru]);
  }

  /** Each spatial size must be a multiple of the product of the strides. */
  divisor(): number[] {
    return Array.from({ length: this.spatialDims }, (_, axis) => this.strides.reduce((acc, s) => acc * s[axis]!, 1));
  }

  protected override checkInput(shape: readonly number[]): void {
    super.checkInput(shape);
    const divisor = this.divisor();
    shape.slice(2).forEach((size, axis) => {
      if (size % divisor[axis]! !== 0) {
        throw new Error(
          `UNet: spatial size ${size} (axis ${axis + 2} of input ${formatShape(shape)}) is not divisible by ` +
            `${divisor[axis]}, the product of the strides; MONAI's UNet fails the same input where a skip ` +
            `connection concatenates mismatched sizes. Pad the input to a multiple of ${divisor[axis]} ` +
            "(e.g. DivisiblePad).",
        );
      }
    });
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    return this.child(g, prefix, "model", x);
  }
}
