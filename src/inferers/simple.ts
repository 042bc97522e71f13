import { InfererError } from "./errors.js";
import { checkTensor, formatShape } from "./tensor.js";
import type { Float32Tensor, Inferer, Predictor } from "./types.js";

/**
 * MONAI's `SimpleInferer`: the whole input goes through the predictor in one call. The output must keep the
 * batch size; its other axes are the model's business (a classifier may return [N, K]).
 */
export class SimpleInferer implements Inferer {
  async infer(input: Float32Tensor, predictor: Predictor): Promise<Float32Tensor> {
    checkTensor(input, "input", 2, 8, "batch first, [N, C, ...]");
    const out = await predictor(input);
    checkTensor(out, "predictor output", 1, 8, "batch first, [N, ...]");
    if (out.shape[0] !== input.shape[0]) {
      throw new InfererError(
        `predictor output ${formatShape(out.shape)} has batch size ${out.shape[0]}, input ${formatShape(input.shape)} has ${input.shape[0]}`,
        { inputShape: input.shape, outputShape: out.shape },
      );
    }
    return out;
  }
}
