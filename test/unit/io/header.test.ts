import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageHeader } from "../../../src/io/header.js";
import { expectInvalidImage, fixture, pyNiftiHeader, python } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-header-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tmpFile(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe("readImageHeader: real NIfTI files", () => {
  it("ch2.nii.gz (MRIcron template): 181x217x181 uint8, 1 mm", async () => {
    const header = await readImageHeader(fixture("ch2.nii.gz"), "ch2.nii.gz");
    expect(header).toEqual({
      format: "nifti",
      extension: ".nii.gz",
      dimensions: [181, 217, 181],
      spatialShape: [181, 217, 181],
      channels: 1,
      spacing: [1, 1, 1],
      dtype: "uint8",
    });
  });

  it("ch2bet.nii.gz", async () => {
    const header = await readImageHeader(fixture("ch2bet.nii.gz"), "ch2bet.nii.gz");
    expect(header.dimensions).toEqual([181, 217, 181]);
    expect(header.dtype).toBe("uint8");
  });

  it("anatomical.nii (nibabel): 33x41x25 big-endian int16, 2 mm (pixdim[0] -1 ignored)", async () => {
    const path = fixture("anatomical.nii");
    const py = pyNiftiHeader(path);
    expect(py.endian).toBe(">");
    const header = await readImageHeader(path, "anatomical.nii");
    expect(header).toEqual({
      format: "nifti",
      extension: ".nii",
      dimensions: [33, 41, 25],
      spatialShape: [33, 41, 25],
      channels: 1,
      spacing: [2, 2, 2],
      dtype: "int16",
    });
    expect(header.dimensions).toEqual(py.dim.slice(1, 4));
  });

  it("example4d.nii.gz: 4D, spatial shape is the first 3 axes", async () => {
    const path = fixture("example4d.nii.gz");
    const py = pyNiftiHeader(path);
    const header = await readImageHeader(path, "example4d.nii.gz");
    expect(header.dimensions).toEqual([128, 96, 24, 2]);
    expect(header.spatialShape).toEqual([128, 96, 24]);
    expect(header.dtype).toBe("int16");
    expect(header.channels).toBe(1);
    // pixdim[3] is stored as 2.1999991 (float32)
    expect(header.spacing).toEqual([2, 2, 2.1999990940093994]);
    expect(header.spacing).toEqual(py.pixdim.slice(1, 4));
  });

  it("example_nifti2.nii.gz: NIfTI-2", async () => {
    const path = fixture("example_nifti2.nii.gz");
    const py = pyNiftiHeader(path);
    expect(py.sizeof_hdr).toBe(540);
    const header = await readImageHeader(path, "example_nifti2.nii.gz");
    expect(header.dimensions).toEqual([32, 20, 12, 2]);
    expect(header.dimensions).toEqual(py.dim.slice(1, 5));
    expect(header.spatialShape).toEqual([32, 20, 12]);
    expect(header.spacing).toEqual(py.pixdim.slice(1, 4));
    expect(header.dtype).toBe("int16");
  });

  it("functional.nii: 17x21x3x20 int16, 4x4x8 mm", async () => {
    const header = await readImageHeader(fixture("functional.nii"), "functional.nii");
    expect(header.dimensions).toEqual([17, 21, 3, 20]);
    expect(header.spacing).toEqual([4, 4, 8]);
    expect(header.dtype).toBe("int16");
  });

  it("the file name, not the path, gives the format (upload temp paths have no extension)", async () => {
    const path = await tmpFile("upload-1234", await readFile(fixture("anatomical.nii")));
    const header = await readImageHeader(path, "Anatomical.NII");
    expect(header.extension).toBe(".nii");
    expect(header.dimensions).toEqual([33, 41, 25]);
  });

  it("a big-endian NIfTI-1 gzip-compressed", async () => {
    const path = await tmpFile("anat_gz.nii.gz", gzipSync(await readFile(fixture("anatomical.nii"))));
    const header = await readImageHeader(path, "anat_gz.nii.gz");
    expect(header.dimensions).toEqual([33, 41, 25]);
    expect(header.dtype).toBe("int16");
  });

  it("a big-endian NIfTI-2 (re-packed by Python's struct from example_nifti2)", async () => {
    const out = join(dir, "be2.nii");
    python<null>(
      `
import gzip, struct, sys, array, json
raw = gzip.decompress(open(sys.argv[1], 'rb').read())
fmt = 'i8s2h8q3d8dq2d2d2d2q80s24s2i6d4d4d4d3i16sc15s'
assert struct.calcsize('<' + fmt) == 540
fields = struct.unpack('<' + fmt, raw[:540])
vo = fields[4 + 8 + 3 + 8]
data = array.array('h'); data.frombytes(raw[vo:]); data.byteswap()
open(sys.argv[2], 'wb').write(struct.pack('>' + fmt, *fields) + raw[540:vo] + data.tobytes())
print('null')`,
      fixture("example_nifti2.nii.gz"),
      out,
    );
    expect(pyNiftiHeader(out).endian).toBe(">");
    const header = await readImageHeader(out, "be2.nii");
    expect(header.dimensions).toEqual([32, 20, 12, 2]);
    expect(header.dtype).toBe("int16");
    expect(header.spacing).toEqual([2, 2, 2.1999990940093994]);
  });
});

describe("readImageHeader: real PNG and JPEG files", () => {
  /** Width, height and samples per pixel parsed by Python from the PNG IHDR / JPEG SOF segment. */
  function pyRasterInfo(path: string): { width: number; height: number; channels: number } {
    return python(
      `
import struct, sys, json
b = open(sys.argv[1], 'rb').read()
if b[:8] == b'\\x89PNG\\r\\n\\x1a\\n':
    w, h, depth, color = struct.unpack('>IIBB', b[16:26])
    print(json.dumps({'width': w, 'height': h, 'channels': {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}[color]}))
else:
    i = 2
    while True:
        marker, length = struct.unpack('>HH', b[i:i + 4])
        if marker in (0xFFC0, 0xFFC1, 0xFFC2):
            _, h, w, n = struct.unpack('>BHHB', b[i + 4:i + 10])
            print(json.dumps({'width': w, 'height': h, 'channels': n}))
            break
        i += 2 + length`,
      path,
    );
  }

  it.each([
    ["cell.png", "png", ".png", 550, 660, 1],
    ["camera.png", "png", ".png", 512, 512, 1],
    ["astronaut.png", "png", ".png", 512, 512, 3],
    ["retina.jpg", "jpeg", ".jpg", 1411, 1411, 3],
  ] as const)("%s", async (name, format, extension, width, height, channels) => {
    const path = fixture(name);
    expect(pyRasterInfo(path)).toEqual({ width, height, channels });
    const header = await readImageHeader(path, name);
    expect(header).toEqual({
      format,
      extension,
      dimensions: [width, height],
      spatialShape: [width, height],
      channels,
      spacing: [1, 1],
      dtype: "uint8",
    });
  });

  it("a JPEG named .jpeg", async () => {
    const header = await readImageHeader(fixture("retina.jpg"), "retina.JPEG");
    expect(header.format).toBe("jpeg");
    expect(header.extension).toBe(".jpeg");
  });

  it("16-bit and RGBA PNGs written by sharp", async () => {
    const rgba = await tmpFile(
      "rgba.png",
      await sharp({ create: { width: 7, height: 5, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } })
        .png()
        .toBuffer(),
    );
    expect(await readImageHeader(rgba, "rgba.png")).toMatchObject({ dimensions: [7, 5], channels: 4, dtype: "uint8" });
    const grey16 = await tmpFile(
      "grey16.png",
      await sharp(Buffer.from(new Uint16Array(6 * 4).fill(1000).buffer), { raw: { width: 6, height: 4, channels: 1 } })
        .toColourspace("grey16")
        .png()
        .toBuffer(),
    );
    expect(await readImageHeader(grey16, "grey16.png")).toMatchObject({ dimensions: [6, 4], dtype: "uint16" });
  });
});

describe("readImageHeader: invalid files throw InvalidImageError", () => {
  it("a truncated .nii.gz (first 100000 bytes of ch2.nii.gz)", async () => {
    const bytes = (await readFile(fixture("ch2.nii.gz"))).subarray(0, 100_000);
    const path = await tmpFile("ch2_cut.nii.gz", bytes);
    await expectInvalidImage(readImageHeader(path, "ch2_cut.nii.gz"), /ch2_cut\.nii\.gz: .*gzip stream is truncated/);
  });

  it("a .nii.gz whose gzip stream is whole but holds too few voxels", async () => {
    const raw = gunzipSync(await readFile(fixture("ch2.nii.gz")));
    const path = await tmpFile("short.nii.gz", gzipSync(raw.subarray(0, raw.length - 1)));
    await expectInvalidImage(
      readImageHeader(path, "short.nii.gz"),
      /truncated NIfTI data: 7109488 bytes after decompression, but vox_offset 352 \+ 7109137 voxels x 1 bytes needs 7109489/,
    );
  });

  it("a .nii.gz with corrupt compressed data", async () => {
    const bytes = Buffer.from(await readFile(fixture("example4d.nii.gz")));
    for (let i = 5000; i < 6000; i++) {
      bytes[i] = (bytes[i]! * 7 + 13) & 0xff;
    }
    const path = await tmpFile("corrupt.nii.gz", bytes);
    await expectInvalidImage(readImageHeader(path, "corrupt.nii.gz"), /gzip stream is (corrupt|truncated)/);
  });

  it("a truncated .nii (data shorter than vox_offset + nvox * 2)", async () => {
    const path = await tmpFile("anat_cut.nii", (await readFile(fixture("anatomical.nii"))).subarray(0, 50_000));
    await expectInvalidImage(
      readImageHeader(path, "anat_cut.nii"),
      /truncated NIfTI data: 50000 bytes, but vox_offset 352 \+ 33825 voxels x 2 bytes needs 68002/,
    );
  });

  it("a .nii shorter than its header", async () => {
    const path = await tmpFile("hdr_cut.nii", (await readFile(fixture("anatomical.nii"))).subarray(0, 200));
    await expectInvalidImage(readImageHeader(path, "hdr_cut.nii"), /truncated NIfTI-1 header \(200 of 348 bytes\)/);
  });

  it("a PNG renamed .nii", async () => {
    const path = await tmpFile("cell.nii", await readFile(fixture("cell.png")));
    await expectInvalidImage(
      readImageHeader(path, "cell.nii"),
      /not a valid \.nii file \(the content is a PNG image\)/,
    );
  });

  it("a PNG renamed .nii.gz", async () => {
    const path = await tmpFile("cell.nii.gz", await readFile(fixture("cell.png")));
    await expectInvalidImage(readImageHeader(path, "cell.nii.gz"), /the content is a PNG image/);
  });

  it("a gzip file that is not a NIfTI inside", async () => {
    const path = await tmpFile("text.nii.gz", gzipSync(Buffer.from("hello, this is not an image\n".repeat(100))));
    await expectInvalidImage(readImageHeader(path, "text.nii.gz"), /decompressed content is not a NIfTI file/);
  });

  it("an uncompressed NIfTI named .nii.gz, and a compressed one named .nii", async () => {
    await expectInvalidImage(readImageHeader(fixture("anatomical.nii"), "anatomical.nii.gz"), /not gzip-compressed/);
    await expectInvalidImage(readImageHeader(fixture("ch2.nii.gz"), "ch2.nii"), /gzip-compressed; name it \.nii\.gz/);
  });

  it("a NIfTI .hdr/.img pair header (magic ni1)", async () => {
    const bytes = Buffer.from((await readFile(fixture("anatomical.nii"))).subarray(0, 352));
    bytes.write("ni1\0", 344, "latin1");
    const path = await tmpFile("pair.nii", bytes);
    await expectInvalidImage(readImageHeader(path, "pair.nii"), /\.hdr\/\.img\) are not supported/);
  });

  it("a NIfTI with an unknown datatype", async () => {
    const bytes = Buffer.from(await readFile(fixture("anatomical.nii")));
    bytes.writeInt16BE(3, 70);
    const path = await tmpFile("dt.nii", bytes);
    await expectInvalidImage(readImageHeader(path, "dt.nii"), /unsupported NIfTI datatype code 3/);
  });

  it("a text file named .nrrd", async () => {
    const path = await tmpFile("notes.nrrd", "these are my notes\nnot an image\n");
    await expectInvalidImage(readImageHeader(path, "notes.nrrd"), /not a valid \.nrrd file \(no NRRD000x magic line\)/);
  });

  it("a truncated PNG (first 30000 bytes of cell.png)", async () => {
    const path = await tmpFile("cell_cut.png", (await readFile(fixture("cell.png"))).subarray(0, 30_000));
    await expectInvalidImage(readImageHeader(path, "cell_cut.png"), /corrupt or truncated PNG data/);
  });

  it("a truncated JPEG (first 100000 bytes of retina.jpg)", async () => {
    const path = await tmpFile("retina_cut.jpg", (await readFile(fixture("retina.jpg"))).subarray(0, 100_000));
    await expectInvalidImage(readImageHeader(path, "retina_cut.jpg"), /corrupt or truncated JPEG data/);
  });

  it("scikit-image's truncated.jpg", async () => {
    await expectInvalidImage(readImageHeader(fixture("truncated.jpg"), "truncated.jpg"), /truncated\.jpg: .*JPEG/);
  });

  it("a PNG named .jpg and a JPEG named .png", async () => {
    await expectInvalidImage(readImageHeader(fixture("cell.png"), "cell.jpg"), /the content is a PNG image/);
    await expectInvalidImage(readImageHeader(fixture("retina.jpg"), "retina.png"), /the content is a JPEG image/);
  });

  it.each(["empty.nii.gz", "empty.nii", "empty.nrrd", "empty.png", "empty.jpg"])("an empty file (%s)", async (name) => {
    const path = await tmpFile(name, "");
    await expectInvalidImage(readImageHeader(path, name), /empty file/);
  });

  it.each(["volume.mha", "notes.txt", "scan.nii.bz2", "README"])("an unknown extension (%s)", async (name) => {
    const path = join(dir, "unknown-ext");
    await copyFile(fixture("anatomical.nii"), path);
    await expectInvalidImage(readImageHeader(path, name), /unsupported file type; expected one of \.nii\.gz/);
  });

  it("a missing file is not an InvalidImageError", async () => {
    await expect(readImageHeader(join(dir, "does-not-exist"), "x.nii")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
