/**
 * A builder for training graphs. A network's `build(g, x)` runs unchanged on it, and three things differ from the
 * inference graph it would give on a plain GraphBuilder:
 *
 * - Parameters and buffers become graph inputs (ORT's node binding cannot update initializers in place, so the
 *   caller carries them between steps), recorded in `parameters` in first-use order.
 * - Dropout is built from a random mask (RandomUniformLike, Greater, Cast, Mul): ORT removes Dropout nodes that
 *   follow Relu or Conv at optimization level basic and above even with training_mode=1 (study, Q4).
 * - BatchNormalization uses the batch statistics, decomposed over [N, spatial] (ORT's CPU build has no
 *   training-mode kernel), and the updated running statistics are recorded in `bufferUpdates` (PyTorch's rule:
 *   running = momentum_onnx * running + (1 - momentum_onnx) * batch, the variance unbiased).
 */
import { type BatchNormOptions, GraphBuilder, type GraphBuilderOptions, type OpOptions } from "./builder.js";
import type { Value } from "./ir.js";

export interface TrainingGraphOptions extends GraphBuilderOptions {
  /** Seed of the dropout masks; by default each session draws fresh masks. */
  dropoutSeed?: number;
}

export interface GraphParameter {
  /** The graph input that carries it. */
  readonly value: Value;
  /** The values it had when the graph was built (the module's live array). */
  readonly data: Float32Array;
  readonly trainable: boolean;
}

export class TrainingGraphBuilder extends GraphBuilder {
  /** Every parameter and buffer the graph reads, by name, in first-use order. */
  readonly parameters = new Map<string, GraphParameter>();
  /** New values of buffers (BatchNorm running statistics) after this step, by buffer name. */
  readonly bufferUpdates = new Map<string, Value>();
  private readonly dropoutSeed: number | undefined;
  private dropouts = 0;

  constructor(options: TrainingGraphOptions = {}) {
    super(options);
    this.dropoutSeed = options.dropoutSeed;
  }

  override initializer(
    name: string,
    data: Float32Array,
    shape: readonly number[],
    options: { trainable?: boolean } = {},
  ): Value {
    const trainable = options.trainable ?? true;
    const existing = this.parameters.get(name);
    if (existing) {
      if (existing.data !== data || existing.value.shape.join() !== shape.join() || existing.trainable !== trainable) {
        throw new Error(`parameter '${name}' was added before with other data, shape or trainability`);
      }
      return existing.value;
    }
    const value = this.input(name, "float32", shape);
    this.parameters.set(name, { value, data, trainable });
    return value;
  }

  /** Inverted dropout with a fresh mask per run: x * (u >= ratio) / (1 - ratio), u ~ U[0, 1). */
  override dropout(x: Value, ratio: number, options?: OpOptions): Value {
    if (ratio <= 0) {
      return x;
    }
    if (ratio >= 1) {
      throw new Error(`dropout ratio must be below 1, got ${ratio}`);
    }
    return this.scope(options?.name ?? "Dropout", () => {
      const seed = this.dropoutSeed === undefined ? undefined : this.dropoutSeed + this.dropouts++;
      const u = this.randomUniformLike(x, { seed });
      const keep = this.cast(
        this.greater(u, this.scalar(ratio, x.dtype === "float64" ? "float64" : "float32")),
        x.dtype,
      );
      const scale = this.scalar(1 / (1 - ratio), x.dtype === "float64" ? "float64" : "float32");
      return this.mul(x, this.mul(keep, scale));
    });
  }

  /** Training form: normalizes with the batch statistics and records the running-statistics update. */
  override batchNorm(
    x: Value,
    scale: Value,
    bias: Value,
    mean: Value,
    variance: Value,
    options: BatchNormOptions = {},
  ): Value {
    const eps = options.epsilon ?? 1e-5;
    const momentum = options.momentum ?? 0.9;
    const rank = x.shape.length;
    const channels = x.shape[1]!;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const count = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
    if (count < 2) {
      throw new Error(`BatchNorm in training needs more than one value per channel, got input [${x.shape.join(", ")}]`);
    }
    for (const buffer of [mean, variance]) {
      if (this.bufferUpdates.has(buffer.name)) {
        throw new Error(`buffer '${buffer.name}' is updated twice in one training graph`);
      }
    }
    return this.scope(options.name ?? "BatchNormalization", () => {
      const view = [1, channels, ...Array(rank - 2).fill(1)];
      const m = this.reduceMean(x, axes);
      const xc = this.sub(x, m);
      const v = this.reduceMean(this.mul(xc, xc), axes);
      const inv = this.reciprocal(this.sqrt(this.add(v, this.scalar(eps))));
      const y = this.add(this.mul(this.mul(xc, inv), this.reshape(scale, view)), this.reshape(bias, view));
      const keep = this.scalar(momentum);
      const take = this.scalar(1 - momentum);
      const unbiased = this.scalar((1 - momentum) * (count / (count - 1)));
      this.bufferUpdates.set(mean.name, this.add(this.mul(mean, keep), this.mul(this.reshape(m, [channels]), take)));
      this.bufferUpdates.set(
        variance.name,
        this.add(this.mul(variance, keep), this.mul(this.reshape(v, [channels]), unbiased)),
      );
      return y;
    });
  }
}
