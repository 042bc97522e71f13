import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNifti } from "../../../src/io/nifti.js";
import {
  Compose,
  CropForegroundd,
  EnsureChannelFirstd,
  Invertd,
  LoadImaged,
  type MetaTensor,
  Orientationd,
  ScaleIntensityRanged,
  Spacingd,
} from "../../../src/transforms/index.js";

const CACHE = join(import.meta.dirname, "../../fixtures/.cache");

/** A cached real image; a missing one fails the test (never skips it). */
function fixture(name: string): string {
  const path = join(CACHE, name);
  if (!existsSync(path)) {
    throw new Error(`fixture ${name} is missing: run scripts/fetch-fixtures.sh`);
  }
  return path;
}

/**
 * The bounding box [start, end) of the nonzero voxels of an uncompressed-on-the-fly uint8 NIfTI-1 file, by
 * Python's standard library alone (gzip + struct): an independent check of LoadImaged + CropForegroundd.
 */
function pythonBoundingBox(path: string): { start: number[]; end: number[] } {
  const script = `
import gzip, struct, sys, json
raw = gzip.decompress(open(sys.argv[1], 'rb').read())
dims = struct.unpack('<8h', raw[40:56])
assert struct.unpack('<h', raw[70:72])[0] == 2, 'uint8 expected'
off = int(struct.unpack('<f', raw[108:112])[0])
X, Y, Z = dims[1], dims[2], dims[3]
data = raw[off:off + X * Y * Z]
lo = [X, Y, Z]; hi = [-1, -1, -1]
for z in range(Z):
    plane = data[z * X * Y:(z + 1) * X * Y]
    if plane.count(0) == len(plane):
        continue
    lo[2] = min(lo[2], z); hi[2] = max(hi[2], z)
    for y in range(Y):
        row = plane[y * X:(y + 1) * X]
        stripped = row.lstrip(b'\\0')
        if not stripped:
            continue
        lo[1] = min(lo[1], y); hi[1] = max(hi[1], y)
        lo[0] = min(lo[0], X - len(stripped)); hi[0] = max(hi[0], len(row.rstrip(b'\\0')) - 1)
print(json.dumps({'start': lo, 'end': [h + 1 for h in hi]}))`;
  return JSON.parse(execFileSync("/usr/bin/python3", ["-c", script, path], { encoding: "utf8" })) as {
    start: number[];
    end: number[];
  };
}

