import { createReadStream } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sha256File } from "../../datastore/hash.js";
import { InvalidInputError } from "../../errors.js";
import type { InferTask } from "../../tasks/infer/infer-task.js";
import { modelNotFound } from "../../tasks/infer/inference.service.js";
import { BasicTrainTask } from "../../tasks/train/basic-train-task.js";
import type { RestDeps } from "../deps.js";
import { HttpError, sendStream } from "../http.js";
import { HANDLED, type Route } from "../router.js";
import { requireFile, withForm } from "./datastore.js";

const TAG = "Model";

/** MONAI's InferTask.get_path: tasks that read a file expose it (BasicInferTask). */
interface WithPath {
  getPath(): string | null;
  paths: string[];
}
const hasPath = (t: InferTask): t is InferTask & WithPath =>
  typeof (t as Partial<WithPath>).getPath === "function" && Array.isArray((t as Partial<WithPath>).paths);

/** MONAI's TrainTask.stats(): the trainer's train_stats.json, else the last finished run's stats; {} when none. */
export async function trainStats(deps: RestDeps, name: string): Promise<Record<string, unknown>> {
  const task = deps.app.trainers()[name];
  if (task instanceof BasicTrainTask) {
    try {
      return JSON.parse(await readFile(join(task.modelDir, "train_stats.json"), "utf8")) as Record<string, unknown>;
    } catch {}
  }
  for (const job of await deps.jobs.list({ kind: "train", status: ["SUCCEEDED"] }, 20)) {
    const p = job.params as { model?: string };
    if (p.model === name && job.result && typeof job.result === "object") {
      const { history: _h, ...stats } = job.result as Record<string, unknown>;
      return stats;
    }
  }
  return {};
}

async function modelInfo(path: string) {
  const [digest, st] = await Promise.all([sha256File(path), stat(path)]);
  return { checksum: `SHA256:${digest}`, modified_time: Math.floor(st.mtimeMs / 1000) };
}

const stamp = (d: Date) => {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
};

/** An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08. */
async function looksLikeOnnx(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(1), 0, 1, 0);
    return bytesRead === 1 && buffer[0] === 0x08;
  } finally {
    await fh.close();
  }
}

export function modelRoutes(deps: RestDeps): Route[] {
  const task = (name: string) => {
    const t = deps.app.infers()[name];
    if (!t) {
      throw modelNotFound(name);
    }
    return t;
  };
  const fileOf = (name: string) => {
    const t = task(name);
    const path = hasPath(t) ? t.getPath() : null;
    if (!path) {
      throw new HttpError(404, `Model File NOT Found for ${name}`);
    }
    return path;
  };
  return [
    {
      method: "GET",
      path: "/model/info/{model}",
      tag: TAG,
      summary: "Get Model Info",
      handler: async (ctx) => {
        const name = ctx.path.model as string;
        const info: Record<string, unknown> = await modelInfo(fileOf(name));
        if (deps.app.trainers()[name]) {
          info.train_stats = await trainStats(deps, name);
        }
        return info;
      },
    },
    {
      method: "GET",
      path: "/model/{model}",
      tag: TAG,
      summary: "Download Model",
      handler: async (ctx) => {
        const name = ctx.path.model as string;
        const path = fileOf(name);
        const ext = path.match(/(\.[A-Za-z0-9]+)$/)?.[1] ?? "";
        const { size } = await stat(path);
        await sendStream(ctx.res, createReadStream(path), {
          size,
          fileName: `${name}${ext}`,
          contentType: "application/octet-stream",
        });
        return HANDLED;
      },
    },
    {
      method: "PUT",
      path: "/model/{model}",
      tag: TAG,
      summary: "Upload Model",
      body: { kind: "multipart", fields: [], files: ["file"] },
      handler: (ctx) =>
        withForm(ctx, async (form) => {
          const name = ctx.path.model as string;
          const t = task(name);
          // MONAI's get_path(validate=False): the last configured path, whether or not it exists yet.
          const target = hasPath(t) ? t.paths.at(-1) : undefined;
          if (!target) {
            throw new HttpError(500, `Model ${name} has no model path configured`);
          }
          const file = requireFile(form, "file");
          if (!(await looksLikeOnnx(file.path))) {
            throw new InvalidInputError(`${file.fileName} is not an ONNX model`);
          }
          // Atomic: inference sees the old file or the new one, and reloads on the new inode.
          await mkdir(dirname(target), { recursive: true });
          const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
          await copyFile(file.path, tmp);
          await rename(tmp, target);
          return modelInfo(target);
        }),
    },
    {
      method: "DELETE",
      path: "/model/{model}",
      tag: TAG,
      summary: "Delete Model",
      handler: async (ctx) => {
        const path = fileOf(ctx.path.model as string);
        await rename(path, `${path}.${stamp(new Date())}.deleted`);
        return {};
      },
    },
  ];
}
