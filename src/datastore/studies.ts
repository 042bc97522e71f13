import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { type FSWatcher, watch } from "chokidar";
import { splitImageFileName } from "../io/extensions.js";
import { isSafeId } from "../storage/keys.js";
import { runLimited } from "../util/run-limited.js";
import type { DatastoreService } from "./datastore.service.js";
import type { ChangeSource, Info } from "./types.js";

/**
 * Keeps the datastore in step with a MONAI Label-style studies folder:
 *   <studies>/<id><ext>                images
 *   <studies>/labels/<tag>/<id><ext>   labels (final, original, any other tag)
 *   <studies>/datastore_v2.json        optional metadata (info of images and labels)
 * Files are registered in place (the fs object store hard-links them) and remembered by path, so a
 * file removed from the folder later removes what it registered. Our own data lives in a dot folder
 * that is never scanned.
 */
export interface StudiesOptions {
  dir: string;
  /** MONAI_LABEL_DATASTORE_FILE_EXT patterns, e.g. "*.nii.gz". */
  extensions: readonly string[];
  log?: (msg: string) => void;
  /** Called with (done, total) while registering. */
  onProgress?: (done: number, total: number) => void;
}

export interface SyncReport {
  imagesAdded: number;
  imagesRemoved: number;
  labelsAdded: number;
  labelsRemoved: number;
  skipped: { path: string; reason: string }[];
}

const toRegex = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  );

interface V2Json {
  objects?: Record<string, { image?: { info?: Info }; labels?: Record<string, { info?: Info }> }>;
}

export class StudiesFolder {
  private readonly patterns: RegExp[];
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SyncReport> | null = null;
  private again = false;

  constructor(
    private readonly datastore: DatastoreService,
    private readonly opts: StudiesOptions,
  ) {
    this.patterns = opts.extensions.map(toRegex);
  }

  private matches(name: string) {
    return !name.startsWith(".") && this.patterns.some((p) => p.test(name));
  }

  private async readV2(): Promise<V2Json> {
    const file = join(this.opts.dir, "datastore_v2.json");
    if (!existsSync(file)) {
      return {};
    }
    try {
      return JSON.parse(await readFile(file, "utf8")) as V2Json;
    } catch (err) {
      this.opts.log?.(`ignoring ${file}: ${(err as Error).message}`);
      return {};
    }
  }

  /** The image and label files the folder holds now. */
  async scan(): Promise<{ images: string[]; labels: { tag: string; path: string }[] }> {
    const dir = this.opts.dir;
    await mkdir(join(dir, "labels", "final"), { recursive: true });
    await mkdir(join(dir, "labels", "original"), { recursive: true });
    const top = await readdir(dir, { withFileTypes: true });
    const images = top.filter((e) => e.isFile() && this.matches(e.name)).map((e) => join(dir, e.name));
    const labels: { tag: string; path: string }[] = [];
    for (const t of await readdir(join(dir, "labels"), { withFileTypes: true })) {
      if (!t.isDirectory() || t.name.startsWith(".")) {
        continue;
      }
      for (const f of await readdir(join(dir, "labels", t.name), { withFileTypes: true })) {
        if (f.isFile() && this.matches(f.name)) {
          labels.push({ tag: t.name, path: join(dir, "labels", t.name, f.name) });
        }
      }
    }
    return { images: images.sort(), labels: labels.sort((a, b) => a.path.localeCompare(b.path)) };
  }

  /** Registers new files and drops what vanished; safe to call repeatedly (one run at a time). */
  sync(source: ChangeSource = "import"): Promise<SyncReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.doSync(source).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.sync("watcher");
      }
    });
    return this.running;
  }

  private async doSync(source: ChangeSource): Promise<SyncReport> {
    const report: SyncReport = { imagesAdded: 0, imagesRemoved: 0, labelsAdded: 0, labelsRemoved: 0, skipped: [] };
    const [{ images, labels }, v2, known] = await Promise.all([
      this.scan(),
      this.readV2(),
      this.datastore.sourceIndex(),
    ]);
    const rel = (p: string) => relative(this.opts.dir, p).split(sep).join("/");
    const present = new Set([...images.map(rel), ...labels.map((l) => rel(l.path))]);

    // Vanished files first, so a file replaced by another of the same id is re-registered cleanly.
    for (const [path, id] of known.images) {
      if (!present.has(path)) {
        await this.datastore.removeImage(id, source).catch(() => {});
        report.imagesRemoved++;
      }
    }
    for (const path of known.labels) {
      if (!present.has(path)) {
        await this.datastore.removeLabelsFromSource(path);
        report.labelsRemoved++;
      }
    }

    const newImages = images.filter((p) => !known.images.has(rel(p)));
    const newLabels = labels.filter((l) => !known.labels.has(rel(l.path)));
    const total = newImages.length + newLabels.length;
    let done = 0;
    const tick = () => this.opts.onProgress?.(++done, total);

    const candidates: {
      id: string;
      fileName: string;
      path: string;
      info: Info | null;
      source: ChangeSource;
      sourcePath: string;
    }[] = [];
    for (const path of newImages) {
      const name = path.slice(path.lastIndexOf(sep) + 1);
      const { id } = splitImageFileName(name);
      if (!isSafeId(id)) {
        report.skipped.push({ path, reason: `unusable id ${JSON.stringify(id)}` });
        tick();
        continue;
      }
      candidates.push({
        id,
        fileName: name,
        path,
        info: v2.objects?.[id]?.image?.info ?? null,
        source,
        sourcePath: rel(path),
      });
    }
    report.imagesAdded += await this.datastore.importImages(candidates, source, (path, err) => {
      if (err) {
        report.skipped.push({ path, reason: err.message });
      }
      tick();
    });
    // Labels after images: a label is only registered for an image that exists (MONAI logs the rest as IGNORE).
    await runLimited(newLabels, 8, async ({ tag, path }) => {
      const name = path.slice(path.lastIndexOf(sep) + 1);
      const { id } = splitImageFileName(name);
      try {
        await this.datastore.saveLabel({
          imageId: id,
          tag,
          fileName: name,
          path,
          info: v2.objects?.[id]?.labels?.[tag]?.info ?? null,
          source,
          sourcePath: rel(path),
        });
        report.labelsAdded++;
      } catch (err) {
        report.skipped.push({ path, reason: err instanceof Error ? err.message : String(err) });
      }
      tick();
    });
    for (const s of report.skipped) {
      this.opts.log?.(`IGNORE ${s.path}: ${s.reason}`);
    }
    return report;
  }

  /** Watches the folder (MONAI_LABEL_DATASTORE_AUTO_RELOAD) and syncs shortly after files settle. */
  async watch(): Promise<void> {
    if (this.watcher) {
      return;
    }
    const dir = this.opts.dir;
    this.watcher = watch(dir, {
      ignoreInitial: true,
      depth: 2,
      ignored: (path: string) => {
        const r = relative(dir, path);
        return r.split(sep).some((part) => part.startsWith("."));
      },
      awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 },
    });
    const schedule = () => {
      if (this.timer) {
        clearTimeout(this.timer);
      }
      this.timer = setTimeout(() => {
        this.timer = null;
        this.sync("watcher").catch((err) => this.opts.log?.(`studies sync failed: ${(err as Error).message}`));
      }, 100);
    };
    this.watcher.on("add", schedule).on("unlink", schedule).on("change", schedule);
    await new Promise<void>((resolve) => this.watcher?.once("ready", () => resolve()));
  }

  async close(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    await this.watcher?.close();
    this.watcher = null;
    await this.running?.catch(() => {});
  }
}
