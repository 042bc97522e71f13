import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Batch, CacheDataset, DataLoader, Dataset, type TransformFactory } from "../../../src/data/index.js";
import { saveImage } from "../../../src/io/load.js";
import { type Data, type MetaTensor, RandFlipd } from "../../../src/transforms/index.js";
import { makeTensors, type TrainArgs } from "./fixtures/pipelines.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/pipelines.ts", import.meta.url));
const train = (args: TrainArgs = {}): TransformFactory => ({ module: FIXTURES, export: "trainTransforms", args });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect<K extends string>(it: AsyncIterable<Batch<K>>): Promise<Batch<K>[]> {
  const out: Batch<K>[] = [];
  for await (const b of it) {
    out.push(b);
  }
  return out;
}

/** A batch as plain arrays (for toEqual). */
const plain = (b: Batch) =>
  Object.fromEntries(Object.entries(b).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }]));

let dir: string;
let datalist: { image: string; label: string }[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-data-"));
  datalist = [];
  const [X, Y, Z] = [20, 18, 10];
  for (let k = 0; k < 5; k++) {
    const image = new Float32Array(X * Y * Z);
    const label = new Float32Array(X * Y * Z);
    let i = 0;
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        for (let x = 0; x < X; x++, i++) {
          const fg = Math.abs(x - 5 - 2 * k) <= 2 && Math.abs(y - 9) <= 2 && Math.abs(z - 5) <= 1;
          label[i] = fg ? 1 : 0;
          image[i] = (fg ? 200 : 0) + ((x * 13 + y * 7 + z * 3 + k) % 50) + (x < 2 ? -100 : 0);
        }
      }
    }
    const geometry = {
      spacing: [1, 1, 1],
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      meta: {},
    };
    const paths = { image: join(dir, `img${k}.nii.gz`), label: join(dir, `lab${k}.nii.gz`) };
    await saveImage({ data: image, shape: [X, Y, Z], dtype: "float32", ...geometry }, paths.image);
    await saveImage({ data: label, shape: [X, Y, Z], dtype: "uint8", ...geometry }, paths.label);
    datalist.push(paths);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Dataset / CacheDataset", () => {
  it("Dataset runs the factory's transforms; a seed makes an item reproducible", async () => {
    const ds = new Dataset(datalist, train({ numSamples: 3 }));
    expect(ds.length).toBe(5);
    const a = (await ds.getItem(1, { seed: 5 })) as Data[];
    expect(a).toHaveLength(3);
    const image = a[0]!.image as MetaTensor;
    expect(image.shape).toEqual([1, 8, 8, 4]);
    const b = (await ds.getItem(1, { seed: 5 })) as Data[];
    expect(b.map((d) => Array.from((d.image as MetaTensor).data))).toEqual(
      a.map((d) => Array.from((d.image as MetaTensor).data)),
    );
    const c = (await ds.getItem(1, { seed: 6 })) as Data[];
    expect(c.map((d) => Array.from((d.image as MetaTensor).data))).not.toEqual(
      a.map((d) => Array.from((d.image as MetaTensor).data)),
    );
    await expect(ds.getItem(5)).rejects.toThrow(/out of range/);
  });

  it("CacheDataset runs the deterministic part once per cached item across epochs", async () => {
    const items = Array.from({ length: 4 }, (_, id) => ({ id }));
    const runs: number[] = [];
    const counting = {
      call: (d: Data) => {
        runs.push(d.id as number);
        return d;
      },
    };
    const pipeline = () => [counting, makeTensors, new RandFlipd({ keys: ["image", "label"], prob: 0.5 })];
    const full = new CacheDataset(items, pipeline());
    const loader = new DataLoader(full, { batchSize: 2, shuffle: true, seed: 3 });
    for (let e = 0; e < 3; e++) {
      expect(await collect(loader)).toHaveLength(2);
    }
    expect(runs.sort()).toEqual([0, 1, 2, 3]);
    expect(full.cachedCount).toBe(4);

    runs.length = 0;
    const half = new CacheDataset(items, pipeline(), { cacheRate: 0.5 });
    expect(half.cacheNum).toBe(2);
    await half.fillCache();
    expect(runs).toEqual([0, 1]);
    for (let e = 0; e < 3; e++) {
      await collect(new DataLoader(half, { batchSize: 3, seed: e }));
    }
    // items 0, 1 cached; 2, 3 run every epoch
    expect(runs.filter((i) => i < 2)).toHaveLength(2);
    expect(runs.filter((i) => i >= 2)).toHaveLength(6);

    runs.length = 0;
    const one = new CacheDataset(items, pipeline(), { cacheNum: 1 });
    await one.getItem(0);
    await one.getItem(0);
    await one.getItem(1);
    await one.getItem(1);
    expect(runs).toEqual([0, 1, 1]);
    // the cached tensors are not changed by reads (the random part works on copies)
    const cached = (await one.getItem(0, { seed: 1 })) as Data;
    expect((cached.image as MetaTensor).data[0]).toBeOneOf([0, 300 + 20 + 1]);
  });
});

