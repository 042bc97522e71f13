import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { ImageRepository } from "../db/images.repo.js";
import type { LabelRepository } from "../db/labels.repo.js";
import { imageNotFound, labelNotFound, ReadOnlyError, ShapeMismatchError } from "../errors.js";
import type { PubSub } from "../events/pubsub.js";
import { splitImageFileName } from "../io/extensions.js";
import { readImageHeader } from "../io/header.js";
import type { ImageHeader } from "../io/types.js";
import { assertSafeId, assertSafeTag, imageKey, labelKey } from "../storage/keys.js";
import type { ObjectStore } from "../storage/object-store.js";
import { runLimited } from "../util/run-limited.js";
import { sha256File } from "./hash.js";
import {
  type ChangeSource,
  type DatastoreChangeKind,
  type DatastoreStatus,
  DefaultLabelTag,
  type ImageFilter,
  type ImageRecord,
  type Info,
  type LabelRecord,
} from "./types.js";

export interface AddImageInput {
  /** The image id; derived from `fileName` as MONAI does when absent. */
  id?: string | null;
  /** The original file name: its extension decides the format. */
  fileName: string;
  /** A local file holding the bytes (an upload spooled to disk, or a file in the studies folder). */
  path: string;
  info?: Info | null;
  user?: string | null;
  source?: ChangeSource;
  /** Set for files registered from the studies folder, so the watcher can find them again. */
  sourcePath?: string | null;
}

export interface SaveLabelInput {
  imageId: string;
  tag?: string | null;
  fileName: string;
  path: string;
  info?: Info | null;
  author?: string | null;
  source?: ChangeSource;
  sourcePath?: string | null;
}

