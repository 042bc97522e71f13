import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageHeader } from "../../../src/io/header.js";
import { readNifti } from "../../../src/io/nifti.js";
import { encodeNrrd, readNrrd, writeNrrd } from "../../../src/io/nrrd.js";
import type { Volume } from "../../../src/io/types.js";
import { expectInvalidImage, fixture, pythonStdlib } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-nrrd-volume-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes an NRRD file by hand: the header lines, a blank line, then `data`. */
async function handNrrd(name: string, lines: string[], data: Uint8Array | string): Promise<string> {
  const path = join(dir, name);
  const body = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data);
  await writeFile(path, Buffer.concat([Buffer.from(`${lines.join("\n")}\n\n`, "latin1"), body]));
  return path;
}

function bigEndianInt16(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => {
    b.writeInt16BE(v, 2 * i);
  });
  return b;
}

/** An oblique affine: rotation about z by 20 degrees, anisotropic voxels, a translation. */
function obliqueAffine(): number[][] {
  const c = Math.cos(Math.PI / 9);
  const s = Math.sin(Math.PI / 9);
  return [
    [0.7 * c, -0.8 * s, 0, -12.5],
    [0.7 * s, 0.8 * c, 0, 30.25],
    [0, 0, 2.5, -7],
    [0, 0, 0, 1],
  ];
}

function volumeOf(data: Int16Array | Float32Array, shape: number[], affine = obliqueAffine()): Volume {
  return {
    data,
    shape,
    spacing: [0.7, 0.8, 2.5],
    affine,
    dtype: data instanceof Int16Array ? "int16" : "float32",
    meta: {},
  };
}

function expectAffineClose(actual: number[][], expected: number[][], digits = 10): void {
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      expect(actual[r]![c]!, `affine[${r}][${c}]`).toBeCloseTo(expected[r]![c]!, digits);
    }
  }
}

