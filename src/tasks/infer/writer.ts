import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidInputError } from "../../errors.js";
import { writeNifti } from "../../io/nifti.js";
import { type MetaTensor, toVolume } from "../../transforms/tensor.js";

const EXTENSIONS = [".nii.gz", ".nii"];
const DTYPES = ["uint8", "int16", "uint16", "int32", "float32"];

/**
 * MONAI Label's Writer: the prediction as a label file in a temporary folder. `result_extension`
 * (default .nii.gz), `result_dtype` (default uint8) and `result_compress` come from the request.
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
  await writeNifti(toVolume(pred, dtype), path);
  return path;
}
