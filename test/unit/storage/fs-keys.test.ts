import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, InvalidIdError } from "../../../src/errors.js";
import { FsObjectStore } from "../../../src/storage/fs.object-store.js";
import { exportKey, imageKey, labelKey, sessionKey } from "../../../src/storage/keys.js";
import { assertObjectKey, assertObjectPrefix, compareKeys } from "../../../src/storage/object-key.js";

const root = join(tmpdir(), "labelgraph-unit-root");
const store = new FsObjectStore(root);

const badKeys = [
  "",
  "..",
  "../x",
  "a/..",
  "a/../b",
  "a/../../etc/passwd",
  "/etc/passwd",
  "//server/share",
  "a\\b",
  "..\\..\\x",
  "C:\\windows",
  "a\0b",
  "a//b",
  "a/",
  ".",
  "./a",
  "a/./b",
  ".tmp",
  ".tmp/abc",
  "x".repeat(1025),
];

describe("object keys", () => {
  it.each(badKeys)("refuses %j", (key) => {
    expect(() => assertObjectKey(key)).toThrow(InvalidIdError);
    expect(() => store.pathOf(key)).toThrow(InvalidIdError);
    try {
      store.pathOf(key);
    } catch (err) {
      expect(err).toMatchObject({ code: ErrorCode.INVALID_ID });
    }
  });

  it.each([
    "a",
    "images/img1/v.nii.gz",
    "labels/img (1)/final/x.nii.gz",
    "a..b/c",
    ".hidden/x",
    "a/.tmp/b",
    "x..",
    "...x",
  ])("maps %j inside the root", (key) => {
    expect(assertObjectKey(key)).toBe(key);
    const path = store.pathOf(key);
    expect(path.startsWith(root + sep)).toBe(true);
    expect(path).toBe(join(root, ...key.split("/")));
  });

  it("accepts every key keys.ts makes", () => {
    for (const key of [
      imageKey("spleen_10", ".nii.gz"),
      labelKey("spleen_10", "final", ".nii.gz"),
      sessionKey("abc-123", "image.nii.gz"),
      exportKey("job-1"),
    ]) {
      expect(assertObjectKey(key)).toBe(key);
      expect(store.pathOf(key).startsWith(root + sep)).toBe(true);
    }
  });

  it("accepts prefixes, including empty and partial ones", () => {
    for (const prefix of ["", "images/", "images/img", "a/b/", ".h", "a/.", "a/."]) {
      expect(assertObjectPrefix(prefix)).toBe(prefix);
    }
    for (const prefix of ["../", "a/../", "..", "/", "/a", "a\\", "a\0", "a//", ".tmp", ".tmp/", "./"]) {
      expect(() => assertObjectPrefix(prefix)).toThrow(InvalidIdError);
    }
  });

  it("orders keys by UTF-8 bytes, like S3", () => {
    const keys = ["a/b", "a.txt", "a-", "ab", "A", "é", "z"];
    expect([...keys].sort(compareKeys)).toEqual(["A", "a-", "a.txt", "a/b", "ab", "z", "é"]);
  });

  it("resolves a relative root to an absolute one", () => {
    const relative = new FsObjectStore("some/relative/root");
    expect(relative.root.startsWith(sep)).toBe(true);
    expect(relative.pathOf("k")).toBe(join(process.cwd(), "some", "relative", "root", "k"));
  });
});
