import { describe, expect, it } from "vitest";
import { formatFromExtension, KNOWN_EXTENSIONS, splitImageFileName } from "../../../src/io/extensions.js";

describe("splitImageFileName", () => {
  it.each([
    ["spleen_3.nii.gz", "spleen_3", ".nii.gz"],
    ["spleen_3.nii", "spleen_3", ".nii"],
    ["a.seg.nrrd", "a", ".seg.nrrd"],
    ["a.nrrd", "a", ".nrrd"],
    ["img.png", "img", ".png"],
    ["photo.jpg", "photo", ".jpg"],
    ["photo.jpeg", "photo", ".jpeg"],
    // case-insensitive match; the id keeps its case, the extension is lower-case
    ["Liver_01.NII.GZ", "Liver_01", ".nii.gz"],
    ["Scan.Seg.NRRD", "Scan", ".seg.nrrd"],
    ["X.JPG", "X", ".jpg"],
    // dots inside the id stay in the id
    ["case.1.2.nii.gz", "case.1.2", ".nii.gz"],
    ["la_003.v2.nii", "la_003.v2", ".nii"],
  ])("%s -> id %s, ext %s", (name, id, ext) => {
    expect(splitImageFileName(name)).toEqual({ id, ext });
  });

  it.each(["notes.txt", "volume.nii.bz2", "volume.gz", "volume.mha", "README", "a.nii.gz.bak"])(
    "%s has no known extension: the id is the whole name",
    (name) => {
      expect(splitImageFileName(name)).toEqual({ id: name, ext: "" });
    },
  );

  it("a name that is only an extension has no id", () => {
    expect(splitImageFileName(".nii.gz")).toEqual({ id: ".nii.gz", ext: "" });
    expect(splitImageFileName(".png")).toEqual({ id: ".png", ext: "" });
  });

  it("prefers the longest matching extension", () => {
    // ".nii.gz" also ends with nothing shorter that is known, but ".seg.nrrd" ends with ".nrrd"
    expect(splitImageFileName("x.seg.nrrd").ext).toBe(".seg.nrrd");
    expect(splitImageFileName("x.nii.gz").ext).toBe(".nii.gz");
  });
});

describe("KNOWN_EXTENSIONS / formatFromExtension", () => {
  it("lists the supported extensions", () => {
    expect([...KNOWN_EXTENSIONS].sort()).toEqual([
      ".jpeg",
      ".jpg",
      ".nii",
      ".nii.gz",
      ".nrrd",
      ".png",
      ".seg.nrrd",
      ".tif",
      ".tiff",
    ]);
  });

  it("maps each extension to its format", () => {
    expect(formatFromExtension(".nii.gz")).toBe("nifti");
    expect(formatFromExtension(".nii")).toBe("nifti");
    expect(formatFromExtension(".nrrd")).toBe("nrrd");
    expect(formatFromExtension(".seg.nrrd")).toBe("nrrd");
    expect(formatFromExtension(".png")).toBe("png");
    expect(formatFromExtension(".jpg")).toBe("jpeg");
    expect(formatFromExtension(".jpeg")).toBe("jpeg");
    expect(formatFromExtension(".NII.GZ")).toBe("nifti");
    expect(formatFromExtension(".txt")).toBeUndefined();
    expect(formatFromExtension("")).toBeUndefined();
  });
});
