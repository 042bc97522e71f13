import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Volume } from "../../src/io/types.js";
import { identityAffine } from "../../src/transforms/tensor.js";

/** Real data cached by scripts/fetch-fixtures.sh (Debian mricron-data, python3-nibabel, python3-skimage). */
export function fixture(name: string): string {
  const path = join(import.meta.dirname, "../fixtures/.cache", name);
  if (!existsSync(path)) {
    throw new Error(`fixture ${name} is missing: run scripts/fetch-fixtures.sh`);
  }
  return path;
}

/** A square 8-bit grey image (size x size, unit spacing, identity affine) for writeImage2d / encodeImage2d. */
export function greyImage2d(data: Uint8Array, size: number): Volume {
  return { data, shape: [size, size], spacing: [1, 1], affine: identityAffine(), dtype: "uint8", meta: {} };
}
