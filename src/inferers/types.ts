/**
 * A dense float32 tensor in C order (last axis fastest), batch first: [N, C, ...spatial]. This is the layout of
 * torch tensors and of onnxruntime tensors, so a predictor can hand `data` to a model without copying.
 */
export interface Float32Tensor {
  data: Float32Array;
  shape: number[];
}

/**
 * Runs a network on one batch: [n, C_in, ...spatial] in, [n, C_out, ...spatial] out. The caller may reuse
 * `input.data` once the promise resolves (the sliding window fills one buffer for every call), so a predictor
 * must not keep it; its output is read before the next call.
 */
export type Predictor = (input: Float32Tensor) => Promise<Float32Tensor>;

/** MONAI's `Inferer`: how a whole image is pushed through a predictor. */
export interface Inferer {
  infer(input: Float32Tensor, predictor: Predictor): Promise<Float32Tensor>;
}
