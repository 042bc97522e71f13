import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type DatabaseConfig, openDatabase } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { SessionRepository } from "../../src/db/sessions.repo.js";

const dirs: string[] = [];
const schemas: string[] = [];
afterAll(async () => {
  for (const d of dirs) {
    await rm(d, { recursive: true, force: true });
  }
  const client = new pg.Client({ connectionString: process.env.LABELGRAPH_TEST_PG_URL });
  await client.connect();
  for (const s of schemas) {
    await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  }
  await client.end();
});

async function config(provider: DatabaseConfig["provider"]): Promise<DatabaseConfig> {
  if (provider === "sqlite") {
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-db-"));
    dirs.push(dir);
    return { provider, path: join(dir, "x.db") };
  }
  const schema = `lg_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  schemas.push(schema);
  const url = new URL(process.env.LABELGRAPH_TEST_PG_URL as string);
  url.searchParams.set("schema", schema);
  return { provider, url: url.toString() };
}

describe.each(["sqlite", "postgresql"] as const)("the %s database", (provider) => {
  it("applies each migration once, even when two servers start together", async () => {
    const cfg = await config(provider);
    const [a, b] = await Promise.all([applyMigrations(cfg), applyMigrations(cfg)]);
    expect([...a, ...b]).toEqual(["0001_init"]);
    expect(await applyMigrations(cfg)).toEqual([]);
  });

  it("keeps MONAI sessions with their expiry", async () => {
    const database = await openDatabase(await config(provider));
    const sessions = new SessionRepository(database.db);
    const s = await sessions.create({
      id: "s1",
      name: "ct.nii.gz",
      objectKey: "sessions/s1/ct.nii.gz",
      info: { a: 1 },
      expiry: 60,
    });
    expect((await sessions.get("s1"))?.info).toEqual({ a: 1 });
    const later = new Date(s.lastAccessAt.getTime() + 61_000);
    expect((await sessions.expired(later)).map((x) => x.id)).toEqual(["s1"]);
    const touched = await sessions.get("s1", true);
    expect(touched?.lastAccessAt.getTime()).toBeGreaterThanOrEqual(s.lastAccessAt.getTime());
    expect((await sessions.delete("s1"))?.id).toBe("s1");
    expect(await sessions.get("s1")).toBeNull();
    expect(await sessions.delete("s1")).toBeNull();
    await database.close();
  });
});
