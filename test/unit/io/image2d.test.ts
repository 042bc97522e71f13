import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageHeader } from "../../../src/io/header.js";
import { readImage2d, writeImage2d } from "../../../src/io/image2d.js";
import type { Volume } from "../../../src/io/types.js";
import { expectInvalidImage, fixture, pythonStdlib } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-image2d-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (a: ArrayLike<number>) => {
  const view = a as unknown as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
};

/**
 * A PNG decoder in Python's standard library (zlib + the five scanline filters), for non-interlaced
 * 8-bit images: returns the size, channel count and the CRC-32 of the samples re-laid planar (one
 * row-major plane per channel), the layout readImage2d promises.
 */
function pyPng(path: string): { width: number; height: number; channels: number; crc: number; first: number[] } {
  return pythonStdlib(
    `
import sys, json, struct, zlib
raw = open(sys.argv[1], 'rb').read()
assert raw[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
pos, idat = 8, b''
while pos < len(raw):
    n, kind = struct.unpack('>I4s', raw[pos:pos + 8])
    body = raw[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and interlace == 0
ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
data = zlib.decompress(idat)
stride = w * ch
rows, prev = [], bytearray(stride)
for y in range(h):
    f = data[y * (stride + 1)]
    line = bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - ch] if i >= ch else 0
        b = prev[i]
        c = prev[i - ch] if i >= ch else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
pixels = b''.join(rows)
planar = b''.join(pixels[c::ch] for c in range(ch))
print(json.dumps({'width': w, 'height': h, 'channels': ch, 'crc': zlib.crc32(planar), 'first': list(planar[:8])}))`,
    path,
  );
}

function image(
  data: Uint8Array | Uint16Array,
  shape: number[],
  dtype = data instanceof Uint16Array ? "uint16" : "uint8",
) {
  return {
    data,
    shape,
    spacing: [1, 1],
    affine: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ],
    dtype,
    meta: {},
  } satisfies Volume;
}

describe("readImage2d", () => {
  it("camera.png: 512x512 grey uint8, x fastest, as an independent PNG decoder reads it", async () => {
    const path = fixture("camera.png");
    const v = await readImage2d(path);
    const py = pyPng(path);
    expect(py).toMatchObject({ width: 512, height: 512, channels: 1 });
    expect(v.shape).toEqual([512, 512]);
    expect(v.dtype).toBe("uint8");
    expect(v.data).toBeInstanceOf(Uint8Array);
    expect(crc32(bytesOf(v.data))).toBe(py.crc);
    expect(Array.from(v.data as Uint8Array).slice(0, 8)).toEqual(py.first);
    expect(v.spacing).toEqual([1, 1]);
    expect(v.meta).toMatchObject({ format: "png", channels: 1, bitDepth: 8, grey: true });
  });

  it("astronaut.png: RGB as [W, H, 3] planar", async () => {
    const path = fixture("astronaut.png");
    const v = await readImage2d(path);
    const py = pyPng(path);
    expect(v.shape).toEqual([512, 512, 3]);
    expect(crc32(bytesOf(v.data))).toBe(py.crc);
  });

  it("cell.png is not square: shape is [width, height]", async () => {
    const v = await readImage2d(fixture("cell.png"));
    const header = await readImageHeader(fixture("cell.png"), "cell.png");
    expect(v.shape).toEqual(header.dimensions);
    expect(v.shape).toEqual([550, 660]);
  });

  it("JPEG: retina.jpg as [W, H, 3] uint8; a truncated JPEG is refused", async () => {
    const v = await readImage2d(fixture("retina.jpg"));
    expect(v.shape).toEqual([1411, 1411, 3]);
    expect(v.dtype).toBe("uint8");
    expect(v.meta.format).toBe("jpeg");
    // Same pixels as sharp's own interleaved decode.
    const { data } = await sharp(fixture("retina.jpg")).raw().toBuffer({ resolveWithObject: true });
    const plane = 1411 * 1411;
    for (const i of [0, 12345, plane - 1]) {
      expect([v.data[i], v.data[plane + i], v.data[2 * plane + i]]).toEqual([
        data[3 * i],
        data[3 * i + 1],
        data[3 * i + 2],
      ]);
    }
    await expectInvalidImage(
      readImage2d(fixture("truncated.jpg")),
      /truncated\.jpg: (corrupt or truncated image data|cannot read the image header)/,
    );
    await expectInvalidImage(readImage2d(fixture("ch2.nii.gz")), /ch2\.nii\.gz: cannot read the image header/);
  });
});

