import type { DatastoreService } from "../../datastore/datastore.service.js";
import type { DatastoreChange, ImageRecord, Info, LabelRecord } from "../../datastore/types.js";
import type { PubSub } from "../../events/pubsub.js";
import type { Logger } from "../../logger.js";
import type { Candidate } from "./strategy.js";

/** What the index reads: pages of unlabeled images to build, then images and labels by id to follow changes. */
export type IndexDatastore = Pick<DatastoreService, "pageImages" | "getImages" | "labelsOfMany">;

/** Whether the sorted candidates hold `id` (binary search). */
export function holds(list: readonly Candidate[], id: string): boolean {
  return list[lowerBound(list, id)]?.id === id;
}

/** The candidate view of an image: its served timestamps and numeric info entries. */
export function toCandidate(id: string, info: Info): Candidate {
  const scores: Record<string, number> = {};
  for (const [key, value] of Object.entries(info)) {
    if (typeof value === "number" && Number.isFinite(value)) {
      scores[key] = value;
    }
  }
  const served: Record<string, number> = {};
  const strategy = info.strategy;
  if (strategy && typeof strategy === "object" && !Array.isArray(strategy)) {
    for (const [name, record] of Object.entries(strategy as Record<string, unknown>)) {
      const ts = (record as { ts?: unknown } | null)?.ts;
      if (typeof ts === "number" && Number.isFinite(ts)) {
        served[name] = ts;
      }
    }
  }
  return { id, served, scores };
}

/** The index of the first element whose id is >= `id` (code unit order, the order `candidates` keep). */
export function lowerBound(list: readonly Candidate[], id: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as Candidate).id < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

const touches = (c: DatastoreChange) =>
  c.kind.startsWith("IMAGE_") ||
  ((c.kind === "LABEL_SAVED" || c.kind === "LABEL_REMOVED") && (c.tag === null || c.tag === "final"));

/**
 * The unlabeled images with what strategies read of their info, in memory, sorted by id. Reading 100,000 rows
 * of info for every pick costs about half a second on SQLite (and extracting one JSON field in SQL still
 * 50-80 ms, bench/activelearning), so the index is built once (in pages, in the background at start) and then
 * follows `datastore:changed`: each change marks its image dirty, and dirty images are re-read in batches.
 * A generation per image keeps a read that raced a newer change from being applied. Readers (`snapshot`) wait
 * for the build and for the dirty images to be re-read, so a pick sees every change published before it.
 *
 * Changes made by another process reach it only through a shared event target (the Redis pubsub).
 */
export class UnlabeledIndex {
  #list: Candidate[] = [];
  #built: Promise<void> | null = null;
  #ready = false;
  #seq = 0;
  #generation = 0;
  #stopped = false;
  readonly #dirty = new Map<string, number>();
  #flushing: Promise<void> | null = null;
  #events: AsyncIterator<DatastoreChange> | null = null;
  #listening: Promise<void> | null = null;

  constructor(
    private readonly deps: {
      datastore: IndexDatastore;
      pubsub: PubSub;
      log?: Logger;
      /** Rows per page while building (default 1000: SQLite blocks the event loop for each page). */
      pageSize?: number;
    },
  ) {}

