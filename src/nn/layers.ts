import type { GraphBuilder } from "../graph/builder.js";
import type { Value } from "../graph/ir.js";
import { kaimingUniform } from "./init.js";
import { Module } from "./module.js";

/** One value for every spatial axis, or one per axis (MONAI's `Sequence[int] | int`). */
export type SpatialArg = number | readonly number[];

export function expandSpatial(v: SpatialArg, spatialDims: number, what: string): number[] {
  if (typeof v === "number") {
    return Array(spatialDims).fill(v);
  }
  if (v.length !== spatialDims) {
    throw new Error(
      `the length of \`${what}\` should equal to \`spatialDims\` (${spatialDims}), got [${v.join(", ")}]`,
    );
  }
  return [...v];
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** MONAI's same_padding: (k - 1) / 2 * d, and, as there, an error when that is not a whole number. */
export function samePadding(kernel: readonly number[], dilation: readonly number[]): number[] {
  return kernel.map((k, i) => {
    const p = ((k - 1) / 2) * dilation[i]!;
    if (!Number.isInteger(p)) {
      throw new Error(`same padding not available for kernelSize=${k} and dilation=${dilation[i]}`);
    }
    return p;
  });
}

export interface ConvLayerOptions {
  spatialDims: number;
  inChannels: number;
  outChannels: number;
  kernelSize: SpatialArg;
  strides?: SpatialArg;
  padding?: SpatialArg;
  dilation?: SpatialArg;
  groups?: number;
  bias?: boolean;
  transposed?: boolean;
  /** Transposed only. */
  outputPadding?: SpatialArg;
}

/** torch.nn.ConvNd / ConvTransposeNd: `weight` (and `bias`), with PyTorch's default initialization. */
export class ConvLayer extends Module {
  readonly kernel: number[];
  readonly strides: number[];
  readonly padding: number[];
  readonly dilation: number[];
  readonly outputPadding: number[];
  readonly groups: number;
  readonly bias: boolean;
  readonly transposed: boolean;

  constructor(readonly options: ConvLayerOptions) {
    super();
    const d = options.spatialDims;
    const { inChannels, outChannels } = options;
    this.kernel = expandSpatial(options.kernelSize, d, "kernelSize");
    this.strides = expandSpatial(options.strides ?? 1, d, "strides");
    this.padding = expandSpatial(options.padding ?? 0, d, "padding");
    this.dilation = expandSpatial(options.dilation ?? 1, d, "dilation");
    this.outputPadding = expandSpatial(options.outputPadding ?? 0, d, "outputPadding");
    this.groups = options.groups ?? 1;
    this.bias = options.bias ?? true;
    this.transposed = options.transposed ?? false;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`channels ${inChannels} -> ${outChannels} are not divisible by groups ${this.groups}`);
    }
    // PyTorch's fan_in is weight.size(1) * receptive field, also for transposed weights [in, out/groups, ...k].
    const shape = this.transposed
      ? [inChannels, outChannels / this.groups, ...this.kernel]
      : [outChannels, inChannels / this.groups, ...this.kernel];
    const init = kaimingUniform(shape[1]! * prod(this.kernel));
    this.addParameter("weight", shape, init);
    if (this.bias) {
      this.addParameter("bias", [outChannels], init);
    }
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const w = this.param(g, prefix, "weight");
    const b = this.bias ? this.param(g, prefix, "bias") : undefined;
    const common = { strides: this.strides, pads: this.padding, dilations: this.dilation, group: this.groups };
    return g.scope(prefix.slice(0, -1), () =>
      this.transposed
        ? g.convTranspose(x, w, b, { ...common, outputPadding: this.outputPadding })
        : g.conv(x, w, b, common),
    );
  }
}

export type NormName = "INSTANCE" | "BATCH" | "NONE";
export interface NormArgs {
  affine?: boolean;
  eps?: number;
}
/** MONAI's norm argument: a name, or [name, args] (names are case-insensitive, as MONAI's factories). */
export type NormSpec = NormName | Lowercase<NormName> | [NormName | Lowercase<NormName>, NormArgs];

export type ActName = "PRELU" | "RELU" | "LEAKYRELU";
export interface ActArgs {
  /** LeakyReLU's slope (default 0.01, PyTorch's). */
  negativeSlope?: number;
  /** PReLU's slope count (default 1) and initial value (default 0.25). */
  numParameters?: number;
  init?: number;
}
export type ActSpec = ActName | Lowercase<ActName> | [ActName | Lowercase<ActName>, ActArgs];

function parseSpec<N extends string, A>(spec: N | Lowercase<N> | [N | Lowercase<N>, A], known: readonly N[]) {
  const [name, args] = Array.isArray(spec) ? spec : [spec, {} as A];
  const upper = name.toUpperCase() as N;
  if (!known.includes(upper)) {
    throw new Error(`unknown name '${name}', expected one of ${known.join(", ")}`);
  }
  return { name: upper, args: args as A };
}

export function parseNorm(spec: NormSpec) {
  return parseSpec<NormName, NormArgs>(spec, ["INSTANCE", "BATCH", "NONE"]);
}

