export { InfererError } from "./errors.js";
export { SimpleInferer } from "./simple.js";
export {
  type BlendMode,
  denseWindowStarts,
  type InferOptions,
  importanceMap,
  resolveRoiSize,
  SlidingWindowInferer,
  type SlidingWindowOptions,
  scanInterval,
  windowStartsPerAxis,
} from "./sliding-window.js";
export type { Float32Tensor, Inferer, Predictor } from "./types.js";
