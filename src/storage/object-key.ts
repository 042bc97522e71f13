import type { Readable } from "node:stream";
import { InvalidIdError, InvalidInputError } from "../errors.js";
import { TMP_DIR } from "./keys.js";

/**
 * Structural checks every store applies to the keys and prefixes it is given, on top of the rules in
 * `keys.ts`: a key is a relative `/`-separated path of non-empty segments, with no `.` or `..`
 * segment, no backslash or NUL, and not under the fs store's staging directory. So no key can
 * resolve outside the store's root, and both stores accept exactly the same keys.
 */
function checkSegments(value: string, allowPartialTail: boolean): boolean {
  if (value.includes("\0") || value.includes("\\") || value.startsWith("/")) {
    return false;
  }
  const segments = value.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const isTail = i === segments.length - 1;
    if (segment === "..") {
      return false;
    }
    if (isTail && allowPartialTail) {
      // A prefix may end in "/" (empty tail) or in a partial name (even ".", which matches ".x").
      continue;
    }
    if (segment === "" || segment === ".") {
      return false;
    }
  }
  return segments[0] !== TMP_DIR;
}

/** Returns `key` when it is a well-formed object key, throws InvalidIdError otherwise. */
export function assertObjectKey(key: string): string {
  if (typeof key !== "string" || key.length === 0 || key.length > 1024 || !checkSegments(key, false)) {
    throw new InvalidIdError("object key", String(key));
  }
  return key;
}

/**
 * Returns `prefix` when it is a well-formed key prefix ("" lists everything; a prefix is a plain
 * string prefix, so "images/ab" matches "images/abc/x"), throws InvalidIdError otherwise.
 */
export function assertObjectPrefix(prefix: string): string {
  if (typeof prefix !== "string" || prefix.length > 1024 || (prefix.length > 0 && !checkSegments(prefix, true))) {
    throw new InvalidIdError("object key prefix", String(prefix));
  }
  return prefix;
}

/** Byte-wise UTF-8 order, the order S3 lists keys in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Throws InvalidInputError unless `size` is absent or a non-negative integer. */
export function checkSize(key: string, size: number | undefined): void {
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
    throw new InvalidInputError(`invalid size ${size} for object ${JSON.stringify(key)}`, { key, size });
  }
}

/** Releases a body stream that will not be read (a put that failed before consuming it). */
export function discard(body: Buffer | Uint8Array | Readable): void {
  if (!(body instanceof Uint8Array) && !body.destroyed) {
    body.destroy();
  }
}
