import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { InvalidImageError } from "../../../src/errors.js";

/** Real images extracted from Debian packages by scripts/fetch-fixtures.sh. */
export const FIXTURE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../fixtures/.cache");

export const FIXTURES = [
  "ch2.nii.gz",
  "ch2bet.nii.gz",
  "anatomical.nii",
  "example4d.nii.gz",
  "example_nifti2.nii.gz",
  "functional.nii",
  "cell.png",
  "camera.png",
  "astronaut.png",
  "retina.jpg",
  "truncated.jpg",
] as const;
export type FixtureName = (typeof FIXTURES)[number];

/** Throws (the test fails, it is never skipped) when a fixture is missing. */
export function requireFixtures(names: readonly FixtureName[] = FIXTURES): void {
  const missing = names.filter((name) => !existsSync(join(FIXTURE_DIR, name)));
  if (missing.length > 0) {
    throw new Error(
      `missing test fixtures in ${FIXTURE_DIR}: ${missing.join(", ")}. Run scripts/fetch-fixtures.sh to fetch them.`,
    );
  }
}

export function fixture(name: FixtureName): string {
  requireFixtures([name]);
  return join(FIXTURE_DIR, name);
}

/**
 * Runs a Python script with only the standard library (gzip, struct, array ...), which makes it an
 * independent check of our TypeScript readers. The script prints one JSON value.
 */
export function python<T>(script: string, ...args: string[]): T {
  const out = execFileSync("python3", ["-c", script, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out) as T;
}

/**
 * Python (stdlib only) that loads a NIfTI-1/2 file given as argv[1] into `hdr` (a dict) and `data` (raw
 * voxel bytes), for use by the scripts below.
 */
export const PY_LOAD_NIFTI = `
import gzip, struct, sys, json, array
path = sys.argv[1]
raw = open(path, 'rb').read()
if raw[:2] == b'\\x1f\\x8b':
    raw = gzip.decompress(raw)
for e in '<>':
    size = struct.unpack(e + 'i', raw[:4])[0]
    if size in (348, 540):
        break
else:
    raise SystemExit('not nifti')
hdr = {'sizeof_hdr': size, 'endian': e}
if size == 348:
    hdr['dim'] = list(struct.unpack(e + '8h', raw[40:56]))
    hdr['datatype'], hdr['bitpix'] = struct.unpack(e + 'hh', raw[70:74])
    hdr['pixdim'] = list(struct.unpack(e + '8f', raw[76:108]))
    hdr['vox_offset'] = int(struct.unpack(e + 'f', raw[108:112])[0])
    hdr['scl_slope'], hdr['scl_inter'] = struct.unpack(e + 'ff', raw[112:120])
    hdr['qform_code'], hdr['sform_code'] = struct.unpack(e + 'hh', raw[252:256])
    hdr['quatern'] = list(struct.unpack(e + '6f', raw[256:280]))
    hdr['srow'] = list(struct.unpack(e + '12f', raw[280:328]))
    hdr['magic'] = raw[344:348].decode('latin1')
else:
    hdr['datatype'], hdr['bitpix'] = struct.unpack(e + 'hh', raw[12:16])
    hdr['dim'] = list(struct.unpack(e + '8q', raw[16:80]))
    hdr['pixdim'] = list(struct.unpack(e + '8d', raw[104:168]))
    hdr['vox_offset'] = struct.unpack(e + 'q', raw[168:176])[0]
    hdr['scl_slope'], hdr['scl_inter'] = struct.unpack(e + 'dd', raw[176:192])
    hdr['qform_code'], hdr['sform_code'] = struct.unpack(e + 'ii', raw[344:352])
    hdr['quatern'] = list(struct.unpack(e + '6d', raw[352:400]))
    hdr['srow'] = list(struct.unpack(e + '12d', raw[400:496]))
    hdr['magic'] = raw[4:12].decode('latin1')
codes = {2: 'B', 4: 'h', 8: 'i', 16: 'f', 64: 'd', 256: 'b', 512: 'H', 768: 'I', 1024: 'q', 1280: 'Q'}
nvox = 1
for d in hdr['dim'][1:hdr['dim'][0] + 1]:
    nvox *= d
code = codes[hdr['datatype']]
data = array.array(code)
data.frombytes(raw[hdr['vox_offset']:hdr['vox_offset'] + nvox * data.itemsize])
if (e == '>') != (sys.byteorder == 'big'):
    data.byteswap()
`;

export interface PyNifti {
  sizeof_hdr: number;
  endian: "<" | ">";
  dim: number[];
  datatype: number;
  bitpix: number;
  pixdim: number[];
  vox_offset: number;
  scl_slope: number;
  scl_inter: number;
  qform_code: number;
  sform_code: number;
  quatern: number[];
  srow: number[];
  magic: string;
}

/** Header fields, read by Python's struct module. */
export function pyNiftiHeader(path: string): PyNifti {
  return python<PyNifti>(`${PY_LOAD_NIFTI}\nprint(json.dumps(hdr))`, path);
}

export interface PyVoxelStats {
  nvox: number;
  sum: number;
  min: number;
  max: number;
  nonzero: number;
  /** Raw stored values at the requested flat indices. */
  values: number[];
}

/** Voxel statistics of the stored (unscaled) values, computed by Python's array module. */
export function pyVoxelStats(path: string, indices: number[]): PyVoxelStats {
  return python<PyVoxelStats>(
    `${PY_LOAD_NIFTI}
idx = json.loads(sys.argv[2])
print(json.dumps({'nvox': len(data), 'sum': sum(data), 'min': min(data), 'max': max(data),
  'nonzero': sum(1 for v in data if v != 0), 'values': [data[i] for i in idx]}))`,
    path,
    JSON.stringify(indices),
  );
}

/** Asserts that `promise` rejects with an InvalidImageError (code INVALID_IMAGE) whose message matches. */
export async function expectInvalidImage(promise: Promise<unknown>, message: RegExp): Promise<InvalidImageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected an InvalidImageError, but the call succeeded").toBeInstanceOf(InvalidImageError);
  const invalid = err as InvalidImageError;
  expect(invalid.code).toBe("INVALID_IMAGE");
  expect(invalid.message).toMatch(message);
  return invalid;
}
