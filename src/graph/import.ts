import { readFile } from "node:fs/promises";
import { differentiableOps } from "./autodiff.js";
import { decodeModel } from "./serialize.js";

export interface ImportedParameters {
  parameters: Map<string, { data: Float32Array; shape: number[] }>;
  /** Op types the model uses that have no gradient rule (fine-tuning the graph itself would need them). */
  uncovered: string[];
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
  return { parameters, uncovered };
}
