import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { readNifti, writeNifti } from "../io/nifti.js";

/**
 * Demo datasets that `labelgraph datasets --download` prepares as a studies folder in MONAI Label's layout
 * (images at the top, approved labels under labels/final/). `npm start` uses the same code.
 */
export interface Dataset {
  name: string;
  description: string;
  /** The files it writes, relative to the output folder. */
  files: string[];
  prepare(output: string, step: (done: number, total: number, what: string) => void): Promise<void>;
}

export class DatasetError extends Error {
  override name = "DatasetError";
}

const packageRoot = resolve(import.meta.dirname, "../..");
/** Where scripts/fetch-fixtures.sh caches the Debian files; the test fixtures and the demo share it. */
export const fixtureCache = join(packageRoot, "test", "fixtures", ".cache");

const MRICRON = "usr/share/mricron/templates";

/**
 * Colin27's T1 (ch2) and its brain-extracted twin (ch2bet) from Debian's mricron-data: taken from the fixture
 * cache, or downloaded with `apt-get download` and unpacked with `dpkg -x` (nothing is installed).
 */
async function colin27Sources(): Promise<{ t1: string; bet: string; cleanup: () => Promise<void> }> {
  const t1 = join(fixtureCache, "ch2.nii.gz");
  const bet = join(fixtureCache, "ch2bet.nii.gz");
  if (existsSync(t1) && existsSync(bet)) {
    return { t1, bet, cleanup: async () => {} };
  }
  const work = await mkdtemp(join(tmpdir(), "labelgraph-colin27-"));
  const run = promisify(execFile);
  try {
    await run("apt-get", ["download", "mricron-data"], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.startsWith("mricron-data_") && f.endsWith(".deb"));
    if (!deb) {
      throw new Error("apt-get download left no .deb");
    }
    await run("dpkg", ["-x", deb, "x"], { cwd: work });
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw new DatasetError(
      `colin27 comes from Debian's mricron-data package, fetched with apt-get download and dpkg -x; that failed ` +
        `(${(err as Error).message.split("\n")[0]}). On Debian/Ubuntu run apt-get update first, or run ` +
        `scripts/fetch-fixtures.sh.`,
    );
  }
  return {
    t1: join(work, "x", MRICRON, "ch2.nii.gz"),
    bet: join(work, "x", MRICRON, "ch2bet.nii.gz"),
    cleanup: () => rm(work, { recursive: true, force: true }),
  };
}

/** Copies then renames, so an interrupted run never leaves a half-written file. */
async function copyAtomic(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${process.pid}`;
  await copyFile(from, tmp);
  await rename(tmp, to);
}

const colin27: Dataset = {
  name: "colin27",
  description:
    "Colin27 T1 brain MRI (181x217x181, 1 mm) with its brain mask as the final label, and the same brain " +
    "mirrored left-right, unlabeled (Debian mricron-data)",
  files: ["colin27.nii.gz", "colin27_lr.nii.gz", "labels/final/colin27.nii.gz"],
  async prepare(output, step) {
    const total = 4;
    step(0, total, "fetching mricron-data");
    const src = await colin27Sources();
    try {
      await mkdir(join(output, "labels", "final"), { recursive: true });
      step(1, total, "colin27.nii.gz");
      await copyAtomic(src.t1, join(output, "colin27.nii.gz"));

      step(2, total, "labels/final/colin27.nii.gz");
      const bet = await readNifti(src.bet);
      const mask = new Uint8Array(bet.data.length);
      for (let i = 0; i < mask.length; i++) {
        mask[i] = (bet.data[i] ?? 0) > 0 ? 1 : 0;
      }
      await writeNifti({ ...bet, data: mask, dtype: "uint8" }, join(output, "labels", "final", "colin27.nii.gz"));

      // Mirrored left-right: an image like the labeled one but not identical, to label next.
      step(3, total, "colin27_lr.nii.gz");
      const t1 = await readNifti(src.t1);
      const [nx, ny, nz] = t1.shape as [number, number, number];
      const flipped = new Uint8Array(t1.data.length);
      for (let z = 0; z < nz; z++) {
        for (let y = 0; y < ny; y++) {
          const row = (z * ny + y) * nx;
          for (let x = 0; x < nx; x++) {
            flipped[row + x] = t1.data[row + (nx - 1 - x)] ?? 0;
          }
        }
      }
      await writeNifti({ ...t1, data: flipped, dtype: "uint8" }, join(output, "colin27_lr.nii.gz"));
      step(4, total, "done");
    } finally {
      await src.cleanup();
    }
  },
};

export const DATASETS: Record<string, Dataset> = { colin27 };

export function getDataset(name: string): Dataset {
  const dataset = DATASETS[name];
  if (!dataset) {
    throw new DatasetError(`no dataset named ${name}: available are ${Object.keys(DATASETS).join(", ")}`);
  }
  return dataset;
}

/**
 * Prepares `name` in `output`. A folder that already holds any of the dataset's files is left as it is
 * (returns false), so `npm start` can run this every time.
 */
export async function downloadDataset(
  name: string,
  output: string,
  step: (done: number, total: number, what: string) => void = () => {},
): Promise<boolean> {
  const dataset = getDataset(name);
  if (dataset.files.some((f) => existsSync(join(output, f)))) {
    return false;
  }
  await dataset.prepare(output, step);
  return true;
}
