import type { LabelApp } from "../../app/label-app.js";
import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { ImageRecord } from "../../datastore/types.js";
import { ErrorCode, InvalidInputError, LabelgraphError } from "../../errors.js";
import type { PubSub } from "../../events/pubsub.js";
import type { Logger } from "../../logger.js";
import type { Strategy, StrategyRequest, StrategyResult } from "./strategy.js";
import { holds, UnlabeledIndex } from "./unlabeled-index.js";

export interface NextImageInput {
  /** A strategy the app registered (default "random", MONAI's default). */
  strategy?: string | null;
  clientId?: string | null;
  params?: Record<string, unknown> | null;
}

export interface NextImage {
  /** The image as stored after the serve was recorded in its info. */
  image: ImageRecord;
  strategy: string;
  clientId: string | null;
  /** Seconds since the epoch, as recorded in `info.strategy[strategy].ts`. */
  servedAt: number;
  /** What the strategy returned (`id`, plus `weight` or `epistemic_entropy` ...), MONAI's response body. */
  result: StrategyResult;
}

/** A pick the index could not have known was stale (another process changed it) is retried this often. */
const ATTEMPTS = 4;

export const unknownStrategy = (name: string, known: string[]) =>
  new InvalidInputError(
    `strategy ${JSON.stringify(name)} not found (strategies: ${known.join(", ") || "none; the app defines none"})`,
    { strategy: name },
  );

/**
 * MONAI Label's next_sample: runs one of the app's strategies over the unlabeled images and records the serve
 * in the image info as MONAI does (`strategy: {<name>: {ts, client_id}}`), so Random and Epistemic spread
 * later picks. Unlike MONAI it does not queue every scoring method after each pick (scoring follows final
 * labels and model versions instead; see ScoringService).
 */
export class ActiveLearningService {
  readonly index: UnlabeledIndex;

  constructor(
    private readonly deps: {
      app: LabelApp;
      datastore: DatastoreService;
      pubsub: PubSub;
      log?: Logger;
      /** Uniform in [0, 1); default Math.random. */
      random?: () => number;
      /** Milliseconds since the epoch; default Date.now. */
      clock?: () => number;
    },
  ) {
    this.index = new UnlabeledIndex({ datastore: deps.datastore, pubsub: deps.pubsub, log: deps.log });
  }

  /** Follows datastore changes and builds the index in the background. */
  start(): void {
    this.index.start().catch((err) => this.deps.log?.error("building the active learning index failed", err));
  }

  stop(): Promise<void> {
    return this.index.stop();
  }

  strategies(): [string, Strategy][] {
    return Object.entries(this.deps.app.strategies());
  }

  strategy(name: string): Strategy {
    const strategy = this.deps.app.strategies()[name];
    if (!strategy) {
      throw unknownStrategy(
        name,
        this.strategies().map(([n]) => n),
      );
    }
    return strategy;
  }

  /** The image to label next, or null when no image is left; records who it was served to and when. */
  async nextImage(input: NextImageInput = {}): Promise<NextImage | null> {
    const name = input.strategy ?? "random";
    const strategy = this.strategy(name);
    const request: StrategyRequest = { strategy: name, clientId: input.clientId ?? null, params: input.params ?? {} };
    const { datastore } = this.deps;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const candidates = await this.index.snapshot();
      const now = Math.floor((this.deps.clock ?? Date.now)() / 1000);
      const result = await strategy.select(request, {
        candidates,
        now,
        random: this.deps.random ?? Math.random,
        datastore,
      });
      if (!result) {
        return null;
      }
      // A pick from the index is checked against the database: one indexed lookup, and the index is
      // corrected if another writer got there first. Ids a strategy found elsewhere are its own business.
      const fromIndex = holds(candidates, result.id);
      if (fromIndex && (await datastore.findLabel(result.id, "final"))) {
        this.index.touch(result.id);
        continue;
      }
      this.index.markServed(result.id, name, now);
      const image = await this.recordServe(result.id, name, now, request.clientId);
      if (!image) {
        this.index.touch(result.id);
        continue;
      }
      return { image, strategy: name, clientId: request.clientId, servedAt: now, result };
    }
    throw new LabelgraphError(ErrorCode.INVALID_INPUT, `strategy ${name} kept choosing images that are gone`);
  }

  /** Merges `{strategy: {<name>: {ts, client_id}}}` into the image info; null when the image is gone. */
  private async recordServe(id: string, strategy: string, ts: number, clientId: string | null) {
    const image = await this.deps.datastore.findImage(id);
    if (!image) {
      return null;
    }
    const served = image.info.strategy;
    const previous = served && typeof served === "object" && !Array.isArray(served) ? served : {};
    const patch = { strategy: { ...previous, [strategy]: { ts, client_id: clientId } } };
    try {
      return await this.deps.datastore.updateImageInfo(id, patch, null, "api");
    } catch (err) {
      if (err instanceof LabelgraphError && err.code === ErrorCode.IMAGE_NOT_FOUND) {
        return null;
      }
      // MONAI only logs a failed record (a read-only datastore refuses it): the pick still stands.
      this.deps.log?.warn(`could not record that ${strategy} served ${id}: ${(err as Error).message}`);
      return { ...image, info: { ...image.info, ...patch } };
    }
  }
}
