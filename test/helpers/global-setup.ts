import { execFileSync } from "node:child_process";
import { join } from "node:path";
import pg from "pg";

/**
 * Runs once before every test file: makes sure the real-data fixtures are cached (scripts/fetch-fixtures.sh
 * takes them from Debian packages) and that PostgreSQL answers, so no test silently skips.
 */
export default async function setup() {
  const root = join(import.meta.dirname, "../..");
  // Idempotent, and quick when every fixture is cached already.
  execFileSync("bash", [join(root, "scripts/fetch-fixtures.sh")], { stdio: "inherit" });
  const url = process.env.LABELGRAPH_TEST_PG_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
  process.env.LABELGRAPH_TEST_PG_URL = url;
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (err) {
    throw new Error(`PostgreSQL at ${url} does not answer (start it, or set LABELGRAPH_TEST_PG_URL): ${err}`);
  } finally {
    await client.end().catch(() => {});
  }
}
