import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatFromExtension, KNOWN_EXTENSIONS, splitImageFileName } from "../../../src/io/extensions.js";
import { isTiffMagic, readImageHeader, TIFF_FULL_DECODE_MAX_PIXELS } from "../../../src/io/header.js";
import { readImage2d } from "../../../src/io/image2d.js";
import { detectLoadFormat, loadImage, SAVE_EXTENSIONS, saveImage, sniffImageFormat } from "../../../src/io/load.js";
import { readRegion } from "../../../src/io/region.js";
import { expectInvalidImage } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-tiff-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tmpFile(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** A deterministic test pattern, interleaved: `channels` samples per pixel. */
function pattern(width: number, height: number, channels: number, sixteen: boolean): Uint8Array | Uint16Array {
  const n = width * height * channels;
  const data = sixteen ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(i / channels);
    const x = p % width;
    const y = Math.floor(p / width);
    const v = (x * 7 + y * 13 + (i % channels) * 101) * (sixteen ? 257 : 1) + (sixteen ? i % 251 : 0);
    data[i] = sixteen ? v % 65536 : v % 256;
  }
  return data;
}

/** Compares sample by sample, reporting the first difference (a diff of whole images is unreadable). */
function expectSamePixels(actual: ArrayLike<number>, expected: ArrayLike<number>, label = "pixels"): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      bad++;
      first = first < 0 ? i : first;
    }
  }
  expect(bad, `${label}: first difference at ${first}: ${actual[first]} != ${expected[first]}`).toBe(0);
}

/** The planar layout `readImage2d` returns (one plane per channel) of interleaved samples. */
function planar(data: ArrayLike<number>, width: number, height: number, channels: number): number[] {
  const plane = width * height;
  const out = new Array<number>(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      out[c * plane + i] = data[i * channels + c]!;
    }
  }
  return out;
}

interface SharpTiff {
  width: number;
  height: number;
  channels: 1 | 3;
  sixteen: boolean;
  tiled: boolean;
  compression?: "none" | "deflate" | "lzw" | "jpeg";
  bigtiff?: boolean;
}

/** A TIFF written by sharp (libtiff), with its pixels (interleaved). */
async function sharpTiff(o: SharpTiff): Promise<{ bytes: Buffer; pixels: Uint8Array | Uint16Array }> {
  const pixels = pattern(o.width, o.height, o.channels, o.sixteen);
  const space = o.channels === 1 ? (o.sixteen ? "grey16" : "b-w") : o.sixteen ? "rgb16" : "srgb";
  // A Uint16Array gives 16-bit raw input.
  const bytes = await sharp(pixels, { raw: { width: o.width, height: o.height, channels: o.channels } })
    .toColourspace(space)
    .tiff({
      compression: o.compression ?? "deflate",
      ...(o.tiled ? { tile: true, tileWidth: 64, tileHeight: 64 } : {}),
      ...(o.bigtiff ? { bigtiff: true } : {}),
    })
    .toBuffer();
  return { bytes, pixels };
}

interface HandTiff {
  little: boolean;
  big: boolean;
  width: number;
  height: number;
  channels: 1 | 3;
  bits: 8 | 16;
  /** 1 none, 8 deflate. */
  compression?: number;
  /** Tiles of this size, else strips of `rowsPerStrip` rows. */
  tile?: [number, number];
  rowsPerStrip?: number;
  /** The data of every strip or tile, in order; the same Buffer given twice is stored once. */
  blocks: Buffer[];
  /** More entries (tag, SHORT values), e.g. a scanner's private tags. */
  extraTags?: [number, number[]][];
  /** Overrides of block offsets (e.g. one past the end of the file). */
  offsetOf?: (index: number, offset: number) => number;
}

/**
 * A TIFF built byte by byte, image directory FIRST (header, IFD, arrays, then pixel data), in either byte
 * order, classic or BigTIFF. sharp/libtiff write the directory last, so cutting their files loses it; with
 * the directory first, a cut file keeps a readable header and loses only pixel data.
 */