describe("writeNrrd / readNrrd round trip", () => {
  const shape = [7, 5, 3];
  const n = 7 * 5 * 3;
  const int16 = Int16Array.from({ length: n }, (_, i) => ((i * 977) % 65536) - 32768);
  const float32 = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3);

  for (const encoding of ["gzip", "raw"] as const) {
    for (const [dtype, data] of [
      ["int16", int16],
      ["float32", float32],
    ] as const) {
      for (const space of ["LPS", "RAS"] as const) {
        it(`${dtype}, ${encoding}, space ${space}`, async () => {
          const path = join(dir, `rt-${dtype}-${encoding}-${space}.nrrd`);
          const volume = volumeOf(data, shape);
          await writeNrrd(volume, path, { encoding, space });
          const back = await readNrrd(path);
          expect(back.shape).toEqual(shape);
          expect(back.dtype).toBe(dtype);
          expect(back.data.constructor).toBe(data.constructor);
          expect(Array.from(back.data)).toEqual(Array.from(data));
          expectAffineClose(back.affine, volume.affine);
          expect(back.spacing.map((x) => +x.toFixed(10))).toEqual([0.7, 0.8, 2.5]);
          expect(back.meta.encoding).toBe(encoding);
          expect(back.meta.space).toBe(space === "LPS" ? "left-posterior-superior" : "right-anterior-superior");
          // The datastore's validator accepts what we write.
          const header = await readImageHeader(path, "x.nrrd");
          expect(header.dimensions).toEqual(shape);
          expect(header.dtype).toBe(dtype);
        });
      }
    }
  }

  it("writes LPS directions and origin: RAS x and y negated", async () => {
    const bytes = await encodeNrrd(
      volumeOf(int16, shape, [
        [2, 0, 0, 10],
        [0, 3, 0, 20],
        [0, 0, 4, 30],
        [0, 0, 0, 1],
      ]),
    );
    const text = Buffer.from(bytes).toString("latin1");
    const header = text.slice(0, text.indexOf("\n\n"));
    expect(header).toContain("space: left-posterior-superior");
    expect(header).toContain("space directions: (-2,0,0) (0,-3,0) (0,0,4)");
    expect(header).toContain("space origin: (-10,-20,30)");
    expect(header).toContain("type: int16");
    expect(header).toContain("endian: little");
    expect(header).toContain("encoding: gzip");
  });

  it("is read back by an independent Python (stdlib) NRRD reader", async () => {
    const path = join(dir, "py.nrrd");
    await writeNrrd(volumeOf(int16, shape), path);
    const py = pythonStdlib<{ fields: Record<string, string>; sum: number; values: number[] }>(
      `
import sys, json, gzip, array
raw = open(sys.argv[1], 'rb').read()
end = raw.index(b'\\n\\n')
lines = raw[:end].decode('latin1').split('\\n')
assert lines[0] == 'NRRD0004'
fields = dict(l.split(': ', 1) for l in lines[1:] if not l.startswith('#'))
body = raw[end + 2:]
if fields['encoding'] == 'gzip':
    body = gzip.decompress(body)
data = array.array('h')
data.frombytes(body)
if sys.byteorder == 'big':
    data.byteswap()
print(json.dumps({'fields': fields, 'sum': sum(data), 'values': list(data[:10])}))`,
      path,
    );
    expect(py.fields.sizes).toBe("7 5 3");
    expect(py.fields.dimension).toBe("3");
    expect(py.sum).toBe(int16.reduce((a, b) => a + b, 0));
    expect(py.values).toEqual(Array.from(int16.slice(0, 10)));
  });

  it("a real volume: anatomical.nii (big-endian NIfTI) -> NRRD -> same voxels and affine", async () => {
    const nifti = await readNifti(fixture("anatomical.nii"));
    const path = join(dir, "anatomical.nrrd");
    await writeNrrd(nifti, path);
    const back = await readNrrd(path);
    expect(back.shape).toEqual(nifti.shape);
    expect(Array.from(back.data)).toEqual(Array.from(nifti.data));
    expectAffineClose(back.affine, nifti.affine, 5);
  });

  it("2D images, rgb24 and 4D volumes", async () => {
    const twoD: Volume = {
      data: Uint8Array.from({ length: 12 }, (_, i) => i),
      shape: [4, 3],
      spacing: [0.5, 0.25],
      affine: [
        [0.5, 0, 0, 1],
        [0, 0.25, 0, 2],
        [0, 0, 1, 3],
        [0, 0, 0, 1],
      ],
      dtype: "uint8",
      meta: {},
    };
    const p2 = join(dir, "2d.nrrd");
    await writeNrrd(twoD, p2);
    const b2 = await readNrrd(p2);
    expect(b2.shape).toEqual([4, 3]);
    expect(b2.spacing).toEqual([0.5, 0.25]);
    expectAffineClose(b2.affine, twoD.affine);

    const rgb: Volume = { ...twoD, data: Uint8Array.from({ length: 36 }, (_, i) => i), dtype: "rgb24" };
    const p3 = join(dir, "rgb.nrrd");
    await writeNrrd(rgb, p3);
    const text = (await readFile(p3)).toString("latin1");
    expect(text).toContain("kinds: RGB-color domain domain");
    const b3 = await readNrrd(p3);
    // The colour axis moves last: planar channels.
    expect(b3.shape).toEqual([4, 3, 3]);
    expect(b3.meta.axisOrder).toEqual([1, 2, 0]);
    expect(Array.from(b3.data).slice(0, 4)).toEqual([0, 3, 6, 9]); // red of pixels 0..3
    expect(b3.data[12]).toBe(1); // green of pixel 0

    const fourD = volumeOf(
      Int16Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i),
      [2, 3, 4, 5],
    );
    const p4 = join(dir, "4d.nrrd");
    await writeNrrd(fourD, p4);
    const b4 = await readNrrd(p4);
    expect(b4.shape).toEqual([2, 3, 4, 5]);
    expect(Array.from(b4.data)).toEqual(Array.from(fourD.data));
    expect((await readFile(p4)).toString("latin1")).toContain("kinds: domain domain domain list");
  });

  it("writes atomically: no temporary file is left, an existing file is replaced", async () => {
    const sub = await mkdtemp(join(dir, "atomic-"));
    const path = join(sub, "a.nrrd");
    await writeFile(path, "old");
    await writeNrrd(volumeOf(int16, shape), path);
    expect(await readdir(sub)).toEqual(["a.nrrd"]);
    expect((await readNrrd(path)).shape).toEqual(shape);
  });

  it("refuses volumes it cannot write", async () => {
    await expectInvalidImage(
      writeNrrd({ ...volumeOf(int16, shape), data: new Int16Array(5) }, join(dir, "bad.nrrd")),
      /has 5 values/,
    );
    await expectInvalidImage(
      writeNrrd({ ...volumeOf(int16, shape), dtype: "complex64" }, join(dir, "bad.nrrd")),
      /type "complex64"/,
    );
  });
});

