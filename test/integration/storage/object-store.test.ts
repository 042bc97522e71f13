import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { createObjectStore } from "../../../src/storage/factory.js";
import { FsObjectStore } from "../../../src/storage/fs.object-store.js";
import type { ObjectInfo, ObjectStore } from "../../../src/storage/object-store.js";
import { S3ObjectStore } from "../../../src/storage/s3.object-store.js";
import { type RunningS3rver, startS3rver } from "../../helpers/s3rver.js";

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function collect(iter: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iter) {
    out.push(info);
  }
  return out;
}

/** A stream of `data` in chunks of `chunkSize`, with no size known up front. */
function chunked(data: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunkSize) {
        yield data.subarray(i, i + chunkSize);
      }
    })(),
  );
}

/** Emits `prefix`, then fails. */
function failingStream(prefix: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(prefix);
      } else {
        setImmediate(() => this.destroy(new Error("connection reset")));
      }
    },
  });
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

interface Harness {
  store: ObjectStore;
}

/** The behaviour every ObjectStore must have. `harness` is filled in by the caller's beforeAll. */
function contract(name: string, harness: Harness): void {
  describe(`${name}: ObjectStore contract`, () => {
    // Every test works under its own namespace, so tests never see each other's objects.
    const ns = () => `contract/${randomUUID()}/`;

    it("round-trips a Buffer through put/get/getBuffer/stat", async () => {
      const { store } = harness;
      const key = `${ns()}hello.txt`;
      const body = Buffer.from("hello, labelgraph");
      const info = await store.put(key, body);
      expect(info).toMatchObject({ key, size: body.length });
      expect(info.lastModified).toBeInstanceOf(Date);
      expect(await store.getBuffer(key)).toEqual(body);
      expect(await readAll(await store.get(key))).toEqual(body);
      const st = await store.stat(key);
      expect(st).toMatchObject({ key, size: body.length });
      expect(st?.lastModified).toBeInstanceOf(Date);
      expect(Math.abs((st?.lastModified.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    });

    it("round-trips a plain Uint8Array view (not a Buffer) with an offset", async () => {
      const { store } = harness;
      const key = `${ns()}view.bin`;
      const backing = new Uint8Array(100).map((_, i) => i);
      const view = backing.subarray(10, 30);
      await store.put(key, view);
      expect(await store.getBuffer(key)).toEqual(Buffer.from(backing.subarray(10, 30)));
    });

    it("round-trips a 3 MB buffer byte for byte", async () => {
      const { store } = harness;
      const key = `${ns()}big.bin`;
      const body = randomBytes(3 * 1024 * 1024);
      expect(await store.put(key, body)).toMatchObject({ size: body.length });
      expect((await store.getBuffer(key)).equals(body)).toBe(true);
      expect((await readAll(await store.get(key))).equals(body)).toBe(true);
      expect(await store.stat(key)).toMatchObject({ size: body.length });
    });

    it("stores a Readable stream without a size", async () => {
      const { store } = harness;
      const key = `${ns()}stream.bin`;
      const body = randomBytes(3 * 1024 * 1024 + 17);
      expect(await store.put(key, chunked(body))).toMatchObject({ key, size: body.length });
      expect((await store.getBuffer(key)).equals(body)).toBe(true);
    });

    it("stores a Readable stream with its size", async () => {
      const { store } = harness;
      const key = `${ns()}sized.bin`;
      const body = randomBytes(200_001);
      expect(await store.put(key, chunked(body, 4096), body.length)).toMatchObject({ size: body.length });
      expect((await store.getBuffer(key)).equals(body)).toBe(true);
    });

    it("stores empty objects", async () => {
      const { store } = harness;
      const dir = ns();
      await store.put(`${dir}empty-buffer`, Buffer.alloc(0));
      await store.put(`${dir}empty-stream`, Readable.from([]));
      await store.put(`${dir}empty-sized`, Readable.from([]), 0);
      for (const key of [`${dir}empty-buffer`, `${dir}empty-stream`, `${dir}empty-sized`]) {
        expect(await store.getBuffer(key)).toEqual(Buffer.alloc(0));
        expect(await store.stat(key)).toMatchObject({ size: 0 });
      }
    });

    it("refuses a stream whose length differs from the announced size, keeping the previous object", async () => {
      const { store } = harness;
      const key = `${ns()}mismatch.bin`;
      await store.put(key, Buffer.from("previous"));
      await expectCode(store.put(key, chunked(Buffer.alloc(10)), 11), ErrorCode.INVALID_INPUT);
      await expectCode(store.put(key, chunked(Buffer.alloc(10)), 9), ErrorCode.INVALID_INPUT);
      await expectCode(store.put(key, Buffer.alloc(10), 9), ErrorCode.INVALID_INPUT);
      await expectCode(store.put(key, Buffer.alloc(10), -1), ErrorCode.INVALID_INPUT);
      expect((await store.getBuffer(key)).toString()).toBe("previous");
    });

    it("keeps the previous object when a stream fails midway", async () => {
      const { store } = harness;
      const key = `${ns()}broken.bin`;
      const previous = randomBytes(1000);
      await store.put(key, previous);
      await expect(store.put(key, failingStream(randomBytes(50_000)))).rejects.toThrow("connection reset");
      await expect(store.put(key, failingStream(randomBytes(50_000)), 100_000)).rejects.toThrow("connection reset");
      expect((await store.getBuffer(key)).equals(previous)).toBe(true);
    });

    it("reports missing objects as OBJECT_NOT_FOUND, and stat as null", async () => {
      const { store } = harness;
      const key = `${ns()}missing.bin`;
      await expectCode(store.get(key), ErrorCode.OBJECT_NOT_FOUND);
      await expectCode(store.getBuffer(key), ErrorCode.OBJECT_NOT_FOUND);
      await expectCode(store.localPath(key), ErrorCode.OBJECT_NOT_FOUND);
      await expect(store.get(key)).rejects.toMatchObject({ name: "NotFoundError", details: { key } });
      expect(await store.stat(key)).toBeNull();
    });

    it("treats a key that is only a 'directory' of other keys as missing", async () => {
      const { store } = harness;
      const dir = ns();
      await store.put(`${dir}sub/leaf.bin`, Buffer.from("x"));
      await expectCode(store.get(`${dir}sub`), ErrorCode.OBJECT_NOT_FOUND);
      await expectCode(store.getBuffer(`${dir}sub`), ErrorCode.OBJECT_NOT_FOUND);
      expect(await store.stat(`${dir}sub`)).toBeNull();
      await store.delete(`${dir}sub`);
      expect((await store.getBuffer(`${dir}sub/leaf.bin`)).toString()).toBe("x");
    });

    it("overwrites by replacing the whole object", async () => {
      const { store } = harness;
      const dir = ns();
      const key = `${dir}label.bin`;
      const first = randomBytes(300_000);
      const second = randomBytes(1000);
      await store.put(key, first);
      await store.put(key, second);
      expect((await store.getBuffer(key)).equals(second)).toBe(true);
      expect(await store.stat(key)).toMatchObject({ size: second.length });
      expect((await collect(store.list(dir))).map((o) => o.key)).toEqual([key]);
      await store.put(key, chunked(first));
      expect((await store.getBuffer(key)).equals(first)).toBe(true);
    });

    it("lists keys under a prefix recursively, sorted, with sizes", async () => {
      const { store } = harness;
      const dir = ns();
      const keys = ["a/2.bin", "a/1.bin", "a/b/c.bin", "a.txt", "ab/x", "b/a/b/c/d.bin", "a-/z"];
      for (const [i, k] of keys.entries()) {
        await store.put(dir + k, Buffer.alloc(i + 1, i));
      }
      const all = await collect(store.list(dir));
      // Byte order: "-" (0x2d) < "." (0x2e) < "/" (0x2f) < "b" (0x62).
      expect(all.map((o) => o.key)).toEqual(
        ["a-/z", "a.txt", "a/1.bin", "a/2.bin", "a/b/c.bin", "ab/x", "b/a/b/c/d.bin"].map((k) => dir + k),
      );
      for (const info of all) {
        const index = keys.indexOf(info.key.slice(dir.length));
        expect(info.size).toBe(index + 1);
        expect(info.lastModified).toBeInstanceOf(Date);
      }
      expect((await collect(store.list(`${dir}a/`))).map((o) => o.key)).toEqual(
        ["a/1.bin", "a/2.bin", "a/b/c.bin"].map((k) => dir + k),
      );
      // A prefix is a plain string prefix, not a directory.
      expect((await collect(store.list(`${dir}a`))).map((o) => o.key.slice(dir.length))).toEqual([
        "a-/z",
        "a.txt",
        "a/1.bin",
        "a/2.bin",
        "a/b/c.bin",
        "ab/x",
      ]);
      expect((await collect(store.list(`${dir}a/b`))).map((o) => o.key)).toEqual([`${dir}a/b/c.bin`]);
      expect((await collect(store.list(`${dir}a/1`))).map((o) => o.key)).toEqual([`${dir}a/1.bin`]);
      expect(await collect(store.list(`${dir}nothing/`))).toEqual([]);
      expect(await collect(store.list(`${dir}a/1.bin/`))).toEqual([]);
      expect(await collect(store.list(`contract/${randomUUID()}/`))).toEqual([]);
      // The whole store lists our keys too.
      const everything = (await collect(store.list(""))).map((o) => o.key);
      expect(everything).toEqual(expect.arrayContaining(all.map((o) => o.key)));
      expect(everything).toEqual([...everything].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    });

    it("deletes idempotently", async () => {
      const { store } = harness;
      const dir = ns();
      const key = `${dir}deep/er/obj.bin`;
      await store.put(key, Buffer.from("x"));
      await store.put(`${dir}keep.bin`, Buffer.from("y"));
      await store.delete(key);
      expect(await store.stat(key)).toBeNull();
      await expectCode(store.getBuffer(key), ErrorCode.OBJECT_NOT_FOUND);
      await store.delete(key);
      await store.delete(`${dir}never/existed.bin`);
      expect((await collect(store.list(dir))).map((o) => o.key)).toEqual([`${dir}keep.bin`]);
      // The key can be written again after its directory was pruned.
      await store.put(key, Buffer.from("z"));
      expect((await store.getBuffer(key)).toString()).toBe("z");
    });

    it("deletes everything under a prefix and nothing else", async () => {
      const { store } = harness;
      const dir = ns();
      for (const k of ["a/1", "a/2", "a/b/3", "a.txt", "ab/4"]) {
        await store.put(dir + k, Buffer.from(k));
      }
      await store.deletePrefix(`${dir}a/`);
      expect((await collect(store.list(dir))).map((o) => o.key)).toEqual([`${dir}a.txt`, `${dir}ab/4`]);
      await store.deletePrefix(`${dir}a/`);
      await store.deletePrefix(`${dir}zzz/`);
      await store.deletePrefix(dir);
      expect(await collect(store.list(dir))).toEqual([]);
      await expect(store.deletePrefix("")).rejects.toBeDefined();
    });

    it("deletes a prefix holding many objects", async () => {
      const { store } = harness;
      const dir = ns();
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.put(`${dir}many/${i}.bin`, Buffer.from([i]))));
      expect(await collect(store.list(dir))).toHaveLength(40);
      await store.deletePrefix(`${dir}many/`);
      expect(await collect(store.list(dir))).toEqual([]);
    });

    it("stores a local file with putFile and leaves the file in place", async () => {
      const { store } = harness;
      const key = `${ns()}from-file.nii.gz`;
      const dir = await mkdtemp(join(tmpdir(), "labelgraph-putfile-"));
      try {
        const path = join(dir, "upload.nii.gz");
        const body = randomBytes(1024 * 1024 + 3);
        await writeFile(path, body);
        expect(await store.putFile(key, path)).toMatchObject({ key, size: body.length });
        expect((await store.getBuffer(key)).equals(body)).toBe(true);
        expect((await readFile(path)).equals(body)).toBe(true);
        await expect(store.putFile(`${ns()}x`, join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
        await expectCode(store.putFile(`${ns()}x`, dir), ErrorCode.INVALID_INPUT);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("gives a local path holding the object, keeping its file name", async () => {
      const { store } = harness;
      const key = `${ns()}image.nii.gz`;
      const body = randomBytes(50_000);
      await store.put(key, body);
      const local = await store.localPath(key);
      try {
        expect(local.path.endsWith("image.nii.gz")).toBe(true);
        expect((await readFile(local.path)).equals(body)).toBe(true);
      } finally {
        await local.release();
      }
      await local.release();
      expect((await store.getBuffer(key)).equals(body)).toBe(true);
    });

    it("refuses malformed keys and prefixes with INVALID_ID", async () => {
      const { store } = harness;
      const bad = ["", "../x", "a/../../x", "..", "/abs/x", "a\\b", "a\0b", "a//b", "a/", "./a", "a/./b", ".tmp/x"];
      for (const key of bad) {
        await expectCode(store.put(key, Buffer.from("x")), ErrorCode.INVALID_ID);
        await expectCode(store.put(key, Readable.from([Buffer.from("x")])), ErrorCode.INVALID_ID);
        await expectCode(store.get(key), ErrorCode.INVALID_ID);
        await expectCode(store.getBuffer(key), ErrorCode.INVALID_ID);
        await expectCode(store.stat(key), ErrorCode.INVALID_ID);
        await expectCode(store.delete(key), ErrorCode.INVALID_ID);
        await expectCode(store.localPath(key), ErrorCode.INVALID_ID);
        await expectCode(store.putFile(key, "/etc/hostname"), ErrorCode.INVALID_ID);
      }
      for (const prefix of ["../", "a/../", "/abs/", "a\\", ".tmp/", ".tmp", "a//"]) {
        await expectCode(collect(store.list(prefix)), ErrorCode.INVALID_ID);
        await expectCode(store.deletePrefix(prefix), ErrorCode.INVALID_ID);
      }
    });
  });
}

describe("FsObjectStore", () => {
  const harness = {} as Harness & { store: FsObjectStore; root: string };
  let base: string;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "labelgraph-fs-store-"));
    harness.root = join(base, "root");
    harness.store = (await createObjectStore({ kind: "fs", root: harness.root })) as FsObjectStore;
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  contract("fs", harness);

  describe("fs specifics", () => {
    const tmpEntries = () => readdir(join(harness.root, ".tmp"));

    it("maps keys to files under the root", async () => {
      const { store, root } = harness;
      expect(store.kind).toBe("fs");
      await store.put("images/img1/v1.nii.gz", Buffer.from("data"));
      expect(await readFile(join(root, "images", "img1", "v1.nii.gz"), "utf8")).toBe("data");
      expect(store.pathOf("images/img1/v1.nii.gz")).toBe(join(root, "images", "img1", "v1.nii.gz"));
      await store.delete("images/img1/v1.nii.gz");
    });

    it("never writes outside the root for refused keys", async () => {
      const { store } = harness;
      const outside = join(base, "escaped.txt");
      await expectCode(store.put("../escaped.txt", Buffer.from("x")), ErrorCode.INVALID_ID);
      await expectCode(store.put(outside, Buffer.from("x")), ErrorCode.INVALID_ID);
      await expectCode(store.put("..\\escaped.txt", Buffer.from("x")), ErrorCode.INVALID_ID);
      expect(existsSync(outside)).toBe(false);
      expect(await readdir(base)).toEqual(["root"]);
    });

    it("a stream failing midway leaves the previous content and no staged file", async () => {
      const { store } = harness;
      const key = `fs/${randomUUID()}/obj.bin`;
      const previous = randomBytes(100_000);
      await store.put(key, previous);
      await expect(store.put(key, failingStream(randomBytes(80_000)))).rejects.toThrow("connection reset");
      expect((await store.getBuffer(key)).equals(previous)).toBe(true);
      expect(await tmpEntries()).toEqual([]);
      // Same for a size mismatch and for a brand-new key.
      await expect(store.put(key, chunked(randomBytes(10)), 20)).rejects.toMatchObject({ code: "INVALID_INPUT" });
      const fresh = `fs/${randomUUID()}/fresh.bin`;
      await expect(store.put(fresh, failingStream(randomBytes(10)))).rejects.toThrow("connection reset");
      expect(await store.stat(fresh)).toBeNull();
      expect(await tmpEntries()).toEqual([]);
    });

    it("concurrent readers never see a partial object while 20 writers overwrite it", async () => {
      const { store } = harness;
      const key = `fs/${randomUUID()}/hot.bin`;
      const size = 2 * 1024 * 1024;
      const versions = Array.from({ length: 20 }, (_, i) => {
        const buf = randomBytes(size);
        buf[0] = i; // first byte identifies the version
        return buf;
      });
      await store.put(key, Buffer.alloc(size, 0xff));
      let writing = true;
      let reads = 0;
      const check = (buf: Buffer) => {
        reads++;
        expect(buf.length).toBe(size);
        if (buf[0] === 0xff && buf.equals(Buffer.alloc(size, 0xff))) {
          return;
        }
        const version = versions[buf[0] ?? -1];
        expect(version !== undefined && buf.equals(version)).toBe(true);
      };
      const reader = async (useStream: boolean) => {
        while (writing) {
          check(useStream ? await readAll(await store.get(key)) : await store.getBuffer(key));
        }
      };
      const readers = [reader(false), reader(true), reader(false)];
      // Half the writers stream their bytes in small chunks, so writes take a while.
      await Promise.all(
        versions.map((buf, i) => (i % 2 === 0 ? store.put(key, buf) : store.put(key, chunked(buf, 16 * 1024)))),
      );
      writing = false;
      await Promise.all(readers);
      expect(reads).toBeGreaterThan(0);
      const final = await store.getBuffer(key);
      expect(versions.some((v) => v.equals(final))).toBe(true);
      expect(await tmpEntries()).toEqual([]);
    });

    it("a reader that opened the object keeps the old bytes across an overwrite", async () => {
      const { store } = harness;
      const key = `fs/${randomUUID()}/open.bin`;
      const first = randomBytes(1024 * 1024);
      await store.put(key, first);
      const stream = await store.get(key);
      await store.put(key, randomBytes(1024));
      expect((await readAll(stream)).equals(first)).toBe(true);
    });

    it("putFile hard-links on the same filesystem", async () => {
      const { store, root } = harness;
      const key = `fs/${randomUUID()}/linked.bin`;
      const source = join(base, "source.bin");
      await writeFile(source, randomBytes(4096));
      await store.putFile(key, source);
      const [a, b] = await Promise.all([stat(source), stat(store.pathOf(key))]);
      expect(b.ino).toBe(a.ino);
      expect(b.dev).toBe(a.dev);
      expect(a.nlink).toBe(2);
      // Storing the object's own file again is a no-op that leaves no staged link behind.
      await store.putFile(key, store.pathOf(key));
      expect((await stat(store.pathOf(key))).nlink).toBe(2);
      expect(await tmpEntries()).toEqual([]);
      await store.delete(key);
      await rm(source);
      expect(existsSync(join(root, "fs", key.split("/")[1] ?? ""))).toBe(false);
    });

    const shm = "/dev/shm";
    const otherFs = existsSync(shm) && statSync(shm).dev !== statSync(tmpdir()).dev;
    it.skipIf(!otherFs)("putFile copies when the file is on another filesystem", async () => {
      const { store } = harness;
      const key = `fs/${randomUUID()}/copied.bin`;
      const dir = await mkdtemp(join(shm, "labelgraph-"));
      try {
        const source = join(dir, "source.bin");
        const body = randomBytes(100_000);
        await writeFile(source, body);
        await store.putFile(key, source);
        expect((await stat(store.pathOf(key))).ino).not.toBe((await stat(source)).ino);
        expect((await store.getBuffer(key)).equals(body)).toBe(true);
        expect(await tmpEntries()).toEqual([]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("localPath is the object's own file and release leaves it", async () => {
      const { store } = harness;
      const key = `fs/${randomUUID()}/own.bin`;
      await store.put(key, Buffer.from("own"));
      const local = await store.localPath(key);
      expect(local.path).toBe(store.pathOf(key));
      await local.release();
      expect(await readFile(store.pathOf(key), "utf8")).toBe("own");
    });

    it("delete prunes emptied directories up to, but not including, the root", async () => {
      const { store, root } = harness;
      const id = randomUUID();
      await store.put(`prune-${id}/a/b/c.bin`, Buffer.from("1"));
      await store.put(`prune-${id}/a/d.bin`, Buffer.from("2"));
      await store.delete(`prune-${id}/a/b/c.bin`);
      expect(existsSync(join(root, `prune-${id}`, "a", "b"))).toBe(false);
      expect(existsSync(join(root, `prune-${id}`, "a"))).toBe(true);
      await store.delete(`prune-${id}/a/d.bin`);
      expect(existsSync(join(root, `prune-${id}`))).toBe(false);
      expect(existsSync(root)).toBe(true);
      expect(existsSync(join(root, ".tmp"))).toBe(true);
    });

    it("never lists staged files and skips non-file entries", async () => {
      const { store, root } = harness;
      const id = randomUUID();
      await writeFile(join(root, ".tmp", `stray-${id}`), "partial");
      await mkdir(join(root, `emptydir-${id}`, "x"), { recursive: true });
      const keys = (await collect(store.list(""))).map((o) => o.key);
      expect(keys.some((k) => k.startsWith(".tmp"))).toBe(false);
      expect(keys.some((k) => k.includes(`emptydir-${id}`))).toBe(false);
      expect(await collect(store.list(".t"))).toEqual([]);
      await rm(join(root, ".tmp", `stray-${id}`));
      await rm(join(root, `emptydir-${id}`), { recursive: true });
    });

    it("init removes stale staged files and keeps fresh ones", async () => {
      const root = join(base, "swept");
      const store = await new FsObjectStore(root).init();
      await writeFile(join(root, ".tmp", "stale"), "x");
      await writeFile(join(root, ".tmp", "fresh"), "y");
      const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await utimes(join(root, ".tmp", "stale"), old, old);
      await store.init();
      expect(await readdir(join(root, ".tmp"))).toEqual(["fresh"]);
    });
  });
});

describe("S3ObjectStore (s3rver + minio)", () => {
  let server: RunningS3rver;
  const plain = {} as Harness & { store: S3ObjectStore };
  const prefixed = {} as Harness & { store: S3ObjectStore };
  const stores: S3ObjectStore[] = [];

  beforeAll(async () => {
    server = await startS3rver();
    const common = {
      endPoint: server.endPoint,
      port: server.port,
      useSSL: false,
      accessKey: server.accessKey,
      secretKey: server.secretKey,
    };
    plain.store = (await createObjectStore({ kind: "s3", ...common, bucket: "labelgraph-test" })) as S3ObjectStore;
    prefixed.store = await S3ObjectStore.create({ ...common, bucket: "labelgraph-test", prefix: "/tenant-a/" });
    stores.push(plain.store, prefixed.store);
  });
  afterAll(async () => {
    for (const store of stores) {
      await store.close();
    }
    await server?.stop();
  });

  contract("s3", plain);
  contract("s3 with key prefix", prefixed);

  describe("s3 specifics", () => {
    const options = () => ({
      endPoint: server.endPoint,
      port: server.port,
      useSSL: false,
      accessKey: server.accessKey,
      secretKey: server.secretKey,
    });

    it("creates the bucket when missing and accepts an existing one", async () => {
      const a = await S3ObjectStore.create({ ...options(), bucket: "fresh-bucket", region: "us-east-1" });
      const b = await S3ObjectStore.create({ ...options(), bucket: "fresh-bucket" });
      stores.push(a, b);
      expect(a.kind).toBe("s3");
      await a.put("images/x/1.bin", Buffer.from("from a"));
      expect((await b.getBuffer("images/x/1.bin")).toString()).toBe("from a");
    });

    it("keeps the key prefix inside the bucket and out of returned keys", async () => {
      const key = `p/${randomUUID()}/obj.bin`;
      await prefixed.store.put(key, Buffer.from("scoped"));
      expect(await plain.store.stat(key)).toBeNull();
      expect((await plain.store.getBuffer(`tenant-a/${key}`)).toString()).toBe("scoped");
      expect((await collect(prefixed.store.list(key))).map((o) => o.key)).toEqual([key]);
      expect(prefixed.store.keyPrefix).toBe("tenant-a/");
    });

    it("localPath downloads to a temporary file that release removes", async () => {
      const key = `p/${randomUUID()}/scan.nii.gz`;
      const body = randomBytes(300_000);
      await plain.store.put(key, body);
      const local = await plain.store.localPath(key);
      expect(local.path.startsWith(tmpdir())).toBe(true);
      expect((await readFile(local.path)).equals(body)).toBe(true);
      await local.release();
      expect(existsSync(local.path)).toBe(false);
    });
  });
});
