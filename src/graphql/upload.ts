import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** Spools an uploaded file to a private temporary folder, hands its path to `fn`, then removes it. */
export async function withUpload<T>(file: File, fn: (path: string, fileName: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-upload-"));
  const fileName = basename(file.name || "upload");
  try {
    const path = join(dir, "data");
    // Yoga's File may wrap its own ReadableStream ponyfill, which Readable.fromWeb refuses; both iterate.
    await pipeline(Readable.from(file.stream() as unknown as AsyncIterable<Uint8Array>), createWriteStream(path));
    return await fn(path, fileName);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Several uploads at once (a session's files); all are removed afterwards. */
export async function withUploads<T>(
  files: File[],
  fn: (files: { path: string; fileName: string }[]) => Promise<T>,
): Promise<T> {
  const spooled: { path: string; fileName: string }[] = [];
  const step = async (i: number): Promise<T> => {
    const file = files[i];
    if (!file) {
      return fn(spooled);
    }
    return withUpload(file, (path, fileName) => {
      spooled.push({ path, fileName });
      return step(i + 1);
    });
  };
  return step(0);
}