describe("Colin27 (ch2.nii.gz, 181x217x181 uint8)", () => {
  it("LoadImaged -> EnsureChannelFirstd -> Orientationd(RAS) -> ScaleIntensityRanged -> CropForegroundd, then Invertd brings a mask back", async () => {
    const path = fixture("ch2.nii.gz");
    const original = await readNifti(path);
    const pre = new Compose([
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      new Orientationd({ keys: "image", axcodes: "RAS" }),
      new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 255, bMin: 0, bMax: 1, clip: true }),
      new CropForegroundd({ keys: "image", sourceKey: "image" }),
    ]);
    const d = await pre.call({ image: path });
    const image = d.image as MetaTensor;
    expect(image.meta.filename_or_obj).toBe(path);
    expect(image.meta.spatial_shape).toEqual([181, 217, 181]);

    const box = pythonBoundingBox(path);
    expect({ start: d.foreground_start_coord, end: d.foreground_end_coord }).toEqual(box);
    expect(image.shape).toEqual([1, ...box.end.map((e, i) => e - box.start[i]!)]);

    // a same-shape mask, as a model would give: the bright half of the brain
    const mask = image.derive({ data: image.data.map((v) => (v > 0.5 ? 1 : 0)), shape: image.shape });
    const out = new Invertd({ keys: "pred", transform: pre, origKeys: "image" }).call({ ...d, pred: mask })
      .pred as MetaTensor;
    expect(out.shape).toEqual([1, 181, 217, 181]);
    expect(out.affine).toEqual(original.affine);
    // exact: the mask of the original voxels (all foreground lies inside the crop)
    let mismatches = 0;
    let ones = 0;
    for (let i = 0; i < original.data.length; i++) {
      const want = original.data[i]! / 255 > 0.5 ? 1 : 0;
      ones += want;
      if (out.data[i] !== want) {
        mismatches++;
      }
    }
    expect(ones).toBeGreaterThan(100_000);
    expect(mismatches).toBe(0);
  });

  it("through LPS and 2 mm resampling the inverted mask still lands on the original grid", async () => {
    const path = fixture("ch2.nii.gz");
    const original = await readNifti(path);
    const pre = new Compose([
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      new Orientationd({ keys: "image", axcodes: "LPS" }),
      new Spacingd({ keys: "image", pixdim: [2, 2, 2] }),
      new ScaleIntensityRanged({ keys: "image", aMin: 0, aMax: 255, bMin: 0, bMax: 1, clip: true }),
      new CropForegroundd({ keys: "image", sourceKey: "image", margin: 3 }),
    ]);
    const d = await pre.call({ image: path });
    const image = d.image as MetaTensor;
    expect(image.affine[0]![0]).toBeCloseTo(-2, 9);
    expect(image.affine[1]![1]).toBeCloseTo(-2, 9);
    const mask = image.derive({ data: image.data.map((v) => (v > 0.5 ? 1 : 0)), shape: image.shape });
    const out = new Invertd({ keys: "pred", transform: pre, origKeys: "image" }).call({ ...d, pred: mask })
      .pred as MetaTensor;
    expect(out.shape).toEqual([1, 181, 217, 181]);
    expect(out.affine).toEqual(original.affine);
    // nearest up-sampling of a 2 mm mask of fine structures: it overlaps the 1 mm mask best where it
    // should, not shifted by a voxel along any axis
    const [X, Y, Z] = [181, 217, 181];
    const jaccard = (sx: number, sy: number, sz: number) => {
      let both = 0;
      let either = 0;
      for (let z = 1; z < Z - 1; z++) {
        for (let y = 1; y < Y - 1; y++) {
          for (let x = 1; x < X - 1; x++) {
            const want = original.data[x + X * (y + Y * z)]! / 255 > 0.5;
            const got = out.data[x + sx + X * (y + sy + Y * (z + sz))] === 1;
            both += want && got ? 1 : 0;
            either += want || got ? 1 : 0;
          }
        }
      }
      return both / either;
    };
    const aligned = jaccard(0, 0, 0);
    expect(aligned).toBeGreaterThan(0.6);
    for (const [sx, sy, sz] of [
      [1, 0, 0],
      [-1, 0, 0],
      [0, 1, 0],
      [0, -1, 0],
      [0, 0, 1],
      [0, 0, -1],
    ] as const) {
      expect(jaccard(sx, sy, sz)).toBeLessThan(aligned - 0.03);
    }
  });

  it("LoadImaged reads a 4D NIfTI with its channel last, and refuses formats it has no reader for", async () => {
    const d = await new Compose([new LoadImaged({ keys: "image" }), new EnsureChannelFirstd({ keys: "image" })]).call({
      image: fixture("example4d.nii.gz"),
    });
    const volume = await readNifti(fixture("example4d.nii.gz"));
    const image = d.image as MetaTensor;
    expect(image.shape).toEqual([volume.shape[3], ...volume.shape.slice(0, 3)]);
    expect(image.meta.original_channel_dim).toBe(-1);
    expect(image.data[image.channelSize]).toBe(volume.data[volume.shape[0]! * volume.shape[1]! * volume.shape[2]!]);

    // The default reader reads every supported format (here a PNG) and refuses what is not an image.
    const png = (await new LoadImaged({ keys: "image" }).call({ image: fixture("camera.png") })).image as MetaTensor;
    expect(png.shape).toEqual([512, 512]);
    await expect(new LoadImaged({ keys: "image" }).call({ image: "missing-scan.nrrd" })).rejects.toMatchObject({
      code: "INVALID_IMAGE",
    });
    const custom = await new LoadImaged({
      keys: "image",
      reader: () => ({
        data: [1, 2],
        shape: [2, 1],
        spacing: [1, 1],
        affine: [
          [1, 0, 0, 0],
          [0, 1, 0, 0],
          [0, 0, 1, 0],
          [0, 0, 0, 1],
        ],
        dtype: "uint8",
        meta: {},
      }),
      imageOnly: false,
      ensureChannelFirst: true,
    }).call({ image: "anything.png" });
    expect((custom.image as MetaTensor).shape).toEqual([1, 2, 1]);
    expect(custom.image_meta_dict).toMatchObject({ spatial_shape: [2, 1], filename_or_obj: "anything.png" });
  });
});
