/**
 * Segmentation losses added to a graph, with MONAI's semantics (monai.losses.DiceLoss, DiceCELoss) and PyTorch's
 * CrossEntropyLoss / BCEWithLogitsLoss. `pred` holds logits [N, C, ...spatial]; `target` is [N, C, ...] (one-hot
 * or probabilities) or [N, 1, ...] (class indices, as floats). Everything is built from ops with gradient rules,
 * so a loss can be differentiated by graph/autodiff.
 */
import type { GraphBuilder } from "../graph/builder.js";
import { formatShape, type Value } from "../graph/ir.js";

export type Reduction = "mean" | "sum" | "none";

export interface DiceLossOptions {
  /** If false, channel 0 (background) is left out (ignored with one channel, as MONAI). Default true. */
  includeBackground?: boolean;
  /** Turn class-index targets [N, 1, ...] into one-hot (ignored with one channel). */
  toOnehotY?: boolean;
  sigmoid?: boolean;
  softmax?: boolean;
  /** Squares target and prediction in the denominator. */
  squaredPred?: boolean;
  /** Soft Jaccard (IoU) instead of Dice. */
  jaccard?: boolean;
  /** Default "mean" over batch and channels; "none" gives [N, C, 1, ...] as MONAI. */
  reduction?: Reduction;
  /** Default 1e-5 each. */
  smoothNr?: number;
  smoothDr?: number;
  /** Sum intersection and union over the batch too before dividing. */
  batch?: boolean;
}

const floatType = (v: Value) => (v.dtype === "float64" ? "float64" : "float32");

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** Class indices [N, 1, ...] -> one-hot [N, classes, ...] in the dtype of `target`. */
export function oneHot(g: GraphBuilder, target: Value, classes: number): Value {
  if (target.shape[1] !== 1) {
    throw new Error(`oneHot: target ${formatShape(target.shape)} must have one channel of class indices`);
  }
  const rank = target.shape.length;
  const ids = Array.from({ length: classes }, (_, i) => i);
  const data = target.dtype === "float64" ? Float64Array.from(ids) : Float32Array.from(ids);
  const labels = g.constant(data, [1, classes, ...Array(rank - 2).fill(1)]);
  return g.cast(g.equal(target, labels), floatType(target));
}

function reduce(g: GraphBuilder, f: Value, reduction: Reduction): Value {
  switch (reduction) {
    case "mean":
      return g.reduceMean(f, undefined, { keepdims: false });
    case "sum":
      return g.reduceSum(f, undefined, { keepdims: false });
    case "none":
      return f;
  }
}

/** MONAI's DiceLoss: 1 - (2 sum(t p) + smoothNr) / (sum(t) + sum(p) + smoothDr) per sample and channel. */
export function diceLoss(g: GraphBuilder, pred: Value, target: Value, options: DiceLossOptions = {}): Value {
  if (options.sigmoid && options.softmax) {
    throw new Error("diceLoss: sigmoid and softmax are not compatible");
  }
  if (pred.shape.length !== target.shape.length || pred.shape.length < 3) {
    throw new Error(
      `diceLoss: pred ${formatShape(pred.shape)} and target ${formatShape(target.shape)} must be [N, C, ...]`,
    );
  }
  const reduction = options.reduction ?? "mean";
  return g.scope("dice", () => {
    let input = pred;
    let t = target;
    if (options.sigmoid) {
      input = g.sigmoid(input);
    }
    const channels = input.shape[1]!;
    if (options.softmax && channels > 1) {
      input = g.softmax(input, 1);
    }
    if (options.toOnehotY && channels > 1) {
      t = oneHot(g, t, channels);
    }
    if (options.includeBackground === false && channels > 1) {
      t = g.slice(t, { starts: [1], ends: [channels], axes: [1] });
      input = g.slice(input, { starts: [1], ends: [channels], axes: [1] });
    }
    if (t.shape.join() !== input.shape.join()) {
      throw new Error(
        `diceLoss: ground truth has different shape ${formatShape(t.shape)} from input ${formatShape(input.shape)}`,
      );
    }
    if (t.dtype !== input.dtype) {
      throw new Error(`diceLoss: target is ${t.dtype}, prediction ${input.dtype}`);
    }
    const rank = input.shape.length;
    const axes = options.batch ? [0, ...range(2, rank)] : range(2, rank);
    const sum = (v: Value) => g.reduceSum(v, axes, { keepdims: false });
    const intersection = sum(g.mul(t, input));
    const ground = sum(options.squaredPred ? g.mul(t, t) : t);
    const predO = sum(options.squaredPred ? g.mul(input, input) : input);
    let denominator = g.add(ground, predO);
    const c = (v: number) => g.scalar(v, floatType(input));
    if (options.jaccard) {
      denominator = g.mul(g.sub(denominator, intersection), c(2));
    }
    const ratio = g.div(
      g.add(g.mul(intersection, c(2)), c(options.smoothNr ?? 1e-5)),
      g.add(denominator, c(options.smoothDr ?? 1e-5)),
    );
    const f = g.sub(c(1), ratio);
    if (reduction === "none") {
      return g.reshape(f, [...f.shape, ...Array(rank - 2).fill(1)]);
    }
    return reduce(g, f, reduction);
  });
}

