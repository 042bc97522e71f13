/**
 * Prepares the radiology app's demo studies folder (for `npm start`): the same code as
 * `labelgraph datasets --download --name colin27 --output DIR` (src/cli/datasets.ts). Leaves a folder that
 * already holds the dataset as it is.
 * Usage: tsx scripts/demo-data.ts [DIR] (default ./studies).
 */
import { resolve } from "node:path";
import { DATASETS, downloadDataset } from "../src/cli/datasets.js";

const dir = resolve(process.argv[2] ?? "studies");
const wrote = await downloadDataset("colin27", dir, (done, total, what) =>
  console.error(`demo-data: [${done}/${total}] ${what}`),
);
console.error(
  wrote
    ? `demo-data: wrote the Colin27 demo studies (${DATASETS.colin27?.files.join(", ")}) to ${dir}`
    : `demo-data: ${dir} already holds colin27; leaving it as it is`,
);
