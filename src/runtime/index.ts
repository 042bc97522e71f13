export { ModelLoadError, ModelRunError, SessionPoolClosedError } from "./errors.js";
export { type PredictorOptions, predictorNames, sessionPredictor, withPredictor } from "./predictor.js";
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
