import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type Config, loadConfig } from "../../src/config/config.js";
import { buildContainer, type Container } from "../../src/container.js";
import { createLogger } from "../../src/logger.js";
import { buildServer } from "../../src/server.js";
import { type RunningS3rver, startS3rver } from "./s3rver.js";

export type Provider = "sqlite" | "postgresql";
export type StoreKind = "fs" | "s3";

export interface Harness {
  container: Container;
  config: Config;
  dir: string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  provider?: Provider;
  store?: StoreKind;
  env?: Record<string, string>;
  app?: string;
  /** A studies folder to use instead of an empty temporary one. */
  studies?: string;
  /** App settings, as `--conf KEY VALUE`. */
  conf?: Record<string, string>;
}

/** A fresh PostgreSQL schema per harness, dropped on close, so tests never see each other's rows. */
function pgUrl(schema: string): string {
  const base = new URL(process.env.LABELGRAPH_TEST_PG_URL ?? "postgresql://postgres@127.0.0.1:5432/test");
  base.searchParams.set("schema", schema);
  return base.toString();
}

async function dropSchema(schema: string) {
  const client = new pg.Client({ connectionString: process.env.LABELGRAPH_TEST_PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}

export async function createHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-test-"));
  const env: Record<string, string> = { LABELGRAPH_LOG_LEVEL: "error", ...opts.env };
  const schema = `lg_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  if (opts.provider === "postgresql") {
    env.LABELGRAPH_DATABASE_URL = pgUrl(schema);
  }
  let s3: RunningS3rver | null = null;
  if (opts.store === "s3") {
    s3 = await startS3rver();
    Object.assign(env, {
      LABELGRAPH_OBJECT_STORE: "s3",
      LABELGRAPH_S3_ENDPOINT: `http://${s3.endPoint}:${s3.port}`,
      LABELGRAPH_S3_BUCKET: "labelgraph-test",
      LABELGRAPH_S3_ACCESS_KEY: s3.accessKey,
      LABELGRAPH_S3_SECRET_KEY: s3.secretKey,
    });
  }
  const config = loadConfig(env, {
    studies: opts.studies ?? join(dir, "studies"),
    app: opts.app,
    conf: opts.conf,
    port: 0,
    host: "127.0.0.1",
  });
  const container = await buildContainer(config, { log: createLogger("error") });
  return {
    container,
    config,
    dir,
    async close() {
      await container.close();
      await s3?.stop();
      if (opts.provider === "postgresql") {
        await dropSchema(schema);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestServer extends Harness {
  url: string;
  port: number;
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>>;
  upload<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    files: Record<string, { data: Uint8Array; name: string }>,
  ): Promise<GqlResult<T>>;
}

export interface GqlResult<T> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export async function startTestServer(opts: HarnessOptions = {}): Promise<TestServer> {
  const h = await createHarness(opts);
  const server = buildServer(h.container);
  const { port } = await server.start(0, "127.0.0.1");
  const url = `http://127.0.0.1:${port}`;
  return {
    ...h,
    url,
    port,
    async gql(query, variables) {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      return res.json() as never;
    },
    async upload(query, variables, files) {
      // GraphQL multipart request spec: operations, map, then one part per file.
      const form = new FormData();
      const map: Record<string, string[]> = {};
      const vars = structuredClone(variables);
      Object.keys(files).forEach((path, i) => {
        map[String(i)] = [`variables.${path}`];
        setPath(vars, path, null);
      });
      form.append("operations", JSON.stringify({ query, variables: vars }));
      form.append("map", JSON.stringify(map));
      for (const [i, f] of Object.values(files).entries()) {
        form.append(String(i), new Blob([new Uint8Array(f.data)]), f.name);
      }
      const res = await fetch(`${url}/graphql`, { method: "POST", body: form });
      return res.json() as never;
    },
    async close() {
      await server.stop();
      await h.close();
    },
  };
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown) {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts.at(-1) as string] = value;
}
