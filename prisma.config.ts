// Prisma CLI configuration. The JavaScript engine keeps the CLI offline (no native engine download);
// the adapter is only used by CLI commands that talk to a database (labelgraph applies its own
// migrations at start, see src/db/migrate.ts).
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { defineConfig } from "prisma/config";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  adapter: async () => new PrismaBetterSQLite3({ url: process.env.LABELGRAPH_PRISMA_CLI_URL ?? ":memory:" }),
});
