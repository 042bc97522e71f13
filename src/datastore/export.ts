import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import yazl from "yazl";
import { ErrorCode, LabelgraphError } from "../errors.js";
import type { JobContext } from "../jobs/catalogue.js";
import { exportKey } from "../storage/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { DatastoreService } from "./datastore.service.js";

/**
 * MONAI's dataset archive: `image/<id><ext>`, `label/<id><ext>` for every final-labeled image, and
 * `metadata.json` with each pair's image and label info. Spooled to a temporary file (constant memory),
 * then stored in one atomic put.
 */
export async function exportDataset(
  datastore: DatastoreService,
  store: ObjectStore,
  params: { limitCases?: number | null },
  ctx: JobContext,
): Promise<{ key: string; images: number; size: number }> {
  const all = await datastore.datalist();
  if (all.length === 0) {
    throw new LabelgraphError(ErrorCode.EMPTY_DATASET, "no image has a final label: nothing to export");
  }
  const n =
    params.limitCases && params.limitCases >= 1 && params.limitCases < all.length ? params.limitCases : all.length;
  const pairs = all.slice(0, n);
  const dir = await mkdtemp(join(tmpdir(), "labelgraph-export-"));
  try {
    const file = join(dir, "dataset.zip");
    const zip = new yazl.ZipFile();
    const written = pipeline(zip.outputStream, createWriteStream(file));
    const metadata: Record<string, unknown> = {};
    for (const [i, pair] of pairs.entries()) {
      if (ctx.signal.aborted) {
        throw new Error("cancelled");
      }
      const [image, label] = await Promise.all([
        datastore.getImage(pair.image),
        datastore.getLabel(pair.image, "final"),
      ]);
      zip.addReadStream(await store.get(image.objectKey), `image/${image.id}${image.extension}`);
      zip.addReadStream(await store.get(label.objectKey), `label/${image.id}${label.extension}`);
      metadata[image.id] = { image: image.info, label: label.info };
      ctx.progress((i + 1) / (pairs.length + 1), `added ${i + 1}/${pairs.length} pairs`);
    }
    zip.addBuffer(Buffer.from(JSON.stringify(metadata, null, 2)), "metadata.json");
    zip.end();
    await written;
    const key = exportKey(ctx.id);
    const info = await store.putFile(key, file);
    return { key, images: pairs.length, size: info.size };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
