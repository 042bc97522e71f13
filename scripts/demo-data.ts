/**
 * Prepares the radiology app's demo studies folder from real data (Debian's mricron-data Colin27 T1
 * brain and its brain-extracted twin, fetched by scripts/fetch-fixtures.sh):
 *   colin27.nii.gz                   T1 image
 *   labels/final/colin27.nii.gz      brain mask (ch2bet > 0), as an annotator would approve it
 *   colin27_lr.nii.gz                the same brain mirrored left-right, unlabeled: something to label next
 * Usage: tsx scripts/demo-data.ts [DIR] (default ./studies). Does nothing when DIR already holds images.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { readNifti, writeNifti } from "../src/io/nifti.js";

const root = join(import.meta.dirname, "..");
const dir = resolve(process.argv[2] ?? "studies");
const cache = join(root, "test/fixtures/.cache");

if (existsSync(dir) && (await readdir(dir)).some((f) => f.endsWith(".nii.gz"))) {
  console.error(`demo-data: ${dir} already holds images; leaving it as it is`);
  process.exit(0);
}
if (!existsSync(join(cache, "ch2.nii.gz")) || !existsSync(join(cache, "ch2bet.nii.gz"))) {
  execFileSync("bash", [join(root, "scripts/fetch-fixtures.sh")], { stdio: "inherit" });
}
await mkdir(join(dir, "labels", "final"), { recursive: true });
await copyFile(join(cache, "ch2.nii.gz"), join(dir, "colin27.nii.gz"));

const bet = await readNifti(join(cache, "ch2bet.nii.gz"));
const mask = new Uint8Array(bet.data.length);
for (let i = 0; i < mask.length; i++) {
  mask[i] = (bet.data[i] ?? 0) > 0 ? 1 : 0;
}
await writeNifti({ ...bet, data: mask, dtype: "uint8" }, join(dir, "labels", "final", "colin27.nii.gz"));

const t1 = await readNifti(join(cache, "ch2.nii.gz"));
const [nx, ny, nz] = t1.shape as [number, number, number];
const flipped = new Uint8Array(t1.data.length);
for (let z = 0; z < nz; z++) {
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      const row = (z * ny + y) * nx;
      flipped[row + x] = t1.data[row + (nx - 1 - x)] ?? 0;
    }
  }
}
await writeNifti({ ...t1, data: flipped, dtype: "uint8" }, join(dir, "colin27_lr.nii.gz"));
console.error(`demo-data: wrote the Colin27 demo studies to ${dir}`);
