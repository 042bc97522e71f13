import { GraphBuilder } from "../graph/builder.js";
import { formatShape, type Graph, numel, type Value } from "../graph/ir.js";
import { fillInit, type Init, rngFor } from "./init.js";
import { mcDropoutModel } from "./mc-dropout.js";

/** A named tensor of a network: a learnt parameter, or a buffer (BatchNorm running statistics). */
export interface Parameter {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  /** false for buffers, which a checkpoint keeps but an optimizer leaves alone. */
  readonly trainable: boolean;
}

export interface ParameterEntry {
  data: Float32Array;
  shape: readonly number[];
}

interface OwnParameter extends Parameter {
  readonly init: Init;
}

/**
 * A PyTorch-like module tree. Parameter names are the dotted paths PyTorch's state_dict would use for the same
 * MONAI network (`model.0.conv.weight`), so checkpoints converted from MONAI keep their names.
 */
export abstract class Module {
  private readonly ownParameters = new Map<string, OwnParameter>();
  private readonly childModules = new Map<string, Module>();

  /**
   * Adds this module's part of the forward graph. `prefix` is the module's path with a trailing dot ("" at the
   * root); parameters become graph initializers named prefix + parameter name.
   */
  abstract forward(g: GraphBuilder, x: Value, prefix: string): Value;

  protected addParameter(name: string, shape: readonly number[], init: Init, trainable = true): void {
    if (this.ownParameters.has(name) || this.childModules.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
    this.ownParameters.set(name, { data: new Float32Array(numel(shape)), shape: [...shape], trainable, init });
  }

  protected addModule<T extends Module>(name: string, module: T): T {
    if (this.ownParameters.has(name) || this.childModules.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
    this.childModules.set(name, module);
    return module;
  }

  /** The graph value of one of this module's own parameters. */
  protected param(g: GraphBuilder, prefix: string, name: string): Value {
    const p = this.ownParameters.get(name);
    if (!p) {
      throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    }
    return g.initializer(prefix + name, p.data, p.shape, { trainable: p.trainable });
  }

  /** Runs a child module, under its own name scope so node names read like the module path. */
  protected child(g: GraphBuilder, prefix: string, name: string, x: Value): Value {
    const module = this.childModules.get(name);
    if (!module) {
      throw new Error(`${this.constructor.name}: no submodule '${name}'`);
    }
    return module.forward(g, x, `${prefix}${name}.`);
  }

  /** A child module, for modules whose forward takes more than one tensor. */
  protected submodule<T extends Module>(name: string): T {
    const module = this.childModules.get(name);
    if (!module) {
      throw new Error(`${this.constructor.name}: no submodule '${name}'`);
    }
    return module as T;
  }

  protected hasChild(name: string): boolean {
    return this.childModules.has(name);
  }

  /** Every parameter and buffer by full name (live arrays, like PyTorch's state_dict), in registration order. */
  parameters(): Map<string, Parameter> {
    const out = new Map<string, Parameter>();
    this.collect("", out);
    return out;
  }

  private collect(prefix: string, out: Map<string, Parameter>): void {
    for (const [name, p] of this.ownParameters) {
      out.set(prefix + name, { data: p.data, shape: p.shape, trainable: p.trainable });
    }
    for (const [name, child] of this.childModules) {
      child.collect(`${prefix}${name}.`, out);
    }
  }

  private collectOwn(prefix: string, out: Map<string, OwnParameter>): void {
    for (const [name, p] of this.ownParameters) {
      out.set(prefix + name, p);
    }
    for (const [name, child] of this.childModules) {
      child.collectOwn(`${prefix}${name}.`, out);
    }
  }

  /** Re-draws every parameter from `seed`; a parameter's values depend only on the seed and its full name. */
  resetParameters(seed: number): void {
    const all = new Map<string, OwnParameter>();
    this.collectOwn("", all);
    for (const [name, p] of all) {
      fillInit(p.data, p.init, rngFor(seed, name));
    }
  }

  /**
   * Copies values in by name, checking every shape. With strict (the default) the names must match exactly,
   * like PyTorch's load_state_dict; every problem is reported in one error.
   */
  loadParameters(entries: ReadonlyMap<string, ParameterEntry>, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    const own = this.parameters();
    const problems: string[] = [];
    for (const [name, entry] of entries) {
      const p = own.get(name);
      if (!p) {
        if (strict) {
          problems.push(`unexpected parameter '${name}'`);
        }
        continue;
      }
      if (entry.shape.join() !== p.shape.join()) {
        problems.push(`'${name}': checkpoint shape ${formatShape(entry.shape)}, network shape ${formatShape(p.shape)}`);
      } else if (entry.data.length !== p.data.length) {
        problems.push(`'${name}': ${entry.data.length} values for shape ${formatShape(p.shape)}`);
      }
    }
    if (strict) {
      for (const name of own.keys()) {
        if (!entries.has(name)) {
          problems.push(`missing parameter '${name}'`);
        }
      }
    }
    if (problems.length > 0) {
      throw new Error(`${this.constructor.name}.loadParameters: ${problems.join("; ")}`);
    }
    for (const [name, entry] of entries) {
      own.get(name)?.data.set(entry.data);
    }
  }
}

export interface ToOnnxOptions {
  /** Full input shape [N, C, ...spatial]. */
  inputShape: readonly number[];
  /** Graph input name (default "image"). */
  inputName?: string;
  /** Graph output name (default "pred"). */
  outputName?: string;
  /**
   * Keep dropout active: every Dropout draws a fresh mask on each run (Monte-Carlo dropout, see mc-dropout.ts).
   * Default false: the plain inference model, whose Dropout nodes onnxruntime removes.
   */
  mcDropout?: boolean;
}

/** A whole network: one image tensor in, one tensor out. */
export abstract class Network extends Module {
  abstract readonly spatialDims: number;
  abstract readonly inChannels: number;
  abstract readonly outChannels: number;

  /** Throws a clear error for inputs the network cannot take; subclasses add their own spatial rules. */
  protected checkInput(shape: readonly number[]): void {
    const name = this.constructor.name;
    if (shape.length !== this.spatialDims + 2) {
      throw new Error(`${name}: input shape ${formatShape(shape)} must be [N, C, ${this.spatialDims} spatial sizes]`);
    }
    if (shape[1] !== this.inChannels) {
      throw new Error(`${name}: input has ${shape[1]} channels, the network takes ${this.inChannels}`);
    }
  }

  /** Adds the forward graph of the network applied to x, and returns its output. */
  build(g: GraphBuilder, x: Value): Value {
    this.checkInput(x.shape);
    return this.forward(g, x, "");
  }

  toGraph(options: ToOnnxOptions): Graph {
    return this.builder(options).graph();
  }

  /** A complete ONNX model (input `image`, output `pred` by default) with the current parameters. */
  toOnnx(options: ToOnnxOptions): Uint8Array {
    const bytes = this.builder(options).serialize();
    return options.mcDropout ? mcDropoutModel(bytes).bytes : bytes;
  }

  private builder(options: ToOnnxOptions): GraphBuilder {
    const g = new GraphBuilder({ name: this.constructor.name, opset: 18 });
    const x = g.input(options.inputName ?? "image", "float32", options.inputShape);
    g.output(this.build(g, x), options.outputName ?? "pred");
    return g;
  }
}