function handTiff(o: HandTiff): Buffer {
  const SHORT = 3;
  const LONG = 4;
  const LONG8 = 16;
  const typeSize: Record<number, number> = { [SHORT]: 2, [LONG]: 4, [LONG8]: 8 };
  const offType = o.big ? LONG8 : LONG;
  const tiles = o.tile !== undefined;
  const unique = [...new Set(o.blocks)];
  const entries: [number, number, number[]][] = [
    [256, LONG, [o.width]],
    [257, LONG, [o.height]],
    [258, SHORT, Array(o.channels).fill(o.bits)],
    [259, SHORT, [o.compression ?? 1]],
    [262, SHORT, [o.channels === 1 ? 1 : 2]],
    ...(tiles ? [] : ([[273, offType, o.blocks.map(() => 0)]] as [number, number, number[]][])),
    [277, SHORT, [o.channels]],
    ...(tiles ? [] : ([[278, LONG, [o.rowsPerStrip ?? o.height]]] as [number, number, number[]][])),
    ...(tiles ? [] : ([[279, offType, o.blocks.map((b) => b.length)]] as [number, number, number[]][])),
    [284, SHORT, [1]],
    ...(tiles
      ? ([
          [322, LONG, [o.tile![0]]],
          [323, LONG, [o.tile![1]]],
          [324, offType, o.blocks.map(() => 0)],
          [325, offType, o.blocks.map((b) => b.length)],
        ] as [number, number, number[]][])
      : []),
    ...(o.extraTags ?? []).map(([tag, values]) => [tag, SHORT, values] as [number, number, number[]]),
  ];
  const head = o.big ? 16 : 8;
  const countBytes = o.big ? 8 : 2;
  const entryBytes = o.big ? 20 : 12;
  const field = o.big ? 8 : 4;
  const ifdBytes = countBytes + entries.length * entryBytes + field;
  // Arrays that do not fit in a value field follow the directory; then the pixel data.
  let cursor = head + ifdBytes;
  const arrayAt = new Map<number, number>();
  for (const [tag, type, values] of entries) {
    const bytes = values.length * typeSize[type]!;
    if (bytes > field) {
      arrayAt.set(tag, cursor);
      cursor += bytes + (bytes % 2);
    }
  }
  const dataAt = new Map<Buffer, number>();
  for (const b of unique) {
    dataAt.set(b, cursor);
    cursor += b.length;
  }
  const offsets = o.blocks.map((b, i) => (o.offsetOf ? o.offsetOf(i, dataAt.get(b)!) : dataAt.get(b)!));
  for (const e of entries) {
    if (e[0] === 273 || e[0] === 324) {
      e[2] = offsets;
    }
  }
  const out = Buffer.alloc(cursor);
  const put = (at: number, value: number, bytes: number): void => {
    if (bytes === 2) {
      out[o.little ? "writeUInt16LE" : "writeUInt16BE"](value, at);
    } else if (bytes === 4) {
      out[o.little ? "writeUInt32LE" : "writeUInt32BE"](value, at);
    } else {
      out[o.little ? "writeBigUInt64LE" : "writeBigUInt64BE"](BigInt(value), at);
    }
  };

  out.write(o.little ? "II" : "MM", 0, "latin1");
  put(2, o.big ? 43 : 42, 2);
  if (o.big) {
    put(4, 8, 2);
    put(6, 0, 2);
    put(8, head, 8);
  } else {
    put(4, head, 4);
  }
  put(head, entries.length, countBytes);
  entries.forEach(([tag, type, values], i) => {
    const at = head + countBytes + i * entryBytes;
    put(at, tag, 2);
    put(at + 2, type, 2);
    put(at + 4, values.length, o.big ? 8 : 4);
    const valueAt = at + 4 + (o.big ? 8 : 4);
    const base = arrayAt.get(tag) ?? valueAt;
    if (arrayAt.has(tag)) {
      put(valueAt, base, field);
    }
    for (const [k, v] of values.entries()) {
      put(base + k * typeSize[type]!, v, typeSize[type]!);
    }
  });
  put(head + countBytes + entries.length * entryBytes, 0, field);
  for (const b of unique) {
    b.copy(out, dataAt.get(b)!);
  }
  return out;
}

/** Interleaved samples as the bytes of one block, in the file's byte order. */
function sampleBytes(samples: ArrayLike<number>, bits: 8 | 16, little: boolean): Buffer {
  if (bits === 8) {
    return Buffer.from(Uint8Array.from(samples));
  }
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) {
    out[little ? "writeUInt16LE" : "writeUInt16BE"](samples[i]!, 2 * i);
  }
  return out;
}

