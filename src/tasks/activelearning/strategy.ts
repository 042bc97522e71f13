import type { DatastoreService } from "../../datastore/datastore.service.js";

/**
 * MONAI Label's Strategy (interfaces/tasks/strategy.py): given a request and the datastore, the id of the
 * image to label next, or null when there is none. Built-in ones: Random, First, Last, Epistemic; an app adds
 * its own through `LabelApp.initStrategies()`.
 */
export interface StrategyRequest {
  /** The name the app registered the strategy under; MONAI keys `info.strategy` by it. */
  strategy: string;
  /** Who asks (MONAI's `client_id`, else the user). */
  clientId: string | null;
  /** MONAI's request params (`label_tag`, `labels` ... which the local datastore ignores, as MONAI's does). */
  params: Record<string, unknown>;
}

/**
 * An unlabeled image as strategies see it: what MONAI's strategies read from `get_image_info`, kept in an
 * in-memory index so that a pick over 100,000 images needs no query (bench/activelearning).
 */
export interface Candidate {
  readonly id: string;
  /** When each strategy last served it, in seconds since the epoch (`info.strategy[name].ts`). */
  readonly served: Readonly<Record<string, number>>;
  /** The image info's numeric top-level entries: scores (`epistemic_entropy`, `dice`, an app's own) and `ts`. */
  readonly scores: Readonly<Record<string, number>>;
}

/** What a strategy may read. */
export interface StrategyContext {
  /** Every unlabeled image (no `final` label), ordered by id as MONAI sorts them (code point order). */
  readonly candidates: readonly Candidate[];
  /** Now, in whole seconds since the epoch (MONAI's `int(time.time())`). */
  readonly now: number;
  /** Uniform in [0, 1): Math.random in the server, a seeded generator in tests. */
  random(): number;
  /** The datastore, for strategies that need more than the candidates (file contents, labels). */
  readonly datastore: Pick<DatastoreService, "getImage" | "getImages" | "labelsOf" | "findLabel">;
}

/** MONAI's strategy result: the image id plus what the strategy wants to say about its choice. */
export interface StrategyResult {
  id: string;
  [key: string]: unknown;
}

export interface StrategyInfo {
  description: string;
  [key: string]: unknown;
}

export abstract class Strategy {
  constructor(readonly description: string) {}

  info(): StrategyInfo {
    return { description: this.description };
  }

  abstract select(request: StrategyRequest, ctx: StrategyContext): Promise<StrategyResult | null>;
}

/** When `strategy` last served the candidate, in seconds; 0 when never (MONAI's default). */
export function lastServed(candidate: Candidate, strategy: string): number {
  return candidate.served[strategy] ?? 0;
}
