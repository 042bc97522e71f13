/**
 * Monte-Carlo dropout for ONNX models.
 *
 * A network with dropout exports its Dropout nodes as they are (ratio as a constant, no training_mode), so the
 * published model is the plain inference model: onnxruntime removes every Dropout node when it optimises a
 * session (level "basic" and up), and inference is deterministic and costs what a model without dropout costs.
 *
 * Keeping dropout active at inference cannot be done with the Dropout op in onnxruntime: its EliminateDropout
 * rewrite ignores `training_mode`, so a Dropout node fed `training_mode = true`, as a constant or as a graph
 * input, is still removed at level "basic" and up (measured with onnxruntime-node 1.30; only a session at level
 * "disabled" keeps it, and the session pool runs at "all"). `mcDropoutModel` therefore derives a second model
 * from the same bytes in which each Dropout node draws its own inverted-dropout mask,
 *
 *   y = x * Cast(RandomUniformLike(x) > ratio) * 1 / (1 - ratio)
 *
 * which onnxruntime keeps and draws afresh on every run (RandomUniformLike without a seed), one mask per batch
 * item, channel and voxel, like torch.nn.Dropout in training mode. Everything else, weights included, is
 * unchanged, so the derived model belongs to the same model version.
 */
import onnxProto from "onnx-proto";
import { InvalidInputError } from "../errors.js";

const { onnx } = onnxProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const DOUBLE = onnx.TensorProto.DataType.DOUBLE;
const A = onnx.AttributeProto.AttributeType;

/** Ops whose output is random on every run: a model with none of them is deterministic. */
const RANDOM_OPS = new Set([
  "RandomUniformLike",
  "RandomNormalLike",
  "RandomUniform",
  "RandomNormal",
  "Multinomial",
  "Bernoulli",
]);

export interface McDropoutModel {
  /** The serialized model with stochastic dropout. */
  readonly bytes: Uint8Array;
  /** Dropout nodes (ratio > 0) that now draw a mask on every run. */
  readonly dropouts: number;
  /** Nodes of the result that draw random numbers on every run (the rewritten dropouts and any the model had). */
  readonly stochastic: number;
}

/**
 * The Monte-Carlo form of a serialized ONNX model: every Dropout node (in the main graph and in subgraphs) is
 * replaced by a random inverted-dropout mask; its optional mask output becomes that boolean mask. A ratio of 0
 * becomes an Identity. The ratio must be a constant (an attribute before opset 12, else an initializer or
 * Constant node, or absent for ONNX's default 0.5); the dropped tensors must be float32. Throws
 * InvalidInputError for bytes that are not an ONNX model or a ratio it cannot read.
 */