describe("TIFF extensions and sniffing", () => {
  it("knows .tif and .tiff as format tiff, reads but does not save them", () => {
    expect(KNOWN_EXTENSIONS).toEqual(expect.arrayContaining([".tif", ".tiff"]));
    expect(formatFromExtension(".tif")).toBe("tiff");
    expect(formatFromExtension(".TIFF")).toBe("tiff");
    expect(splitImageFileName("Slide_01.ome.TIF")).toEqual({ id: "Slide_01.ome", ext: ".tif" });
    expect(SAVE_EXTENSIONS).not.toContain(".tif");
    expect(SAVE_EXTENSIONS).not.toContain(".tiff");
    expect(SAVE_EXTENSIONS).toContain(".png");
  });

  it("sniffs classic and BigTIFF in both byte orders, nothing else", () => {
    const b = (...x: number[]) => Uint8Array.from(x);
    for (const magic of [
      b(0x49, 0x49, 0x2a, 0),
      b(0x4d, 0x4d, 0, 0x2a),
      b(0x49, 0x49, 0x2b, 0),
      b(0x4d, 0x4d, 0, 0x2b),
    ]) {
      expect(isTiffMagic(magic)).toBe(true);
      expect(sniffImageFormat(magic)).toBe("tiff");
    }
    for (const other of [b(0x49, 0x49, 0, 0x2a), b(0x4d, 0x4d, 0x2a, 0), b(0x49, 0x4d, 0x2a, 0), b(0x49, 0x49, 0x2a)]) {
      expect(isTiffMagic(other)).toBe(false);
      expect(sniffImageFormat(other)).toBeUndefined();
    }
  });

  it("refuses to save a TIFF, with the reason", async () => {
    const volume = await readImage2d(
      await sharp({ create: { width: 4, height: 4, channels: 3, background: "red" } })
        .png()
        .toBuffer(),
    );
    await expectInvalidImage(
      saveImage(volume, join(dir, "out.tif")),
      /out\.tif: cannot save .*writing TIFF is not supported/,
    );
    await expectInvalidImage(saveImage(volume, join(dir, "out.TIFF")), /use one of .*\.png(?!.*\.tif,)/);
  });
});

