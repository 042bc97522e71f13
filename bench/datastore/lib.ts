import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";

/** Where the voxels of a NIfTI-1 single file start: the 348-byte header plus the 4-byte extension flag. */
const VOX_OFFSET = 352;

/**
 * A minimal valid NIfTI-1 single file (".nii"): little-endian header, 2x2x2 uint8 voxels, 1 mm spacing,
 * identity sform. `seed` is written into the voxels so every file has its own bytes (and hash).
 */
export function tinyNifti(seed: number): Buffer {
  const buf = Buffer.alloc(VOX_OFFSET + 8);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = true;
  v.setInt32(0, 348, le); // sizeof_hdr
  const dim = [3, 2, 2, 2, 1, 1, 1, 1];
  for (const [i, d] of dim.entries()) {
    v.setInt16(40 + 2 * i, d, le);
  }
  v.setInt16(70, 2, le); // datatype: uint8
  v.setInt16(72, 8, le); // bitpix
  const pixdim = [1, 1, 1, 1, 0, 0, 0, 0];
  for (const [i, p] of pixdim.entries()) {
    v.setFloat32(76 + 4 * i, p, le);
  }
  v.setFloat32(108, VOX_OFFSET, le); // vox_offset
  v.setFloat32(112, 1, le); // scl_slope
  buf[123] = 2 | 8; // xyzt_units: mm, sec
  v.setInt16(252, 0, le); // qform_code
  v.setInt16(254, 1, le); // sform_code: scanner
  v.setFloat32(280, 1, le); // srow_x[0]
  v.setFloat32(280 + 16 + 4, 1, le); // srow_y[1]
  v.setFloat32(280 + 32 + 8, 1, le); // srow_z[2]
  buf.write("n+1\0", 344, "latin1"); // magic
  // bytes 348..351: no extensions
  for (let i = 0; i < 8; i++) {
    buf[VOX_OFFSET + i] = (seed >>> (i * 4)) & 0x0f;
  }
  return buf;
}

export interface Stats {
  median: number;
  p95: number;
  min: number;
  runs: number;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** Runs `fn` `warmup` times untimed, then `runs` times timed one after another; times in ms. */
export async function measure(
  fn: () => Promise<unknown>,
  { warmup = 3, runs = 30 }: { warmup?: number; runs?: number } = {},
): Promise<Stats> {
  for (let i = 0; i < warmup; i++) {
    await fn();
  }
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const mid = samples.length / 2;
  const median =
    samples.length % 2 === 1
      ? (samples[Math.floor(mid)] ?? Number.NaN)
      : ((samples[mid - 1] ?? Number.NaN) + (samples[mid] ?? Number.NaN)) / 2;
  return { median, p95: percentile(samples, 95), min: samples[0] ?? Number.NaN, runs };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function runLimited<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c] ?? 0) : x.padStart(widths[c] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

export const ms = (n: number) => n.toFixed(2);
export const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** `--images N --runs N --keep`, validated, shared by the datastore and active-learning benches. */
export function benchArgs(defaults: { images: number; runs: number; minImages: number }) {
  const { values } = parseArgs({
    options: {
      images: { type: "string", default: String(defaults.images) },
      runs: { type: "string", default: String(defaults.runs) },
      keep: { type: "boolean", default: false },
    },
  });
  const images = Number(values.images);
  const runs = Number(values.runs);
  if (!Number.isInteger(images) || images < defaults.minImages) {
    throw new Error(`--images must be an integer >= ${defaults.minImages}, got ${values.images}`);
  }
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  }
  return { images, runs, keep: values.keep };
}
