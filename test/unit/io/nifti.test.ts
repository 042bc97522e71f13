import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageHeader } from "../../../src/io/header.js";
import { affineToQuatern, encodeNifti, quaternToAffine, readNifti, writeNifti } from "../../../src/io/nifti.js";
import type { Volume } from "../../../src/io/types.js";
import { expectInvalidImage, fixture, pyNiftiHeader, pyVoxelStats } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-nifti-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function stats(data: ArrayLike<number>) {
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let nonzero = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
    if (v !== 0) {
      nonzero++;
    }
  }
  return { sum, min, max, nonzero };
}

/** Element-wise equality of two typed arrays of the same type, fast on millions of voxels. */
function expectSameVoxels(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.constructor).toBe(expected.constructor);
  const bytes = (a: ArrayLike<number>) => {
    const view = a as unknown as ArrayBufferView;
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  };
  expect(bytes(actual).equals(bytes(expected)), "voxels differ").toBe(true);
}

/** Flat index of voxel (x, y, z) in a volume stored x fastest. */
const flat = (shape: number[], x: number, y: number, z: number) => x + shape[0]! * (y + shape[1]! * z);

function expectAffineClose(actual: number[][], expected: number[][], digits: number): void {
  expect(actual).toHaveLength(4);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      expect(actual[r]![c]!, `affine[${r}][${c}]`).toBeCloseTo(expected[r]![c]!, digits);
    }
  }
}

const srowAffine = (srow: number[]) => [srow.slice(0, 4), srow.slice(4, 8), srow.slice(8, 12), [0, 0, 0, 1]];

/** A copy of a NIfTI-1 file with its sform_code / qform_code changed (decompressed). */
async function withCodes(path: string, codes: { qform?: number; sform?: number }): Promise<Buffer> {
  let bytes = await readFile(path);
  if (bytes[0] === 0x1f) {
    bytes = gunzipSync(bytes);
  }
  const le = bytes.readInt32LE(0) === 348;
  const write = (value: number, offset: number) =>
    le ? bytes.writeInt16LE(value, offset) : bytes.writeInt16BE(value, offset);
  if (codes.qform !== undefined) {
    write(codes.qform, 252);
  }
  if (codes.sform !== undefined) {
    write(codes.sform, 254);
  }
  return bytes;
}

