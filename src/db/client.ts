import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient as PgClient } from "./generated/postgresql/client.js";
import { PrismaClient as SqliteClient } from "./generated/sqlite/client.js";
import { applyMigrations } from "./migrate.js";

/**
 * Both generated clients come from the same models (scripts/prisma.ts derives one schema from the
 * other), so the SQLite client's type describes either.
 */
export type Db = SqliteClient;

export type DatabaseConfig = { provider: "sqlite"; path: string } | { provider: "postgresql"; url: string };

export interface Database {
  db: Db;
  provider: DatabaseConfig["provider"];
  /** A table name quoted (and schema-qualified on PostgreSQL) for the few raw queries Prisma cannot express. */
  table(name: string): string;
  /** The n-th (1-based) bind parameter in raw SQL, cast where the provider needs it. */
  placeholder(n: number, type?: "json" | "timestamp" | "bigint"): string;
  /** A timestamp as raw SQL must bind it so that Prisma reads it back as the same Date. */
  timestamp(d: Date): string;
  close(): Promise<void>;
}

const quote = (ident: string) => `"${ident.replaceAll('"', '""')}"`;

/** `?schema=NAME` on a PostgreSQL URL selects the schema (tests use one schema each). */
export function postgresSchema(url: string): string | undefined {
  return new URL(url).searchParams.get("schema") ?? undefined;
}

/** Opens the database and applies any pending migrations first. */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  await applyMigrations(config);
  if (config.provider === "sqlite") {
    const db = new SqliteClient({ adapter: new PrismaBetterSQLite3({ url: config.path, timeout: 10_000 }) });
    return {
      db,
      provider: "sqlite",
      table: quote,
      placeholder: () => "?",
      // The better-sqlite3 adapter stores DateTime as ISO-8601 text with an explicit offset.
      timestamp: (d) => d.toISOString().replace("Z", "+00:00"),
      close: () => db.$disconnect(),
    };
  }
  const schema = postgresSchema(config.url);
  const url = new URL(config.url);
  url.searchParams.delete("schema");
  const adapter = new PrismaPg({ connectionString: url.toString(), max: 10 }, schema ? { schema } : undefined);
  const db = new PgClient({ adapter }) as unknown as Db;
  return {
    db,
    provider: "postgresql",
    table: (name) => (schema ? `${quote(schema)}.${quote(name)}` : quote(name)),
    placeholder: (n, type) =>
      type === "json"
        ? `$${n}::jsonb`
        : type === "timestamp"
          ? `$${n}::timestamp`
          : type === "bigint"
            ? `$${n}::bigint`
            : `$${n}`,
    // timestamp(3) without time zone holds UTC; a cast from ISO text keeps the wall-clock value.
    timestamp: (d) => d.toISOString().replace("Z", ""),
    close: () => db.$disconnect(),
  };
}