export function parseAct(spec: ActSpec) {
  return parseSpec<ActName, ActArgs>(spec, ["PRELU", "RELU", "LEAKYRELU"]);
}

/** InstanceNormNd (affine false by default, as PyTorch and MONAI's "INSTANCE"). */
export class InstanceNorm extends Module {
  readonly affine: boolean;
  readonly eps: number;

  constructor(
    readonly channels: number,
    args: NormArgs = {},
  ) {
    super();
    this.affine = args.affine ?? false;
    this.eps = args.eps ?? 1e-5;
    if (this.affine) {
      this.addParameter("weight", [channels], { kind: "fill", value: 1 });
      this.addParameter("bias", [channels], { kind: "fill", value: 0 });
    }
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const scope = prefix.slice(0, -1);
    const scale = this.affine ? this.param(g, prefix, "weight") : g.scope(scope, () => g.fill(1, [this.channels]));
    const bias = this.affine ? this.param(g, prefix, "bias") : g.scope(scope, () => g.fill(0, [this.channels]));
    return g.scope(scope, () => g.instanceNorm(x, scale, bias, { epsilon: this.eps }));
  }
}

/**
 * BatchNormNd in its inference form. running_mean/running_var are buffers (kept in checkpoints, not trained);
 * PyTorch's num_batches_tracked is not kept.
 */
export class BatchNorm extends Module {
  readonly eps: number;

  constructor(
    readonly channels: number,
    args: NormArgs = {},
  ) {
    super();
    this.eps = args.eps ?? 1e-5;
    if (args.affine === false) {
      throw new Error("BatchNorm with affine=false is not supported");
    }
    this.addParameter("weight", [channels], { kind: "fill", value: 1 });
    this.addParameter("bias", [channels], { kind: "fill", value: 0 });
    this.addParameter("running_mean", [channels], { kind: "fill", value: 0 }, false);
    this.addParameter("running_var", [channels], { kind: "fill", value: 1 }, false);
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const [w, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map((n) => this.param(g, prefix, n));
    return g.scope(prefix.slice(0, -1), () => g.batchNorm(x, w!, b!, m!, v!, { epsilon: this.eps }));
  }
}

export class Activation extends Module {
  readonly kind: ActName;
  readonly negativeSlope: number;
  readonly numParameters: number;

  constructor(spec: ActSpec) {
    super();
    const { name, args } = parseAct(spec);
    this.kind = name;
    this.negativeSlope = args.negativeSlope ?? 0.01;
    this.numParameters = args.numParameters ?? 1;
    if (name === "PRELU") {
      this.addParameter("weight", [this.numParameters], { kind: "fill", value: args.init ?? 0.25 });
    }
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const scope = prefix.slice(0, -1);
    switch (this.kind) {
      case "RELU":
        return g.scope(scope, () => g.relu(x));
      case "LEAKYRELU":
        return g.scope(scope, () => g.leakyRelu(x, this.negativeSlope));
      case "PRELU": {
        const w = this.param(g, prefix, "weight");
        return g.scope(scope, () => {
          // PyTorch's per-channel slope [C] lines up with axis 1; ONNX broadcasting needs [C, 1, ..., 1].
          const slope =
            this.numParameters === 1 ? w : g.reshape(w, [this.numParameters, ...Array(x.shape.length - 2).fill(1)]);
          return g.prelu(x, slope);
        });
      }
    }
  }
}

export class Dropout extends Module {
  constructor(readonly ratio: number) {
    super();
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    return g.scope(prefix.slice(0, -1), () => g.dropout(x, this.ratio));
  }
}

/** Children run in registration order, named like PyTorch's nn.Sequential ("0", "1", ... or given names). */
export class Sequential extends Module {
  private readonly order: string[] = [];

  constructor(modules: readonly Module[] | Readonly<Record<string, Module>> = []) {
    super();
    const entries = Array.isArray(modules)
      ? modules.map((m, i) => [String(i), m] as const)
      : Object.entries(modules as Record<string, Module>);
    for (const [name, m] of entries) {
      this.append(name, m);
    }
  }

  append(name: string, module: Module): this {
    this.addModule(name, module);
    this.order.push(name);
    return this;
  }

