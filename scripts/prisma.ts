/**
 * Keeps the per-provider Prisma artefacts in step with prisma/schema.prisma:
 *   tsx scripts/prisma.ts generate   -> writes prisma/postgresql/schema.prisma, runs `prisma generate` for both
 *   tsx scripts/prisma.ts migrate NAME -> appends a migration for each provider (diff from the previous state)
 *   tsx scripts/prisma.ts check      -> fails when the postgresql schema drifted from the SQLite one
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const sqliteSchema = join(root, "prisma/schema.prisma");
const pgSchema = join(root, "prisma/postgresql/schema.prisma");
const providers = { sqlite: sqliteSchema, postgresql: pgSchema } as const;

function derivePg(): string {
  return readFileSync(sqliteSchema, "utf8")
    .replace("../src/db/generated/sqlite", "../../src/db/generated/postgresql")
    .replace('provider = "sqlite"', 'provider = "postgresql"')
    .replace('url      = "file:./unused.db"', 'url      = "postgresql://localhost/unused"')
    .replace(
      /^\/\/ The labelgraph data model[\s\S]*?\n\n/,
      "// GENERATED from prisma/schema.prisma by scripts/prisma.ts: do not edit.\n\n",
    );
}

function prisma(...args: string[]): string {
  return execFileSync(join(root, "node_modules/.bin/prisma"), args, { cwd: root, encoding: "utf8" });
}

const [cmd, name] = process.argv.slice(2);
if (cmd === "generate") {
  mkdirSync(join(root, "prisma/postgresql"), { recursive: true });
  writeFileSync(pgSchema, derivePg());
  for (const schema of Object.values(providers)) {
    prisma("generate", "--schema", schema);
  }
} else if (cmd === "migrate") {
  if (!name || !/^[a-z0-9_]+$/.test(name)) {
    throw new Error("usage: scripts/prisma.ts migrate NAME (lower-case, digits, _)");
  }
  for (const [provider, schema] of Object.entries(providers)) {
    const dir = join(root, "prisma/migrations", provider);
    mkdirSync(dir, { recursive: true });
    const existing = readdirSync(dir)
      .filter((d) => /^\d{4}_/.test(d))
      .sort();
    const shadow = join(dir, "..", `.${provider}-applied.prisma`);
    const from = existing.length === 0 ? ["--from-empty"] : ["--from-schema-datamodel", shadow];
    if (existing.length > 0 && !existsSync(shadow)) {
      throw new Error(`${shadow} is missing: it records the schema the last migration reached`);
    }
    const sql = prisma("migrate", "diff", ...from, "--to-schema-datamodel", schema, "--script");
    const folder = join(dir, `${String(existing.length + 1).padStart(4, "0")}_${name}`);
    mkdirSync(folder);
    writeFileSync(join(folder, "migration.sql"), sql);
    writeFileSync(shadow, readFileSync(schema, "utf8"));
    console.log(`wrote ${folder}`);
  }
} else if (cmd === "check") {
  if (readFileSync(pgSchema, "utf8") !== derivePg()) {
    console.error("prisma/postgresql/schema.prisma drifted: run `npm run db:generate`");
    process.exit(1);
  }
} else {
  console.error("usage: tsx scripts/prisma.ts generate | migrate NAME | check");
  process.exit(2);
}
