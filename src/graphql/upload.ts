import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

/** Spools an uploaded file to a private temporary folder, hands its path to `fn`, then removes it. */
export async function withUpload<T>(file: File, fn: (path: string, fileName: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-upload-"));
  const fileName = basename(file.name || "upload");
  try {
    const path = join(dir, "data");
    await pipeline(Readable.fromWeb(file.stream() as unknown as WebReadableStream), createWriteStream(path));
    return await fn(path, fileName);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