export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** Per-class weights (torch's `weight`): index targets get a weighted mean, as torch. */
  weight?: readonly number[];
}

/**
 * torch.nn.CrossEntropyLoss over the channel axis: target [N, 1, ...] holds class indices (one-hot inside),
 * target [N, C, ...] class probabilities. "none" gives [N, ...spatial].
 */
export function crossEntropyLoss(
  g: GraphBuilder,
  pred: Value,
  target: Value,
  options: CrossEntropyOptions = {},
): Value {
  const channels = pred.shape[1]!;
  const indices = target.shape[1] === 1 && channels !== 1;
  if (!indices && target.shape.join() !== pred.shape.join()) {
    throw new Error(
      `crossEntropyLoss: target ${formatShape(target.shape)} must be [N, 1, ...] indices or shaped like pred ${formatShape(pred.shape)}`,
    );
  }
  const reduction = options.reduction ?? "mean";
  return g.scope("ce", () => {
    const t = indices ? oneHot(g, target, channels) : target;
    const rank = pred.shape.length;
    let tw = t;
    if (options.weight) {
      if (options.weight.length !== channels) {
        throw new Error(`crossEntropyLoss: ${options.weight.length} weights for ${channels} classes`);
      }
      const w = pred.dtype === "float64" ? Float64Array.from(options.weight) : Float32Array.from(options.weight);
      tw = g.mul(t, g.constant(w, [1, channels, ...Array(rank - 2).fill(1)]));
    }
    const perVoxel = g.neg(g.reduceSum(g.mul(tw, g.logSoftmax(pred, 1)), [1], { keepdims: false }));
    if (reduction === "mean" && options.weight && indices) {
      // torch: sum_i w[y_i] l_i / sum_i w[y_i]
      return g.div(
        g.reduceSum(perVoxel, undefined, { keepdims: false }),
        g.reduceSum(tw, undefined, { keepdims: false }),
      );
    }
    return reduce(g, perVoxel, reduction);
  });
}

/** torch.nn.BCEWithLogitsLoss, in the stable form max(x, 0) - x t + log(1 + exp(-|x|)). */
export function bceWithLogitsLoss(
  g: GraphBuilder,
  pred: Value,
  target: Value,
  options: { reduction?: Reduction } = {},
): Value {
  if (target.shape.join() !== pred.shape.join()) {
    throw new Error(
      `bceWithLogitsLoss: target ${formatShape(target.shape)} must be shaped like pred ${formatShape(pred.shape)}`,
    );
  }
  return g.scope("bce", () => {
    const one = g.scalar(1, floatType(pred));
    const softplus = g.log(g.add(one, g.exp(g.neg(g.abs(pred)))));
    const l = g.add(g.sub(g.relu(pred), g.mul(pred, target)), softplus);
    return reduce(g, l, options.reduction ?? "mean");
  });
}

export interface DiceCELossOptions extends DiceLossOptions {
  /** Default 1 each. */
  lambdaDice?: number;
  lambdaCe?: number;
  /** Per-class cross-entropy weights (MONAI's `weight` / ce_weight). */
  weight?: readonly number[];
}

/**
 * MONAI's DiceCELoss: lambdaDice * DiceLoss + lambdaCe * CE, where CE is CrossEntropyLoss on the logits with more
 * than one channel and BCEWithLogitsLoss with one. `reduction` applies to both ("none" is not allowed, as MONAI).
 */
export function diceCELoss(g: GraphBuilder, pred: Value, target: Value, options: DiceCELossOptions = {}): Value {
  if (pred.shape.length !== target.shape.length) {
    throw new Error("diceCELoss: the number of dimensions for input and target should be the same");
  }
  if (target.shape[1] !== 1 && target.shape[1] !== pred.shape[1]) {
    throw new Error(
      `diceCELoss: number of channels for target is neither 1 nor the same as input (${formatShape(pred.shape)} and ${formatShape(target.shape)})`,
    );
  }
  const reduction = options.reduction ?? "mean";
  if (reduction === "none") {
    throw new Error('diceCELoss: reduction "none" is not supported (the two losses reduce differently)');
  }
  const lambdaDice = options.lambdaDice ?? 1;
  const lambdaCe = options.lambdaCe ?? 1;
  if (lambdaDice < 0 || lambdaCe < 0) {
    throw new Error("diceCELoss: lambdaDice and lambdaCe should be no less than 0.0");
  }
  const dice = diceLoss(g, pred, target, options);
  const ce =
    pred.shape[1] !== 1
      ? crossEntropyLoss(g, pred, target, { reduction, weight: options.weight })
      : bceWithLogitsLoss(g, pred, target, { reduction });
  return g.scope("dice_ce", () => {
    const c = (v: number) => g.scalar(v, floatType(pred));
    return g.add(g.mul(dice, c(lambdaDice)), g.mul(ce, c(lambdaCe)));
  });
}