describe("readImageHeader and loadImage: TIFFs written by libtiff", () => {
  const cases: SharpTiff[] = [];
  for (const tiled of [false, true]) {
    for (const channels of [1, 3] as const) {
      for (const sixteen of [false, true]) {
        cases.push({ width: 150, height: 97, channels, sixteen, tiled, compression: tiled ? "deflate" : "lzw" });
      }
    }
  }
  cases.push({ width: 70, height: 65, channels: 3, sixteen: false, tiled: false, compression: "none" });
  cases.push({ width: 130, height: 66, channels: 3, sixteen: true, tiled: true, bigtiff: true });

  it.each(cases)("%o: header without errors, every pixel as written", async (o) => {
    const { bytes, pixels } = await sharpTiff(o);
    const name = `${o.tiled ? "tiled" : "strip"}-${o.channels}-${o.sixteen ? 16 : 8}${o.bigtiff ? "-big" : ""}.tif`;
    const path = await tmpFile(name, bytes);
    if (o.bigtiff) {
      expect([...bytes.subarray(0, 4)]).toEqual([0x49, 0x49, 0x2b, 0]);
    }
    const header = await readImageHeader(path, name);
    expect(header).toEqual({
      format: "tiff",
      extension: ".tif",
      dimensions: [o.width, o.height],
      spatialShape: [o.width, o.height],
      channels: o.channels,
      spacing: [1, 1],
      dtype: o.sixteen ? "uint16" : "uint8",
    });
    expect(await detectLoadFormat(path)).toBe("tiff");
    const volume = await loadImage(path);
    expect(volume.shape).toEqual(o.channels === 1 ? [o.width, o.height] : [o.width, o.height, o.channels]);
    expect(volume.dtype).toBe(o.sixteen ? "uint16" : "uint8");
    expect(volume.meta).toMatchObject({ format: "tiff", bitDepth: o.sixteen ? 16 : 8 });
    expect(volume.data).toBeInstanceOf(o.sixteen ? Uint16Array : Uint8Array);
    expectSamePixels(volume.data, planar(pixels, o.width, o.height, o.channels));
  });

  it("reads a JPEG-compressed tiled RGB slide (as most scanners write) and a pyramid's full-resolution level", async () => {
    // Smooth colour ramps, as JPEG is lossy.
    const pixels = new Uint8Array(200 * 120 * 3);
    for (let i = 0; i < pixels.length; i++) {
      const p = Math.floor(i / 3);
      pixels[i] = [(p % 200) + 20, Math.floor(p / 200) * 2, 128][i % 3]!;
    }
    const bytes = await sharp(pixels, { raw: { width: 200, height: 120, channels: 3 } })
      .tiff({ tile: true, tileWidth: 64, tileHeight: 64, compression: "jpeg", quality: 90 })
      .toBuffer();
    const path = await tmpFile("jpeg-tiles.tiff", bytes);
    expect(await readImageHeader(path, "jpeg-tiles.tiff")).toMatchObject({
      format: "tiff",
      extension: ".tiff",
      dimensions: [200, 120],
      channels: 3,
    });
    const volume = await loadImage(path);
    const expected = planar(pixels, 200, 120, 3);
    let err = 0;
    for (let i = 0; i < expected.length; i++) {
      err += Math.abs(volume.data[i]! - expected[i]!);
    }
    expect(err / expected.length).toBeLessThan(3);

    const pyramid = await sharp(pixels, { raw: { width: 200, height: 120, channels: 3 } })
      .tiff({ tile: true, tileWidth: 64, tileHeight: 64, pyramid: true, compression: "deflate" })
      .toBuffer();
    expect((await sharp(pyramid).metadata()).pages).toBeGreaterThan(1);
    const pyramidPath = await tmpFile("pyramid.tif", pyramid);
    expect((await readImageHeader(pyramidPath, "pyramid.tif")).dimensions).toEqual([200, 120]);
    expectSamePixels((await loadImage(pyramidPath)).data, expected);
  });

  it("reads the current content of a file replaced in place (no stale libvips cache)", async () => {
    const a = await sharpTiff({ width: 40, height: 30, channels: 3, sixteen: false, tiled: true });
    const b = await sharpTiff({ width: 50, height: 20, channels: 1, sixteen: true, tiled: false });
    const path = await tmpFile("replaced.tif", a.bytes);
    expect(await readImageHeader(path, "replaced.tif")).toMatchObject({ dimensions: [40, 30], channels: 3 });
    await writeFile(path, b.bytes);
    expect(await readImageHeader(path, "replaced.tif")).toMatchObject({
      dimensions: [50, 20],
      channels: 1,
      dtype: "uint16",
    });
  });
});

describe("readImageHeader and loadImage: hand-built TIFFs (byte orders, BigTIFF)", () => {
  for (const little of [true, false]) {
    for (const big of [false, true]) {
      for (const [channels, bits] of [
        [1, 16],
        [3, 8],
      ] as const) {
        it(`${little ? "II" : "MM"} ${big ? "BigTIFF" : "classic"}, ${channels} x ${bits}-bit, 3 strips`, async () => {
          const width = 33;
          const height = 20;
          const samples = pattern(width, height, channels, bits === 16);
          const rows = 7;
          const rowSamples = width * channels;
          const blocks = [0, 1, 2].map((s) =>
            sampleBytes(
              samples.subarray(s * rows * rowSamples, Math.min(height, (s + 1) * rows) * rowSamples),
              bits,
              little,
            ),
          );
          const bytes = handTiff({ little, big, width, height, channels, bits, rowsPerStrip: rows, blocks });
          expect([...bytes.subarray(0, 4)]).toEqual(
            little ? [0x49, 0x49, big ? 0x2b : 0x2a, 0] : [0x4d, 0x4d, 0, big ? 0x2b : 0x2a],
          );
          const path = await tmpFile(`hand-${little}-${big}-${channels}.tiff`, bytes);
          expect(await readImageHeader(path, "hand.tiff")).toEqual({
            format: "tiff",
            extension: ".tiff",
            dimensions: [width, height],
            spatialShape: [width, height],
            channels,
            spacing: [1, 1],
            dtype: bits === 16 ? "uint16" : "uint8",
          });
          const volume = await loadImage(path, "hand.tiff");
          expectSamePixels(volume.data, planar(samples, width, height, channels));
        });
      }
    }
  }
});

