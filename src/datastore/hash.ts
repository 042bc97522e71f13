import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";

/** Files up to this size are hashed from one read; bigger ones are streamed in constant memory. */
const SMALL = 4 * 1024 * 1024;

export async function sha256File(path: string, size?: number): Promise<string> {
  const hash = createHash("sha256");
  if (size !== undefined && size <= SMALL) {
    return hash.update(await readFile(path)).digest("hex");
  }
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}