describe("DataLoader", () => {
  const items = Array.from({ length: 5 }, (_, id) => ({ id }));
  const ids = (b: Batch) => {
    const img = b.image!;
    const n = img.data.length / img.shape[0]!;
    return Array.from({ length: img.shape[0]! }, (_, i) => Math.floor(img.data[i * n]! / 1000));
  };

  it("stacks samples as [B, C, ...] in C order (last axis fastest)", async () => {
    const loader = new DataLoader(new Dataset(items, [makeTensors]), { batchSize: 2 });
    expect(loader.len()).toBe(3);
    const batches = await collect(loader);
    expect(batches.map((b) => b.image!.shape)).toEqual([
      [2, 1, 4, 3, 2],
      [2, 1, 4, 3, 2],
      [1, 1, 4, 3, 2],
    ]);
    const b = batches[1]!;
    for (let s = 0; s < 2; s++) {
      for (let x = 0; x < 4; x++) {
        for (let y = 0; y < 3; y++) {
          for (let z = 0; z < 2; z++) {
            const v = b.image!.data[s * 24 + (x * 3 + y) * 2 + z];
            expect(v).toBe((2 + s) * 1000 + 100 * x + 10 * y + z);
            expect(b.label!.data[s * 24 + (x * 3 + y) * 2 + z]).toBe(z);
          }
        }
      }
    }
    const only = await collect(new DataLoader<"image">(new Dataset(items, [makeTensors]), { keys: ["image"] }));
    expect(Object.keys(only[0]!)).toEqual(["image"]);
  });

  it("shuffles by seed (a new order each epoch), drops the last batch on request", async () => {
    const order = async (seed: number, epochs = 1) => {
      const loader = new DataLoader(new Dataset(items, [makeTensors]), { batchSize: 2, shuffle: true, seed });
      const out: number[][] = [];
      for (let e = 0; e < epochs; e++) {
        out.push((await collect(loader)).flatMap(ids));
      }
      return out;
    };
    const [a0, a1] = await order(1, 2);
    expect([...a0!].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...a1!].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(a1).not.toEqual(a0);
    expect((await order(1))[0]).toEqual(a0);
    const others = await Promise.all([2, 3, 4].map(async (s) => (await order(s))[0]));
    expect(others.some((o) => JSON.stringify(o) !== JSON.stringify(a0))).toBe(true);
    const plainOrder = (await collect(new DataLoader(new Dataset(items, [makeTensors]), { batchSize: 2 }))).flatMap(
      ids,
    );
    expect(plainOrder).toEqual([0, 1, 2, 3, 4]);

    const dropped = new DataLoader(new Dataset(items, [makeTensors]), { batchSize: 2, dropLast: true });
    expect(dropped.len()).toBe(2);
    const batches = await collect(dropped);
    expect(batches).toHaveLength(2);
    expect(batches.flatMap(ids)).toEqual([0, 1, 2, 3]);
    expect(() => new DataLoader(new Dataset(items, [makeTensors]), { numWorkers: 1 })).toThrow(/factory/);
  });

  it("numWorkers=2 gives the same batches as numWorkers=0 for the same seed (Dataset and CacheDataset)", async () => {
    const options = { batchSize: 2, shuffle: true, seed: 11 };
    const epochs = async (loader: DataLoader) => {
      const out = [];
      for (let e = 0; e < 2; e++) {
        out.push((await collect(loader)).map(plain));
      }
      await loader.close();
      return out;
    };
    const factory = train({ numSamples: 2 });
    const local = await epochs(new DataLoader(new Dataset(datalist, factory), options));
    expect(local[0]).toHaveLength(3);
    expect(local[0]![0]!.image!.shape).toEqual([4, 1, 8, 8, 4]);
    expect(local[0]![2]!.label!.shape).toEqual([2, 1, 8, 8, 4]);
    expect(local[1]).not.toEqual(local[0]);
    const threaded = await epochs(new DataLoader(new Dataset(datalist, factory), { ...options, numWorkers: 2 }));
    expect(threaded).toEqual(local);

    const cache = new CacheDataset(datalist, factory);
    const cachedThreaded = await epochs(new DataLoader(cache, { ...options, numWorkers: 2 }));
    // the workers sent the deterministic part back for the cache
    expect(cache.cachedCount).toBe(5);
    expect(cachedThreaded).toEqual(local);
    expect(await epochs(new DataLoader(new CacheDataset(datalist, factory), options))).toEqual(local);
  });

  it("workers prepare the next batches while the consumer is busy, and report errors", async () => {
    const ready: number[] = [];
    const loader = new DataLoader(new Dataset(datalist.slice(0, 4), train({ busyMs: 150 })), {
      batchSize: 1,
      numWorkers: 2,
      seed: 1,
      onBatchReady: ({ batch, time }) => {
        ready[batch] = time;
      },
    });
    try {
      const it = loader[Symbol.asyncIterator]();
      expect((await it.next()).done).toBe(false);
      await sleep(600); // a slow training step
      const asked = performance.now();
      const second = await it.next();
      expect(second.done).toBe(false);
      expect(ready[1]).toBeDefined();
      expect(ready[1]!).toBeLessThan(asked);
      await it.return(undefined);
    } finally {
      await loader.close();
    }

    const failing = new DataLoader(new Dataset(datalist, train({ fail: true })), { numWorkers: 1, seed: 1 });
    try {
      await expect(collect(failing)).rejects.toThrow(/failed on purpose/);
    } finally {
      await failing.close();
    }
  });

  it("numWorkers=0 prefetches in this thread while the consumer awaits", async () => {
    const ready: number[] = [];
    const slow = {
      call: async (d: Data) => {
        await sleep(80);
        return d;
      },
    };
    const loader = new DataLoader(new Dataset(items, [makeTensors, slow]), {
      batchSize: 1,
      seed: 1,
      onBatchReady: ({ batch, time }) => {
        ready[batch] = time;
      },
    });
    const it = loader[Symbol.asyncIterator]();
    await it.next();
    await sleep(400);
    const asked = performance.now();
    await it.next();
    expect(ready[1]!).toBeLessThan(asked);
    expect(ready[2]).toBeDefined();
    await it.return(undefined);
    // an explicit epoch replays that epoch's streams; errors reach the consumer
    const replay = new DataLoader(new Dataset(items, [makeTensors, new RandFlipd({ keys: "image", prob: 0.5 })]), {
      seed: 4,
      shuffle: true,
    });
    expect((await collect(replay.epoch(3))).map(plain)).toEqual((await collect(replay.epoch(3))).map(plain));
    const boom = {
      call: () => {
        throw new Error("boom");
      },
    };
    await expect(collect(new DataLoader(new Dataset(items, [makeTensors, boom])))).rejects.toThrow("boom");
  });
});
