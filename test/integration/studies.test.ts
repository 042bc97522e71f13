import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DatastoreChange } from "../../src/datastore/types.js";
import { LabelgraphError } from "../../src/errors.js";
import { fixture } from "../helpers/fixtures.js";
import { createHarness, type Harness } from "../helpers/harness.js";

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) {
      return v;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A MONAI Label-style studies folder with two images, a final and an original label, and datastore_v2.json. */
async function makeStudies(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-studies-"));
  await mkdir(join(dir, "labels", "final"), { recursive: true });
  await mkdir(join(dir, "labels", "original"), { recursive: true });
  await mkdir(join(dir, "labels", "review"), { recursive: true });
  await copyFile(fixture("ch2.nii.gz"), join(dir, "colin27.nii.gz"));
  await copyFile(fixture("anatomical.nii"), join(dir, "anat.nii"));
  await copyFile(fixture("ch2bet.nii.gz"), join(dir, "labels", "final", "colin27.nii.gz"));
  await copyFile(fixture("anatomical.nii"), join(dir, "labels", "original", "anat.nii"));
  await copyFile(fixture("anatomical.nii"), join(dir, "labels", "review", "anat.nii"));
  // A label without an image is ignored, as MONAI does; so is a file that is not an image.
  await copyFile(fixture("anatomical.nii"), join(dir, "labels", "final", "orphan.nii"));
  await writeFile(join(dir, "notes.txt"), "not an image");
  await writeFile(
    join(dir, "datastore_v2.json"),
    JSON.stringify({
      name: "new-dataset",
      objects: {
        colin27: {
          image: { ext: ".nii.gz", info: { ts: 1, strategy: { random: { ts: 5, client_id: "u1" } } } },
          labels: { final: { ext: ".nii.gz", info: { label_info: [{ name: "brain", idx: 1 }] } } },
        },
      },
    }),
  );
  return dir;
}

describe("a MONAI Label studies folder", () => {
  const open: Harness[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const h of open.splice(0)) {
      await h.close();
    }
    for (const d of dirs.splice(0)) {
      await rm(d, { recursive: true, force: true });
    }
  });

  it("is registered at start: images, labels by tag, datastore_v2.json info; strays ignored", async () => {
    const studies = await makeStudies();
    dirs.push(studies);
    const h = await createHarness({ studies, env: { MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" } });
    open.push(h);
    const ds = h.container.datastore;
    expect(await ds.status()).toEqual({ total: 2, completed: 1, labelTags: { final: 1, original: 1, review: 1 } });
    expect(await ds.labeledImages()).toEqual(["colin27"]);
    const colin = await ds.getImage("colin27");
    expect(colin.info).toMatchObject({ strategy: { random: { ts: 5, client_id: "u1" } }, name: "colin27.nii.gz" });
    expect(colin.sourcePath).toBe("colin27.nii.gz");
    expect((await ds.getLabel("colin27", "final")).info).toMatchObject({ label_info: [{ name: "brain", idx: 1 }] });
    expect(await ds.findImage("orphan")).toBeNull();
    // A second start registers nothing twice.
    await h.container.studies.sync();
    expect((await ds.labelVersions("colin27", "final")).length).toBe(1);
    expect(await ds.countImages()).toBe(2);
  });

  it("follows files added and removed later (auto reload) and publishes each change", async () => {
    const studies = await makeStudies();
    dirs.push(studies);
    const h = await createHarness({ studies });
    open.push(h);
    const ds = h.container.datastore;
    const changes: DatastoreChange[] = [];
    void (async () => {
      for await (const c of h.container.pubsub.subscribe("datastore:changed")) {
        changes.push(c);
      }
    })();

    await copyFile(fixture("functional.nii"), join(studies, "func.nii"));
    expect(
      await until(
        () => ds.findImage("func"),
        (v) => v !== null,
      ),
    ).not.toBeNull();
    await copyFile(fixture("anatomical.nii"), join(studies, "labels", "final", "anat.nii"));
    expect(
      await until(
        () => ds.labeledImages(),
        (v) => v.includes("anat"),
      ),
    ).toEqual(["anat", "colin27"]);

    await rm(join(studies, "labels", "final", "colin27.nii.gz"));
    expect(
      await until(
        () => ds.labeledImages(),
        (v) => !v.includes("colin27"),
      ),
    ).toEqual(["anat"]);
    await rm(join(studies, "anat.nii"));
    expect(
      await until(
        () => ds.findImage("anat"),
        (v) => v === null,
      ),
    ).toBeNull();

    const fromWatcher = () =>
      changes.filter((c) => c.source === "watcher").map((c) => `${c.kind}:${c.imageId}:${c.tag ?? ""}`);
    // The row goes before the event is published (objects are deleted in between): wait for the event.
    await until(
      async () => fromWatcher(),
      (v) => v.length >= 4,
    );
    expect(fromWatcher()).toEqual([
      "IMAGE_ADDED:func:",
      "LABEL_SAVED:anat:final",
      "LABEL_REMOVED:colin27:final",
      "IMAGE_REMOVED:anat:",
    ]);
  });

  it("honours MONAI_LABEL_DATASTORE_READ_ONLY: clients cannot write, the folder still syncs", async () => {
    const studies = await makeStudies();
    dirs.push(studies);
    const h = await createHarness({
      studies,
      env: { MONAI_LABEL_DATASTORE_READ_ONLY: "true", MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" },
    });
    open.push(h);
    const ds = h.container.datastore;
    const before = await ds.status();
    const attempts = [
      ds.addImage({ fileName: "x.nii", path: fixture("anatomical.nii") }),
      ds.saveLabel({ imageId: "anat", fileName: "x.nii", path: fixture("anatomical.nii") }),
      ds.removeImage("anat"),
      ds.removeLabel("colin27", "final"),
      ds.updateImageInfo("anat", { a: 1 }),
      ds.updateLabelInfo("colin27", "final", { a: 1 }),
    ];
    for (const a of attempts) {
      await expect(a).rejects.toSatisfy(
        (e: unknown) => e instanceof LabelgraphError && e.code === "DATASTORE_READ_ONLY",
      );
    }
    expect(await ds.status()).toEqual(before);
    await copyFile(fixture("functional.nii"), join(studies, "func.nii"));
    await h.container.studies.sync("watcher");
    expect(await ds.findImage("func")).not.toBeNull();
  });

  it("survives a restart: rows, labels and jobs are read back from the database", async () => {
    const studies = await makeStudies();
    dirs.push(studies);
    const env = { MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false" };
    const first = await createHarness({ studies, env });
    await first.container.datastore.saveLabel({ imageId: "anat", fileName: "a.nii", path: fixture("anatomical.nii") });
    const job = await first.container.jobs.enqueue("exportDataset", {});
    await first.container.jobs.idle();
    await first.close();
    const second = await createHarness({ studies, env });
    open.push(second);
    expect(await second.container.datastore.labeledImages()).toEqual(["anat", "colin27"]);
    expect((await second.container.jobs.get(job.id))?.status).toBe("SUCCEEDED");
    expect((await second.container.datastore.labelVersions("colin27", "final")).length).toBe(1);
  });
});
