/** CI guard: schema.graphql must be what the code generates (run `npm run schema:print` after changing types). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { printSchema } from "graphql";
import { schema } from "../src/graphql/schema.js";

const file = join(import.meta.dirname, "..", "schema.graphql");
if (readFileSync(file, "utf8") !== `${printSchema(schema)}\n`) {
  console.error("schema.graphql is out of date: run `npm run schema:print` and commit it");
  process.exit(1);
}
console.log("schema.graphql is up to date");
