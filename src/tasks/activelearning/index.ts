export { ActiveLearningService, type NextImage, type NextImageInput } from "./active-learning.service.js";
export { Epistemic, type EpistemicOptions } from "./epistemic.js";
export { First, Last } from "./first.js";
export { Random, randomWeights, weightedIndex } from "./random.js";
export {
  type Candidate,
  lastServed,
  Strategy,
  type StrategyContext,
  type StrategyInfo,
  type StrategyRequest,
  type StrategyResult,
} from "./strategy.js";
export { toCandidate, UnlabeledIndex } from "./unlabeled-index.js";
