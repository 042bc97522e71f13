import { existsSync } from "node:fs";
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { loadImage, saveImage, type Volume } from "labelgraph";

/** Mirrors a volume along its first (x, left-right in Colin27) axis, keeping the affine, as scripts/demo-data.ts. */
export function mirrorX(volume: Volume): Volume {
  const [nx = 1, ny = 1, nz = 1] = volume.shape;
  const out = new Uint8Array(volume.data.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      const row = (z * ny + y) * nx;
      for (let x = 0; x < nx; x++) {
        out[row + x] = volume.data[row + (nx - 1 - x)] ?? 0;
      }
    }
  }
  return { ...volume, data: out, dtype: "uint8" };
}

/** The brain mask: ch2bet > 0. */
export function brainMask(bet: Volume): Volume {
  const mask = new Uint8Array(bet.data.length);
  for (let i = 0; i < mask.length; i++) {
    mask[i] = (bet.data[i] ?? 0) > 0 ? 1 : 0;
  }
  return { ...bet, data: mask, dtype: "uint8" };
}

export interface Colin27Files {
  /** ch2.nii.gz and its brain mask. */
  image: string;
  label: string;
  /** Both mirrored left-right (the demo's colin27_lr and its mask). */
  imageLr: string;
  labelLr: string;
}

/**
 * Writes the demo pair (Colin27 T1 + brain mask) and its left-right mirror into `dir`, from a folder holding
 * Debian mricron-data's ch2.nii.gz and ch2bet.nii.gz (scripts/fetch-fixtures.sh puts them in test/fixtures/.cache).
 */
export async function prepareColin27(dataDir: string, dir: string): Promise<Colin27Files> {
  for (const f of ["ch2.nii.gz", "ch2bet.nii.gz"]) {
    if (!existsSync(join(dataDir, f))) {
      throw new Error(`${join(dataDir, f)} is missing: run scripts/fetch-fixtures.sh (Debian mricron-data)`);
    }
  }
  await mkdir(dir, { recursive: true });
  const t1 = await loadImage(join(dataDir, "ch2.nii.gz"));
  const mask = brainMask(await loadImage(join(dataDir, "ch2bet.nii.gz")));
  const files: Colin27Files = {
    image: join(dir, "colin27.nii.gz"),
    label: join(dir, "colin27_label.nii.gz"),
    imageLr: join(dir, "colin27_lr.nii.gz"),
    labelLr: join(dir, "colin27_lr_label.nii.gz"),
  };
  await saveImage({ ...t1, data: Uint8Array.from(t1.data), dtype: "uint8" }, files.image);
  await saveImage(mask, files.label);
  await saveImage(mirrorX(t1), files.imageLr);
  await saveImage(mirrorX(mask), files.labelLr);
  return files;
}

/** Dice of two masks (voxels > 0), 1 when both are empty. */
export function maskDice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`dice: sizes differ (${a.length} vs ${b.length} voxels)`);
  }
  let inter = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const p = (a[i] ?? 0) > 0 ? 1 : 0;
    const q = (b[i] ?? 0) > 0 ? 1 : 0;
    inter += p * q;
    n += p + q;
  }
  return n === 0 ? 1 : (2 * inter) / n;
}

/**
 * The demo studies folder `npm start` prepares (scripts/demo-data.ts): colin27.nii.gz with its brain mask as
 * the final label, and colin27_lr.nii.gz (mirrored) unlabeled; the reference files (with colin27_lr's mirrored
 * mask) go to `workDir`.
 */
export async function writeDemoStudies(dataDir: string, studiesDir: string, workDir: string): Promise<Colin27Files> {
  const files = await prepareColin27(dataDir, workDir);
  await mkdir(join(studiesDir, "labels", "final"), { recursive: true });
  await copyFile(files.image, join(studiesDir, "colin27.nii.gz"));
  await copyFile(files.label, join(studiesDir, "labels", "final", "colin27.nii.gz"));
  await copyFile(files.imageLr, join(studiesDir, "colin27_lr.nii.gz"));
  return files;
}
