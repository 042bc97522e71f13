import { join } from "node:path";
import { LabelApp } from "labelgraph";
import { interactiveInfers } from "../../../apps/radiology/lib/interactive.js";

/**
 * bench/interactive's app (and test/integration/interactive.test.ts's): only the radiology app's interactive
 * models, read from --conf model_dir (default apps/radiology/model).
 */
export default class InteractiveApp extends LabelApp {
  override name = "interactive";
  override description = "DeepGrow 2D/3D and DeepEdit on the Colin27 brain mask";
  override labels = ["brain"];

  override initInfers() {
    const dir = this.context.conf.model_dir;
    return interactiveInfers(
      typeof dir === "string" ? dir : join(import.meta.dirname, "../../../apps/radiology/model"),
    );
  }
}
