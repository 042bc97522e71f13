export type ImageFormat = "nifti" | "nrrd" | "png" | "jpeg" | "tiff";

/** What the datastore records about an image or label file, read (and validated) at upload. */
export interface ImageHeader {
  format: ImageFormat;
  /** The matched extension, lower-case, with its dot: ".nii.gz", ".nrrd", ".png", ".jpg", ".tif". */
  extension: string;
  /** Every axis the file declares, fastest-varying first (NIfTI dim[1..dim[0]], NRRD sizes, PNG / JPEG / TIFF [width, height]). */
  dimensions: number[];
  /** The spatial part of `dimensions` (at most 3 axes); a label must match its image on these. */
  spatialShape: number[];
  /** Samples per pixel for 2D images (1 grey, 3 RGB, 4 RGBA); 1 for volumes. */
  channels: number;
  /** Voxel size in mm along each spatial axis (1 when the format has none). */
  spacing: number[];
  /** Voxel type: uint8, int16, uint16, int32, uint32, float32, float64, int8, int64, uint64, rgb24 ... */
  dtype: string;
}

/** Voxels plus geometry. `data` is stored fastest-varying axis first (x, then y, then z), as NIfTI does. */
export interface Volume {
  data: ArrayLike<number> & { length: number };
  shape: number[];
  spacing: number[];
  /** 4x4 voxel-to-world (RAS+) matrix, row-major. */
  affine: number[][];
  dtype: string;
  meta: Record<string, unknown>;
}
