import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidInputError } from "../../errors.js";
import { writeNifti } from "../../io/nifti.js";
import { writeNrrd } from "../../io/nrrd.js";
import { type MetaTensor, toVolume } from "../../transforms/tensor.js";

const EXTENSIONS = [".nii.gz", ".nii", ".nrrd", ".seg.nrrd"];
const DTYPES = ["uint8", "int16", "uint16", "int32", "float32"];

/**
 * MONAI Label's Writer: the prediction as a label file in a temporary folder. `result_extension`
 * (.nii.gz by default, .nii, .nrrd, .seg.nrrd), `result_dtype` (default uint8) and `result_compress`
 * come from the request.
 */
export async function writeLabel(pred: MetaTensor, params: Record<string, unknown>): Promise<string> {
  let ext = typeof params.result_extension === "string" ? params.result_extension : ".nii.gz";
  if (params.result_compress === false && ext === ".nii.gz") {
    ext = ".nii";
  }
  if (!EXTENSIONS.includes(ext)) {
    throw new InvalidInputError(
      `result_extension ${JSON.stringify(ext)} is not supported here (use ${EXTENSIONS.join(" or ")})`,
    );
  }
  const dtype = typeof params.result_dtype === "string" ? params.result_dtype : "uint8";
  if (!DTYPES.includes(dtype)) {
    throw new InvalidInputError(`result_dtype ${JSON.stringify(dtype)} is not one of ${DTYPES.join(", ")}`);
  }
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-infer-"));
  const path = join(dir, `label${ext}`);
  const volume = toVolume(pred, dtype);
  if (ext.endsWith(".nrrd")) {
    // Slicer's segmentation files are NRRD too; multi-channel output keeps its channel axis.
    await writeNrrd(volume, path, { encoding: params.result_compress === false ? "raw" : "gzip" });
  } else {
    await writeNifti(volume, path);
  }
  return path;
}
