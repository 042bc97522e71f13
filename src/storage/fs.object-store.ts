import { randomUUID } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import {
  copyFile,
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { InvalidIdError, InvalidInputError, objectNotFound } from "../errors.js";
import { TMP_DIR } from "./keys.js";
import { assertObjectKey, assertObjectPrefix, checkSize, compareKeys, discard } from "./object-key.js";
import type { ObjectInfo, ObjectStore, PutFileOptions } from "./object-store.js";

/** Staged files older than this are leftovers of a crashed writer; `init` removes them. */
const STALE_TMP_MS = 60 * 60 * 1000;
/** How often a rename is retried when a concurrent delete pruned the target directory meanwhile. */
const RENAME_ATTEMPTS = 5;

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}
/** The path (or one of its parents) does not exist, or a parent is a file. */
function isMissing(err: unknown): boolean {
  const code = errnoCode(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isMissing(err)) {
      throw err;
    }
  }
}

async function writeFully(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * Object store on a local filesystem: `<root>/<key>` holds each object.
 *
 * Writes are staged in `<root>/.tmp/<uuid>`, fsynced, then renamed into place, so readers see either
 * the previous object or the complete new one, and a crash leaves the previous object intact (plus a
 * stale staged file that `init` sweeps). Readers that opened the object before an overwrite keep
 * reading the old bytes.
 */
export class FsObjectStore implements ObjectStore {
  readonly kind = "fs" as const;
  readonly root: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.tmpDir = join(this.root, TMP_DIR);
  }

  /** Creates the root and staging directories and removes staged files left by crashed writers. */
  async init(): Promise<this> {
    await mkdir(this.tmpDir, { recursive: true });
    const cutoff = Date.now() - STALE_TMP_MS;
    for (const name of await readdir(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      try {
        const info = await lstat(path);
        if (info.isFile() && info.mtimeMs < cutoff) {
          await unlinkQuietly(path);
        }
      } catch (err) {
        if (!isMissing(err)) {
          throw err;
        }
      }
    }
    return this;
  }

  /** The file that holds `key` (which need not exist). Throws InvalidIdError for malformed keys. */
  pathOf(key: string): string {
    assertObjectKey(key);
    const path = resolve(this.root, ...key.split("/"));
    if (!path.startsWith(this.root + sep)) {
      throw new InvalidIdError("object key", key);
    }
    return path;
  }

  async put(key: string, body: Buffer | Uint8Array | Readable, size?: number): Promise<ObjectInfo> {
    let target: string;
    let tmp: string;
    try {
      target = this.pathOf(key);
      checkSize(key, size);
      tmp = await this.newTmpPath();
    } catch (err) {
      discard(body);
      throw err;
    }
    try {
      const fh = await open(tmp, "wx");
      let written = 0;
      let info: ObjectInfo;
      try {
        if (body instanceof Uint8Array) {
          await writeFully(fh, body);
          written = body.byteLength;
        } else {
          for await (const chunk of body as AsyncIterable<unknown>) {
            const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
            if (!(bytes instanceof Uint8Array)) {
              throw new InvalidInputError(`stream for object ${JSON.stringify(key)} yielded a non-binary chunk`, {
                key,
              });
            }
            await writeFully(fh, bytes);
            written += bytes.byteLength;
          }
        }
        if (size !== undefined && written !== size) {
          throw new InvalidInputError(`object ${JSON.stringify(key)} has ${written} bytes, ${size} were announced`, {
            key,
            size,
            written,
          });
        }
        await fh.sync();
        const st = await fh.stat();
        info = { key, size: st.size, lastModified: st.mtime };
      } finally {
        await fh.close();
      }
      await this.commit(tmp, target);
      return info;
    } catch (err) {
      await unlinkQuietly(tmp);
      throw err;
    }
  }

  async putFile(key: string, path: string, opts: PutFileOptions = {}): Promise<ObjectInfo> {
    const target = this.pathOf(key);
    const source = await stat(path);
    if (!source.isFile()) {
      throw new InvalidInputError(`${JSON.stringify(path)} is not a regular file`, { key, path });
    }
    const tmp = await this.newTmpPath();
    try {
      let linked = true;
      try {
        await link(path, tmp);
      } catch (err) {
        linked = false;
        // EXDEV: another filesystem; EPERM/ENOTSUP/EOPNOTSUPP/ENOSYS: no hard links here; EMLINK: too many.
        if (errnoCode(err) === "ENOENT") {
          throw err;
        }
        await copyFile(path, tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      }
      // A hard link shares the caller's file, so its bytes are as durable as that file already is;
      // bulk imports skip the fsyncs (they dominated a 100,000-file import).
      const sync = !(linked && opts.durable === false);
      const fh = await open(tmp, "r");
      let info: ObjectInfo;
      try {
        if (sync) {
          await fh.sync();
        }
        const st = await fh.stat();
        info = { key, size: st.size, lastModified: st.mtime };
      } finally {
        await fh.close();
      }
      await this.commit(tmp, target, sync);
      return info;
    } catch (err) {
      await unlinkQuietly(tmp);
      throw err;
    }
  }

  async get(key: string): Promise<Readable> {
    const fh = await this.openObject(key);
    return fh.createReadStream({ autoClose: true });
  }

  async getBuffer(key: string): Promise<Buffer> {
    const fh = await this.openObject(key);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : null;
    } catch (err) {
      if (isMissing(err)) {
        return null;
      }
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      const code = errnoCode(err);
      // EISDIR (Linux) / EPERM (macOS): the key names a directory, which is not an object.
      if (
        isMissing(err) ||
        code === "EISDIR" ||
        ((code === "EPERM" || code === "EACCES") && (await isDirectory(path)))
      ) {
        return;
      }
      throw err;
    }
    await this.pruneEmptyDirs(dirname(path));
  }

  async deletePrefix(prefix: string): Promise<void> {
    assertObjectPrefix(prefix);
    if (prefix === "") {
      throw new InvalidInputError("deletePrefix needs a non-empty prefix", { prefix });
    }
    const keys: string[] = [];
    for await (const info of this.list(prefix)) {
      keys.push(info.key);
    }
    for (const key of keys) {
      await this.delete(key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertObjectPrefix(prefix);
    // Start at the deepest directory the prefix names fully; its entries are filtered by the rest.
    const dirKey = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const startDir = dirKey === "" ? this.root : resolve(this.root, ...dirKey.slice(0, -1).split("/"));
    yield* this.walk(startDir, dirKey, prefix);
  }

  async localPath(key: string): Promise<{ path: string; release(): Promise<void> }> {
    const path = this.pathOf(key);
    const info = await this.stat(key);
    if (info === null) {
      throw objectNotFound(key);
    }
    return { path, release: async () => {} };
  }

  // Entries are visited in the order of their key suffix (a directory `d` as "d/"), which makes the
  // depth-first walk yield keys in global byte order without collecting them first.
  private async *walk(dir: string, dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries: { name: string; sortKey: string; isDir: boolean }[];
    try {
      entries = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => e.isFile() || e.isDirectory())
        .filter((e) => !(dirKey === "" && e.name === TMP_DIR))
        .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }));
    } catch (err) {
      if (isMissing(err)) {
        return;
      }
      throw err;
    }
    entries.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const entry of entries) {
      const key = dirKey + entry.sortKey;
      if (entry.isDir) {
        if (key.startsWith(prefix) || prefix.startsWith(key)) {
          yield* this.walk(join(dir, entry.name), key, prefix);
        }
      } else if (key.startsWith(prefix)) {
        try {
          const st = await stat(join(dir, entry.name));
          if (st.isFile()) {
            yield { key, size: st.size, lastModified: st.mtime };
          }
        } catch (err) {
          if (!isMissing(err)) {
            throw err;
          }
        }
      }
    }
  }

  private async openObject(key: string): Promise<FileHandle> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === "EISDIR") {
        throw objectNotFound(key);
      }
      throw err;
    }
    try {
      if (!(await fh.stat()).isFile()) {
        throw objectNotFound(key);
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    return fh;
  }

  private async newTmpPath(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return join(this.tmpDir, randomUUID());
  }

  /** Atomically moves the staged file onto `target`, creating its directory. */
  private async commit(tmp: string, target: string, syncDir = true): Promise<void> {
    const dir = dirname(target);
    for (let attempt = 1; ; attempt++) {
      await mkdir(dir, { recursive: true });
      try {
        await rename(tmp, target);
        break;
      } catch (err) {
        // A concurrent delete may prune the (then empty) directory between mkdir and rename.
        if (errnoCode(err) !== "ENOENT" || attempt >= RENAME_ATTEMPTS) {
          throw err;
        }
      }
    }
    // When tmp and target were already links to the same file, rename succeeds without doing anything.
    await unlinkQuietly(tmp);
    if (syncDir) {
      await fsyncDir(dir);
    }
  }

  /** Removes `dir` and its parents while they are empty, stopping below the root. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root + sep)) {
      try {
        await rmdir(current);
      } catch {
        // ENOTEMPTY/EEXIST (still used), ENOENT (already gone) or anything else: stop pruning.
        return;
      }
      current = dirname(current);
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Makes a rename durable; best effort, as some platforms cannot fsync a directory. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // Not supported here (e.g. Windows): the rename is still atomic, only less durable.
  } finally {
    await fh?.close().catch(() => {});
  }
}
