import { readFile, rename, writeFile } from "node:fs/promises";
import type { TrainerState } from "./train-step.js";

/**
 * A training checkpoint on disk: weights, optimizer state and step count, so a run can resume exactly.
 * Layout: 4-byte little-endian length of a JSON index, the index ({step, tensors: [{kind, name, shape,
 * offset, length}]}), then every tensor's float32 values back to back. Written atomically.
 */
interface Index {
  format: "labelgraph-checkpoint/1";
  step: number;
  tensors: { kind: "parameter" | "optimizer"; name: string; shape: number[]; offset: number; length: number }[];
}

export async function saveCheckpoint(path: string, state: TrainerState): Promise<void> {
  const index: Index = { format: "labelgraph-checkpoint/1", step: state.step, tensors: [] };
  const chunks: Float32Array[] = [];
  let offset = 0;
  const add = (kind: "parameter" | "optimizer", name: string, data: Float32Array, shape: number[]) => {
    index.tensors.push({ kind, name, shape, offset, length: data.length });
    chunks.push(data);
    offset += data.length;
  };
  for (const [name, p] of state.parameters) {
    add("parameter", name, p.data, [...p.shape]);
  }
  for (const [name, data] of state.optimizer) {
    add("optimizer", name, data, [data.length]);
  }
  const header = Buffer.from(JSON.stringify(index));
  const body = new Float32Array(offset);
  let o = 0;
  for (const c of chunks) {
    body.set(c, o);
    o += c.length;
  }
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, Buffer.concat([len, header, Buffer.from(body.buffer)]));
  await rename(tmp, path);
}

export async function loadCheckpoint(path: string): Promise<TrainerState> {
  const buf = await readFile(path);
  const n = buf.readUInt32LE(0);
  const index = JSON.parse(buf.subarray(4, 4 + n).toString()) as Index;
  if (index.format !== "labelgraph-checkpoint/1") {
    throw new Error(`${path} is not a labelgraph checkpoint`);
  }
  const bytes = new Uint8Array(buf.subarray(4 + n));
  const all = new Float32Array(bytes.slice().buffer);
  const state: TrainerState = { step: index.step, parameters: new Map(), optimizer: new Map() };
  for (const t of index.tensors) {
    const data = all.slice(t.offset, t.offset + t.length);
    if (t.kind === "parameter") {
      state.parameters.set(t.name, { data, shape: t.shape });
    } else {
      state.optimizer.set(t.name, data);
    }
  }
  return state;
}
