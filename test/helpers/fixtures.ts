import { existsSync } from "node:fs";
import { join } from "node:path";

/** Real data cached by scripts/fetch-fixtures.sh (Debian mricron-data, python3-nibabel, python3-skimage). */
export function fixture(name: string): string {
  const path = join(import.meta.dirname, "../fixtures/.cache", name);
  if (!existsSync(path)) {
    throw new Error(`fixture ${name} is missing: run scripts/fetch-fixtures.sh`);
  }
  return path;
}
