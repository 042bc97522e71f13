import { randomUUID } from "node:crypto";
import { InvalidIdError } from "../errors.js";

/**
 * Every object-store key rule lives here. Keys never contain user input that was not validated by
 * `assertSafeId` / `assertSafeTag`, so no key can escape its prefix.
 */

// An id is what MONAI derives from a file name: letters, digits and . _ - + ( ) and spaces, no path
// separators, no "..", not starting with a dot.
const SAFE_ID = /^[A-Za-z0-9_\-+()][A-Za-z0-9_.\-+() ]{0,254}$/;
const SAFE_TAG = /^[A-Za-z0-9_-]{1,64}$/;
const SAFE_EXT = /^(\.[A-Za-z0-9]{1,8}){1,3}$/;

export function isSafeId(id: string): boolean {
  return SAFE_ID.test(id) && !id.includes("..");
}
export function assertSafeId(id: string, what = "image id"): string {
  if (!isSafeId(id)) {
    throw new InvalidIdError(what, id);
  }
  return id;
}
export function assertSafeTag(tag: string): string {
  if (!SAFE_TAG.test(tag)) {
    throw new InvalidIdError("label tag", tag);
  }
  return tag;
}
function safeExt(ext: string): string {
  if (!SAFE_EXT.test(ext)) {
    throw new InvalidIdError("file extension", ext);
  }
  return ext.toLowerCase();
}

/** Each stored version of an image gets a fresh key, so replacing an image never overwrites in place. */
export const imageKey = (id: string, ext: string) => `images/${assertSafeId(id)}/${randomUUID()}${safeExt(ext)}`;
export const imagePrefix = (id: string) => `images/${assertSafeId(id)}/`;
/** Label versions are immutable: one key per save. */
export const labelKey = (imageId: string, tag: string, ext: string) =>
  `labels/${assertSafeId(imageId)}/${assertSafeTag(tag)}/${randomUUID()}${safeExt(ext)}`;
export const labelPrefix = (imageId: string, tag?: string) =>
  tag === undefined ? `labels/${assertSafeId(imageId)}/` : `labels/${assertSafeId(imageId)}/${assertSafeTag(tag)}/`;
export const sessionPrefix = (sessionId: string) => `sessions/${assertSafeId(sessionId, "session id")}/`;
export const sessionKey = (sessionId: string, fileName: string) =>
  `${sessionPrefix(sessionId)}${assertSafeId(fileName, "file name")}`;
export const exportKey = (jobId: string) => `exports/${assertSafeId(jobId, "job id")}/dataset.zip`;
/** Where the fs store stages writes before renaming them into place; never a valid key prefix above. */
export const TMP_DIR = ".tmp";
/** An inference result that was not saved as a label, kept for download. */
export const resultKey = (id: string, ext: string) => `results/${assertSafeId(id, "result id")}${safeExt(ext)}`;