describe("readNifti: real files, checked against Python's struct/array", () => {
  it("ch2.nii.gz: 181x217x181 uint8 voxels", async () => {
    const path = fixture("ch2.nii.gz");
    const volume = await readNifti(path);
    expect(volume.shape).toEqual([181, 217, 181]);
    expect(volume.dtype).toBe("uint8");
    expect(volume.data).toBeInstanceOf(Uint8Array);
    expect(volume.data.length).toBe(181 * 217 * 181);
    expect(volume.spacing).toEqual([1, 1, 1]);
    // sform (code 4, MNI): 1 mm, origin at (-90, -125, -71)
    expect(volume.affine).toEqual([
      [1, 0, 0, -90],
      [0, 1, 0, -125],
      [0, 0, 1, -71],
      [0, 0, 0, 1],
    ]);
    const indices = [
      0,
      flat(volume.shape, 90, 108, 90),
      flat(volume.shape, 60, 100, 80),
      flat(volume.shape, 120, 150, 100),
    ];
    const py = pyVoxelStats(path, indices);
    expect(py.nvox).toBe(volume.data.length);
    expect(stats(volume.data)).toEqual({ sum: py.sum, min: py.min, max: py.max, nonzero: py.nonzero });
    expect(indices.map((i) => volume.data[i])).toEqual(py.values);
    // the centre of the brain is not background
    expect(py.values[1]).toBeGreaterThan(0);
  });

  it("anatomical.nii: big-endian int16", async () => {
    const path = fixture("anatomical.nii");
    const volume = await readNifti(path);
    expect(volume.shape).toEqual([33, 41, 25]);
    expect(volume.dtype).toBe("int16");
    expect(volume.data).toBeInstanceOf(Int16Array);
    expect(volume.meta.littleEndian).toBe(false);
    expect(volume.affine).toEqual([
      [-2, 0, 0, 32],
      [0, 2, 0, -40],
      [0, 0, 2, -16],
      [0, 0, 0, 1],
    ]);
    const indices = [0, 1, 100, flat(volume.shape, 16, 20, 12), 33 * 41 * 25 - 1];
    const py = pyVoxelStats(path, indices);
    expect(stats(volume.data)).toEqual({ sum: py.sum, min: py.min, max: py.max, nonzero: py.nonzero });
    expect(indices.map((i) => volume.data[i])).toEqual(py.values);
  });

  it("functional.nii: scl_slope/scl_inter applied into a Float32Array", async () => {
    const path = fixture("functional.nii");
    const header = pyNiftiHeader(path);
    expect(header.scl_slope).not.toBe(1);
    const volume = await readNifti(path);
    expect(volume.shape).toEqual([17, 21, 3, 20]);
    expect(volume.dtype).toBe("float32");
    expect(volume.data).toBeInstanceOf(Float32Array);
    expect(volume.meta.storedDtype).toBe("int16");
    expect(volume.spacing).toEqual([4, 4, 8]);
    const indices = [0, 5, 1000, 17 * 21 * 3 * 20 - 1];
    const py = pyVoxelStats(path, indices);
    expect(indices.map((i) => volume.data[i])).toEqual(
      py.values.map((raw) => Math.fround(raw * header.scl_slope + header.scl_inter)),
    );
  });

  it("example4d.nii.gz: 4D int16, oblique sform", async () => {
    const path = fixture("example4d.nii.gz");
    const header = pyNiftiHeader(path);
    const volume = await readNifti(path);
    expect(volume.shape).toEqual([128, 96, 24, 2]);
    expect(volume.spacing).toEqual([2, 2, 2.1999990940093994]);
    expect(volume.affine).toEqual(srowAffine(header.srow));
    const indices = [0, 128 * 96 * 24, 128 * 96 * 24 * 2 - 1, flat(volume.shape, 64, 48, 12)];
    const py = pyVoxelStats(path, indices);
    expect(stats(volume.data).sum).toBe(py.sum);
    expect(indices.map((i) => volume.data[i])).toEqual(py.values);
  });

  it("example4d.nii.gz: the qform (quaternion, qfac -1) gives the same affine as the sform", async () => {
    const path = fixture("example4d.nii.gz");
    const header = pyNiftiHeader(path);
    expect(header.pixdim[0]).toBe(-1);
    const volume = await readNifti(await withCodes(path, { sform: 0 }));
    expectAffineClose(volume.affine, srowAffine(header.srow), 4);
  });

  it("no sform and no qform: pixdim scaling", async () => {
    const volume = await readNifti(await withCodes(fixture("anatomical.nii"), { sform: 0, qform: 0 }));
    expect(volume.affine).toEqual([
      [2, 0, 0, 0],
      [0, 2, 0, 0],
      [0, 0, 2, 0],
      [0, 0, 0, 1],
    ]);
  });

  it("example_nifti2.nii.gz: NIfTI-2", async () => {
    const path = fixture("example_nifti2.nii.gz");
    const header = pyNiftiHeader(path);
    const volume = await readNifti(path);
    expect(volume.meta.niftiVersion).toBe(2);
    expect(volume.shape).toEqual([32, 20, 12, 2]);
    expect(volume.dtype).toBe("int16");
    expect(volume.affine).toEqual(srowAffine(header.srow));
    const indices = [0, 77, 32 * 20 * 12 * 2 - 1];
    const py = pyVoxelStats(path, indices);
    expect(stats(volume.data)).toEqual({ sum: py.sum, min: py.min, max: py.max, nonzero: py.nonzero });
    expect(indices.map((i) => volume.data[i])).toEqual(py.values);
  });

  it("reads from bytes, compressed or not", async () => {
    const gz = await readFile(fixture("example4d.nii.gz"));
    const fromGz = await readNifti(gz);
    const fromRaw = await readNifti(gunzipSync(gz));
    expect(fromGz.shape).toEqual([128, 96, 24, 2]);
    expectSameVoxels(fromRaw.data, fromGz.data);
  });

  it("invalid input throws InvalidImageError", async () => {
    const ch2 = await readFile(fixture("ch2.nii.gz"));
    await expectInvalidImage(readNifti(ch2.subarray(0, 100_000)), /truncated gzip data|corrupt or truncated gzip/);
    await expectInvalidImage(readNifti(gunzipSync(ch2).subarray(0, 1_000_000)), /truncated NIfTI data/);
    await expectInvalidImage(readNifti(await readFile(fixture("cell.png"))), /not a NIfTI file/);
    await expectInvalidImage(readNifti(new Uint8Array(0)), /empty/);
  });
});

