import type { Candidate, StrategyContext, StrategyRequest } from "../../../src/tasks/activelearning/strategy.js";

/** mulberry32: a tiny seeded generator, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const candidate = (
  id: string,
  opts: { served?: Record<string, number>; scores?: Record<string, number> } = {},
): Candidate => ({ id, served: opts.served ?? {}, scores: opts.scores ?? {} });

export function context(candidates: Candidate[], now: number, random: () => number = seeded(1)): StrategyContext {
  return {
    candidates: [...candidates].sort((a, b) => (a.id < b.id ? -1 : 1)),
    now,
    random,
    datastore: {} as StrategyContext["datastore"],
  };
}

export const request = (strategy: string): StrategyRequest => ({ strategy, clientId: "tester", params: {} });
