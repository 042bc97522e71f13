/**
 * Active learning benchmark: nextImage over N unlabeled images, for each strategy, in-process and through
 * the GraphQL endpoint, against a bare countImages in the same run; plus what the in-memory candidate index
 * saves (a naive pick that reads every unlabeled image's info, and a weighted pick done in SQL).
 *
 *   npx tsx bench/activelearning/index.ts [--images 100000] [--runs 50] [--keep]
 *
 * Rows go into SQLite in bulk (no files: picking never reads voxels). A third of the images carry an
 * epistemic_entropy, every 7th one was served by `random` before. The app is the test fixture
 * test/fixtures/apps/activelearning (random, first, last, epistemic and the seed example's my_score).
 * Results (tables) go to stdout, progress to stderr.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadConfig } from "../../src/config/config.js";
import { buildContainer, type Container } from "../../src/container.js";
import { openDatabase } from "../../src/db/client.js";
import { ImageRepository, type NewImage } from "../../src/db/images.repo.js";
import { createLogger } from "../../src/logger.js";
import { buildServer } from "../../src/server.js";
import { imageKey } from "../../src/storage/keys.js";
import { randomWeights, weightedIndex } from "../../src/tasks/activelearning/random.js";
import { toCandidate } from "../../src/tasks/activelearning/unlabeled-index.js";
import { benchArgs, measure, ms, progress, type Stats, table } from "../datastore/lib.js";

const { images: N, runs: RUNS, keep: KEEP } = benchArgs({ images: 100000, runs: 50, minImages: 10 });

const TARGET_MS = 50;
const CHUNK = 1000;
const STRATEGIES = ["random", "first", "last", "epistemic", "my_score"];
const APP = join(import.meta.dirname, "../../test/fixtures/apps/activelearning");
const idOf = (i: number) => `img_${String(i).padStart(6, "0")}`;

function row(i: number, now: number): NewImage {
  const id = idOf(i);
  const info: Record<string, unknown> = { ts: now, name: `${id}.nii` };
  if (i % 3 === 0) {
    info.epistemic_entropy = ((i * 7919) % 1000) / 1000;
  }
  if (i % 7 === 0) {
    info.strategy = { random: { ts: now - (i % 86400), client_id: "bench" } };
  }
  return {
    id,
    name: `${id}.nii`,
    extension: ".nii",
    format: "nifti",
    size: 360,
    sha256: "0".repeat(64),
    objectKey: imageKey(id, ".nii"),
    dimensions: [2, 2, 2],
    spacing: [1, 1, 1],
    channels: 1,
    dtype: "uint8",
    info,
    sourcePath: null,
  };
}

async function insertRows(path: string): Promise<number> {
  const database = await openDatabase({ provider: "sqlite", path });
  try {
    const repo = new ImageRepository(database);
    const now = Math.floor(Date.now() / 1000);
    const t0 = performance.now();
    for (let k = 1; k <= N; k += CHUNK) {
      const rows = [];
      for (let i = k; i < Math.min(k + CHUNK, N + 1); i++) {
        rows.push(row(i, now));
      }
      await repo.insertManyIgnoringExisting(rows);
    }
    return performance.now() - t0;
  } finally {
    await database.close();
  }
}

function check(cond: boolean, what: string) {
  if (!cond) {
    throw new Error(`sanity check failed: ${what}`);
  }
}

async function main() {
  const root = await mkdtemp(join(tmpdir(), "labelgraph-bench-al-"));
  progress(`N=${N}, runs=${RUNS}, temp folder ${root}`);
  let container: Container | null = null;
  let server: ReturnType<typeof buildServer> | null = null;
  try {
    const dbPath = join(root, "labelgraph.db");
    const insertMs = await insertRows(dbPath);
    progress(`inserted ${N} image rows in ${ms(insertMs)} ms`);
    await mkdir(join(root, "studies"), { recursive: true });
    const config = loadConfig(
      {
        LABELGRAPH_LOG_LEVEL: "error",
        LABELGRAPH_DATABASE_URL: `file:${dbPath}`,
        MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false",
        MONAI_LABEL_AUTO_UPDATE_SCORING: "false",
        LABELGRAPH_INFER_WORKERS: "0",
      },
      { studies: join(root, "studies"), app: APP, port: 0, host: "127.0.0.1" },
    );
    container = await buildContainer(config, { log: createLogger("error") });
    const c = container;
    const heapBefore = process.memoryUsage().heapUsed;
    const build = performance.now();
    await c.activeLearning.index.ready();
    const firstBuildMs = performance.now() - build;
    const heapAfter = process.memoryUsage().heapUsed;
    check(c.activeLearning.index.size === N, `index holds ${c.activeLearning.index.size} of ${N}`);
    const rebuild = await measure(() => c.activeLearning.index.invalidate(), { warmup: 0, runs: 3 });
    progress(`index built in ${ms(firstBuildMs)} ms (rebuild median ${ms(rebuild.median)} ms)`);

    server = buildServer(c);
    const { port } = await server.start(0, "127.0.0.1");
    const endpoint = `http://127.0.0.1:${port}/graphql`;
    const gql = async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
      if (!res.ok || body.errors?.length) {
        throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body.errors)}`);
      }
      return body.data ?? {};
    };
    const Q_COUNT = "{ images(first: 1, filter: { labeled: false }) { totalCount } }";
    const Q_NEXT = `mutation ($s: String) { nextImage(input: { strategy: $s, clientId: "bench" }) {
      ... on NextImageSuccess { data { id } } ... on Error { code message } } }`;
    for (let i = 0; i < 50; i++) {
      await gql("{ __typename }");
    }
    check((await c.datastore.countImages({ labeled: false })) === N, "countImages");
    const picked = (await gql(Q_NEXT, { s: "first" })) as { nextImage: { data: { id: string } } };
    check(picked.nextImage.data.id === idOf(1), "HTTP nextImage(first)");

    // What the index saves: the same Random pick from the datastore's own reads, and in SQL.
    const naiveRandom = async () => {
      const ids = await c.datastore.unlabeledImages();
      const candidates = [];
      for (let k = 0; k < ids.length; k += 5000) {
        for (const image of await c.datastore.getImages(ids.slice(k, k + 5000))) {
          candidates.push(toCandidate(image.id, image.info));
        }
      }
      const weights = randomWeights(candidates, "random", Math.floor(Date.now() / 1000));
      return candidates[weightedIndex(weights, Math.random())]?.id;
    };
    const now = Math.floor(Date.now() / 1000);
    const sqlRandom = () =>
      c.database.db.$queryRawUnsafe(
        `WITH c AS (SELECT "id", ${now} - COALESCE(json_extract("info", '$.strategy.random.ts'), 0) AS w
           FROM "Image" i WHERE NOT EXISTS (SELECT 1 FROM "Label" l WHERE l."tag" = 'final' AND l."imageId" = i."id")),
         cum AS (SELECT "id", w, SUM(w) OVER (ORDER BY "id" ROWS UNBOUNDED PRECEDING) AS cw, SUM(w) OVER () AS total FROM c)
         SELECT "id", w FROM cum WHERE cw > ${Math.random()} * total ORDER BY "id" LIMIT 1`,
      );

    const cases: { name: string; fn: () => Promise<unknown>; target: boolean; runs?: number }[] = [
      { name: "in-process countImages() (baseline)", fn: () => c.datastore.countImages(), target: false },
      { name: "HTTP images(labeled:false) totalCount (baseline)", fn: () => gql(Q_COUNT), target: false },
      ...STRATEGIES.map((s) => ({
        name: `in-process nextImage(${s})`,
        fn: () => c.activeLearning.nextImage({ strategy: s, clientId: "bench" }),
        target: true,
      })),
      ...STRATEGIES.map((s) => ({ name: `HTTP nextImage(${s})`, fn: () => gql(Q_NEXT, { s }), target: true })),
      {
        name: "for comparison: Random over datastore reads, no index",
        fn: naiveRandom,
        target: false,
        runs: Math.min(RUNS, 5),
      },
      {
        name: "for comparison: Random as one SQL query (json_extract)",
        fn: sqlRandom,
        target: false,
        runs: Math.min(RUNS, 10),
      },
    ];
    const results: { name: string; stats: Stats; target: boolean }[] = [];
    for (const k of cases) {
      progress(`timing ${k.name}`);
      results.push({ name: k.name, stats: await measure(k.fn, { warmup: 3, runs: k.runs ?? RUNS }), target: k.target });
    }
    check((await c.datastore.countImages({ labeled: false })) === N, "picking labels nothing");

    const out = [
      `labelgraph active learning bench: ${N} unlabeled images, SQLite, Node ${process.version}, ` +
        `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}`,
      "",
      `candidate index: first build ${ms(firstBuildMs)} ms, rebuild median ${ms(rebuild.median)} ms, ` +
        `heap +${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB (rough); rows inserted in ${ms(insertMs)} ms`,
      "",
      table(
        ["operation", "median ms", "p95 ms", "runs", "target", "pass/fail"],
        results.map(({ name, stats, target }) => [
          name,
          ms(stats.median),
          ms(stats.p95),
          String(stats.runs),
          target ? `< ${TARGET_MS} ms` : "-",
          target ? (stats.median < TARGET_MS ? "pass" : "FAIL") : "-",
        ]),
      ),
      "",
      "Timed runs after 3 warm-ups each, sequential; each nextImage also records the serve in the image info " +
        "(a read and a merge), as MONAI does. HTTP = fetch POST /graphql on 127.0.0.1 from the same process.",
    ];
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    await server?.stop();
    await container?.close();
    if (KEEP) {
      progress(`kept ${root}`);
    } else {
      await rm(root, { recursive: true, force: true });
      progress(`removed ${root}`);
    }
  }
}

await main();