describe("readNrrd: files written by hand", () => {
  it("big-endian raw int16 in LPS space: the affine is RAS", async () => {
    const values = Array.from({ length: 24 }, (_, i) => i * 100 - 1000);
    const path = await handNrrd(
      "lps.nrrd",
      [
        "NRRD0004",
        "type: short",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: 4 3 2",
        "space directions: (0.5,0,0) (0,0.75,0) (0,0.1,3)",
        "kinds: domain domain domain",
        "endian: big",
        "encoding: raw",
        "space origin: (-100.5,20,-30)",
        "Segment0_Name:=liver",
      ],
      bigEndianInt16(values),
    );
    const v = await readNrrd(path);
    expect(v.shape).toEqual([4, 3, 2]);
    expect(v.dtype).toBe("int16");
    expect(Array.from(v.data)).toEqual(values);
    expect(v.affine).toEqual([
      [-0.5, 0, 0, 100.5],
      [0, -0.75, -0.1, -20],
      [0, 0, 3, -30],
      [0, 0, 0, 1],
    ]);
    expect(v.spacing[2]).toBeCloseTo(Math.hypot(0.1, 3), 12);
    expect(v.meta.keyValues).toEqual({ Segment0_Name: "liver" });
  });

  it("gzip float, RAS space, a vector axis first (moved last)", async () => {
    // 2 components per voxel, 3x2 voxels, interleaved in the file.
    const values = Float32Array.from({ length: 12 }, (_, i) => i + 0.5);
    const path = await handNrrd(
      "vector.nrrd",
      [
        "NRRD0005",
        "type: float",
        "dimension: 3",
        "space: right-anterior-superior",
        "sizes: 2 3 2",
        "space directions: none (2,0,0) (0,2,0)",
        "kinds: vector domain domain",
        "endian: little",
        "encoding: gzip",
      ],
      gzipSync(Buffer.from(values.buffer)),
    );
    const v = await readNrrd(path);
    expect(v.shape).toEqual([3, 2, 2]);
    expect(v.meta.axisOrder).toEqual([1, 2, 0]);
    expect(v.meta.kinds).toEqual(["domain", "domain", "vector"]);
    // Component 0 of the 6 voxels, then component 1.
    expect(Array.from(v.data)).toEqual([0.5, 2.5, 4.5, 6.5, 8.5, 10.5, 1.5, 3.5, 5.5, 7.5, 9.5, 11.5]);
    expect(v.affine).toEqual([
      [2, 0, 0, 0],
      [0, 2, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
  });

  it("ascii and hex encodings, spacings without space, line and byte skips", async () => {
    const ascii = await handNrrd(
      "ascii.nrrd",
      ["NRRD0004", "type: int", "dimension: 2", "sizes: 3 2", "spacings: 0.5 2", "encoding: ascii"],
      "1 -2 3\n4 5 -6\n",
    );
    const a = await readNrrd(ascii);
    expect(a.dtype).toBe("int32");
    expect(Array.from(a.data)).toEqual([1, -2, 3, 4, 5, -6]);
    expect(a.spacing).toEqual([0.5, 2]);
    expect(a.affine).toEqual([
      [0.5, 0, 0, 0],
      [0, 2, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);

    const hex = await handNrrd(
      "hex.nrrd",
      ["NRRD0004", "type: ushort", "dimension: 1", "sizes: 3", "endian: big", "encoding: hex"],
      "0001 ff\nFE 1234\n",
    );
    expect(Array.from((await readNrrd(hex)).data)).toEqual([1, 0xfffe, 0x1234]);

    const skips = await handNrrd(
      "skips.nrrd",
      ["NRRD0004", "type: uchar", "dimension: 1", "sizes: 4", "encoding: raw", "line skip: 1", "byte skip: 2"],
      "junk line\nXX\u0001\u0002\u0003\u0004",
    );
    expect(Array.from((await readNrrd(skips)).data)).toEqual([1, 2, 3, 4]);

    const tail = await handNrrd(
      "tail.nrrd",
      ["NRRD0004", "type: uchar", "dimension: 1", "sizes: 2", "encoding: raw", "byte skip: -1"],
      "padding padding\u0007\u0009",
    );
    expect(Array.from((await readNrrd(tail)).data)).toEqual([7, 9]);
  });

  it("refuses truncated, detached, bzip2 and corrupt files", async () => {
    const base = ["NRRD0004", "type: short", "dimension: 2", "sizes: 4 4", "endian: little"];
    await expectInvalidImage(
      readNrrd(await handNrrd("short.nrrd", [...base, "encoding: raw"], new Uint8Array(10))),
      /short\.nrrd: truncated NRRD data \(raw\): 10 bytes, but sizes x type need 32/,
    );
    await expectInvalidImage(
      readNrrd(await handNrrd("detached.nrrd", [...base, "encoding: raw", "data file: x.raw"], "")),
      /detached NRRD data/,
    );
    await expectInvalidImage(
      readNrrd(await handNrrd("bz.nrrd", [...base, "encoding: bzip2"], "BZh9")),
      /encoding "bzip2" is not supported/,
    );
    await expectInvalidImage(
      readNrrd(await handNrrd("badgz.nrrd", [...base, "encoding: gzip"], gzipSync(new Uint8Array(32)).subarray(0, 15))),
      /badgz\.nrrd: corrupt or truncated gzip data/,
    );
    await expectInvalidImage(
      readNrrd(await handNrrd("noblank.nrrd", ["NRRD0004", "type: short"], "")),
      /bad NRRD header: missing required field "dimension"/,
    );
    await expectInvalidImage(readNrrd(fixture("camera.png")), /camera\.png: not an NRRD file/);
  });
});
