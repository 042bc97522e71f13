import { type Candidate, lastServed, Strategy, type StrategyContext, type StrategyRequest } from "./strategy.js";

export interface EpistemicOptions {
  /** > 0: a random pick among the best k instead of the best one. Default 0. */
  k?: number;
  /** Seconds after which a served image counts as never served. Default 86400. */
  reset?: number;
  /** The image info key holding the score. Default `epistemic_entropy` (what EpistemicScoring writes). */
  key?: string;
}

interface Ranked {
  candidate: Candidate;
  score: number | null;
  ts: number;
}

/** Orders by MONAI's two stable sorts: ts descending, then score descending (unscored last), then id. */
function better(a: Ranked, b: Ranked): boolean {
  if (a.ts !== b.ts) {
    return a.ts > b.ts;
  }
  if (a.score !== b.score) {
    return b.score === null || (a.score !== null && a.score > b.score);
  }
  return a.candidate.id < b.candidate.id;
}

/**
 * MONAI's Epistemic: ts = min(now - last served, reset) and score = info[key]; the pick is the highest ts,
 * ties broken by the highest score. Every image not served within `reset` ties at ts = reset, so in effect:
 * the most uncertain unlabeled image not served recently, else the least recently served one. Images without
 * a score rank after scored ones (MONAI counts them as 0), so an unscored datastore still yields an image.
 */
export class Epistemic extends Strategy {
  readonly k: number;
  readonly reset: number;
  readonly key: string;

  constructor(options: EpistemicOptions = {}) {
    super("Get First Sample Based on Epistemic Uncertainty");
    this.k = options.k ?? 0;
    this.reset = options.reset ?? 86400;
    this.key = options.key ?? "epistemic_entropy";
  }

  override info() {
    return { ...super.info(), k: this.k, reset: this.reset, key: this.key };
  }

  async select(request: StrategyRequest, ctx: StrategyContext) {
    const keep = Math.max(1, Math.floor(this.k));
    // A bounded insertion list of the best `keep`: O(n * k) with no sort of the whole set.
    const top: Ranked[] = [];
    for (const candidate of ctx.candidates) {
      const r: Ranked = {
        candidate,
        score: candidate.scores[this.key] ?? null,
        ts: Math.min(ctx.now - lastServed(candidate, request.strategy), this.reset),
      };
      if (top.length === keep && !better(r, top[keep - 1] as Ranked)) {
        continue;
      }
      let at = top.length;
      while (at > 0 && better(r, top[at - 1] as Ranked)) {
        at--;
      }
      top.splice(at, 0, r);
      if (top.length > keep) {
        top.pop();
      }
    }
    const chosen = this.k > 0 ? top[Math.floor(ctx.random() * top.length)] : top[0];
    if (!chosen) {
      return null;
    }
    return { id: chosen.candidate.id, epistemic_entropy: { score: chosen.score, ts: chosen.ts } };
  }
}