describe("writeImage2d round trips", () => {
  const W = 13;
  const H = 7;
  const plane = W * H;

  it("grey uint8", async () => {
    const data = Uint8Array.from({ length: plane }, (_, i) => (i * 37) % 256);
    const path = join(dir, "grey.png");
    await writeImage2d(image(data, [W, H]), path);
    const back = await readImage2d(path);
    expect(back.shape).toEqual([W, H]);
    expect(back.dtype).toBe("uint8");
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect((await readImageHeader(path, "grey.png")).channels).toBe(1);
    expect(pyPng(path).crc).toBe(crc32(data));
  });

  it("RGB uint8 (planar in, planar out)", async () => {
    const data = Uint8Array.from({ length: 3 * plane }, (_, i) => (i * 11) % 256);
    const path = join(dir, "rgb.png");
    await writeImage2d(image(data, [W, H, 3]), path);
    const back = await readImage2d(path);
    expect(back.shape).toEqual([W, H, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(pyPng(path).crc).toBe(crc32(data));
  });

  it("RGBA and grey+alpha", async () => {
    for (const channels of [4, 2]) {
      const data = Uint8Array.from({ length: channels * plane }, (_, i) => (i * 7 + 3) % 256);
      const path = join(dir, `alpha${channels}.png`);
      await writeImage2d(image(data, [W, H, channels]), path);
      const back = await readImage2d(path);
      expect(back.shape).toEqual([W, H, channels]);
      expect(back.meta.hasAlpha).toBe(true);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
  });

  it("16-bit grey and RGB", async () => {
    for (const channels of [1, 3]) {
      const data = Uint16Array.from({ length: channels * plane }, (_, i) => (i * 4099 + 1) % 65536);
      const path = join(dir, `deep${channels}.png`);
      const shape = channels === 1 ? [W, H] : [W, H, channels];
      await writeImage2d(image(data, shape), path);
      const back = await readImage2d(path);
      expect(back.shape).toEqual(shape);
      expect(back.dtype).toBe("uint16");
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
  });

  it("rgb24 (interleaved, as from NIfTI) and a [W, H, 1, 3] slice", async () => {
    const interleaved = Uint8Array.from({ length: 3 * plane }, (_, i) => i % 256);
    const path = join(dir, "rgb24.png");
    await writeImage2d(image(interleaved, [W, H], "rgb24"), path);
    const back = await readImage2d(path);
    expect(back.shape).toEqual([W, H, 3]);
    expect([back.data[0], back.data[plane], back.data[2 * plane]]).toEqual([0, 1, 2]);
    await writeImage2d({ ...back, shape: [W, H, 1, 3] }, join(dir, "slice.png"));
    expect(Array.from((await readImage2d(join(dir, "slice.png"))).data)).toEqual(Array.from(back.data));
  });

  it("labels of other types when their values fit; refuses those that do not", async () => {
    const labels = Float32Array.from({ length: plane }, (_, i) => i % 3);
    const path = join(dir, "label.png");
    await writeImage2d({ ...image(new Uint8Array(0), [W, H]), data: labels, dtype: "float32" }, path);
    const back = await readImage2d(path);
    expect(back.dtype).toBe("uint8");
    expect(Array.from(back.data)).toEqual(Array.from(labels));

    const big = Int32Array.from({ length: plane }, (_, i) => i * 500);
    await writeImage2d({ ...image(new Uint8Array(0), [W, H]), data: big, dtype: "int32" }, join(dir, "big.png"));
    expect((await readImage2d(join(dir, "big.png"))).dtype).toBe("uint16");

    const bad = Float32Array.from({ length: plane }, () => 0.5);
    await expectInvalidImage(
      writeImage2d({ ...image(new Uint8Array(0), [W, H]), data: bad, dtype: "float32" }, join(dir, "bad.png")),
      /values must be integers in 0\.\.65535/,
    );
    await expectInvalidImage(
      writeImage2d(image(new Uint8Array(W * H * 5), [W, H, 5]), join(dir, "bad.png")),
      /cannot write shape \[13, 7, 5\]/,
    );
    await expectInvalidImage(writeImage2d(image(new Uint8Array(3), [W, H]), join(dir, "bad.png")), /has 3 values/);
    await expectInvalidImage(
      writeImage2d(image(new Uint16Array(plane).fill(300), [W, H]), join(dir, "bad.jpg")),
      /JPEG holds 8-bit samples only/,
    );
  });

  it("JPEG by extension; atomic (no temporary file left)", async () => {
    const sub = await mkdtemp(join(dir, "atomic-"));
    const data = Uint8Array.from({ length: 3 * plane }, () => 128);
    await writeImage2d(image(data, [W, H, 3]), join(sub, "a.jpg"));
    await writeImage2d(image(data, [W, H, 3]), join(sub, "a.png"));
    expect((await readdir(sub)).sort()).toEqual(["a.jpg", "a.png"]);
    const jpeg = await readImage2d(join(sub, "a.jpg"));
    expect(jpeg.meta.format).toBe("jpeg");
    expect(jpeg.shape).toEqual([W, H, 3]);
    // A flat colour survives JPEG (nearly) unchanged.
    expect(Math.abs(jpeg.data[0]! - 128)).toBeLessThanOrEqual(1);
  });
});