export function mcDropoutModel(bytes: Uint8Array): McDropoutModel {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InvalidInputError(`not an ONNX model: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!model.graph) {
    throw new InvalidInputError("not an ONNX model: it has no graph");
  }
  const names = new Set<string>();
  collectNames(model.graph, names);
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; names.has(name); i++) {
      name = `${base}_${i}`;
    }
    names.add(name);
    return name;
  };
  const counts = { dropouts: 0, stochastic: 0 };
  rewriteGraph(model.graph, new Map(), fresh, counts);
  return { bytes: onnx.ModelProto.encode(model).finish(), ...counts };
}

function collectNames(graph: GraphProto, names: Set<string>): void {
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    if (v.name) {
      names.add(v.name);
    }
  }
  for (const t of graph.initializer ?? []) {
    if (t.name) {
      names.add(t.name);
    }
  }
  for (const node of graph.node ?? []) {
    if (node.name) {
      names.add(node.name);
    }
    for (const out of node.output ?? []) {
      names.add(out);
    }
    for (const a of node.attribute ?? []) {
      for (const sub of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
        collectNames(sub, names);
      }
    }
  }
}

/** Scalar value of a float or double tensor, or undefined when it is not a one-value float tensor. */
function scalarOf(t: TensorProto): number | undefined {
  const count = (t.dims ?? []).reduce<number>((n, d) => n * Number(d), 1);
  if (count !== 1) {
    return undefined;
  }
  if (t.dataType === FLOAT) {
    if (t.rawData && t.rawData.length === 4) {
      return new DataView(t.rawData.buffer, t.rawData.byteOffset, 4).getFloat32(0, true);
    }
    return t.floatData?.[0];
  }
  if (t.dataType === DOUBLE) {
    if (t.rawData && t.rawData.length === 8) {
      return new DataView(t.rawData.buffer, t.rawData.byteOffset, 8).getFloat64(0, true);
    }
    return t.doubleData?.[0];
  }
  return undefined;
}

function floatScalar(name: string, value: number): TensorProto {
  const data = Float32Array.of(value);
  return { name, dataType: FLOAT, dims: [], rawData: new Uint8Array(data.buffer) };
}

function rewriteGraph(
  graph: GraphProto,
  outer: ReadonlyMap<string, TensorProto>,
  fresh: (base: string) => string,
  counts: { dropouts: number; stochastic: number },
): void {
  // Constants visible here: the enclosing graphs', then this graph's initializers and Constant nodes.
  const constants = new Map(outer);
  for (const t of graph.initializer ?? []) {
    if (t.name) {
      constants.set(t.name, t);
    }
  }
  for (const node of graph.node ?? []) {
    const value = node.opType === "Constant" ? node.attribute?.find((a) => a.name === "value")?.t : undefined;
    if (value && node.output?.[0]) {
      constants.set(node.output[0], value);
    }
  }
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      for (const sub of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
        rewriteGraph(sub, constants, fresh, counts);
      }
    }
    if (node.opType !== "Dropout" || (node.domain ?? "") !== "") {
      if (RANDOM_OPS.has(node.opType ?? "") && (node.domain ?? "") === "") {
        counts.stochastic++;
      }
      nodes.push(node);
      continue;
    }
    const label = node.name || node.output?.[0] || "Dropout";
    const ratio = dropoutRatio(node, constants, label);
    const [x] = node.input ?? [];
    const [y, mask] = node.output ?? [];
    if (!x || !y) {
      throw new InvalidInputError(`Dropout ${label} has no input or no output`);
    }
    if (ratio === 0 && !mask) {
      nodes.push({ name: node.name, opType: "Identity", domain: "", input: [x], output: [y] });
      continue;
    }
    const base = node.name || `${y}/Dropout`;
    const u = fresh(`${base}/mc_uniform`);
    const keep = mask || fresh(`${base}/mc_keep`);
    const keepF = fresh(`${base}/mc_keep_f`);
    const scaled = fresh(`${base}/mc_mask`);
    const ratioName = fresh(`${base}/mc_ratio`);
    const scaleName = fresh(`${base}/mc_scale`);
    initializers.push(floatScalar(ratioName, ratio), floatScalar(scaleName, 1 / (1 - ratio)));
    nodes.push(
      {
        name: u,
        opType: "RandomUniformLike",
        domain: "",
        input: [x],
        output: [u],
        attribute: [
          { name: "dtype", type: A.INT, i: FLOAT },
          { name: "low", type: A.FLOAT, f: 0 },
          { name: "high", type: A.FLOAT, f: 1 },
        ],
      },
      { name: fresh(`${base}/mc_greater`), opType: "Greater", domain: "", input: [u, ratioName], output: [keep] },
      {
        name: keepF,
        opType: "Cast",
        domain: "",
        input: [keep],
        output: [keepF],
        attribute: [{ name: "to", type: A.INT, i: FLOAT }],
      },
      { name: scaled, opType: "Mul", domain: "", input: [keepF, scaleName], output: [scaled] },
      { name: node.name || fresh(`${base}/mc_apply`), opType: "Mul", domain: "", input: [x, scaled], output: [y] },
    );
    counts.dropouts++;
    counts.stochastic++;
  }
  graph.node = nodes;
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
}

function dropoutRatio(node: NodeProto, constants: ReadonlyMap<string, TensorProto>, label: string): number {
  const attrRatio = node.attribute?.find((a) => a.name === "ratio");
  let ratio: number | undefined;
  if (attrRatio) {
    ratio = attrRatio.f ?? 0.5;
  } else {
    const input = node.input?.[1];
    if (!input) {
      ratio = 0.5; // ONNX's default
    } else {
      const t = constants.get(input);
      if (!t) {
        throw new InvalidInputError(`Dropout ${label}: its ratio ${input} is computed, not a constant`);
      }
      ratio = scalarOf(t);
      if (ratio === undefined) {
        throw new InvalidInputError(`Dropout ${label}: its ratio ${input} is not one float or double value`);
      }
    }
  }
  if (!(ratio >= 0 && ratio < 1)) {
    throw new InvalidInputError(`Dropout ${label}: ratio must be in [0, 1), got ${ratio}`);
  }
  return ratio;
}
