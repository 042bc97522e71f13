import { readFile } from "node:fs/promises";
import { InvalidInputError } from "../errors.js";
import { readImageHeader } from "../io/header.js";
import { loadImage } from "../io/load.js";
import { writeNifti } from "../io/nifti.js";
import { prod } from "../io/voxels.js";

/**
 * MONAI's binary_to_image: a `.bin` upload is raw uint8 voxels in Fortran order (first axis fastest, as
 * NIfTI stores them) on the reference image's grid; it becomes a NIfTI label with the image's geometry.
 */
export async function binaryToImage(
  binPath: string,
  reference: { path: string; fileName: string },
  outPath: string,
): Promise<void> {
  const [bytes, header] = await Promise.all([readFile(binPath), readImageHeader(reference.path, reference.fileName)]);
  const shape = header.spatialShape;
  if (bytes.length !== prod(shape)) {
    throw new InvalidInputError(
      `the .bin label holds ${bytes.length} bytes; the image's grid [${shape.join(", ")}] needs ${prod(shape)} (one uint8 per voxel)`,
      { bytes: bytes.length, shape },
    );
  }
  const ref = await loadImage(reference.path, reference.fileName);
  await writeNifti(
    {
      data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
      shape,
      spacing: header.spacing.slice(0, shape.length),
      affine: ref.affine,
      dtype: "uint8",
      meta: {},
    },
    outPath,
  );
}
