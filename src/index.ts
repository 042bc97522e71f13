/**
 * labelgraph's public API: what an app author imports (`import { LabelApp, BasicInferTask } from "labelgraph"`).
 * Template apps and apps copied out of `apps/` import from here; `labelgraph start_server` resolves the
 * "labelgraph" specifier to this file wherever the app folder lives.
 */
export * from "./app/label-app.js";
export { type ImportedParameters, importOnnxParameters } from "./graph/import.js";
export * from "./inferers/index.js";
export * from "./io/load.js";
export {
  connectedComponents,
  type LabelPolygons,
  type MaskPolygonsOptions,
  maskToPolygons,
  type Polygon,
  pointInPolygon,
  polygonArea,
} from "./io/polygons.js";
export { type Rect, readRegion, regionImageSize, writeRegionPng } from "./io/region.js";
export type { Volume } from "./io/types.js";
export * from "./nn/classifier.js";
export * from "./nn/index.js";
export * from "./nn/losses.js";
export { SessionPool, type SessionPoolOptions } from "./runtime/session-pool.js";
export * from "./tasks/activelearning/index.js";
export * from "./tasks/infer/basic-infer-task.js";
export * from "./tasks/infer/deepedit.js";
export * from "./tasks/infer/deepgrow.js";
export * from "./tasks/infer/infer-task.js";
export * from "./tasks/infer/wsi.js";
export {
  Dice,
  dice,
  dicePerLabel,
  EntropyAccumulator,
  EpistemicScoring,
  type EpistemicScoringOptions,
  flag,
  labelSum,
  loadStored,
  positiveInt,
  type ScoreUpdate,
  type ScoringContext,
  type ScoringInfo,
  ScoringMethod,
  type ScoringRequest,
  type ScoringResult,
  Sum,
  storeImageScore,
} from "./tasks/scoring/index.js";
export * from "./tasks/train/basic-train-task.js";
export * from "./tasks/train/classification-train-task.js";
export * from "./tasks/train/deepedit.js";
export * from "./tasks/train/deepgrow.js";
export * from "./transforms/index.js";
