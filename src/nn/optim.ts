/**
 * Optimizers as graph fragments, with PyTorch's update formulas (torch.optim.Adam, AdamW, SGD), and learning-rate
 * schedules computed in TypeScript. An optimizer adds, for every parameter, the nodes that turn (parameter,
 * gradient, state) into the new parameter and state; the learning rate and the step count are graph inputs, so
 * one model serves every step.
 */
import type { GraphBuilder } from "../graph/builder.js";
import type { Value } from "../graph/ir.js";

/** One parameter to update. */
export interface ParamSlot {
  readonly name: string;
  readonly param: Value;
  /** undefined when the loss does not depend on the parameter: PyTorch skips such parameters, and so do we. */
  readonly grad: Value | undefined;
  /** One value per `stateNames` entry, shaped like the parameter. */
  readonly state: readonly Value[];
}

export interface OptimizerContext {
  /** Learning rate of this step, a float32 scalar input. */
  readonly lr: Value;
  /** Steps taken before this one (0 on the first step), a float32 scalar input. */
  readonly step: Value;
}

export interface ParamUpdate {
  readonly param: Value;
  readonly state: Value[];
}

export interface Optimizer {
  readonly name: string;
  /** The per-parameter state tensors (PyTorch's names), zero at the start, shaped like the parameter. */
  readonly stateNames: readonly string[];
  /** Appends the update of every slot; results are in slot order. */
  apply(g: GraphBuilder, slots: readonly ParamSlot[], context: OptimizerContext): ParamUpdate[];
}

export interface AdamOptions {
  /** (beta1, beta2), default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient (Adam) or decoupled decay (AdamW); default 0 (Adam) and 0.01 (AdamW). */
  weightDecay?: number;
}

/**
 * torch.optim.Adam: g += wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), with t the 1-based step.
 */
export class Adam implements Optimizer {
  readonly name: string = "Adam";
  readonly stateNames = ["exp_avg", "exp_avg_sq"] as const;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly decoupled: boolean = false;

  constructor(options: AdamOptions = {}) {
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? this.defaultWeightDecay();
    for (const [what, v] of [
      ["beta1", this.beta1],
      ["beta2", this.beta2],
    ] as const) {
      if (!(v >= 0 && v < 1)) {
        throw new Error(`${this.constructor.name}: ${what} must be in [0, 1), got ${v}`);
      }
    }
    if (!(this.eps >= 0) || !(this.weightDecay >= 0)) {
      throw new Error(`${this.constructor.name}: eps and weightDecay must be >= 0`);
    }
  }

  protected defaultWeightDecay(): number {
    return 0;
  }

  apply(g: GraphBuilder, slots: readonly ParamSlot[], context: OptimizerContext): ParamUpdate[] {
    return g.scope("optim", () => {
      const { lr, step } = context;
      const t = g.add(step, g.scalar(1));
      const bc1 = g.sub(g.scalar(1), g.pow(g.scalar(this.beta1), t));
      const bc2Sqrt = g.sqrt(g.sub(g.scalar(1), g.pow(g.scalar(this.beta2), t)));
      const stepSize = g.div(lr, bc1);
      const b1 = g.scalar(this.beta1);
      const b2 = g.scalar(this.beta2);
      const c1 = g.scalar(1 - this.beta1);
      const c2 = g.scalar(1 - this.beta2);
      const eps = g.scalar(this.eps);
      const decay =
        this.weightDecay > 0 && this.decoupled ? g.sub(g.scalar(1), g.mul(lr, g.scalar(this.weightDecay))) : undefined;
      return slots.map((slot) =>
        g.scope(slot.name, () => {
          const [m, v] = slot.state as [Value, Value];
          if (!slot.grad) {
            return { param: slot.param, state: [m, v] };
          }
          let grad = slot.grad;
          let p = slot.param;
          if (this.weightDecay > 0 && !this.decoupled) {
            grad = g.add(grad, g.mul(p, g.scalar(this.weightDecay)));
          }
          if (decay) {
            p = g.mul(p, decay);
          }
          const m2 = g.add(g.mul(m, b1), g.mul(grad, c1));
          const v2 = g.add(g.mul(v, b2), g.mul(g.mul(grad, grad), c2));
          const denom = g.add(g.div(g.sqrt(v2), bc2Sqrt), eps);
          const p2 = g.sub(p, g.mul(g.div(m2, denom), stepSize));
          return { param: p2, state: [m2, v2] };
        }),
      );
    });
  }
}

