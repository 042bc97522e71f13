import { appConf, confFlag, confInt, confNumber } from "labelgraph";
import type { z } from "zod";

/**
 * The radiology app's `--conf`: MONAI's common keys (`models`, `preload`, `skip_*`, `use_pretrained_model`, from
 * LabelApp's `appConf`) plus its own. Every key has a default, so `--conf` is only needed to change one.
 * Two path keys are read as given (any string): `model_dir`, where training runs write and publish (default
 * <app>/model; tests point it at a temporary folder), and `pretrained_path`, the shipped model (MONAI's key; here
 * an ONNX file, default <app>/model/pretrained_segmentation.onnx).
 */
export const radiologyConf = appConf.extend({
  /** Default epochs of a training run (a request's `max_epochs` still wins). */
  max_epochs: confInt(50, 1),
  /** Default learning rate of a training run (Adam). */
  learning_rate: confNumber(1e-3, 0, 1),
  /** Random 64^3 patches drawn per labeled image and epoch. */
  num_samples: confInt(4, 1),
  /** Voxel size (mm) images are resampled to before the network; the shipped model was trained at 2 mm. */
  target_spacing: confNumber(2, 0.25, 10),
  /** Offer the epistemic (MC dropout) strategy and scoring method (MONAI's key). */
  epistemic_enabled: confFlag(true),
  /** Stochastic passes per image of epistemic scoring (MONAI's `epistemic_samples`). */
  epistemic_samples: confInt(5, 2),
  /** Score at most this many images per epistemic run, 0 for all (MONAI's `epistemic_max_samples`). */
  epistemic_max_samples: confInt(0, 0),
});

export type RadiologyConf = z.output<typeof radiologyConf> & { model_dir?: string; pretrained_path?: string };
