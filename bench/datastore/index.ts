/**
 * Datastore benchmark: registers N tiny images from a studies folder, then times the datastore queries
 * a UI issues on a big list, in-process and through the GraphQL endpoint.
 *
 *   npx tsx bench/datastore/index.ts [--images 100000] [--runs 30] [--keep]
 *
 * Results (tables) go to stdout, progress to stderr. Everything lives in one temporary folder that is
 * removed at the end (unless --keep).
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type Config, loadConfig } from "../../src/config/config.js";
import { buildContainer, type Container } from "../../src/container.js";
import { openDatabase } from "../../src/db/client.js";
import { ImageRepository, type NewImage } from "../../src/db/images.repo.js";
import { createLogger } from "../../src/logger.js";
import { buildServer } from "../../src/server.js";
import { imageKey, labelKey } from "../../src/storage/keys.js";
import { benchArgs, measure, ms, progress, runLimited, type Stats, table, tinyNifti } from "./lib.js";

const { images: N, runs: RUNS, keep: KEEP } = benchArgs({ images: 100000, runs: 30, minImages: 1000 });

const QUERY_TARGET_MS = 20;
const IMPORT_TARGET_PER_S = 2000;
const CHUNK = 1000;
/** Trivial requests sent once before any HTTP timing. */
const HTTP_WARMUP = 50;
/** Every 10th image gets a `final` label, every 4th an `original` one. */
const hasFinal = (i: number) => i % 10 === 0;
const hasOriginal = (i: number) => i % 4 === 0;

