import type { Data } from "../transforms/compose.js";
import { isTransformFactory, type PipelineSource, type TransformFactory, TransformPipeline } from "./pipeline.js";

export interface GetItemOptions {
  /**
   * Reseed the random transforms from this seed first (`seedTransforms`), making the item reproducible.
   * Without it the transforms go on with their current streams (MONAI's behaviour).
   */
  seed?: number;
}

/** What the DataLoader sends a worker for one item (internal). */
export type LoaderWork =
  | { stage: "full"; input: Data; keepDeterministic: boolean }
  | { stage: "random"; input: Data | Data[] };

function copyItem(value: Data | Data[]): Data | Data[] {
  return Array.isArray(value) ? value.map((d) => ({ ...d })) : { ...value };
}

/**
 * MONAI's `Dataset`: a datalist (e.g. `{ image, label }` file paths) and the transforms applied to an item
 * when it is read. The transforms are objects, or a `TransformFactory` (module + export + args), which a
 * DataLoader with worker threads needs: each worker builds its own copy.
 *
 * `getItem` gives a dictionary, or a list of them when a transform returned several samples (e.g.
 * RandCropByPosNegLabeld with numSamples > 1).
 */
export class Dataset<T extends Data = Data> {
  readonly data: readonly T[];
  readonly transform: PipelineSource | undefined;
  private pipelinePromise: Promise<TransformPipeline> | undefined;

  constructor(data: readonly T[], transform?: PipelineSource) {
    this.data = [...data];
    this.transform = transform;
  }

  get length(): number {
    return this.data.length;
  }

  /** The factory the transforms come from, when they come from one (what worker threads build). */
  get factory(): TransformFactory | undefined {
    return isTransformFactory(this.transform) ? this.transform : undefined;
  }

  /** The transforms, built on first use (a factory is imported then). */
  pipeline(): Promise<TransformPipeline> {
    this.pipelinePromise ??= TransformPipeline.from(this.transform);
    return this.pipelinePromise;
  }

  protected item(index: number): T {
    if (!Number.isInteger(index) || index < 0 || index >= this.data.length) {
      throw new RangeError(`${this.constructor.name}: index ${index} is out of range (length ${this.data.length})`);
    }
    return this.data[index]!;
  }

  /** The item after the deterministic transforms (everything before the first random one). */
  protected async deterministicItem(index: number): Promise<Data | Data[]> {
    const p = await this.pipeline();
    return p.runDeterministic({ ...this.item(index) });
  }

  /** The item after all the transforms. */
  async getItem(index: number, options: GetItemOptions = {}): Promise<Data | Data[]> {
    const pre = await this.deterministicItem(index);
    const p = await this.pipeline();
    return p.runRandom(pre, options.seed);
  }

  /** @internal What a DataLoader worker should run for `index`. */
  async loaderWork(index: number): Promise<LoaderWork> {
    return { stage: "full", input: { ...this.item(index) }, keepDeterministic: false };
  }

  /** @internal A worker computed the deterministic part of `index` (kept by a CacheDataset). */
  keepDeterministic(_index: number, _value: Data | Data[]): void {}
}

export interface CacheDatasetOptions {
  /** The fraction of the items to cache (default 1). */
  cacheRate?: number;
  /** At most this many items (default all); the first `min(cacheNum, floor(length * cacheRate))` are cached. */
  cacheNum?: number;
}

/**
 * MONAI's `CacheDataset`: the deterministic part of the transforms (everything before the first random
 * transform) runs once per cached item, and its result is kept; each read runs only the random part on a
 * copy of it. Caches the first `min(cacheNum, floor(length * cacheRate))` items, on first read (or all at
 * once with `fillCache`); with a DataLoader using workers the workers compute the cached part and send it
 * back. Transforms never write into their input tensors, so a cached tensor is never changed by a read.
 */
export class CacheDataset<T extends Data = Data> extends Dataset<T> {
  readonly cacheNum: number;
  private readonly cache = new Map<number, Promise<Data | Data[]>>();

  constructor(data: readonly T[], transform?: PipelineSource, options: CacheDatasetOptions = {}) {
    super(data, transform);
    const rate = options.cacheRate ?? 1;
    if (!(rate >= 0 && rate <= 1)) {
      throw new Error(`CacheDataset: cacheRate must be in [0, 1], got ${rate}`);
    }
    const num = options.cacheNum ?? Number.POSITIVE_INFINITY;
    if (!(num >= 0)) {
      throw new Error(`CacheDataset: cacheNum must be >= 0, got ${num}`);
    }
    this.cacheNum = Math.min(num, Math.floor(this.length * rate), this.length);
  }

  /** How many items are cached now. */
  get cachedCount(): number {
    return this.cache.size;
  }

  isCached(index: number): boolean {
    return this.cache.has(index);
  }

  /** Computes the cache for every item that has none yet (in order, in this thread). */
  async fillCache(): Promise<void> {
    for (let i = 0; i < this.cacheNum; i++) {
      await this.deterministicItem(i);
    }
  }

  /** Drops the cache. */
  clearCache(): void {
    this.cache.clear();
  }

  protected override async deterministicItem(index: number): Promise<Data | Data[]> {
    if (index >= this.cacheNum) {
      return super.deterministicItem(index);
    }
    let entry = this.cache.get(index);
    if (!entry) {
      entry = super.deterministicItem(index);
      this.cache.set(index, entry);
      entry.catch(() => {
        if (this.cache.get(index) === entry) {
          this.cache.delete(index);
        }
      });
    }
    return copyItem(await entry);
  }

  override async loaderWork(index: number): Promise<LoaderWork> {
    const entry = this.cache.get(index);
    if (entry) {
      return { stage: "random", input: await entry };
    }
    return { stage: "full", input: { ...this.item(index) }, keepDeterministic: index < this.cacheNum };
  }

  override keepDeterministic(index: number, value: Data | Data[]): void {
    if (index < this.cacheNum && !this.cache.has(index)) {
      this.cache.set(index, Promise.resolve(value));
    }
  }
}