describe("readImageHeader: broken and mislabeled TIFFs are INVALID_IMAGE", () => {
  it("a libtiff file cut short (its directory, written last, is gone)", async () => {
    const { bytes } = await sharpTiff({ width: 150, height: 97, channels: 3, sixteen: false, tiled: true });
    const path = await tmpFile("cut.tif", bytes.subarray(0, Math.floor(bytes.length / 2)));
    const err = await expectInvalidImage(
      readImageHeader(path, "cut.tif"),
      /^cut\.tif: truncated TIFF: the first image directory/,
    );
    expect(err.details).toMatchObject({ format: "tiff", size: Math.floor(bytes.length / 2) });
    await expectInvalidImage(loadImage(path), /cut\.tif/);
  });

  it("a file cut inside its pixel data, directory intact: found from the strip offsets", async () => {
    const width = 64;
    const height = 40;
    const samples = pattern(width, height, 1, false);
    const blocks = [0, 1, 2, 3].map((s) =>
      sampleBytes(samples.subarray(s * 10 * width, (s + 1) * 10 * width), 8, true),
    );
    const whole = handTiff({ little: true, big: false, width, height, channels: 1, bits: 8, rowsPerStrip: 10, blocks });
    const cut = whole.subarray(0, whole.length - 100);
    const path = await tmpFile("cut-data.tif", cut);
    // sharp alone reads the header of this file: the structure check is what refuses it.
    expect((await sharp(cut).metadata()).width).toBe(width);
    const err = await expectInvalidImage(
      readImageHeader(path, "cut-data.tif"),
      new RegExp(
        `truncated TIFF data: the file has ${cut.length} bytes, but strip 3 of 4 ends at byte ${whole.length}`,
      ),
    );
    expect(err.details).toMatchObject({ size: cut.length, expected: whole.length });
  });

  it("a scanner's private tags are no error", async () => {
    const samples = pattern(16, 8, 1, false);
    const bytes = handTiff({
      little: true,
      big: false,
      width: 16,
      height: 8,
      channels: 1,
      bits: 8,
      blocks: [sampleBytes(samples, 8, true)],
      extraTags: [
        [34000, [1, 2, 3]],
        [65000, [7]],
      ],
    });
    const path = await tmpFile("private-tags.tif", bytes);
    expect((await readImageHeader(path, "private-tags.tif")).dimensions).toEqual([16, 8]);
    expectSamePixels((await loadImage(path)).data, samples);
  });

  it("corrupt compressed pixels in a small TIFF (decoded in full)", async () => {
    const garbage = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256));
    const bytes = handTiff({
      little: true,
      big: false,
      width: 64,
      height: 64,
      channels: 1,
      bits: 8,
      compression: 8,
      tile: [32, 32],
      blocks: [garbage, garbage, garbage, garbage],
    });
    const path = await tmpFile("corrupt.tif", bytes);
    await expectInvalidImage(readImageHeader(path, "corrupt.tif"), /corrupt\.tif: corrupt or truncated TIFF data/);
    await expectInvalidImage(loadImage(path), /corrupt\.tif: corrupt or truncated image data/);
  });

  it("mislabeled files: content and extension must agree", async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "blue" } })
      .png()
      .toBuffer();
    const { bytes: tiff } = await sharpTiff({ width: 8, height: 8, channels: 1, sixteen: false, tiled: false });
    await expectInvalidImage(
      readImageHeader(await tmpFile("png-as.tif", png), "png-as.tif"),
      /png-as\.tif: not a valid \.tif file \(the content is a PNG image\)/,
    );
    await expectInvalidImage(
      readImageHeader(await tmpFile("tiff-as.png", tiff), "tiff-as.png"),
      /tiff-as\.png: not a valid \.png file \(the content is a TIFF image\)/,
    );
    await expectInvalidImage(
      readImageHeader(await tmpFile("junk.tiff", Buffer.from("not an image at all")), "junk.tiff"),
      /junk\.tiff: not a valid \.tiff file \(no TIFF byte-order mark/,
    );
    await expectInvalidImage(readImageHeader(await tmpFile("empty.tif", Buffer.alloc(0)), "empty.tif"), /empty file/);
    const header = tiff.subarray(0, 8);
    await expectInvalidImage(
      readImageHeader(await tmpFile("header-only.tif", header), "header-only.tif"),
      /header-only\.tif: truncated TIFF: the first image directory at byte \d+ .* runs past the end of the 8-byte file/,
    );
  });
});

