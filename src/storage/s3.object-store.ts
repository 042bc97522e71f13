import { constants as bufferConstants } from "node:buffer";
import { createWriteStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Client } from "minio";
import { InvalidInputError, objectNotFound } from "../errors.js";
import { assertObjectKey, assertObjectPrefix, checkSize, compareKeys, discard } from "./object-key.js";
import type { ObjectInfo, ObjectStore } from "./object-store.js";

export interface S3ObjectStoreOptions {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
  /** Optional key prefix inside the bucket ("labelgraph" stores key `k` as `labelgraph/k`). */
  prefix?: string;
}

/**
 * Single PUTs only: the client never goes multipart below this size (S3's largest single PUT), and a
 * size is always sent, since some S3 servers (s3rver) answer 501 to chunked or multipart uploads.
 */
const PART_SIZE = 5 * 1024 * 1024 * 1024;
/**
 * deletePrefix deletes one object at a time: s3rver answers 500 to a multi-object delete
 * (`removeObjects`) and to concurrent deletes in one "directory" (its empty-directory cleanup races).
 */
const DELETE_ATTEMPTS = 3;

function s3Code(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}
function isNotFound(err: unknown): boolean {
  const code = s3Code(err);
  return code === "NoSuchKey" || code === "NotFound";
}

/** Reads a stream that must hold exactly `size` bytes into one buffer. */
async function readExactly(key: string, body: Readable, size: number): Promise<Buffer> {
  if (size > bufferConstants.MAX_LENGTH) {
    body.destroy();
    throw new InvalidInputError(`object ${JSON.stringify(key)} is too large (${size} bytes)`, { key, size });
  }
  const buf = Buffer.allocUnsafe(size);
  let offset = 0;
  for await (const chunk of body as AsyncIterable<unknown>) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (!(bytes instanceof Uint8Array)) {
      throw new InvalidInputError(`stream for object ${JSON.stringify(key)} yielded a non-binary chunk`, { key });
    }
    if (offset + bytes.byteLength > size) {
      throw new InvalidInputError(`object ${JSON.stringify(key)} has more than the ${size} bytes announced`, {
        key,
        size,
      });
    }
    buf.set(bytes, offset);
    offset += bytes.byteLength;
  }
  if (offset !== size) {
    throw new InvalidInputError(`object ${JSON.stringify(key)} has ${offset} bytes, ${size} were announced`, {
      key,
      size,
      written: offset,
    });
  }
  return buf;
}

