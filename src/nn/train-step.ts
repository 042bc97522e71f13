/**
 * One ONNX model per training step: forward, loss, generated backward pass and optimizer update all run in a
 * single `session.run`. Parameters, buffers and optimizer state are graph inputs and their new values graph
 * outputs (ORT's node binding cannot update initializers in place), carried between steps as Float32Arrays by
 * `Trainer`. See reference/onnx-training.md for the method and its traps.
 */
import * as ort from "onnxruntime-node";
import { gradients } from "../graph/autodiff.js";
import type { GraphBuilder } from "../graph/builder.js";
import { formatShape, numel, prune, type Value } from "../graph/ir.js";
import { serializeGraph } from "../graph/serialize.js";
import { TrainingGraphBuilder } from "../graph/training.js";
import { createPlacedSession, type Device, type PlacedSession, type ProviderProbe } from "../runtime/providers.js";
import type { Network, ParameterEntry } from "./module.js";
import type { LRSchedule, Optimizer, ParamSlot } from "./optim.js";

/**
 * A loss in the training graph: the network's output (logits) against the target; `input` is the image batch
 * the network saw (e.g. its click channels, for a loss that weighs voxels near the clicks), a constant to the
 * gradients.
 */
export type LossFunction = (g: GraphBuilder, pred: Value, target: Value, input: Value) => Value;

export interface TrainStepOptions {
  network: Network;
  /** [N, C, ...spatial] of the image batch. */
  inputShape: readonly number[];
  /** Shape of the label batch. */
  targetShape: readonly number[];
  /** Adds the loss of the network output (logits) against the target; must be a single value. */
  loss: LossFunction;
  optimizer: Optimizer;
  /** Graph input names, default "image" and "label". */
  inputName?: string;
  targetName?: string;
  /** Seed of dropout masks (default: fresh masks in every session). */
  dropoutSeed?: number;
}

/** A carried tensor: graph input `input`, its value after the step in graph output `output`. */
export interface CarriedTensor {
  readonly input: string;
  readonly output: string;
  readonly shape: readonly number[];
}

export interface TrainStep {
  /** The serialized step model. */
  readonly model: Uint8Array;
  readonly inputName: string;
  readonly targetName: string;
  readonly inputShape: readonly number[];
  readonly targetShape: readonly number[];
  /** Scalar inputs: the learning rate and the number of steps taken before this one. */
  readonly lrName: string;
  readonly stepName: string;
  /** Scalar output with the loss, and the network output (logits, before the update). */
  readonly lossName: string;
  readonly predName: string;
  readonly predShape: readonly number[];
  /** Trainable parameters the graph updates (network names). */
  readonly paramNames: readonly string[];
  /** Buffers (BatchNorm running statistics) the graph reads; updated ones too. */
  readonly bufferNames: readonly string[];
  /** Optimizer state inputs, `optim/<state>/<param>`. */
  readonly stateNames: readonly string[];
  /** Every tensor carried from one step to the next: parameters, buffers, optimizer state, step count. */
  readonly carried: ReadonlyMap<string, CarriedTensor>;
  /** Every tensor of the network with its value when the step was built (network names), unused ones too. */
  readonly initialParameters: ReadonlyMap<string, ParameterEntry>;
  readonly optimizer: Optimizer;
}

const NEXT = "next/";

export function stateInputName(state: string, param: string): string {
  return `optim/${state}/${param}`;
}