describe("readImageHeader: a whole-slide-sized TIFF is checked without decoding its pixels", () => {
  // 100000 x 100000 grey pixels (10 Gpx) in 512 x 512 deflate tiles that all point at ONE block of garbage:
  // a small file whose pixels cannot be decoded. The header must come from the structure and sharp's
  // metadata alone; the tile table (38416 entries) is read in chunks.
  const W = 100_000;
  const tile = 512;
  const count = Math.ceil(W / tile) ** 2;
  const garbage = Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 91 + 5) % 256));

  it("reports the slide's size quickly, and its regions still read", async () => {
    expect(W * W).toBeGreaterThan(TIFF_FULL_DECODE_MAX_PIXELS);
    const bytes = handTiff({
      little: true,
      big: false,
      width: W,
      height: W,
      channels: 1,
      bits: 8,
      compression: 1,
      tile: [tile, tile],
      blocks: Array(count).fill(Buffer.from(pattern(tile, tile, 1, false))),
    });
    expect(bytes.length).toBeLessThan(2 * 1024 * 1024);
    const path = await tmpFile("slide.tif", bytes);
    const t0 = performance.now();
    expect(await readImageHeader(path, "slide.tif")).toMatchObject({ dimensions: [W, W], channels: 1, dtype: "uint8" });
    expect(performance.now() - t0).toBeLessThan(20_000);
    // Every tile holds the same pattern: a region across a tile edge reads it back (grey, as sRGB).
    const region = await readRegion(path, { left: 3 * tile - 2, top: 1000, width: 4, height: 1 });
    const src = pattern(tile, tile, 1, false);
    const row = 1000 % tile;
    expect(region.shape).toEqual([4, 1, 3]);
    expect(Array.from(region.data).slice(0, 4)).toEqual([tile - 2, tile - 1, 0, 1].map((x) => src[row * tile + x]));
    await expectInvalidImage(loadImage(path), /too large to load whole/);
  });

  it("accepts undecodable tiles in a slide: they are not decoded (a small image's are, see above)", async () => {
    const slide = handTiff({
      little: false,
      big: true,
      width: W,
      height: W,
      channels: 1,
      bits: 8,
      compression: 8,
      tile: [tile, tile],
      blocks: Array(count).fill(garbage),
    });
    const path = await tmpFile("garbage-slide.tif", slide);
    expect((await readImageHeader(path, "garbage-slide.tif")).dimensions).toEqual([W, W]);
  });

  it("refuses a slide whose last tile lies past the end of the file", async () => {
    const slide = handTiff({
      little: true,
      big: false,
      width: W,
      height: W,
      channels: 1,
      bits: 8,
      compression: 8,
      tile: [tile, tile],
      blocks: Array(count).fill(garbage),
      offsetOf: (i, offset) => (i === count - 1 ? offset + 10_000 : offset),
    });
    const path = await tmpFile("cut-slide.tif", slide);
    await expectInvalidImage(
      readImageHeader(path, "cut-slide.tif"),
      new RegExp(`truncated TIFF data: the file has ${slide.length} bytes, but tile ${count - 1} of ${count} ends`),
    );
  });

  it("reads its bytes from the file, never the whole file into memory", async () => {
    // The structure check and sharp's header read touch the directory and tile table only: a file whose
    // pixel area is 1 GB (sparse on disk) is checked in a moment.
    const bytes = handTiff({
      little: true,
      big: true,
      width: W,
      height: W,
      channels: 1,
      bits: 8,
      tile: [tile, tile],
      blocks: Array(count).fill(garbage),
      offsetOf: (_, offset) => offset + 1_000_000_000,
    });
    const path = join(dir, "sparse.tif");
    await writeFile(path, bytes);
    const handle = await open(path, "r+");
    await handle.truncate(bytes.length + 1_000_000_000 + garbage.length);
    await handle.write(garbage, 0, garbage.length, bytes.length - garbage.length + 1_000_000_000);
    await handle.close();
    const before = process.memoryUsage().rss;
    expect((await readImageHeader(path, "sparse.tif")).dimensions).toEqual([W, W]);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });
});
