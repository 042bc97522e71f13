import { readFile } from "node:fs/promises";
import { differentiableOps } from "./autodiff.js";
import { numel } from "./ir.js";
import { decodeModel } from "./serialize.js";

export interface ImportedParameters {
  parameters: Map<string, { data: Float32Array; shape: number[] }>;
  /** Op types the model uses that have no gradient rule (fine-tuning the graph itself would need them). */
  uncovered: string[];
  /** Each float32 initializer's role in the graph (see `parameterRoles`), to match ones whose names differ. */
  roles: Map<string, string>;
}

/** Ops a parameter may pass through unchanged in value before the op that uses it (an exporter's reshapes). */
const PASS_THROUGH = new Set(["Reshape", "Unsqueeze", "Squeeze", "Identity", "Cast", "Flatten"]);

/**
 * The role of each named value in a graph: "Op:input:k" for the k-th node of type Op (in graph order) reading
 * it as its input-th input, looking through reshape-like ops. Two exports of the same network give their
 * parameters the same roles, whatever they call them (torch.onnx.export names a PReLU slope it reshapes
 * `onnx::PRelu_46`, where the network's state dict says `model.0.adn.A.weight`).
 */
export function parameterRoles(
  nodes: readonly { op: string; inputs: readonly string[]; outputs: readonly string[] }[],
  names: Iterable<string>,
): Map<string, string> {
  const ordinal = new Map<number, number>();
  const seen = new Map<string, number>();
  // The first node reading each value (a parameter's role is its first use).
  const reader = new Map<string, { node: number; input: number }>();
  nodes.forEach((n, i) => {
    ordinal.set(i, seen.get(n.op) ?? 0);
    seen.set(n.op, (seen.get(n.op) ?? 0) + 1);
    n.inputs.forEach((name, input) => {
      if (name && !reader.has(name)) {
        reader.set(name, { node: i, input });
      }
    });
  });
  const roles = new Map<string, string>();
  for (const name of names) {
    let value = name;
    for (let hops = 0; hops < 4; hops++) {
      const r = reader.get(value);
      if (!r) {
        break;
      }
      const node = nodes[r.node]!;
      if (PASS_THROUGH.has(node.op) && r.input === 0 && node.outputs[0]) {
        value = node.outputs[0];
        continue;
      }
      roles.set(name, `${node.op}:${r.input}:${ordinal.get(r.node)}`);
      break;
    }
  }
  return roles;
}

/**
 * The imported parameters under the names `wanted` gives (name -> shape): by name first, then, for names the
 * file lacks, by role (`parameterRoles` of `wantedRoles`) when the element count agrees; the data take the wanted
 * shape. Names neither way finds are left out (the caller's strict load names them).
 */
export function matchParameters(
  imported: ImportedParameters,
  wanted: ReadonlyMap<string, { shape: readonly number[] }>,
  wantedRoles: ReadonlyMap<string, string>,
): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  const byRole = new Map<string, string>();
  for (const [name, role] of imported.roles) {
    if (!wanted.has(name)) {
      byRole.set(role, name);
    }
  }
  for (const [name, { shape }] of wanted) {
    const direct = imported.parameters.get(name);
    const role = wantedRoles.get(name);
    const alias = direct ? undefined : role === undefined ? undefined : byRole.get(role);
    const found = direct ?? (alias === undefined ? undefined : imported.parameters.get(alias));
    if (found && found.data.length === numel(shape)) {
      out.set(name, { data: found.data, shape: [...shape] });
    } else if (direct) {
      out.set(name, direct); // a size mismatch: the strict load reports it with both shapes
    }
  }
  return out;
}

/** Shape-like ops that only feed constants: they need no gradient rule. */
const CONSTANT_OPS = new Set(["Constant", "Shape", "Gather", "Cast", "ConstantOfShape", "Range", "Equal", "Where"]);

/**
 * Reads an ONNX model's float32 initializers by name, e.g. a forward model published by labelgraph or a
 * MONAI network exported with torch.onnx.export (which names initializers by state-dict keys, the same
 * names labelgraph's networks use), and lists the ops it uses that autodiff does not cover.
 */
export async function importOnnxParameters(path: string): Promise<ImportedParameters> {
  const model = decodeModel(await readFile(path));
  const graph = model.graph;
  const parameters = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const init of graph?.initializer ?? []) {
    if (init.dataType !== 1 || !init.name) {
      continue; // float32 only: int64 shape constants are not parameters
    }
    const shape = (init.dims ?? []).map(Number);
    let data: Float32Array;
    if (init.rawData && init.rawData.length > 0) {
      // A copy: protobufjs hands out Buffer views into the whole file, whose .buffer is not this tensor's.
      const raw = new Uint8Array(init.rawData.length);
      raw.set(init.rawData);
      data = new Float32Array(raw.buffer, 0, raw.length / 4);
    } else {
      data = Float32Array.from((init.floatData ?? []) as number[]);
    }
    parameters.set(init.name, { data, shape });
  }
  const covered = new Set(differentiableOps());
  const uncovered = [
    ...new Set(
      (graph?.node ?? []).map((n) => n.opType ?? "").filter((op) => op && !covered.has(op) && !CONSTANT_OPS.has(op)),
    ),
  ].sort();
  const roles = parameterRoles(
    (graph?.node ?? []).map((n) => ({ op: n.opType ?? "", inputs: n.input ?? [], outputs: n.output ?? [] })),
    parameters.keys(),
  );
  return { parameters, uncovered, roles };
}