const idOf = (i: number) => `img_${String(i).padStart(6, "0")}`;
const env = { LABELGRAPH_LOG_LEVEL: "error", MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" };
const configFor = (studies: string): Config => loadConfig(env, { studies, port: 0, host: "127.0.0.1" });
const quietLog = createLogger("error");

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** Writes img_000001.nii ... into `dir`; returns each file's sha256 and size (index i-1). */
async function generateStudies(dir: string): Promise<{ sha256: string[]; size: number }> {
  await mkdir(dir, { recursive: true });
  const sha256: string[] = new Array(N);
  const indexes = Array.from({ length: N }, (_, k) => k + 1);
  let size = 0;
  let written = 0;
  await runLimited(indexes, 32, async (i) => {
    const bytes = tinyNifti(i);
    size = bytes.length;
    sha256[i - 1] = createHash("sha256").update(bytes).digest("hex");
    await writeFile(join(dir, `${idOf(i)}.nii`), bytes);
    if (++written % 10000 === 0) {
      progress(`generated ${written}/${N} files`);
    }
  });
  return { sha256, size };
}

function imageRow(i: number, sha256: string, size: number, sourcePath: string | null): NewImage {
  const id = idOf(i);
  return {
    id,
    name: `${id}.nii`,
    extension: ".nii",
    format: "nifti",
    size,
    sha256,
    objectKey: imageKey(id, ".nii"),
    dimensions: [2, 2, 2],
    spacing: [1, 1, 1],
    channels: 1,
    dtype: "uint8",
    info: { ts: Math.floor(Date.now() / 1000), name: `${id}.nii` },
    sourcePath,
  };
}

/** The bare DB insert rate: the same N rows through ImageRepository.createMany, no files. */
async function rowsOnly(dir: string, hashes: readonly string[], size: number): Promise<number> {
  const database = await openDatabase({ provider: "sqlite", path: join(dir, "labelgraph.db") });
  try {
    const repo = new ImageRepository(database);
    const rows = Array.from({ length: N }, (_, k) => imageRow(k + 1, hashes[k] ?? "", size, `${idOf(k + 1)}.nii`));
    const t0 = performance.now();
    let inserted = 0;
    for (let k = 0; k < rows.length; k += CHUNK) {
      inserted += await repo.createMany(rows.slice(k, k + CHUNK));
    }
    const elapsed = performance.now() - t0;
    if (inserted !== N) {
      throw new Error(`rows-only: inserted ${inserted} of ${N}`);
    }
    return elapsed;
  } finally {
    await database.close();
  }
}

/** Label rows straight into the database (no files): `final` on every 10th image, `original` on every 4th. */
async function insertLabels(container: Container, hashes: readonly string[], size: number): Promise<number> {
  const data = [];
  for (let i = 1; i <= N; i++) {
    for (const tag of [hasFinal(i) ? "final" : null, hasOriginal(i) ? "original" : null]) {
      if (tag) {
        const imageId = idOf(i);
        data.push({
          imageId,
          tag,
          version: 1,
          author: "bench",
          extension: ".nii",
          size: BigInt(size),
          sha256: hashes[i - 1] ?? "",
          objectKey: labelKey(imageId, tag, ".nii"),
          dimensions: [2, 2, 2],
          info: { ts: Math.floor(Date.now() / 1000), name: `${imageId}.nii` },
        });
      }
    }
  }
  for (let k = 0; k < data.length; k += CHUNK) {
    await container.database.db.label.createMany({ data: data.slice(k, k + CHUNK) });
  }
  return data.length;
}

interface GqlBody {
  data?: Record<string, unknown>;
  errors?: { message: string }[];
}

function check(cond: boolean, what: string) {
  if (!cond) {
    throw new Error(`sanity check failed: ${what}`);
  }
}

async function main() {
  const root = await mkdtemp(join(tmpdir(), "labelgraph-bench-"));
  progress(`N=${N}, runs=${RUNS}, temp folder ${root}`);
  const studiesDir = join(root, "studies");
  const finals = Array.from({ length: N }, (_, k) => k + 1).filter(hasFinal).length;
  const originals = Array.from({ length: N }, (_, k) => k + 1).filter(hasOriginal).length;
  let container: Container | null = null;
  let server: ReturnType<typeof buildServer> | null = null;
  try {
    // 1. files (not timed)
    const gen = await timed(() => generateStudies(studiesDir));
    const { sha256: hashes, size } = gen.value;
    progress(`generated ${N} files of ${size} bytes in ${(gen.ms / 1000).toFixed(1)} s`);

    // 2a. fixed cost of buildContainer (migrations, app, object store) on an empty studies folder
    const empty = await timed(() => buildContainer(configFor(join(root, "empty")), { log: quietLog }));
    await empty.value.close();
    progress(`buildContainer on an empty folder: ${ms(empty.ms)} ms`);

    // 2b. rows-only insert rate
    progress(`rows-only: inserting ${N} image rows with ImageRepository.createMany (chunks of ${CHUNK})`);
    const rowsMs = await rowsOnly(join(root, "rows-only"), hashes, size);
    progress(`rows-only: ${ms(rowsMs)} ms`);

    // 2c. the real import: buildContainer syncs the studies folder
    progress(`importing the studies folder through buildContainer (studies.sync("import"))`);
    let lastTick = performance.now();
    let lastDone = 0;
    const built = await timed(() =>
      buildContainer(configFor(studiesDir), {
        log: quietLog,
        onImportProgress: (done, total) => {
          if (done % 5000 === 0 || done === total) {
            const now = performance.now();
            const recent = Math.round((done - lastDone) / ((now - lastTick) / 1000));
            progress(`import ${done}/${total} (${recent}/s recent)`);
            lastTick = now;
            lastDone = done;
          }
        },
      }),
    );
    container = built.value;
    const c = container;
    const importMs = Math.max(1, built.ms - empty.ms);
    const imported = await c.datastore.countImages();
    check(imported === N, `imported ${imported} of ${N} images`);

    // 2d. labels (direct rows)
    const labels = await timed(() => insertLabels(c, hashes, size));
    progress(`inserted ${labels.value} label rows in ${ms(labels.ms)} ms`);

    // 3. queries
    const ids = await c.datastore.listImageIds();
    const afterIdx = Math.floor(N * 0.9);
    const afterId = ids[afterIdx] ?? "";
    const cursor = Buffer.from(`image:${afterId}`).toString("base64url");

    const page = await c.datastore.pageImages({}, { after: afterId, limit: 51, inverted: false });
    check(page.length === 51 && page[0]?.id === ids[afterIdx + 1], "in-process page starts after the cursor");
    check((await c.datastore.countImages({ labeled: false })) === N - finals, "unlabeled count");
    const status = await c.datastore.status();
    check(status.total === N && status.completed === finals, "status total/completed");
    check(status.labelTags.final === finals && status.labelTags.original === originals, "status labelTags");

    server = buildServer(c);
    const { port } = await server.start(0, "127.0.0.1");
    const endpoint = `http://127.0.0.1:${port}/graphql`;
    const gql = async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as GqlBody;
      if (!res.ok || body.errors?.length) {
        throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body.errors)}`);
      }
      return body.data ?? {};
    };
    const Q_PAGE =
      "query($after: String) { images(first: 50, after: $after) { edges { node { id name dimensions } } } }";
    const Q_COUNT = "{ images(first: 1, filter: { labeled: false }) { totalCount } }";
    const Q_STATUS = "{ datastoreStatus { total completed labelTags } }";
    const Q_TRIVIAL = "{ __typename }";

    const pageData = (await gql(Q_PAGE, { after: cursor })) as { images: { edges: { node: { id: string } }[] } };
    check(pageData.images.edges.length === 50 && pageData.images.edges[0]?.node.id === ids[afterIdx + 1], "HTTP page");
    const countData = (await gql(Q_COUNT)) as { images: { totalCount: number } };
    check(countData.images.totalCount === N - finals, "HTTP totalCount");
    const statusData = (await gql(Q_STATUS)) as { datastoreStatus: { total: number } };
    check(statusData.datastoreStatus.total === N, "HTTP datastoreStatus");
    // Warm the HTTP path (undici, yoga, JIT) once, so the first HTTP row is not the one paying for it.
    for (let i = 0; i < HTTP_WARMUP; i++) {
      await gql(Q_TRIVIAL);
    }

    const cases: { name: string; fn: () => Promise<unknown>; target: boolean }[] = [
      {
        name: `in-process pageImages (after #${afterIdx}, limit 51)`,
        fn: () => c.datastore.pageImages({}, { after: afterId, limit: 51, inverted: false }),
        target: true,
      },
      {
        name: "in-process countImages({labeled:false})",
        fn: () => c.datastore.countImages({ labeled: false }),
        target: true,
      },
      { name: "in-process status()", fn: () => c.datastore.status(), target: true },
      { name: "HTTP { __typename } (baseline)", fn: () => gql(Q_TRIVIAL), target: false },
      { name: "HTTP images(first:50, after:<90%>)", fn: () => gql(Q_PAGE, { after: cursor }), target: true },
      { name: "HTTP images(filter:{labeled:false}) totalCount", fn: () => gql(Q_COUNT), target: true },
      { name: "HTTP datastoreStatus", fn: () => gql(Q_STATUS), target: true },
    ];
    const results: { name: string; stats: Stats; target: boolean }[] = [];
    for (const k of cases) {
      progress(`timing ${k.name}`);
      results.push({ name: k.name, stats: await measure(k.fn, { warmup: 3, runs: RUNS }), target: k.target });
    }

    // 4. report
    const importRate = N / (importMs / 1000);
    const rowsRate = N / (rowsMs / 1000);
    const out: string[] = [];
    out.push(
      `labelgraph datastore bench: ${N} images (${size}-byte NIfTI-1), ${finals} final + ${originals} original labels, SQLite, ` +
        `Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}`,
      "",
      table(
        ["import", "time s", "images/s", "target", "pass/fail"],
        [
          [
            "studies folder import (buildContainer - empty baseline)",
            (importMs / 1000).toFixed(2),
            importRate.toFixed(0),
            `> ${IMPORT_TARGET_PER_S}/s`,
            importRate > IMPORT_TARGET_PER_S ? "pass" : "FAIL",
          ],
          [
            `rows only: ImageRepository.createMany x${CHUNK}`,
            (rowsMs / 1000).toFixed(2),
            rowsRate.toFixed(0),
            "-",
            "-",
          ],
          [
            `label rows: label.createMany x${CHUNK} (rows/s)`,
            (labels.ms / 1000).toFixed(2),
            (labels.value / (labels.ms / 1000)).toFixed(0),
            "-",
            "-",
          ],
        ],
      ),
      "",
      `import rate is ${((importRate / rowsRate) * 100).toFixed(1)}% of the rows-only insert rate ` +
        `(buildContainer over the filled folder ${ms(built.ms)} ms, over an empty folder ${ms(empty.ms)} ms)`,
      "",
      table(
        ["operation", "median ms", "p95 ms", "target", "pass/fail"],
        results.map(({ name, stats, target }) => [
          name,
          ms(stats.median),
          ms(stats.p95),
          target ? `< ${QUERY_TARGET_MS} ms` : "-",
          target ? (stats.median < QUERY_TARGET_MS ? "pass" : "FAIL") : "-",
        ]),
      ),
      "",
      `${RUNS} timed runs after 3 warm-ups each, sequential (plus ${HTTP_WARMUP} untimed { __typename } requests before the ` +
        "first HTTP row); HTTP = fetch POST /graphql on 127.0.0.1 from the same process.",
    );
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