describe("writeNifti / readNifti round trip", () => {
  async function roundTrip(volume: Volume, name: string): Promise<Volume> {
    const path = join(dir, name);
    await writeNifti(volume, path);
    const bytes = await readFile(path);
    expect(bytes[0] === 0x1f && bytes[1] === 0x8b).toBe(name.endsWith(".gz"));
    return readNifti(path);
  }

  it.each(["ch2_copy.nii.gz", "ch2_copy.nii"])("uint8 (ch2) -> %s", async (name) => {
    const original = await readNifti(fixture("ch2.nii.gz"));
    const copy = await roundTrip(original, name);
    expect(copy.shape).toEqual(original.shape);
    expect(copy.dtype).toBe("uint8");
    expectSameVoxels(copy.data, original.data);
    expect(copy.spacing).toEqual(original.spacing);
    expect(copy.affine).toEqual(original.affine);

    // Python reads the written header and voxels on its own.
    const path = join(dir, name);
    const header = pyNiftiHeader(path);
    expect(header).toMatchObject({
      sizeof_hdr: 348,
      endian: "<",
      magic: "n+1\u0000",
      vox_offset: 352,
      datatype: 2,
      bitpix: 8,
      scl_slope: 1,
      scl_inter: 0,
      // ch2 has no qform (code 0): ours is written as scanner (1); its sform code (4, MNI) is kept
      qform_code: 1,
      sform_code: 4,
    });
    expect(header.dim).toEqual([3, 181, 217, 181, 1, 1, 1, 1]);
    expect(header.srow).toEqual([1, 0, 0, -90, 0, 1, 0, -125, 0, 0, 1, -71]);
    expect(header.quatern).toEqual([0, 0, 0, -90, -125, -71]);
    expect(pyVoxelStats(path, []).sum).toBe(pyVoxelStats(fixture("ch2.nii.gz"), []).sum);
    expect(await readImageHeader(path, name)).toMatchObject({ dimensions: [181, 217, 181], dtype: "uint8" });
  });

  it("int16 big-endian source (anatomical) -> little-endian .nii, affine with a flipped x axis", async () => {
    const original = await readNifti(fixture("anatomical.nii"));
    const copy = await roundTrip(original, "anat_copy.nii");
    expect(copy.dtype).toBe("int16");
    expect(copy.meta.littleEndian).toBe(true);
    expectSameVoxels(copy.data, original.data);
    expect(copy.affine).toEqual(original.affine);
    expect(copy.spacing).toEqual([2, 2, 2]);
    // The qform written alongside describes the same affine (det < 0: qfac -1).
    const path = join(dir, "anat_copy.nii");
    expect(pyNiftiHeader(path).pixdim[0]).toBe(-1);
    const viaQform = await readNifti(await withCodes(path, { sform: 0 }));
    expectAffineClose(viaQform.affine, original.affine, 5);
  });

  it.each(["func_copy.nii.gz", "func_copy.nii"])("float32 (scaled functional) -> %s", async (name) => {
    const original = await readNifti(fixture("functional.nii"));
    const copy = await roundTrip(original, name);
    expect(copy.dtype).toBe("float32");
    expect(copy.data).toBeInstanceOf(Float32Array);
    expect(copy.meta.scaled).toBe(false);
    expectSameVoxels(copy.data, original.data);
    expect(copy.shape).toEqual([17, 21, 3, 20]);
    expect(copy.affine).toEqual(original.affine);
    // the TR (pixdim[4]) survives through meta.pixdim
    expect(pyNiftiHeader(join(dir, name)).pixdim[4]).toBe(2);
  });

  it("an oblique affine (example4d) is kept in the sform and reproduced by the qform", async () => {
    const original = await readNifti(fixture("example4d.nii.gz"));
    const copy = await roundTrip(original, "ex4d_copy.nii.gz");
    expect(copy.affine).toEqual(original.affine);
    expectSameVoxels(copy.data, original.data);
    const viaQform = await readNifti(await withCodes(join(dir, "ex4d_copy.nii.gz"), { sform: 0 }));
    expectAffineClose(viaQform.affine, original.affine, 4);
  });

  it.each([
    ["int8", Int8Array, [-128, -1, 0, 1, 127, 5]],
    ["uint16", Uint16Array, [0, 1, 65535, 300, 2, 3]],
    ["int32", Int32Array, [-2147483648, 2147483647, 0, 1, -1, 7]],
    ["uint32", Uint32Array, [0, 4294967295, 1, 2, 3, 4]],
    ["float64", Float64Array, [Math.PI, -1e300, 0, 1.5, -2.25, 1e-300]],
    ["int64", Float64Array, [-(2 ** 53) + 1, 2 ** 53 - 1, 0, -1, 1, 42]],
    ["uint64", Float64Array, [0, 2 ** 53 - 1, 1, 2, 3, 4]],
  ] as const)("%s", async (dtype, ctor, values) => {
    const volume: Volume = {
      data: ctor.from(values),
      shape: [3, 2],
      spacing: [0.5, 0.25],
      affine: [
        [0.5, 0, 0, 1],
        [0, 0.25, 0, 2],
        [0, 0, 1, 3],
        [0, 0, 0, 1],
      ],
      dtype,
      meta: {},
    };
    const copy = await roundTrip(volume, `small_${dtype}.nii.gz`);
    expect(copy.dtype).toBe(dtype);
    expect(copy.data).toBeInstanceOf(ctor);
    expect(Array.from(copy.data)).toEqual(values);
    expect(copy.shape).toEqual([3, 2]);
    expect(copy.spacing).toEqual([0.5, 0.25]);
    expect(copy.affine).toEqual(volume.affine);
  });

  it("rgb24 keeps its interleaved components", async () => {
    const data = Uint8Array.from({ length: 2 * 2 * 3 }, (_, i) => i * 10);
    const volume: Volume = { data, shape: [2, 2], spacing: [1, 1], affine: [], dtype: "rgb24", meta: {} };
    const copy = await roundTrip(volume, "rgb.nii");
    expect(copy.dtype).toBe("rgb24");
    expect(Array.from(copy.data)).toEqual(Array.from(data));
    // no affine given: the spacing's diagonal
    expect(copy.affine).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
  });

  it("plain number arrays are converted (rounded for integer types)", async () => {
    const volume: Volume = {
      data: [0, 1.4, 1.6, 2, 3, 250],
      shape: [1, 2, 3],
      spacing: [1, 2, 3],
      affine: [
        [1, 0, 0, 0],
        [0, 2, 0, 0],
        [0, 0, 3, 0],
        [0, 0, 0, 1],
      ],
      dtype: "uint8",
      meta: {},
    };
    const copy = await roundTrip(volume, "plain.nii");
    expect(Array.from(copy.data)).toEqual([0, 1, 2, 2, 3, 250]);
    expect(copy.shape).toEqual([1, 2, 3]);
  });

  it("refuses volumes it cannot write", () => {
    const base: Volume = {
      data: new Uint8Array(6),
      shape: [2, 3],
      spacing: [1, 1],
      affine: [],
      dtype: "uint8",
      meta: {},
    };
    expect(() => encodeNifti({ ...base, data: new Uint8Array(5) })).toThrow(/needs 6/);
    expect(() => encodeNifti({ ...base, dtype: "complex64" })).toThrow(/cannot write NIfTI voxels/);
    expect(() => encodeNifti({ ...base, shape: [40000, 1], data: new Uint8Array(40000) })).toThrow(
      /each axis 1 to 32767/,
    );
  });
});