/**
 * Object store on S3 (or any S3-compatible server) through the `minio` client. A single PUT is
 * atomic on S3, so every write is one PUT with a known length.
 *
 * Note: for bodies that fit one part, the minio client holds the whole body in memory while it signs
 * and sends it, so objects are limited to what a Buffer can hold.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = "s3" as const;
  readonly bucket: string;
  /** "" or a prefix ending in "/". */
  readonly keyPrefix: string;
  private readonly client: Client;
  private readonly region: string | undefined;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.region = options.region;
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.keyPrefix = prefix === "" ? "" : `${assertObjectKey(prefix)}/`;
    this.agent = options.useSSL ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.client = new Client({
      endPoint: options.endPoint,
      port: options.port,
      useSSL: options.useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      ...(options.region === undefined ? {} : { region: options.region }),
      partSize: PART_SIZE,
      transportAgent: this.agent,
    });
  }

  /** A store whose bucket exists (it is created when missing). */
  static async create(options: S3ObjectStoreOptions): Promise<S3ObjectStore> {
    const store = new S3ObjectStore(options);
    try {
      await store.init();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** Creates the bucket when it is missing. */
  async init(): Promise<this> {
    if (await this.client.bucketExists(this.bucket)) {
      return this;
    }
    try {
      await this.client.makeBucket(this.bucket, this.region ?? "us-east-1");
    } catch (err) {
      const code = s3Code(err);
      // Someone else created it between our check and our create.
      if (!(code === "BucketAlreadyOwnedByYou" || code === "BucketAlreadyExists")) {
        throw err;
      }
      if (!(await this.client.bucketExists(this.bucket))) {
        throw err;
      }
    }
    return this;
  }

  async put(key: string, body: Buffer | Uint8Array | Readable, size?: number): Promise<ObjectInfo> {
    let name: string;
    try {
      name = this.objectName(key);
      checkSize(key, size);
    } catch (err) {
      discard(body);
      throw err;
    }
    if (body instanceof Uint8Array) {
      const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      if (size !== undefined && size !== buf.byteLength) {
        throw new InvalidInputError(
          `object ${JSON.stringify(key)} has ${buf.byteLength} bytes, ${size} were announced`,
          {
            key,
            size,
            written: buf.byteLength,
          },
        );
      }
      return this.putBuffer(key, name, buf);
    }
    if (size !== undefined) {
      return this.putBuffer(key, name, await readExactly(key, body, size));
    }
    // Unknown length: spool to a temporary file first, so the PUT can announce its size.
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-s3-put-"));
    try {
      const spool = join(dir, "body");
      await pipeline(body, createWriteStream(spool, { flags: "wx" }));
      return await this.putLocalFile(key, name, spool);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async putFile(key: string, path: string): Promise<ObjectInfo> {
    return this.putLocalFile(key, this.objectName(key), path);
  }

  async get(key: string): Promise<Readable> {
    const name = this.objectName(key);
    try {
      return await this.client.getObject(this.bucket, name);
    } catch (err) {
      throw isNotFound(err) ? objectNotFound(key) : err;
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const stream = await this.get(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const name = this.objectName(key);
    try {
      const st = await this.client.statObject(this.bucket, name);
      return { key, size: st.size, lastModified: st.lastModified };
    } catch (err) {
      if (isNotFound(err)) {
        return null;
      }
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const name = this.objectName(key);
    try {
      await this.client.removeObject(this.bucket, name);
    } catch (err) {
      if (!isNotFound(err)) {
        throw err;
      }
    }
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
      await this.deleteWithRetry(key);
    }
  }

  /**
   * S3 itself lists in UTF-8 byte order, but some compatible servers (s3rver) list directory by
   * directory ("a/1" before "a.txt"), so the listing is collected and sorted before it is yielded.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertObjectPrefix(prefix);
    const stream = this.client.listObjectsV2(this.bucket, this.keyPrefix + prefix, true);
    const items: ObjectInfo[] = [];
    for await (const item of stream) {
      if (item.name === undefined) {
        continue;
      }
      items.push({ key: item.name.slice(this.keyPrefix.length), size: item.size, lastModified: item.lastModified });
    }
    items.sort((a, b) => compareKeys(a.key, b.key));
    yield* items;
  }

  async localPath(key: string): Promise<{ path: string; release(): Promise<void> }> {
    const body = await this.get(key);
    // Keep the key's file name, so readers that go by extension (".nii.gz") still recognize it.
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-s3-"));
    const release = async () => {
      await rm(dir, { recursive: true, force: true });
    };
    try {
      const path = join(dir, basename(key));
      await pipeline(body, createWriteStream(path, { flags: "wx" }));
      return { path, release };
    } catch (err) {
      body.destroy();
      await release();
      throw err;
    }
  }

  /** Closes the client's idle keep-alive connections. */
  async close(): Promise<void> {
    this.agent.destroy();
  }

  private objectName(key: string): string {
    return this.keyPrefix + assertObjectKey(key);
  }

  private async putBuffer(key: string, name: string, buf: Buffer): Promise<ObjectInfo> {
    await this.client.putObject(this.bucket, name, buf, buf.byteLength);
    return { key, size: buf.byteLength, lastModified: new Date() };
  }

  private async putLocalFile(key: string, name: string, path: string): Promise<ObjectInfo> {
    const fh = await open(path, "r");
    let buf: Buffer;
    try {
      if (!(await fh.stat()).isFile()) {
        throw new InvalidInputError(`${JSON.stringify(path)} is not a regular file`, { key, path });
      }
      // The minio client would buffer the stream anyway (single PUT); reading it here fixes its size.
      buf = await fh.readFile();
    } finally {
      await fh.close();
    }
    return this.putBuffer(key, name, buf);
  }

  private async deleteWithRetry(key: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.delete(key);
        return;
      } catch (err) {
        if (attempt >= DELETE_ATTEMPTS) {
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }
}
