import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Data } from "../transforms/compose.js";
import {
  type AnyTransform,
  applyTransforms,
  flattenTransforms,
  seedTransforms,
  splitAtFirstRandom,
  type TransformsLike,
} from "../transforms/random.js";

/**
 * A pipeline that a worker thread can build for itself: `import(module)[export]`, called with `args` when it
 * is a function (it may be async). The result is a transform, a Compose / MultiSampleCompose or a list of
 * transforms. `module` is an absolute path, a path relative to the working directory, or a file: URL (e.g.
 * `new URL("./pipelines.ts", import.meta.url).href`); `args` must survive structured cloning.
 */
export interface TransformFactory {
  module: string;
  export: string;
  args?: unknown;
}

/** A dataset's transforms: the objects themselves (in-process only) or a factory (also in worker threads). */
export type PipelineSource = TransformsLike | TransformFactory;

export function isTransformFactory(value: unknown): value is TransformFactory {
  const v = value as Partial<TransformFactory> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as { call?: unknown }).call !== "function" &&
    typeof v.module === "string" &&
    typeof v.export === "string"
  );
}

function moduleSpecifier(module: string): string {
  if (/^(file|data|node):/.test(module)) {
    return module;
  }
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/** Builds the transforms a factory names. */
export async function loadTransformFactory(factory: TransformFactory): Promise<AnyTransform[]> {
  const mod = (await import(moduleSpecifier(factory.module))) as Record<string, unknown>;
  if (!(factory.export in mod)) {
    throw new Error(`transform factory: ${factory.module} has no export "${factory.export}"`);
  }
  const value = mod[factory.export];
  const built = typeof value === "function" ? await (value as (args: unknown) => unknown)(factory.args) : value;
  if (!Array.isArray(built) && typeof (built as { call?: unknown } | null)?.call !== "function") {
    throw new Error(
      `transform factory: ${factory.module}#${factory.export} must be (or return) a transform, a Compose or a list of transforms`,
    );
  }
  return flattenTransforms(built as TransformsLike);
}

/** A promise-chain mutex: runs `fn`s one after the other. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * A dataset's transforms split where MONAI's CacheDataset splits them: `deterministic` (everything before
 * the first random transform, cacheable) and `random` (the rest, run for every sample). `runRandom` with a
 * seed reseeds the random part first (`seedTransforms`) and runs under a lock, so concurrent samples never
 * interleave their draws.
 */
export class TransformPipeline {
  readonly deterministic: AnyTransform[];
  readonly random: AnyTransform[];
  private readonly lock = new Mutex();

  constructor(transforms: TransformsLike = []) {
    const { deterministic, random } = splitAtFirstRandom(transforms);
    this.deterministic = deterministic;
    this.random = random;
  }

  static async from(source: PipelineSource | undefined): Promise<TransformPipeline> {
    if (source === undefined) {
      return new TransformPipeline([]);
    }
    return new TransformPipeline(isTransformFactory(source) ? await loadTransformFactory(source) : source);
  }

  runDeterministic(d: Data): Promise<Data | Data[]> {
    return applyTransforms(this.deterministic, d);
  }

  /** The random part on a copy of `input` (a shallow copy of each dictionary), seeded when `seed` is given. */
  runRandom(input: Data | readonly Data[], seed?: number): Promise<Data | Data[]> {
    const copy = Array.isArray(input) ? (input as readonly Data[]).map((d) => ({ ...d })) : { ...(input as Data) };
    if (this.random.length === 0) {
      return Promise.resolve(copy);
    }
    return this.lock.run(() => {
      if (seed !== undefined) {
        seedTransforms(this.random, seed);
      }
      return applyTransforms(this.random, copy);
    });
  }

  async run(d: Data, seed?: number): Promise<Data | Data[]> {
    return this.runRandom(await this.runDeterministic(d), seed);
  }
}
