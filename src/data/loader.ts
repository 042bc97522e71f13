import { mixSeeds, RandomState, randomSeed } from "../transforms/random.js";
import { type BatchTensor, collate, decodeData, encodeData, type PreparedSample, prepareSamples } from "./collate.js";
import type { Dataset } from "./dataset.js";
import { DataWorkerPool } from "./workers.js";

export interface DataLoaderOptions<K extends string = string> {
  /** Items per batch (default 1). An item giving several samples (numSamples > 1) adds them all. */
  batchSize?: number;
  /** Visit the items in a new random order each epoch (default false). */
  shuffle?: boolean;
  /**
   * Seeds the shuffling and every item's random transforms: item `i` of epoch `e` runs its random part
   * seeded with `mixSeeds(seed, e, i)`, whichever thread runs it (default: a random seed).
   */
  seed?: number;
  /** Drop the last, incomplete batch (default false). */
  dropLast?: boolean;
  /**
   * Worker threads running the transforms (default 0: in this thread, asynchronously ahead of the
   * consumer). Workers need the dataset's transforms as a `TransformFactory`.
   */
  numWorkers?: number;
  /** Batches prepared ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** The keys to stack (each must hold a MetaTensor); default every key holding one. */
  keys?: readonly K[];
  /** Called when a batch is ready (for progress and timing). */
  onBatchReady?: (info: { epoch: number; batch: number; time: number }) => void;
}

/** A batch: every key's tensors stacked, `{ data, shape: [B, C, ...spatial] }`, values in C order. */
export type Batch<K extends string = string> = Record<K, BatchTensor>;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * MONAI's (PyTorch's) `DataLoader`: batches of a Dataset as stacked C-order tensors, an async iterator per
 * epoch (`for await (const batch of loader)`, or `loader.epoch(e)`), `len()` batches per epoch.
 *
 * Batches are prepared ahead of the consumer (`prefetch` of them): in this thread, one item at a time
 * between the consumer's awaits (numWorkers 0), or on `numWorkers` worker threads. Every item's random
 * transforms are seeded from (seed, epoch, item index), so the batches depend on the seed only, not on the
 * number of workers. Call `close()` to stop the workers.
 */
export class DataLoader<K extends string = string> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly numWorkers: number;
  readonly prefetch: number;
  readonly keys: readonly K[] | undefined;
  private readonly onBatchReady: DataLoaderOptions<K>["onBatchReady"];
  private pool: DataWorkerPool | null = null;
  private nextEpoch = 0;
  /** In-process items run one after the other. */
  private local: Promise<unknown> = Promise.resolve();

  constructor(dataset: Dataset, options: DataLoaderOptions<K> = {}) {
    this.dataset = dataset;
    this.batchSize = options.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new Error(`DataLoader: batchSize must be a positive integer, got ${this.batchSize}`);
    }
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? randomSeed();
    this.dropLast = options.dropLast ?? false;
    this.numWorkers = options.numWorkers ?? 0;
    if (!Number.isInteger(this.numWorkers) || this.numWorkers < 0) {
      throw new Error(`DataLoader: numWorkers must be a non-negative integer, got ${this.numWorkers}`);
    }
    if (this.numWorkers > 0 && !dataset.factory) {
      throw new Error(
        "DataLoader: numWorkers > 0 needs the dataset's transforms as a factory { module, export, args } that worker threads can import",
      );
    }
    this.prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) {
      throw new Error(`DataLoader: prefetch must be a non-negative integer, got ${this.prefetch}`);
    }
    this.keys = options.keys ? [...options.keys] : undefined;
    this.onBatchReady = options.onBatchReady;
  }

  /** Batches per epoch. */
  len(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The item order of an epoch. */
  order(epoch: number): number[] {
    const n = this.dataset.length;
    return this.shuffle
      ? new RandomState(mixSeeds(this.seed, epoch, 0xffffffff)).permutation(n)
      : Array.from({ length: n }, (_, i) => i);
  }

  /** The seed of item `index`'s random transforms in `epoch`. */
  itemSeed(epoch: number, index: number): number {
    return mixSeeds(this.seed, epoch, index);
  }

  /** The next epoch (0, 1, 2 ... for successive iterations). */
  [Symbol.asyncIterator](): AsyncGenerator<Batch<K>> {
    return this.epoch(this.nextEpoch++);
  }

  /** The batches of epoch `e` (its shuffling and random streams). */
  async *epoch(e: number): AsyncGenerator<Batch<K>> {
    const order = this.order(e);
    const nb = this.len();
    const batches: (Promise<Batch<K>> | undefined)[] = [];
    let scheduled = 0;
    const schedule = (upTo: number) => {
      while (scheduled < nb && scheduled <= upTo) {
        const b = scheduled++;
        const indices = order.slice(b * this.batchSize, (b + 1) * this.batchSize);
        const p = this.makeBatch(e, b, indices);
        p.catch(() => undefined); // surfaced when awaited
        batches[b] = p;
      }
    };
    if (this.numWorkers > 0) {
      this.workers().start();
    }
    for (let b = 0; b < nb; b++) {
      schedule(b + this.prefetch);
      const batch = await batches[b]!;
      batches[b] = undefined;
      schedule(b + 1 + this.prefetch);
      yield batch;
    }
  }

  private workers(): DataWorkerPool {
    this.pool ??= new DataWorkerPool({ transform: this.dataset.factory! }, this.numWorkers);
    return this.pool;
  }

  private async makeBatch(epoch: number, batch: number, indices: number[]): Promise<Batch<K>> {
    const items = await Promise.all(indices.map((i) => this.sample(epoch, i)));
    const out = collate(items.flat()) as Batch<K>;
    this.onBatchReady?.({ epoch, batch, time: performance.now() });
    return out;
  }

  private sample(epoch: number, index: number): Promise<PreparedSample[]> {
    const seed = this.itemSeed(epoch, index);
    const keys = this.keys ? [...this.keys] : undefined;
    if (this.numWorkers === 0) {
      const run = async () => {
        await tick(); // let the consumer's I/O and timers in between items
        return prepareSamples(await this.dataset.getItem(index, { seed }), keys);
      };
      const p = this.local.then(run, run);
      this.local = p.catch(() => undefined);
      return p;
    }
    return (async () => {
      const work = await this.dataset.loaderWork(index);
      const result = await this.workers().run({
        stage: work.stage,
        input: encodeData(work.input),
        seed,
        keepDeterministic: work.stage === "full" && work.keepDeterministic,
        keys: keys ?? null,
      });
      if (result.deterministic !== undefined) {
        this.dataset.keepDeterministic(index, decodeData(result.deterministic));
      }
      return result.samples;
    })();
  }

  /** Stops the worker threads (a later epoch starts new ones). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }
}