describe("writeNifti is atomic", () => {
  const volume = (fill: number): Volume => ({
    data: new Uint8Array(4 * 4 * 4).fill(fill),
    shape: [4, 4, 4],
    spacing: [1, 1, 1],
    affine: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ],
    dtype: "uint8",
    meta: {},
  });

  it("replaces an existing file and leaves no temporary file", async () => {
    const folder = join(dir, "atomic");
    await mkdir(folder);
    const path = join(folder, "label.nii.gz");
    await writeFile(path, "old content");
    await writeNifti(volume(3), path);
    expect(await readdir(folder)).toEqual(["label.nii.gz"]);
    expect(Array.from((await readNifti(path)).data).every((v) => v === 3)).toBe(true);
    await writeNifti(volume(9), path);
    expect(await readdir(folder)).toEqual(["label.nii.gz"]);
    expect((await readNifti(path)).data[0]).toBe(9);
  });

  it("cleans up its temporary file when the rename fails", async () => {
    const folder = join(dir, "atomic-fail");
    await mkdir(join(folder, "taken.nii"), { recursive: true });
    await expect(writeNifti(volume(1), join(folder, "taken.nii"))).rejects.toThrow();
    expect(await readdir(folder)).toEqual(["taken.nii"]);
  });

  it("writes nothing for an invalid volume", async () => {
    const folder = join(dir, "atomic-invalid");
    await mkdir(folder);
    await expectInvalidImage(writeNifti({ ...volume(1), data: new Uint8Array(3) }, join(folder, "x.nii")), /needs 64/);
    expect(await readdir(folder)).toEqual([]);
  });
});

