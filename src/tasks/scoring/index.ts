export { Dice } from "./dice.js";
export { EpistemicScoring, type EpistemicScoringOptions } from "./epistemic.js";
export { type Activation, dice, dicePerLabel, EntropyAccumulator, labelSum } from "./metrics.js";
export { type ScoringJobParams, ScoringService, type ScoringTrigger } from "./scoring.service.js";
export {
  flag,
  loadStored,
  positiveInt,
  type ScoreUpdate,
  type ScoringContext,
  type ScoringInfo,
  ScoringMethod,
  type ScoringRequest,
  type ScoringResult,
  storeImageScore,
} from "./scoring-method.js";
export { Sum } from "./sum.js";