/** torch.optim.AdamW: p *= 1 - lr * wd (decoupled), then Adam's update; weightDecay defaults to 0.01. */
export class AdamW extends Adam {
  override readonly name: string = "AdamW";
  protected override readonly decoupled: boolean = true;

  protected override defaultWeightDecay(): number {
    return 0.01;
  }
}

export interface SGDOptions {
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD: d = g + wd * p; with momentum, buf = d on the first step and mu * buf + (1 - dampening) * d
 * after, d = nesterov ? d + mu * buf : buf; p -= lr * d.
 */
export class SGD implements Optimizer {
  readonly name = "SGD";
  readonly stateNames: readonly string[];
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;

  constructor(options: SGDOptions = {}) {
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (this.momentum < 0 || this.weightDecay < 0) {
      throw new Error("SGD: momentum and weightDecay must be >= 0");
    }
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error("SGD: Nesterov momentum requires a momentum and zero dampening");
    }
    this.stateNames = this.momentum > 0 ? ["momentum_buffer"] : [];
  }

  apply(g: GraphBuilder, slots: readonly ParamSlot[], context: OptimizerContext): ParamUpdate[] {
    return g.scope("optim", () => {
      const { lr, step } = context;
      const mu = g.scalar(this.momentum);
      // 1 on the first step (buf = d), 1 - dampening after.
      const take =
        this.momentum > 0 && this.dampening !== 0
          ? g.sub(g.scalar(1), g.mul(g.min([step, g.scalar(1)]), g.scalar(this.dampening)))
          : undefined;
      return slots.map((slot) =>
        g.scope(slot.name, () => {
          if (!slot.grad) {
            return { param: slot.param, state: [...slot.state] };
          }
          let d = slot.grad;
          if (this.weightDecay > 0) {
            d = g.add(d, g.mul(slot.param, g.scalar(this.weightDecay)));
          }
          const state: Value[] = [];
          if (this.momentum > 0) {
            const buf = slot.state[0]!;
            const buf2 = g.add(g.mul(buf, mu), take ? g.mul(d, take) : d);
            state.push(buf2);
            d = this.nesterov ? g.add(d, g.mul(buf2, mu)) : buf2;
          }
          return { param: g.sub(slot.param, g.mul(d, lr)), state };
        }),
      );
    });
  }
}

// ---------------------------------------------------------------------------------------- schedules

/** Learning rate of the step with 0-based index `step`. */
export type LRSchedule = (step: number) => number;

export function constantLR(lr: number): LRSchedule {
  return () => lr;
}

/** torch.optim.lr_scheduler.StepLR: lr * gamma^floor(step / stepSize). */
export function stepLR(lr: number, options: { stepSize: number; gamma?: number }): LRSchedule {
  const gamma = options.gamma ?? 0.1;
  if (!(options.stepSize >= 1)) {
    throw new Error(`stepLR: stepSize must be >= 1, got ${options.stepSize}`);
  }
  return (step) => lr * gamma ** Math.floor(step / options.stepSize);
}

/**
 * Cosine annealing to minLr over totalSteps (torch's CosineAnnealingLR; MONAI's WarmupCosineSchedule with
 * warmupSteps > 0: a linear ramp from 0 first). Steps past the end stay at minLr.
 */
export function cosineLR(
  lr: number,
  options: { totalSteps: number; minLr?: number; warmupSteps?: number },
): LRSchedule {
  const minLr = options.minLr ?? 0;
  const warmup = options.warmupSteps ?? 0;
  const total = options.totalSteps;
  if (!(total > warmup)) {
    throw new Error(`cosineLR: totalSteps (${total}) must exceed warmupSteps (${warmup})`);
  }
  return (step) => {
    if (step < warmup) {
      return (lr * step) / Math.max(1, warmup);
    }
    const progress = Math.min(1, (step - warmup) / (total - warmup));
    return minLr + ((lr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
}

/** Polynomial decay, lr * (1 - step / totalSteps)^power (power 0.9, as nnU-Net's PolyLRScheduler). */
export function polyLR(lr: number, options: { totalSteps: number; power?: number; minLr?: number }): LRSchedule {
  const power = options.power ?? 0.9;
  const minLr = options.minLr ?? 0;
  if (!(options.totalSteps >= 1)) {
    throw new Error(`polyLR: totalSteps must be >= 1, got ${options.totalSteps}`);
  }
  return (step) => minLr + (lr - minLr) * Math.max(0, 1 - step / options.totalSteps) ** power;
}
