import type { ImageFormat } from "./types.js";

/** File extensions the datastore accepts for images and labels, lower-case, with their dot. */
export const KNOWN_EXTENSIONS: readonly string[] = [
  ".nii.gz",
  ".nii",
  ".nrrd",
  ".seg.nrrd",
  ".png",
  ".jpg",
  ".jpeg",
  ".tif",
  ".tiff",
];

// Longest first, so ".nii.gz" wins over a shorter suffix and ".seg.nrrd" over ".nrrd".
const BY_LENGTH = [...KNOWN_EXTENSIONS].sort((a, b) => b.length - a.length);

const FORMATS: Readonly<Record<string, ImageFormat>> = {
  ".nii.gz": "nifti",
  ".nii": "nifti",
  ".nrrd": "nrrd",
  ".seg.nrrd": "nrrd",
  ".png": "png",
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".tif": "tiff",
  ".tiff": "tiff",
};

export interface SplitFileName {
  /** The file name without its extension: MONAI Label's image id. */
  id: string;
  /** The longest known extension the name ends with, lower-case with its dot; "" when none matches. */
  ext: string;
}

/**
 * Splits a file name the way MONAI Label derives an image id: the name minus the LONGEST known extension,
 * matched case-insensitively (`spleen_3.nii.gz` -> `spleen_3` + `.nii.gz`, `a.seg.nrrd` -> `a` + `.seg.nrrd`).
 * When no known extension matches, `ext` is "" and `id` is the whole name. A name that is nothing but an
 * extension (".nii.gz") has no id, so it counts as having no known extension.
 */
export function splitImageFileName(fileName: string): SplitFileName {
  const lower = fileName.toLowerCase();
  for (const ext of BY_LENGTH) {
    if (lower.length > ext.length && lower.endsWith(ext)) {
      return { id: fileName.slice(0, fileName.length - ext.length), ext };
    }
  }
  return { id: fileName, ext: "" };
}

/** The format an extension stands for (case-insensitive, with its dot), or undefined for an unknown one. */
export function formatFromExtension(ext: string): ImageFormat | undefined {
  return FORMATS[ext.toLowerCase()];
}

export function isKnownExtension(ext: string): boolean {
  return formatFromExtension(ext) !== undefined;
}
