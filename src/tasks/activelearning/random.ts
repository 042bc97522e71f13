import { type Candidate, lastServed, Strategy, type StrategyContext, type StrategyRequest } from "./strategy.js";

/** MONAI's weights: seconds since the strategy last served each candidate (never served counts from 0). */
export function randomWeights(candidates: readonly Candidate[], strategy: string, now: number): Float64Array {
  const weights = new Float64Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    // A timestamp from a clock ahead of ours would give a negative weight; it counts as just served.
    weights[i] = Math.max(0, now - lastServed(candidates[i] as Candidate, strategy));
  }
  return weights;
}

/**
 * Python's random.choices for one draw: the first index whose cumulative weight exceeds u * total. All-zero
 * weights (everything served this second) fall back to a uniform draw, where Python would raise.
 */
export function weightedIndex(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    total += weights[i] as number;
  }
  if (!(total > 0)) {
    return Math.min(weights.length - 1, Math.floor(u * weights.length));
  }
  const target = u * total;
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    cumulative += weights[i] as number;
    if (cumulative > target) {
      return i;
    }
  }
  return weights.length - 1;
}

/**
 * MONAI's Random: a draw among the unlabeled images weighted by how long ago this strategy last served each
 * one, so images never served (weight = now) dominate and recently served ones are rarely repeated.
 * Returns `{id, weight}` with the chosen image's weight (MONAI returns the first image's, a quirk not kept).
 */
export class Random extends Strategy {
  constructor() {
    super("Random Strategy");
  }

  async select(request: StrategyRequest, ctx: StrategyContext) {
    const { candidates } = ctx;
    if (candidates.length === 0) {
      return null;
    }
    const weights = randomWeights(candidates, request.strategy, ctx.now);
    const i = weightedIndex(weights, ctx.random());
    return { id: (candidates[i] as Candidate).id, weight: weights[i] as number };
  }
}
