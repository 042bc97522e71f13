import { Strategy, type StrategyContext } from "./strategy.js";

/** MONAI's First: the lowest id among the unlabeled images, sorted. */
export class First extends Strategy {
  constructor() {
    super("Get First Sample");
  }

  async select(_request: unknown, ctx: StrategyContext) {
    const first = ctx.candidates[0];
    return first ? { id: first.id } : null;
  }
}

/** The radiology app's Last: the highest id among the unlabeled images, sorted. */
export class Last extends Strategy {
  constructor() {
    super("Get Last Sample");
  }

  async select(_request: unknown, ctx: StrategyContext) {
    const last = ctx.candidates.at(-1);
    return last ? { id: last.id } : null;
  }
}
