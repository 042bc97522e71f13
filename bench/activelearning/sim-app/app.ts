import { LabelApp } from "../../../src/app/label-app.js";
import { Epistemic } from "../../../src/tasks/activelearning/epistemic.js";
import { Random } from "../../../src/tasks/activelearning/random.js";
import type { Strategy } from "../../../src/tasks/activelearning/strategy.js";
import { BasicInferTask } from "../../../src/tasks/infer/basic-infer-task.js";
import type { InferTask } from "../../../src/tasks/infer/infer-task.js";
import { EpistemicScoring } from "../../../src/tasks/scoring/epistemic.js";
import type { ScoringMethod } from "../../../src/tasks/scoring/scoring-method.js";
import type { Data, Transform } from "../../../src/transforms/compose.js";
import { SpatialPadd } from "../../../src/transforms/croppad.js";
import { EnsureChannelFirstd, LoadImaged } from "../../../src/transforms/io.js";

/**
 * The app of the active-learning simulation (bench/activelearning/simulation.ts): Colin27 axial slices stored
 * as 2D NIfTI files already scaled to [0, 1] (whole volume), a 2D UNet with dropout whose current round's model
 * is `--conf model_path`, MONAI's random and epistemic strategies, and epistemic scoring (MC dropout).
 * `--conf pad` is the network input, HEIGHTxWIDTH (default 224x192); `simulation_size` the MC passes.
 */
class BrainMask extends BasicInferTask {
  preTransforms(data: Data): Transform[] {
    const [h, w] = String(data.pad ?? "224x192")
      .split("x")
      .map(Number);
    return [
      new LoadImaged({ keys: "image" }),
      new EnsureChannelFirstd({ keys: "image" }),
      new SpatialPadd({ keys: "image", spatialSize: [h as number, w as number] }),
    ];
  }
  postTransforms(): Transform[] {
    return [];
  }
}

export default class SimulationApp extends LabelApp {
  override name = "al-simulation";
  override labels = ["brain"];

  override initInfers(): Record<string, InferTask> {
    return {
      brain: new BrainMask({
        path: this.context.conf.model_path ?? "",
        type: "segmentation",
        labels: ["brain"],
        dimension: 2,
        description: "Colin27 brain mask, 2D UNet with dropout (simulation model)",
        skipWriter: true,
        config: { pad: this.context.conf.pad ?? "224x192" },
      }),
    };
  }

  override initStrategies(): Record<string, Strategy> {
    return { random: new Random(), epistemic: new Epistemic() };
  }

  override initScoringMethods(): Record<string, ScoringMethod> {
    return {
      epistemic: new EpistemicScoring({
        model: "brain",
        simulationSize: Number(this.context.conf.simulation_size ?? 5),
        activation: "sigmoid",
      }),
    };
  }
}