  get length(): number {
    return this.order.length;
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    let y = x;
    for (const name of this.order) {
      y = this.child(g, prefix, name, y);
    }
    return y;
  }
}

export interface ADNOptions {
  ordering?: string;
  channels: number;
  act?: ActSpec | null;
  norm?: NormSpec | null;
  dropout?: number | null;
}

/** MONAI's ADN: norm ("N"), dropout ("D"), activation ("A") in the given ordering (default "NDA"). */
export class ADN extends Sequential {
  constructor(options: ADNOptions) {
    super();
    const ordering = (options.ordering ?? "NDA").toUpperCase();
    for (const item of ordering) {
      if (item === "N" && options.norm) {
        const { name, args } = parseNorm(options.norm);
        if (name === "INSTANCE") {
          this.append("N", new InstanceNorm(options.channels, args));
        } else if (name === "BATCH") {
          this.append("N", new BatchNorm(options.channels, args));
        }
      } else if (item === "D" && options.dropout) {
        // MONAI keeps a Dropout(p=0) module too; it has no parameters and is the identity, so it is left out.
        this.append("D", new Dropout(options.dropout));
      } else if (item === "A" && options.act) {
        this.append("A", new Activation(options.act));
      } else if (!"NDA".includes(item)) {
        throw new Error(`ADN ordering '${ordering}' may only use the letters N, D and A`);
      }
    }
  }
}

export interface ConvolutionOptions {
  spatialDims: number;
  inChannels: number;
  outChannels: number;
  strides?: SpatialArg;
  kernelSize?: SpatialArg;
  adnOrdering?: string;
  act?: ActSpec | null;
  norm?: NormSpec | null;
  dropout?: number | null;
  dilation?: SpatialArg;
  groups?: number;
  bias?: boolean;
  convOnly?: boolean;
  isTransposed?: boolean;
  padding?: SpatialArg;
  outputPadding?: SpatialArg;
}

/**
 * MONAI's Convolution block: `conv` then `adn` (skipped with convOnly). Same padding by default; transposed
 * convolutions get output_padding = stride - 1, so a stride-s block exactly inverts a stride-s down block.
 */
export class Convolution extends Sequential {
  constructor(options: ConvolutionOptions) {
    super();
    const d = options.spatialDims;
    const kernel = expandSpatial(options.kernelSize ?? 3, d, "kernelSize");
    const strides = expandSpatial(options.strides ?? 1, d, "strides");
    const dilation = expandSpatial(options.dilation ?? 1, d, "dilation");
    const padding = options.padding ?? samePadding(kernel, dilation);
    const transposed = options.isTransposed ?? false;
    this.append(
      "conv",
      new ConvLayer({
        spatialDims: d,
        inChannels: options.inChannels,
        outChannels: options.outChannels,
        kernelSize: kernel,
        strides,
        padding,
        dilation,
        groups: options.groups,
        bias: options.bias,
        transposed,
        ...(transposed ? { outputPadding: options.outputPadding ?? strides.map((s) => s - 1) } : {}),
      }),
    );
    if (!options.convOnly) {
      this.append(
        "adn",
        new ADN({
          ordering: options.adnOrdering,
          channels: options.outChannels,
          act: options.act === undefined ? "PRELU" : options.act,
          norm: options.norm === undefined ? "INSTANCE" : options.norm,
          dropout: options.dropout,
        }),
      );
    }
  }
}

export interface ResidualUnitOptions {
  spatialDims: number;
  inChannels: number;
  outChannels: number;
  strides?: SpatialArg;
  kernelSize?: SpatialArg;
  subunits?: number;
  adnOrdering?: string;
  act?: ActSpec | null;
  norm?: NormSpec | null;
  dropout?: number | null;
  dilation?: SpatialArg;
  bias?: boolean;
  lastConvOnly?: boolean;
  padding?: SpatialArg;
}

/**
 * MONAI's ResidualUnit: `conv` (unit0 .. unitN-1, only the first strided) plus a `residual` path that is the
 * identity, or a conv (1x1 when only the channel count changes) when the shape changes.
 */
export class ResidualUnit extends Module {
  constructor(options: ResidualUnitOptions) {
    super();
    const d = options.spatialDims;
    const kernel = expandSpatial(options.kernelSize ?? 3, d, "kernelSize");
    const dilation = expandSpatial(options.dilation ?? 1, d, "dilation");
    const strides = expandSpatial(options.strides ?? 1, d, "strides");
    const padding = options.padding ?? samePadding(kernel, dilation);
    const subunits = Math.max(1, options.subunits ?? 2);
    const conv = this.addModule("conv", new Sequential());
    let channels = options.inChannels;
    let unitStrides: SpatialArg = strides;
    for (let su = 0; su < subunits; su++) {
      conv.append(
        `unit${su}`,
        new Convolution({
          spatialDims: d,
          inChannels: channels,
          outChannels: options.outChannels,
          strides: unitStrides,
          kernelSize: kernel,
          adnOrdering: options.adnOrdering,
          act: options.act,
          norm: options.norm,
          dropout: options.dropout,
          dilation,
          bias: options.bias,
          convOnly: (options.lastConvOnly ?? false) && su === subunits - 1,
          padding,
        }),
      );
      channels = options.outChannels;
      unitStrides = 1;
    }
    if (prod(strides) !== 1 || options.inChannels !== options.outChannels) {
      const channelsOnly = prod(strides) === 1;
      this.addModule(
        "residual",
        new ConvLayer({
          spatialDims: d,
          inChannels: options.inChannels,
          outChannels: options.outChannels,
          kernelSize: channelsOnly ? 1 : kernel,
          strides,
          padding: channelsOnly ? 0 : padding,
          bias: options.bias,
        }),
      );
    }
  }

  forward(g: GraphBuilder, x: Value, prefix: string): Value {
    const res = this.hasChild("residual") ? this.child(g, prefix, "residual", x) : x;
    const cx = this.child(g, prefix, "conv", x);
    return g.scope(prefix.slice(0, -1), () => g.add(cx, res));
  }
}