describe("affine <-> quaternion", () => {
  /** Rotation about a unit axis by an angle (Rodrigues). */
  function rotation(axis: [number, number, number], angle: number): number[][] {
    const n = Math.hypot(...axis);
    const [x, y, z] = axis.map((v) => v / n) as [number, number, number];
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const t = 1 - c;
    return [
      [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
      [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
      [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ];
  }

  const cases: [string, [number, number, number], number, [number, number, number], boolean][] = [
    ["identity", [0, 0, 1], 0, [1, 1, 1], false],
    ["30 deg about z", [0, 0, 1], Math.PI / 6, [0.8, 0.8, 3], false],
    ["oblique", [1, 2, 3], 1.1, [0.5, 0.6, 0.7], false],
    ["180 deg about x", [1, 0, 0], Math.PI, [1, 2, 3], false],
    ["180 deg about y, flipped", [0, 1, 0], Math.PI, [1, 1, 2], true],
    ["179 deg about (1,1,0)", [1, 1, 0], (179 * Math.PI) / 180, [2, 2, 2], false],
    ["flipped oblique", [3, -1, 2], 2.5, [1.2, 0.9, 4], true],
  ];

  it.each(cases)("%s", (_name, axis, angle, spacing, flip) => {
    const r = rotation(axis, angle);
    const affine = [0, 1, 2].map((i) => [
      r[i]![0]! * spacing[0],
      r[i]![1]! * spacing[1],
      r[i]![2]! * spacing[2] * (flip ? -1 : 1),
      [10, -20, 30][i]!,
    ]);
    affine.push([0, 0, 0, 1]);
    const { quatern, qoffset, qfac } = affineToQuatern(affine);
    expect(qfac).toBe(flip ? -1 : 1);
    const back = quaternToAffine(quatern, qoffset, [qfac, ...spacing]);
    expectAffineClose(back, affine, 9);
  });

  it("a written qform survives float32 storage of an oblique affine", async () => {
    const r = rotation([1, -2, 0.5], 0.7);
    const affine = [0, 1, 2].map((i) => [r[i]![0]! * 0.9, r[i]![1]! * 0.9, -r[i]![2]! * 2.5, [1, 2, 3][i]!]);
    affine.push([0, 0, 0, 1]);
    const path = join(dir, "oblique.nii");
    await writeNifti(
      { data: new Int16Array(8), shape: [2, 2, 2], spacing: [0.9, 0.9, 2.5], affine, dtype: "int16", meta: {} },
      path,
    );
    const viaQform = await readNifti(await withCodes(path, { sform: 0 }));
    expectAffineClose(viaQform.affine, affine, 5);
    const viaSform = await readNifti(path);
    expectAffineClose(viaSform.affine, affine, 6);
  });
});
