import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import type { DatabaseConfig } from "./client.js";

/**
 * Applies prisma/migrations/<provider>/NNNN_name/migration.sql in order, each once, recording them in
 * `_labelgraph_migrations`. Migrations are written by `scripts/prisma.ts migrate`; Prisma's own
 * `migrate deploy` needs the CLI and its config at run time, which a server start should not.
 */
const migrationsRoot = join(dirname(fileURLToPath(import.meta.url)), "../../prisma/migrations");

interface Migration {
  name: string;
  sql: string;
}

export function listMigrations(provider: DatabaseConfig["provider"]): Migration[] {
  const dir = join(migrationsRoot, provider);
  return readdirSync(dir)
    .filter((d) => /^\d{4}_[a-z0-9_]+$/.test(d))
    .sort()
    .map((name) => ({ name, sql: readFileSync(join(dir, name, "migration.sql"), "utf8") }));
}

export async function applyMigrations(config: DatabaseConfig): Promise<string[]> {
  const migrations = listMigrations(config.provider);
  return config.provider === "sqlite"
    ? migrateSqlite(config.path, migrations)
    : migratePostgres(config.url, migrations);
}

function migrateSqlite(path: string, migrations: Migration[]): string[] {
  if (path !== ":memory:") {
    mkdirSync(dirname(path), { recursive: true });
  }
  const db = new BetterSqlite3(path, { timeout: 10_000 });
  try {
    // WAL lets readers run while a writer commits; it is a property of the file, so set it once here.
    db.pragma("journal_mode = WAL");
    db.exec('CREATE TABLE IF NOT EXISTS "_labelgraph_migrations" (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
    const applied: string[] = [];
    // BEGIN IMMEDIATE takes the write lock first, so two processes starting together apply each migration once.
    const run = db.transaction(() => {
      const done = new Set(
        (db.prepare('SELECT name FROM "_labelgraph_migrations"').all() as { name: string }[]).map((r) => r.name),
      );
      for (const m of migrations) {
        if (!done.has(m.name)) {
          db.exec(m.sql);
          db.prepare('INSERT INTO "_labelgraph_migrations" VALUES (?, ?)').run(m.name, new Date().toISOString());
          applied.push(m.name);
        }
      }
    });
    run.immediate();
    return applied;
  } finally {
    db.close();
  }
}

async function migratePostgres(rawUrl: string, migrations: Migration[]): Promise<string[]> {
  const url = new URL(rawUrl);
  const schema = url.searchParams.get("schema") ?? "public";
  url.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const ident = `"${schema.replaceAll('"', '""')}"`;
    await client.query("BEGIN");
    // One migrator at a time per database, whatever the number of servers starting; taken before
    // CREATE SCHEMA, whose IF NOT EXISTS does not protect against a concurrent creator.
    await client.query("SELECT pg_advisory_xact_lock(727274)");
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
    await client.query(`SET LOCAL search_path TO ${ident}`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS "_labelgraph_migrations" (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)',
    );
    const done = new Set(
      (await client.query<{ name: string }>('SELECT name FROM "_labelgraph_migrations"')).rows.map((r) => r.name),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (!done.has(m.name)) {
        await client.query(m.sql);
        await client.query('INSERT INTO "_labelgraph_migrations" VALUES ($1, now())', [m.name]);
        applied.push(m.name);
      }
    }
    await client.query("COMMIT");
    return applied;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
}