/** Builds the single-run training step of `network` (see TrainStep). */
export function buildTrainStep(options: TrainStepOptions): TrainStep {
  const { network, optimizer } = options;
  const inputName = options.inputName ?? "image";
  const targetName = options.targetName ?? "label";
  const g = new TrainingGraphBuilder({
    name: `${network.constructor.name}_train_step`,
    dropoutSeed: options.dropoutSeed,
  });
  const x = g.input(inputName, "float32", options.inputShape);
  const y = g.input(targetName, "float32", options.targetShape);
  const lr = g.input("optim/lr", "float32", []);
  const step = g.input("optim/step", "float32", []);
  const pred = network.build(g, x);
  const loss = options.loss(g, pred, y, x);
  if (numel(loss.shape) !== 1 || loss.dtype !== "float32") {
    throw new Error(`buildTrainStep: the loss must be one float32 value, got ${loss.dtype} ${formatShape(loss.shape)}`);
  }
  const params = [...g.parameters].filter(([, p]) => p.trainable);
  const buffers = [...g.parameters].filter(([, p]) => !p.trainable);
  const grads = gradients(
    g,
    loss,
    params.map(([name]) => name),
  );

  const carried = new Map<string, CarriedTensor>();
  const slots: ParamSlot[] = params.map(([name, p]) => ({
    name,
    param: p.value,
    grad: grads.get(name),
    state: optimizer.stateNames.map((s) => g.input(stateInputName(s, name), "float32", p.value.shape)),
  }));
  const updates = optimizer.apply(g, slots, { lr, step });

  g.output(loss, "loss");
  g.output(pred, "pred");
  const carry = (input: Value, next: Value) => {
    g.output(next, NEXT + input.name);
    carried.set(input.name, { input: input.name, output: NEXT + input.name, shape: input.shape });
  };
  slots.forEach((slot, i) => {
    const u = updates[i]!;
    carry(slot.param, u.param);
    slot.state.forEach((s, k) => {
      carry(s, u.state[k]!);
    });
  });
  for (const [name, b] of buffers) {
    carry(b.value, g.bufferUpdates.get(name) ?? b.value);
  }
  carry(
    step,
    g.scope("optim", () => g.add(step, g.scalar(1))),
  );

  const model = serializeGraph(prune(g.graph()), { docString: `training step of ${network.constructor.name}` });
  const initialParameters = new Map<string, ParameterEntry>();
  for (const [name, p] of network.parameters()) {
    initialParameters.set(name, { data: p.data.slice(), shape: [...p.shape] });
  }
  return {
    model,
    inputName,
    targetName,
    inputShape: [...options.inputShape],
    targetShape: [...options.targetShape],
    lrName: lr.name,
    stepName: step.name,
    lossName: "loss",
    predName: "pred",
    predShape: [...pred.shape],
    paramNames: params.map(([name]) => name),
    bufferNames: buffers.map(([name]) => name),
    stateNames: slots.flatMap((s) => s.state.map((v) => v.name)),
    carried,
    initialParameters,
    optimizer,
  };
}

export interface TrainerOptions {
  /** Intra-op threads (default: ORT's choice). */
  threads?: number;
  /** Learning rate by step index, used when `step` gets no lr. */
  schedule?: LRSchedule;
  /**
   * Where the steps run (default "cpu"). "cuda[:N]" uses onnxruntime's CUDA provider when it is installed and
   * starts; otherwise the CPU, and `placement()` says why.
   */
  device?: Device;
  /** How the CUDA provider is detected (tests replace it). */
  probe?: ProviderProbe;
}

/** A checkpoint: network tensors (network names), optimizer state and the number of steps taken. */
export interface TrainerState {
  step: number;
  parameters: Map<string, ParameterEntry>;
  optimizer: Map<string, Float32Array>;
}

export interface StepResult {
  loss: number;
  /** Network output (logits) of this batch, computed with the parameters before the update. */
  pred: Float32Array;
  lr: number;
}

/** Runs a TrainStep repeatedly, carrying parameters and optimizer state between runs. */
export class Trainer {
  private session: Promise<ort.InferenceSession> | undefined;
  private placed: PlacedSession | undefined;
  private readonly values = new Map<string, Float32Array>();
  /** Network tensors the graph does not read (kept for checkpoints and parameters()). */
  private readonly unused = new Map<string, ParameterEntry>();
  private steps = 0;

  constructor(
    readonly trainStep: TrainStep,
    private readonly options: TrainerOptions = {},
  ) {
    for (const [name, c] of trainStep.carried) {
      if (name === trainStep.stepName) {
        continue;
      }
      const initial = trainStep.initialParameters.get(name);
      this.values.set(name, initial ? initial.data.slice() : new Float32Array(numel(c.shape)));
    }
    for (const [name, p] of trainStep.initialParameters) {
      if (!trainStep.carried.has(name)) {
        this.unused.set(name, { data: p.data.slice(), shape: [...p.shape] });
      }
    }
  }

  /** The device the steps were asked to run on (see `placement()` for where they do). */
  get device(): Device {
    return this.options.device ?? "cpu";
  }

  /** Intra-op threads asked for (undefined: onnxruntime's default, all cores). */
  get threads(): number | undefined {
    return this.options.threads;
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.steps;
  }

  private open(): Promise<ort.InferenceSession> {
    this.session ??= createPlacedSession(
      this.trainStep.model,
      this.options.device ?? "cpu",
      {
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        interOpNumThreads: 1,
        ...(this.options.threads !== undefined ? { intraOpNumThreads: this.options.threads } : {}),
        logSeverityLevel: 3,
        // Subnormal gradients and Adam moments double the step time after a few dozen steps (study, Q4.2).
        extra: { session: { set_denormal_as_zero: "1" } },
      },
      this.options.probe,
    ).then((placed) => {
      this.placed = placed;
      return placed.session;
    });
    return this.session;
  }

  /**
   * Where the steps run: the provider used and, when it is not the one asked for, why. Creates the session if
   * no step has yet.
   */
  async placement(): Promise<{ device: Device; provider: PlacedSession["provider"]; warning?: string }> {
    await this.open();
    const { provider, warning } = this.placed!;
    return { device: this.options.device ?? "cpu", provider, ...(warning === undefined ? {} : { warning }) };
  }

