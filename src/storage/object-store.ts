import type { Readable } from "node:stream";

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutFileOptions {
  /**
   * false: the caller keeps `path` and does not need the copy flushed to disk before the call returns
   * (bulk import of a studies folder, where the object is a hard link to the user's own file).
   */
  durable?: boolean;
}

/**
 * Where blobs (images, labels, models, exports) live. Keys are made only by `keys.ts`.
 *
 * Every write is atomic: a reader sees either the previous object or the complete new one, never a
 * partial one, and a crash mid-write leaves the previous object intact.
 */
export interface ObjectStore {
  readonly kind: "fs" | "s3";
  /** Writes `body` under `key`. `size` is required for streams (S3 needs it up front). */
  put(key: string, body: Buffer | Uint8Array | Readable, size?: number): Promise<ObjectInfo>;
  /** Stores the file at `path` under `key` (the fs store hard-links when it can, so no bytes are copied). */
  putFile(key: string, path: string, opts?: PutFileOptions): Promise<ObjectInfo>;
  /** A stream of the object; throws a NotFoundError (OBJECT_NOT_FOUND) when it is missing. */
  get(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  /** null when missing. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * A local file holding the object, for readers that need a path (image decoders). The fs store
   * returns the object's own file; the S3 store downloads to a temporary file that `release` removes.
   */
  localPath(key: string): Promise<{ path: string; release(): Promise<void> }>;
  close?(): Promise<void>;
}
