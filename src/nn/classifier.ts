import type { GraphBuilder } from "../graph/builder.js";
import { formatShape, type Value } from "../graph/ir.js";
import {
  type ActSpec,
  Convolution,
  expandSpatial,
  type NormSpec,
  parseAct,
  parseNorm,
  type SpatialArg,
} from "./layers.js";
import { Network } from "./module.js";

export interface ClassifierOptions {
  spatialDims: number;
  inChannels: number;
  /** Number of classes: the output is [N, classes] logits. */
  classes: number;
  /** Channels of each convolution block. */
  channels: readonly number[];
  /** Stride of each block (one per entry of `channels`). */
  strides: readonly SpatialArg[];
  kernelSize?: SpatialArg;
  act?: ActSpec;
  norm?: NormSpec;
  dropout?: number;
  /** Seed of the deterministic initialization (default 0). */
  seed?: number;
  /**
   * true (default): [N, classes] logits, as MONAI. false: [N, classes, 1, ...] with singleton spatial axes, the
   * channel-first form labelgraph's inference pipeline (BasicInferTask, post-transforms) works on.
   */
  flatten?: boolean;
}

/**
 * A small CNN classifier in the spirit of MONAI's `Classifier`: convolution blocks `net.layer_<i>` (Conv + norm +
 * act, strided), then global average pooling and a linear layer `final`, giving [N, classes] logits (or
 * [N, classes, 1, ...] with `flatten: false`) (apply a
 * softmax for probabilities). Unlike MONAI's flatten + Linear head, global average pooling makes the network
 * independent of the input size; the linear layer is a 1x1 convolution (weight [classes, C, 1, ...]) so that every
 * op has a gradient rule (Conv, ReduceMean, Reshape).
 */
export class Classifier extends Network {
  readonly spatialDims: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly channels: readonly number[];
  readonly flatten: boolean;

  constructor(options: ClassifierOptions) {
    super();
    const d = options.spatialDims;
    if (![1, 2, 3].includes(d)) {
      throw new Error(`Classifier: spatialDims must be 1, 2 or 3, got ${d}`);
    }
    if (!Number.isInteger(options.classes) || options.classes < 1) {
      throw new Error(`Classifier: classes must be a positive integer, got ${options.classes}`);
    }
    if (options.channels.length < 1 || options.strides.length !== options.channels.length) {
      throw new Error(
        `Classifier: give one stride per channel block (${options.channels.length} channels, ${options.strides.length} strides)`,
      );
    }
    const act = options.act ?? "PRELU";
    const norm = options.norm ?? "INSTANCE";
    parseAct(act);
    parseNorm(norm);
    this.spatialDims = d;
    this.inChannels = options.inChannels;
    this.outChannels = options.classes;
    this.channels = [...options.channels];
    this.flatten = options.flatten ?? true;
    let inc = options.inChannels;
    options.channels.forEach((c, i) => {
      this.addModule(
        `layer_${i}`,
        new Convolution({
          spatialDims: d,
          inChannels: inc,
          outChannels: c,
          strides: expandSpatial(options.strides[i]!, d, "strides"),
          kernelSize: options.kernelSize ?? 3,
          act,
          norm,
          dropout: options.dropout ?? null,
        }),
      );
      inc = c;
    });
    this.addModule(
      "final",
      new Convolution({ spatialDims: d, inChannels: inc, outChannels: options.classes, kernelSize: 1, convOnly: true }),
    );
    this.resetParameters(options.seed ?? 0);
  }

  protected override checkInput(shape: readonly number[]): void {
    super.checkInput(shape);
    if (shape.slice(2).some((s) => s < 1)) {
      throw new Error(`Classifier: empty spatial size in ${formatShape(shape)}`);
    }
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    let h = x;
    for (let i = 0; i < this.channels.length; i++) {
      h = this.child(g, prefix, `layer_${i}`, h);
    }
    const spatialAxes = Array.from({ length: this.spatialDims }, (_, i) => i + 2);
    const pooled = g.reduceMean(h, spatialAxes, { keepdims: true });
    const logits = this.child(g, prefix, "final", pooled);
    return this.flatten ? g.reshape(logits, [x.shape[0]!, this.outChannels]) : logits;
  }
}
