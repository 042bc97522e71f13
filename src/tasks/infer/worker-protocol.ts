import type { ErrorCode } from "../../errors.js";
import type { InferResult } from "./infer-task.js";

export interface WorkerData {
  appDir: string | null;
  studiesDir: string;
  conf: Record<string, string>;
  threads?: number;
}

export interface WorkerRequest {
  type: "infer";
  id: number;
  model: string;
  imagePath: string;
  params: Record<string, unknown>;
}

export type WorkerReply =
  | { id: number; ok: true; result: InferResult }
  | { id: number; ok: false; error: { message: string; code: ErrorCode | null; className: string; stack: string } };
