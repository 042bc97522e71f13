import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { SessionRecord, SessionRepository } from "../db/sessions.repo.js";
import { ErrorCode, InvalidInputError, NotFoundError } from "../errors.js";
import { readImageHeader } from "../io/header.js";
import { assertSafeId, sessionKey, sessionPrefix } from "../storage/keys.js";
import type { ObjectStore } from "../storage/object-store.js";

export const sessionNotFound = (id: string) =>
  new NotFoundError(ErrorCode.SESSION_NOT_FOUND, `session ${JSON.stringify(id)} not found or expired`, { id });

export interface SessionFile {
  fileName: string;
  path: string;
}

/**
 * MONAI Label's sessions: images uploaded once for inference (a file, or several files kept together
 * such as a DICOM series) that never enter the datastore and expire after `expiry` seconds idle.
 */
export class SessionService {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: { repo: SessionRepository; store: ObjectStore; defaultExpiry: number }) {}

  async create(files: SessionFile[], expiry?: number | null): Promise<SessionRecord> {
    if (files.length === 0) {
      throw new InvalidInputError("a session needs at least one file");
    }
    const id = randomUUID();
    const names = files.map((f) => assertSafeId(basename(f.fileName), "file name"));
    // A single file must be an image we can read; several files form a series checked when read.
    if (files.length === 1) {
      await readImageHeader((files[0] as SessionFile).path, names[0] as string);
    }
    for (const [i, f] of files.entries()) {
      await this.deps.store.putFile(sessionKey(id, names[i] as string), f.path);
    }
    const seconds = expiry && expiry > 60 ? expiry : this.deps.defaultExpiry;
    return this.deps.repo.create({
      id,
      name: names.length === 1 ? (names[0] as string) : `${names.length} files`,
      objectKey: names.length === 1 ? sessionKey(id, names[0] as string) : sessionPrefix(id),
      info: { files: names },
      expiry: seconds,
    });
  }

  async get(id: string, touch = true): Promise<SessionRecord> {
    const s = await this.deps.repo.get(id, touch);
    if (!s || s.lastAccessAt.getTime() + s.expiry * 1000 < Date.now()) {
      throw sessionNotFound(id);
    }
    return s;
  }

  async remove(id: string): Promise<SessionRecord> {
    const s = await this.deps.repo.delete(id);
    if (!s) {
      throw sessionNotFound(id);
    }
    await this.deps.store.deletePrefix(sessionPrefix(id));
    return s;
  }

  /** A local file (one upload) or folder (several) holding the session's image; `release` cleans up. */
  async localImage(id: string): Promise<{ path: string; release(): Promise<void> }> {
    const s = await this.get(id);
    const files = (s.info.files as string[] | undefined) ?? [];
    if (files.length === 1) {
      return this.deps.store.localPath(s.objectKey);
    }
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-session-"));
    for (const name of files) {
      await writeFile(join(dir, name), await this.deps.store.getBuffer(sessionKey(id, name)));
    }
    return { path: dir, release: () => rm(dir, { recursive: true, force: true }) };
  }

  /** Removes sessions idle past their expiry; returns how many. */
  async purgeExpired(now = new Date()): Promise<number> {
    const expired = await this.deps.repo.expired(now);
    for (const s of expired) {
      await this.remove(s.id).catch(() => {});
    }
    return expired.length;
  }

  /** Purges every `intervalMs` in the background (the timer does not keep the process alive). */
  startPurging(intervalMs = 60_000): void {
    this.timer = setInterval(() => void this.purgeExpired(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
    }
  }
}
