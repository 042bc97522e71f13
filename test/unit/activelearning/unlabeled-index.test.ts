import { afterEach, describe, expect, it } from "vitest";
import type { DatastoreChange, ImageRecord, Info, LabelRecord } from "../../../src/datastore/types.js";
import { createEventBus } from "../../../src/events/pubsub.js";
import { type IndexDatastore, UnlabeledIndex } from "../../../src/tasks/activelearning/unlabeled-index.js";

/** The three datastore reads the index makes, over plain maps; `gate` holds getImages until released. */
class FakeDatastore implements IndexDatastore {
  readonly infos = new Map<string, Info>();
  readonly finals = new Set<string>();
  pages = 0;
  gate: Promise<void> | null = null;

  add(id: string, info: Info = {}) {
    this.infos.set(id, info);
  }
  private record(id: string): ImageRecord {
    return { id, info: structuredClone(this.infos.get(id) ?? {}) } as ImageRecord;
  }
  async pageImages(_f: unknown, opts: { after?: string; limit: number }) {
    this.pages++;
    return [...this.infos.keys()]
      .filter((id) => !this.finals.has(id) && (opts.after === undefined || id > opts.after))
      .sort()
      .slice(0, opts.limit)
      .map((id) => this.record(id));
  }
  async getImages(ids: readonly string[]) {
    const snapshot = ids.filter((id) => this.infos.has(id)).map((id) => this.record(id));
    await this.gate;
    return snapshot;
  }
  async labelsOfMany(ids: readonly string[]) {
    return new Map(ids.map((id) => [id, this.finals.has(id) ? [{ tag: "final" } as LabelRecord] : []]));
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const change = (kind: DatastoreChange["kind"], imageId: string, tag: string | null = null): DatastoreChange => ({
  kind,
  imageId,
  tag,
  version: null,
  source: "api",
  at: new Date(),
});

describe("UnlabeledIndex", () => {
  const pubsub = createEventBus();
  let index: UnlabeledIndex | null = null;
  afterEach(async () => {
    await index?.stop();
    index = null;
  });

  const ids = async () => (await (index as UnlabeledIndex).snapshot()).map((c) => c.id);

  it("builds from pages of unlabeled images, in id order", async () => {
    const ds = new FakeDatastore();
    for (const id of ["c", "a", "e", "b", "d"]) {
      ds.add(id, { my_score: id.charCodeAt(0) });
    }
    ds.finals.add("b");
    index = new UnlabeledIndex({ datastore: ds, pubsub, pageSize: 2 });
    await index.start();
    expect(ds.pages).toBe(3); // two full pages, then an empty one
    expect(await ids()).toEqual(["a", "c", "d", "e"]);
    expect((await index.snapshot())[0]).toEqual({ id: "a", served: {}, scores: { my_score: 97 } });
  });

  it("follows datastore:changed: new images, final labels saved and removed, info updates, removals", async () => {
    const ds = new FakeDatastore();
    ds.add("a");
    ds.add("b");
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    await index.start();

    ds.add("c", { epistemic_entropy: 0.3 });
    pubsub.publish("datastore:changed", change("IMAGE_ADDED", "c"));
    ds.finals.add("a");
    pubsub.publish("datastore:changed", change("LABEL_SAVED", "a", "final"));
    await tick();
    expect(await ids()).toEqual(["b", "c"]);

    ds.finals.delete("a");
    pubsub.publish("datastore:changed", change("LABEL_REMOVED", "a", "final"));
    ds.infos.set("c", { epistemic_entropy: 0.9, strategy: { random: { ts: 12 } } });
    pubsub.publish("datastore:changed", change("IMAGE_UPDATED", "c"));
    ds.infos.delete("b");
    pubsub.publish("datastore:changed", change("IMAGE_REMOVED", "b"));
    await tick();
    expect(await index.snapshot()).toEqual([
      { id: "a", served: {}, scores: {} },
      { id: "c", served: { random: 12 }, scores: { epistemic_entropy: 0.9 } },
    ]);
  });

  it("ignores labels of other tags", async () => {
    const ds = new FakeDatastore();
    ds.add("a");
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    await index.start();
    ds.gate = new Promise(() => {}); // any re-read would hang the snapshot
    pubsub.publish("datastore:changed", change("LABEL_SAVED", "a", "original"));
    await tick();
    expect(await ids()).toEqual(["a"]);
  });

  it("applies a serve at once", async () => {
    const ds = new FakeDatastore();
    ds.add("a");
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    await index.start();
    index.markServed("a", "random", 99);
    index.markServed("zzz", "random", 99); // not a candidate: nothing happens
    expect(await index.snapshot()).toEqual([{ id: "a", served: { random: 99 }, scores: {} }]);
  });

  it("does not apply a read that a newer change overtook", async () => {
    const ds = new FakeDatastore();
    ds.add("a", { v: 1 });
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    await index.start();
    let release = () => {};
    ds.gate = new Promise<void>((r) => {
      release = r;
    });
    ds.infos.set("a", { v: 2 });
    index.touch("a"); // the read of v: 2 starts and waits at the gate
    await tick();
    ds.infos.set("a", { v: 3 });
    ds.finals.add("a");
    index.touch("a"); // newer change while the first read is in flight
    ds.gate = null;
    release();
    expect(await ids()).toEqual([]); // v: 2 (unlabeled) was dropped; the second read saw the final label
  });

  it("replays changes published while it was building", async () => {
    const ds = new FakeDatastore();
    ds.add("a");
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    const building = index.start();
    ds.add("b");
    index.touch("b");
    await building;
    expect(await ids()).toEqual(["a", "b"]);
  });

  it("sorts a database order that is not code point order (a PostgreSQL collation)", async () => {
    const ds = new FakeDatastore();
    ds.add("b");
    ds.add("B");
    ds.add("a");
    const page = ds.pageImages.bind(ds);
    ds.pageImages = async (f, o) => (await page(f, o)).sort((x, y) => x.id.localeCompare(y.id));
    index = new UnlabeledIndex({ datastore: ds, pubsub });
    await index.start();
    expect(await ids()).toEqual(["B", "a", "b"]);
  });
});
