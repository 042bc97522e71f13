export { ModelLoadError, ModelRunError, SessionPoolClosedError } from "./errors.js";
export {
  fixedBatchPredictor,
  type PredictorOptions,
  predictorNames,
  sessionPredictor,
  withPredictor,
} from "./predictor.js";
export {
  CUDA_MISSING,
  createPlacedSession,
  cudaMissing,
  isDevice,
  type PlacedSession,
  type ProviderProbe,
  parseDevice,
} from "./providers.js";
export {
  cudaLibraryInstalled,
  type Device,
  type PooledSession,
  type Provider,
  type SessionLease,
  SessionPool,
  type SessionPoolOptions,
  type SessionPoolStats,
  type SessionRequest,
} from "./session-pool.js";