  /** Starts following changes and builds the index in the background. */
  start(): Promise<void> {
    this.#stopped = false;
    if (!this.#events) {
      const events = this.deps.pubsub.subscribe("datastore:changed");
      this.#events = events;
      this.#listening = (async () => {
        for await (const change of events) {
          if (touches(change)) {
            this.touch(change.imageId);
          }
        }
      })().catch((err) => this.deps.log?.error("active learning index stopped following changes", err));
    }
    return this.ready();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const events = this.#events;
    this.#events = null;
    await events?.return?.();
    await this.#listening;
    await this.#built?.catch(() => {});
    await this.#flushing;
  }

  /** Resolves once built (building now if nothing started it). */
  ready(): Promise<void> {
    if (!this.#built) {
      const built = this.#build();
      this.#built = built;
      // A failed build is retried by the next reader.
      built.catch(() => {
        if (this.#built === built) {
          this.#built = null;
        }
      });
    }
    return this.#built;
  }

  /** Drops everything and builds again (after a change the events could not have told, e.g. a restore). */
  invalidate(): Promise<void> {
    this.#built = null;
    this.#ready = false;
    return this.ready();
  }

  get size(): number {
    return this.#list.length;
  }

  /** The unlabeled images in id order, current as of every change published before the call. */
  async snapshot(): Promise<readonly Candidate[]> {
    await this.ready();
    // Changes keep coming under load: settle what is dirty now, at most a few rounds.
    for (let round = 0; round < 3 && this.#dirty.size > 0; round++) {
      await this.#flush();
    }
    return this.#list.slice();
  }

  /** Marks an image for re-reading (called for every relevant change; also by a reader that found it stale). */
  touch(id: string): void {
    this.#dirty.set(id, ++this.#seq);
    if (this.#ready) {
      void this.#flush();
    }
  }

  /** Records a serve at once, so the next pick sees it before the change event comes back. */
  markServed(id: string, strategy: string, ts: number): void {
    const at = lowerBound(this.#list, id);
    const current = this.#list[at];
    if (current?.id === id) {
      this.#list[at] = { ...current, served: { ...current.served, [strategy]: ts } };
    }
  }

  async #build(): Promise<void> {
    const generation = ++this.#generation;
    this.#ready = false;
    const pageSize = this.deps.pageSize ?? 1000;
    const list: Candidate[] = [];
    let after: string | undefined;
    for (;;) {
      if (this.#stopped) {
        return; // closing: a half-built index is never read
      }
      const page = await this.deps.datastore.pageImages(
        { labeled: false },
        { ...(after === undefined ? {} : { after }), limit: pageSize, inverted: false },
      );
      for (const image of page) {
        list.push(toCandidate(image.id, image.info));
      }
      if (page.length < pageSize) {
        break;
      }
      after = (page.at(-1) as ImageRecord).id;
    }
    // The database's order may follow a collation (PostgreSQL); the index keeps code unit order.
    if (list.some((c, i) => i > 0 && (list[i - 1] as Candidate).id >= c.id)) {
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    }
    if (generation !== this.#generation) {
      return; // an invalidate() started a newer build
    }
    this.#list = list;
    this.#ready = true;
    this.deps.log?.debug(`active learning index: ${list.length} unlabeled images`);
    if (this.#dirty.size > 0) {
      await this.#flush();
    }
  }

  /** Re-reads dirty images in batches until none is left; one flush runs at a time. */
  #flush(): Promise<void> {
    this.#flushing ??= (async () => {
      try {
        while (this.#dirty.size > 0 && this.#ready) {
          const batch = [...this.#dirty].slice(0, 1000);
          const ids = batch.map(([id]) => id);
          const [images, labels] = await Promise.all([
            this.deps.datastore.getImages(ids),
            this.deps.datastore.labelsOfMany(ids),
          ]);
          const byId = new Map(images.map((i) => [i.id, i]));
          for (const [id, seq] of batch) {
            if (this.#dirty.get(id) !== seq) {
              continue; // changed again while being read: the next round reads it again
            }
            this.#dirty.delete(id);
            this.#apply(id, byId.get(id) ?? null, labels.get(id) ?? []);
          }
        }
      } catch (err) {
        this.deps.log?.error("active learning index: re-reading changed images failed", err);
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  #apply(id: string, image: ImageRecord | null, labels: readonly LabelRecord[]): void {
    const at = lowerBound(this.#list, id);
    const present = this.#list[at]?.id === id;
    const unlabeled = image !== null && !labels.some((l) => l.tag === "final");
    if (!unlabeled) {
      if (present) {
        this.#list.splice(at, 1);
      }
      return;
    }
    const candidate = toCandidate(id, image.info);
    if (present) {
      this.#list[at] = candidate;
    } else {
      this.#list.splice(at, 0, candidate);
    }
  }
}
