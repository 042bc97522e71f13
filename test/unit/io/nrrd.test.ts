import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidImageError } from "../../../src/errors.js";
import { readImageHeader } from "../../../src/io/header.js";
import { parseNrrdHeader } from "../../../src/io/nrrd.js";
import { expectInvalidImage } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-nrrd-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes an NRRD file: the header lines, a blank line, then `data`. */
async function nrrd(name: string, lines: string[], data: Uint8Array | string, eol = "\n"): Promise<string> {
  const path = join(dir, name);
  const header = Buffer.from(`${lines.join(eol)}${eol}${eol}`, "latin1");
  const body = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data);
  await writeFile(path, Buffer.concat([header, body]));
  return path;
}

function int16Bytes(n: number): Uint8Array {
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = i - 50;
  }
  return new Uint8Array(a.buffer);
}

describe("readImageHeader: NRRD", () => {
  it("raw uint8 with spacings", async () => {
    const path = await nrrd(
      "raw.nrrd",
      [
        "NRRD0004",
        "# written by a test",
        "type: uchar",
        "dimension: 3",
        "sizes: 4 5 6",
        "encoding: raw",
        "spacings: 0.5 0.7 2",
      ],
      new Uint8Array(4 * 5 * 6).fill(7),
    );
    expect(await readImageHeader(path, "raw.nrrd")).toEqual({
      format: "nrrd",
      extension: ".nrrd",
      dimensions: [4, 5, 6],
      spatialShape: [4, 5, 6],
      channels: 1,
      spacing: [0.5, 0.7, 2],
      dtype: "uint8",
    });
  });

  it("gzip int16 with space directions (spacing = vector norms)", async () => {
    const path = await nrrd(
      "gz.nrrd",
      [
        "NRRD0004",
        "type: short",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: 10 8 3",
        "space directions: (0,1.5,0) (-2,0,0) (0,0.6,0.8)",
        "kinds: domain domain domain",
        "endian: little",
        "encoding: gzip",
        "space origin: (-10,20,30)",
        "Segment0_Name:=spleen",
      ],
      gzipSync(int16Bytes(10 * 8 * 3)),
    );
    const header = await readImageHeader(path, "gz.nrrd");
    expect(header.dimensions).toEqual([10, 8, 3]);
    expect(header.spatialShape).toEqual([10, 8, 3]);
    expect(header.spacing[0]).toBeCloseTo(1.5, 12);
    expect(header.spacing[1]).toBeCloseTo(2, 12);
    expect(header.spacing[2]).toBeCloseTo(1, 12);
    expect(header.dtype).toBe("int16");
    expect(header.channels).toBe(1);
  });

  it("a Slicer-style .seg.nrrd with a leading non-spatial (layer) axis", async () => {
    const path = await nrrd(
      "seg.nrrd",
      [
        "NRRD0005",
        "type: unsigned char",
        "dimension: 4",
        "space: right-anterior-superior",
        "sizes: 2 4 5 6",
        "space directions: none (1,0,0) (0,1,0) (0,0,2.5)",
        "kinds: list domain domain domain",
        "encoding: gzip",
      ],
      gzipSync(new Uint8Array(2 * 4 * 5 * 6).fill(1)),
    );
    const header = await readImageHeader(path, "Liver.seg.nrrd");
    expect(header).toEqual({
      format: "nrrd",
      extension: ".seg.nrrd",
      dimensions: [2, 4, 5, 6],
      spatialShape: [4, 5, 6],
      channels: 1,
      spacing: [1, 1, 2.5],
      dtype: "uint8",
    });
  });

  it("CRLF line endings, float, big-endian, 2D", async () => {
    const path = await nrrd(
      "crlf.nrrd",
      ["NRRD0004", "type: float", "dimension: 2", "sizes: 3 2", "endian: big", "encoding: raw"],
      new Uint8Array(3 * 2 * 4),
      "\r\n",
    );
    expect(await readImageHeader(path, "crlf.nrrd")).toMatchObject({
      dimensions: [3, 2],
      spatialShape: [3, 2],
      spacing: [1, 1],
      dtype: "float32",
    });
  });

  it("ascii encoding", async () => {
    const lines = ["NRRD0004", "type: double", "dimension: 2", "sizes: 3 2", "encoding: ascii"];
    const ok = await nrrd("ascii.nrrd", lines, "1 2.5 3\n-4 5e3 6\n");
    expect(await readImageHeader(ok, "ascii.nrrd")).toMatchObject({ dimensions: [3, 2], dtype: "float64" });
    const short = await nrrd("ascii_short.nrrd", lines, "1 2.5 3\n-4\n");
    await expectInvalidImage(readImageHeader(short, "ascii_short.nrrd"), /4 ascii values, but sizes need 6/);
  });

  it("byte skip -1 (data at the end) and line skip", async () => {
    const skipEnd = await nrrd(
      "skipend.nrrd",
      ["NRRD0004", "type: uint8", "dimension: 1", "sizes: 10", "encoding: raw", "byte skip: -1"],
      new Uint8Array(25),
    );
    expect((await readImageHeader(skipEnd, "skipend.nrrd")).dimensions).toEqual([10]);
    const lineSkip = await nrrd(
      "lineskip.nrrd",
      ["NRRD0004", "type: uint8", "dimension: 1", "sizes: 10", "encoding: raw", "line skip: 2"],
      Buffer.concat([Buffer.from("junk line one\njunk line two\n"), Buffer.alloc(10)]),
    );
    expect((await readImageHeader(lineSkip, "lineskip.nrrd")).dimensions).toEqual([10]);
    const lineSkipShort = await nrrd(
      "lineskip_short.nrrd",
      ["NRRD0004", "type: uint8", "dimension: 1", "sizes: 10", "encoding: raw", "line skip: 2"],
      Buffer.concat([Buffer.from("junk line one\njunk line two\n"), Buffer.alloc(9)]),
    );
    await expectInvalidImage(
      readImageHeader(lineSkipShort, "lineskip_short.nrrd"),
      /truncated NRRD data \(raw\): 9 bytes/,
    );
  });

  it("truncated raw data", async () => {
    const path = await nrrd(
      "raw_cut.nrrd",
      ["NRRD0004", "type: short", "dimension: 3", "sizes: 4 5 6", "endian: little", "encoding: raw"],
      int16Bytes(4 * 5 * 6).subarray(0, 200),
    );
    await expectInvalidImage(
      readImageHeader(path, "raw_cut.nrrd"),
      /truncated NRRD data \(raw\): 200 bytes, but sizes x type need 240/,
    );
  });

  it("a gzip stream cut short", async () => {
    const gz = gzipSync(int16Bytes(50 * 50 * 10));
    const path = await nrrd(
      "gz_cut.nrrd",
      ["NRRD0004", "type: short", "dimension: 3", "sizes: 50 50 10", "endian: little", "encoding: gzip"],
      gz.subarray(0, gz.length - 20),
    );
    await expectInvalidImage(readImageHeader(path, "gz_cut.nrrd"), /gzip stream is truncated/);
  });

  it("a whole gzip stream with too little data", async () => {
    const path = await nrrd(
      "gz_short.nrrd",
      ["NRRD0004", "type: short", "dimension: 3", "sizes: 4 5 6", "endian: little", "encoding: gz"],
      gzipSync(int16Bytes(4 * 5 * 5)),
    );
    await expectInvalidImage(
      readImageHeader(path, "gz_short.nrrd"),
      /truncated NRRD data \(gzip \(after decompression\)\): 200 bytes, but sizes x type need 240/,
    );
  });

  it("detached data files are refused", async () => {
    const path = join(dir, "detached.nrrd");
    await writeFile(
      path,
      "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 5 6\nencoding: raw\ndata file: detached.raw\n",
    );
    await expectInvalidImage(readImageHeader(path, "detached.nrrd"), /detached NRRD data .* is not supported/);
  });

  it("a header with no data after it", async () => {
    const path = join(dir, "nodata.nrrd");
    await writeFile(path, "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 5 6\nencoding: raw\n");
    await expectInvalidImage(readImageHeader(path, "nodata.nrrd"), /not followed by a blank line and data/);
  });

  it("bad headers", async () => {
    const cases: [string[], RegExp][] = [
      [["NRRD0004", "type: uchar", "dimension: 3", "encoding: raw"], /missing required field "sizes"/],
      [
        ["NRRD0004", "type: uchar", "dimension: 3", "sizes: 4 5", "encoding: raw"],
        /"sizes" has 2 values but "dimension" is 3/,
      ],
      [["NRRD0004", "type: uchar", "dimension: 2", "sizes: 4 0", "encoding: raw"], /"sizes" must all be at least 1/],
      [["NRRD0004", "type: quaternion", "dimension: 1", "sizes: 4", "encoding: raw"], /unsupported "type"/],
      [["NRRD0004", "type: uchar", "dimension: 1", "sizes: 4", "encoding: zip"], /unknown "encoding"/],
      [["NRRD0004", "type: uchar", "dimension: 1", "sizes: 4", "encoding: bzip2"], /encoding "bzip2" is not supported/],
      [
        ["NRRD0004", "type: uchar", "dimension: 1", "sizes: 4", "encoding: raw", "this line is junk"],
        /neither a field/,
      ],
      [
        ["NRRD0004", "type: uchar", "dimension: 2", "sizes: 4 4", "encoding: raw", "space directions: (1,0)"],
        /"space directions" must give/,
      ],
    ];
    for (const [i, [lines, message]] of cases.entries()) {
      const path = await nrrd(`bad${i}.nrrd`, lines, new Uint8Array(64));
      await expectInvalidImage(readImageHeader(path, `bad${i}.nrrd`), message);
    }
  });
});

describe("parseNrrdHeader", () => {
  it("parses fields, aliases and key/value pairs", () => {
    const header = parseNrrdHeader(
      [
        "NRRD0004",
        "# comment",
        "type: int16_t",
        "dimension: 3",
        "sizes: 2 3 4",
        "encoding: txt",
        "spacings: nan 0.5 -2",
        "lineskip: 1",
        "byteskip: 3",
        "endian: big",
        "Segmentation_MasterRepresentation:=Binary labelmap",
      ].join("\n"),
    );
    expect(header).toMatchObject({
      version: 4,
      dimension: 3,
      sizes: [2, 3, 4],
      dtype: "int16",
      bytesPerElement: 2,
      encoding: "ascii",
      endian: "big",
      nvox: 24,
      spatialAxes: [0, 1, 2],
      spacing: [1, 0.5, 2],
      lineSkip: 1,
      byteSkip: 3,
      dataFile: undefined,
      keyValues: { Segmentation_MasterRepresentation: "Binary labelmap" },
    });
  });

  it("throws InvalidImageError without the magic line", () => {
    expect(() => parseNrrdHeader("type: uchar\n")).toThrow(InvalidImageError);
  });
});
