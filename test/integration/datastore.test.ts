import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatastoreChange } from "../../src/datastore/types.js";
import { LabelgraphError } from "../../src/errors.js";
import { fixture } from "../helpers/fixtures.js";
import { createHarness, type Harness, type HarnessOptions } from "../helpers/harness.js";

const backends: [string, HarnessOptions][] = [
  ["SQLite + filesystem", { provider: "sqlite", store: "fs" }],
  ["PostgreSQL + filesystem", { provider: "postgresql", store: "fs" }],
  ["SQLite + S3 (s3rver)", { provider: "sqlite", store: "s3" }],
];

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LabelgraphError) {
      return err.code;
    }
    throw err;
  }
  throw new Error("expected the call to fail");
}

describe.each(backends)("datastore on %s", (_name, opts) => {
  let h: Harness;
  const changes: DatastoreChange[] = [];
  const ch2 = fixture("ch2.nii.gz");
  const ch2bet = fixture("ch2bet.nii.gz");

  beforeAll(async () => {
    h = await createHarness(opts);
    void (async () => {
      for await (const c of h.container.pubsub.subscribe("datastore:changed")) {
        changes.push(c);
      }
    })();
  });
  afterAll(() => h.close());

  it("adds an image with its id, header and checksum, and stores its bytes", async () => {
    const ds = h.container.datastore;
    const image = await ds.addImage({ fileName: "colin27.nii.gz", path: ch2, info: { site: "MNI" }, user: "ann" });
    expect(image.id).toBe("colin27");
    expect(image.extension).toBe(".nii.gz");
    expect(image.format).toBe("nifti");
    expect(image.dimensions).toEqual([181, 217, 181]);
    expect(image.spacing).toEqual([1, 1, 1]);
    expect(image.dtype).toBe("uint8");
    expect(image.info).toMatchObject({ site: "MNI", user: "ann", name: "colin27.nii.gz" });
    const bytes = await readFile(ch2);
    expect(image.size).toBe(bytes.length);
    expect((await h.container.store.getBuffer(image.objectKey)).equals(bytes)).toBe(true);
    expect(changes.at(-1)).toMatchObject({ kind: "IMAGE_ADDED", imageId: "colin27", source: "api" });
  });

  it("keeps every save of a tag as a new version; the latest is current", async () => {
    const ds = h.container.datastore;
    const v1 = await ds.saveLabel({ imageId: "colin27", fileName: "x.nii.gz", path: ch2bet, author: "ann" });
    const v2 = await ds.saveLabel({ imageId: "colin27", fileName: "x.nii.gz", path: ch2bet, info: { note: "fixed" } });
    const orig = await ds.saveLabel({ imageId: "colin27", tag: "original", fileName: "p.nii.gz", path: ch2bet });
    expect([v1.tag, v1.version, v2.version, orig.version]).toEqual(["final", 1, 2, 1]);
    expect((await ds.getLabel("colin27", "final")).version).toBe(2);
    expect((await ds.getLabel("colin27", "final", 1)).author).toBe("ann");
    expect((await ds.labelsOf("colin27")).map((l) => `${l.tag}:${l.version}`)).toEqual(["final:2", "original:1"]);
    expect(await ds.status()).toEqual({ total: 1, completed: 1, labelTags: { final: 1, original: 1 } });
    expect(changes.at(-1)).toMatchObject({ kind: "LABEL_SAVED", tag: "original", version: 1 });
  });

  it("merges image and label info (top-level keys replace)", async () => {
    const ds = h.container.datastore;
    await ds.updateImageInfo("colin27", { a: 1, nested: { x: 1 } });
    const image = await ds.updateImageInfo("colin27", { b: 2, nested: { y: 2 } }, "bob");
    expect(image.info).toMatchObject({ site: "MNI", a: 1, b: 2, nested: { y: 2 }, user: "bob" });
    const label = await ds.updateLabelInfo("colin27", "final", { reviewed: true });
    expect(label.info).toMatchObject({ note: "fixed", reviewed: true });
    expect(label.version).toBe(2);
  });

  it("refuses bad input with a typed error and leaves the datastore unchanged", async () => {
    const ds = h.container.datastore;
    const before = await ds.status();
    const keysBefore: string[] = [];
    for await (const o of h.container.store.list("")) {
      keysBefore.push(o.key);
    }
    const truncated = join(h.dir, "truncated.nii.gz");
    await writeFile(truncated, (await readFile(ch2)).subarray(0, 100_000));
    const pngAsNii = join(h.dir, "cell.nii");
    await copyFile(fixture("cell.png"), pngAsNii);
    const small = fixture("anatomical.nii");

    expect(await codeOf(ds.addImage({ fileName: "truncated.nii.gz", path: truncated }))).toBe("INVALID_IMAGE");
    expect(await codeOf(ds.addImage({ fileName: "cell.nii", path: pngAsNii }))).toBe("INVALID_IMAGE");
    expect(await codeOf(ds.addImage({ id: "../evil", fileName: "a.nii", path: small }))).toBe("INVALID_ID");
    expect(await codeOf(ds.saveLabel({ imageId: "colin27", fileName: "a.nii", path: small }))).toBe("SHAPE_MISMATCH");
    expect(await codeOf(ds.saveLabel({ imageId: "nope", fileName: "a.nii", path: small }))).toBe("IMAGE_NOT_FOUND");
    expect(await codeOf(ds.saveLabel({ imageId: "../colin27", fileName: "a.nii", path: small }))).toBe("INVALID_ID");
    expect(await codeOf(ds.saveLabel({ imageId: "colin27", tag: "../x", fileName: "a.nii", path: ch2bet }))).toBe(
      "INVALID_ID",
    );
    expect(await codeOf(ds.saveLabel({ imageId: "colin27", fileName: "t.nii.gz", path: truncated }))).toBe(
      "INVALID_IMAGE",
    );
    expect(await codeOf(ds.removeImage("nope"))).toBe("IMAGE_NOT_FOUND");
    expect(await codeOf(ds.removeLabel("colin27", "nope"))).toBe("LABEL_NOT_FOUND");
    expect(await codeOf(ds.updateImageInfo("nope", {}))).toBe("IMAGE_NOT_FOUND");

    expect(await ds.status()).toEqual(before);
    expect((await ds.getLabel("colin27", "final")).version).toBe(2);
    const keysAfter: string[] = [];
    for await (const o of h.container.store.list("")) {
      keysAfter.push(o.key);
    }
    expect(keysAfter).toEqual(keysBefore);
  });

  it("lands 20 concurrent saves of one tag as 20 distinct versions", async () => {
    const ds = h.container.datastore;
    const small = fixture("anatomical.nii");
    await ds.addImage({ id: "anat", fileName: "anatomical.nii", path: small });
    const saved = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ds.saveLabel({ imageId: "anat", fileName: "anatomical.nii", path: small, info: { i } }),
      ),
    );
    expect(saved.map((l) => l.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const versions = await ds.labelVersions("anat", "final");
    expect(versions).toHaveLength(20);
    expect(new Set(versions.map((v) => v.objectKey)).size).toBe(20);
    expect(new Set(versions.map((v) => v.info.i)).size).toBe(20);
  });

  it("answers labeled/unlabeled, paging, counts and the training datalist", async () => {
    const ds = h.container.datastore;
    await ds.addImage({ id: "func", fileName: "functional.nii", path: fixture("functional.nii") });
    expect(await ds.labeledImages()).toEqual(["anat", "colin27"]);
    expect(await ds.unlabeledImages()).toEqual(["func"]);
    expect(await ds.countImages({ tag: "original" })).toBe(1);
    expect(await ds.countImages({ search: "o" })).toBe(1);
    const page1 = await ds.pageImages({}, { limit: 2, inverted: false });
    const page2 = await ds.pageImages({}, { after: page1.at(-1)?.id, limit: 2, inverted: false });
    expect([...page1, ...page2].map((i) => i.id)).toEqual(["anat", "colin27", "func"]);
    const datalist = await ds.datalist();
    expect(datalist.map((d) => d.image)).toEqual(["anat", "colin27"]);
    expect(datalist[1]?.labelKey).toBe((await ds.getLabel("colin27")).objectKey);
  });

  it("removes a label tag (all versions) and an image with all its labels, objects included", async () => {
    const ds = h.container.datastore;
    const anatKeys = (await ds.labelVersions("anat", "final")).map((l) => l.objectKey);
    const removed = await ds.removeLabel("anat", "final");
    expect(removed).toHaveLength(20);
    for (const key of anatKeys) {
      expect(await h.container.store.stat(key)).toBeNull();
    }
    const colin = await ds.getImage("colin27");
    const labelKeys = [
      ...(await ds.labelVersions("colin27", "final")),
      ...(await ds.labelVersions("colin27", "original")),
    ].map((l) => l.objectKey);
    await ds.removeImage("colin27");
    expect(await ds.findImage("colin27")).toBeNull();
    expect(await ds.labelVersions("colin27", "final")).toEqual([]);
    for (const key of [colin.objectKey, ...labelKeys]) {
      expect(await h.container.store.stat(key)).toBeNull();
    }
    expect(await ds.status()).toEqual({ total: 2, completed: 0, labelTags: {} });
    expect(changes.at(-1)).toMatchObject({ kind: "IMAGE_REMOVED", imageId: "colin27" });
  });

  it("replaces an image re-added under the same id and drops the old object", async () => {
    const ds = h.container.datastore;
    const old = await ds.getImage("func");
    const replaced = await ds.addImage({ id: "func", fileName: "anatomical.nii", path: fixture("anatomical.nii") });
    expect(replaced.dimensions).toEqual([33, 41, 25]);
    expect(await h.container.store.stat(old.objectKey)).toBeNull();
    expect(changes.at(-1)).toMatchObject({ kind: "IMAGE_UPDATED", imageId: "func" });
  });
});