/** A label's spatial shape must equal its image's on the axes both have (MONAI's label/image pairing). */
export function spatialShape(dimensions: readonly number[]): number[] {
  return dimensions.slice(0, 3);
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * MONAI Label's datastore semantics over an object store and a database: images and labels by tag
 * (every save of a tag is a new version, the latest is current), info merged, labeled = has `final`.
 * Every change is published as `datastore:changed`, whatever path caused it.
 */
export class DatastoreService {
  constructor(
    private readonly deps: {
      images: ImageRepository;
      labels: LabelRepository;
      store: ObjectStore;
      pubsub: PubSub;
      readOnly?: boolean;
    },
  ) {}

  get readOnly(): boolean {
    return this.deps.readOnly ?? false;
  }

  /** Client-initiated writes are refused in read-only mode; the studies folder still syncs in. */
  private guard(source: ChangeSource | undefined) {
    if (this.readOnly && (source ?? "api") === "api") {
      throw new ReadOnlyError();
    }
  }

  private emit(kind: DatastoreChangeKind, imageId: string, source: ChangeSource, tag?: string, version?: number) {
    this.deps.pubsub.publish("datastore:changed", {
      kind,
      imageId,
      tag: tag ?? null,
      version: version ?? null,
      source,
      at: new Date(),
    });
  }

  /** Reads the header and checks the whole file; throws INVALID_IMAGE before anything is stored. */
  async describe(path: string, fileName: string): Promise<{ header: ImageHeader; size: number; sha256: string }> {
    const { size } = await stat(path);
    const [header, sha256] = await Promise.all([readImageHeader(path, fileName), sha256File(path, size)]);
    return { header, size, sha256 };
  }

  async addImage(input: AddImageInput): Promise<ImageRecord> {
    this.guard(input.source);
    const fileName = basename(input.fileName);
    const id = assertSafeId(input.id?.trim() || splitImageFileName(fileName).id);
    const { header, size, sha256 } = await this.describe(input.path, fileName);
    const key = imageKey(id, header.extension);
    await this.deps.store.putFile(key, input.path);
    let result: { image: ImageRecord; previous: ImageRecord | null };
    try {
      result = await this.deps.images.upsert({
        id,
        name: fileName,
        extension: header.extension,
        format: header.format,
        size,
        sha256,
        objectKey: key,
        dimensions: header.dimensions,
        spacing: header.spacing,
        channels: header.channels,
        dtype: header.dtype,
        info: { ts: nowSeconds(), name: fileName, ...(input.info ?? {}), ...(input.user ? { user: input.user } : {}) },
        sourcePath: input.sourcePath ?? null,
      });
    } catch (err) {
      await this.deps.store.delete(key);
      throw err;
    }
    if (result.previous && result.previous.objectKey !== key) {
      await this.deps.store.delete(result.previous.objectKey);
    }
    this.emit(result.previous ? "IMAGE_UPDATED" : "IMAGE_ADDED", id, input.source ?? "api");
    return result.image;
  }

  /**
   * Bulk registration for the studies folder: each file is checked and stored (hard-linked, no fsync)
   * a few at a time, and rows are inserted in batches; an id that already exists (uploaded through the
   * API) falls back to addImage, which replaces it. Calls `onEach` once per file.
   */
  async importImages(
    files: (AddImageInput & { id: string })[],
    source: ChangeSource,
    onEach: (path: string, error: Error | null) => void,
  ): Promise<number> {
    let added = 0;
    let batch: { row: Parameters<ImageRepository["insertManyIgnoringExisting"]>[0][number]; file: AddImageInput }[] =
      [];
    const flush = async () => {
      const pending = batch;
      batch = [];
      const inserted = await this.deps.images.insertManyIgnoringExisting(pending.map((p) => p.row));
      for (const { row, file } of pending) {
        if (inserted.has(row.id)) {
          added++;
          this.emit("IMAGE_ADDED", row.id, source);
          onEach(file.path, null);
          continue;
        }
        await this.deps.store.delete(row.objectKey);
        try {
          await this.addImage(file);
          added++;
          onEach(file.path, null);
        } catch (err) {
          onEach(file.path, err as Error);
        }
      }
    };
    await runLimited(files, 16, async (file) => {
      try {
        const fileName = basename(file.fileName);
        const id = assertSafeId(file.id);
        const { header, size, sha256 } = await this.describe(file.path, fileName);
        const key = imageKey(id, header.extension);
        await this.deps.store.putFile(key, file.path, { durable: false });
        batch.push({
          file,
          row: {
            id,
            name: fileName,
            extension: header.extension,
            format: header.format,
            size,
            sha256,
            objectKey: key,
            dimensions: header.dimensions,
            spacing: header.spacing,
            channels: header.channels,
            dtype: header.dtype,
            info: { ts: nowSeconds(), name: fileName, ...(file.info ?? {}) },
            sourcePath: file.sourcePath ?? null,
          },
        });
      } catch (err) {
        onEach(file.path, err as Error);
      }
      if (batch.length >= 500) {
        await flush();
      }
    });
    await flush();
    return added;
  }

  /** Removes the image and all its labels (every tag, every version). */
  async removeImage(id: string, source: ChangeSource = "api"): Promise<ImageRecord> {
    this.guard(source);
    const removed = await this.deps.images.delete(assertSafeId(id));
    if (!removed) {
      throw imageNotFound(id);
    }
    await Promise.all([removed.image.objectKey, ...removed.labelKeys].map((k) => this.deps.store.delete(k)));
    this.emit("IMAGE_REMOVED", id, source);
    return removed.image;
  }

  async getImage(id: string): Promise<ImageRecord> {
    const image = await this.deps.images.get(assertSafeId(id));
    if (!image) {
      throw imageNotFound(id);
    }
    return image;
  }

  findImage(id: string): Promise<ImageRecord | null> {
    return this.deps.images.get(id);
  }

  async saveLabel(input: SaveLabelInput): Promise<LabelRecord> {
    this.guard(input.source);
    const tag = assertSafeTag(input.tag ?? DefaultLabelTag.FINAL);
    const image = await this.getImage(input.imageId);
    const fileName = basename(input.fileName);
    const { header, size, sha256 } = await this.describe(input.path, fileName);
    const want = spatialShape(image.dimensions);
    const got = spatialShape(header.dimensions);
    if (want.length !== got.length || want.some((n, i) => n !== got[i])) {
      throw new ShapeMismatchError(want, got);
    }
    const key = labelKey(image.id, tag, header.extension);
    await this.deps.store.putFile(key, input.path);
    let label: LabelRecord;
    try {
      label = await this.deps.labels.addVersion({
        imageId: image.id,
        tag,
        author: input.author ?? null,
        extension: header.extension,
        size,
        sha256,
        objectKey: key,
        dimensions: header.dimensions,
        info: { ts: nowSeconds(), name: `${image.id}${header.extension}`, ...(input.info ?? {}) },
        sourcePath: input.sourcePath ?? null,
      });
    } catch (err) {
      await this.deps.store.delete(key);
      // The image may have been removed while the label was being stored.
      if (!(await this.deps.images.get(image.id))) {
        throw imageNotFound(image.id);
      }
      throw err;
    }
    this.emit("LABEL_SAVED", image.id, input.source ?? "api", tag, label.version);
    return label;
  }

  /** Removes every version of the tag. */
  async removeLabel(imageId: string, tag: string, source: ChangeSource = "api"): Promise<LabelRecord[]> {
    this.guard(source);
    const removed = await this.deps.labels.deleteTag(assertSafeId(imageId), assertSafeTag(tag));
    if (removed.length === 0) {
      throw labelNotFound(imageId, tag);
    }
    await Promise.all(removed.map((l) => this.deps.store.delete(l.objectKey)));
    this.emit("LABEL_REMOVED", imageId, source, tag);
    return removed;
  }

  /** The watcher's path: drops the label versions that came from one file of the studies folder. */
  async removeLabelsFromSource(sourcePath: string): Promise<void> {
    const removed = await this.deps.labels.deleteBySourcePath(sourcePath);
    await Promise.all(removed.map((l) => this.deps.store.delete(l.objectKey)));
    for (const l of removed) {
      this.emit("LABEL_REMOVED", l.imageId, "watcher", l.tag, l.version);
    }
  }

  /** The current version, or the given one. */
  async getLabel(imageId: string, tag: string = DefaultLabelTag.FINAL, version?: number): Promise<LabelRecord> {
    const label = await this.deps.labels.get(assertSafeId(imageId), assertSafeTag(tag), version);
    if (!label) {
      throw labelNotFound(imageId, tag);
    }
    return label;
  }

  findLabel(imageId: string, tag: string, version?: number): Promise<LabelRecord | null> {
    return this.deps.labels.get(imageId, tag, version);
  }

  /** MONAI's get_labels_by_image_id, with the records: current version of each tag. */
  labelsOf(imageId: string): Promise<LabelRecord[]> {
    return this.deps.labels.currentByImage(imageId);
  }

  labelsOfMany(imageIds: readonly string[]): Promise<Map<string, LabelRecord[]>> {
    return this.deps.labels.currentByImages(imageIds);
  }

  labelVersions(imageId: string, tag: string): Promise<LabelRecord[]> {
    return this.deps.labels.versions(imageId, tag);
  }

  async updateImageInfo(id: string, info: Info, user?: string | null, source: ChangeSource = "api") {
    this.guard(source);
    const image = await this.deps.images.mergeInfo(assertSafeId(id), user ? { ...info, user } : info);
    if (!image) {
      throw imageNotFound(id);
    }
    this.emit("IMAGE_UPDATED", id, source);
    return image;
  }

  async updateLabelInfo(imageId: string, tag: string, info: Info, user?: string | null, source: ChangeSource = "api") {
    this.guard(source);
    const label = await this.deps.labels.mergeInfo(
      assertSafeId(imageId),
      assertSafeTag(tag),
      user ? { ...info, user } : info,
    );
    if (!label) {
      throw labelNotFound(imageId, tag);
    }
    this.emit("LABEL_UPDATED", imageId, source, tag, label.version);
    return label;
  }

  listImageIds(filter: ImageFilter = {}): Promise<string[]> {
    return this.deps.images.ids(filter);
  }
  /** MONAI's get_labeled_images: images with a `final` label. */
  labeledImages(): Promise<string[]> {
    return this.deps.images.ids({ labeled: true });
  }
  unlabeledImages(): Promise<string[]> {
    return this.deps.images.ids({ labeled: false });
  }
  countImages(filter: ImageFilter = {}): Promise<number> {
    return this.deps.images.count(filter);
  }
  pageImages(filter: ImageFilter, opts: { after?: string; before?: string; limit: number; inverted: boolean }) {
    return this.deps.images.page(filter, opts);
  }
  getImages(ids: readonly string[]): Promise<ImageRecord[]> {
    return this.deps.images.getMany(ids);
  }
  status(): Promise<DatastoreStatus> {
    return this.deps.images.status();
  }

  /** Final-labeled pairs for training, as object keys (MONAI's datalist() gives paths). */
  async datalist(limit?: number): Promise<{ image: string; label: string; imageKey: string; labelKey: string }[]> {
    const pairs = await this.deps.labels.finalPairs(limit);
    const images = new Map((await this.deps.images.getMany(pairs.map((p) => p.imageId))).map((i) => [i.id, i]));
    return pairs.flatMap(({ imageId, label }) => {
      const image = images.get(imageId);
      return image ? [{ image: imageId, label: imageId, imageKey: image.objectKey, labelKey: label.objectKey }] : [];
    });
  }

  /** What the studies folder registered: image paths to ids, and label paths. */
  async sourceIndex(): Promise<{ images: Map<string, string>; labels: Set<string> }> {
    const [images, labels] = await Promise.all([this.deps.images.sourcePaths(), this.deps.labels.sourcePaths()]);
    return { images, labels };
  }
}