  /** One optimizer step on a batch; lr defaults to the schedule's value for this step. */
  async step(image: Float32Array, label: Float32Array, lr?: number): Promise<StepResult> {
    const ts = this.trainStep;
    const rate = lr ?? this.options.schedule?.(this.steps);
    if (rate === undefined) {
      throw new Error("Trainer.step: give a learning rate or a schedule");
    }
    for (const [what, data, shape] of [
      ["image", image, ts.inputShape],
      ["label", label, ts.targetShape],
    ] as const) {
      if (data.length !== numel(shape)) {
        throw new Error(`Trainer.step: ${what} has ${data.length} values, the step takes ${formatShape(shape)}`);
      }
    }
    const session = await this.open();
    const feeds: Record<string, ort.Tensor> = {
      [ts.inputName]: new ort.Tensor("float32", image, ts.inputShape),
      [ts.targetName]: new ort.Tensor("float32", label, ts.targetShape),
      [ts.lrName]: new ort.Tensor("float32", new Float32Array([rate]), []),
      [ts.stepName]: new ort.Tensor("float32", new Float32Array([this.steps]), []),
    };
    for (const [name, data] of this.values) {
      feeds[name] = new ort.Tensor("float32", data, ts.carried.get(name)!.shape);
    }
    const out = await session.run(feeds);
    for (const name of this.values.keys()) {
      const t = out[ts.carried.get(name)!.output];
      if (!t) {
        throw new Error(`Trainer.step: the step model gave no '${ts.carried.get(name)!.output}'`);
      }
      this.values.set(name, t.data as Float32Array);
    }
    this.steps++;
    const loss = (out[ts.lossName]!.data as Float32Array)[0]!;
    return { loss, pred: out[ts.predName]!.data as Float32Array, lr: rate };
  }

  /** Current network tensors by network name (copies), loadable with `network.loadParameters`. */
  parameters(): Map<string, ParameterEntry> {
    const out = new Map<string, ParameterEntry>();
    for (const [name, p] of this.trainStep.initialParameters) {
      const live = this.values.get(name);
      out.set(name, { data: (live ?? this.unused.get(name)!.data).slice(), shape: [...p.shape] });
    }
    return out;
  }

  /** Replaces network tensors (all of them, by network name), e.g. from a pretrained checkpoint. */
  loadParameters(entries: ReadonlyMap<string, ParameterEntry>): void {
    const problems: string[] = [];
    for (const [name, p] of this.trainStep.initialParameters) {
      const e = entries.get(name);
      if (!e) {
        problems.push(`missing '${name}'`);
      } else if (e.data.length !== p.data.length || e.shape.join() !== p.shape.join()) {
        problems.push(`'${name}': ${formatShape(e.shape)}, expected ${formatShape(p.shape)}`);
      }
    }
    for (const name of entries.keys()) {
      if (!this.trainStep.initialParameters.has(name)) {
        problems.push(`unexpected '${name}'`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`Trainer.loadParameters: ${problems.join("; ")}`);
    }
    for (const [name, e] of entries) {
      if (this.values.has(name)) {
        this.values.set(name, e.data.slice());
      } else {
        this.unused.set(name, { data: e.data.slice(), shape: [...e.shape] });
      }
    }
  }

  /** A checkpoint (copies): weights, buffers, optimizer state and step count. */
  state(): TrainerState {
    const optimizer = new Map<string, Float32Array>();
    for (const name of this.trainStep.stateNames) {
      optimizer.set(name, this.values.get(name)!.slice());
    }
    return { step: this.steps, parameters: this.parameters(), optimizer };
  }

  /** Restores a checkpoint taken by `state()` of a trainer of the same network and optimizer. */
  loadState(state: TrainerState): void {
    const problems: string[] = [];
    for (const name of this.trainStep.stateNames) {
      const s = state.optimizer.get(name);
      if (!s) {
        problems.push(`missing optimizer state '${name}'`);
      } else if (s.length !== this.values.get(name)!.length) {
        problems.push(`optimizer state '${name}' has ${s.length} values, expected ${this.values.get(name)!.length}`);
      }
    }
    for (const name of state.optimizer.keys()) {
      if (!this.values.has(name)) {
        problems.push(`unexpected optimizer state '${name}'`);
      }
    }
    if (!Number.isInteger(state.step) || state.step < 0) {
      problems.push(`step must be a non-negative integer, got ${state.step}`);
    }
    if (problems.length > 0) {
      throw new Error(`Trainer.loadState: ${problems.join("; ")}`);
    }
    this.loadParameters(state.parameters);
    for (const [name, s] of state.optimizer) {
      this.values.set(name, s.slice());
    }
    this.steps = state.step;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) {
      await (await s).release();
    }
  }
}
