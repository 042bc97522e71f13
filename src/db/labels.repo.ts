import type { Info, LabelRecord } from "../datastore/types.js";
import type { Db } from "./client.js";
import type { Prisma } from "./generated/sqlite/client.js";
import { asInfo, asNumbers, isUniqueViolation } from "./json.js";

type Row = Prisma.LabelModel;

const toRecord = (r: Row): LabelRecord => ({
  ...r,
  size: Number(r.size),
  dimensions: asNumbers(r.dimensions),
  info: asInfo(r.info),
});

export type NewLabel = Omit<LabelRecord, "id" | "version" | "createdAt" | "updatedAt">;

export class LabelRepository {
  constructor(private readonly db: Db) {}

  /**
   * Adds the next version of (image, tag). Concurrent saves race for the same version number; the
   * unique (imageId, tag, version) index lets exactly one win and the others retry with the next.
   */
  async addVersion(label: NewLabel): Promise<LabelRecord> {
    for (let attempt = 0; ; attempt++) {
      const last = await this.db.label.findFirst({
        where: { imageId: label.imageId, tag: label.tag },
        orderBy: { version: "desc" },
        select: { version: true },
      });
      try {
        const row = await this.db.label.create({
          data: {
            ...label,
            version: (last?.version ?? 0) + 1,
            size: BigInt(label.size),
            info: label.info as Prisma.InputJsonObject,
          },
        });
        return toRecord(row);
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 100) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, Math.random() * 5 * Math.min(attempt + 1, 10)));
      }
    }
  }

  /** The current (highest) version, or a given one. */
  async get(imageId: string, tag: string, version?: number): Promise<LabelRecord | null> {
    const row =
      version === undefined
        ? await this.db.label.findFirst({ where: { imageId, tag }, orderBy: { version: "desc" } })
        : await this.db.label.findUnique({ where: { imageId_tag_version: { imageId, tag, version } } });
    return row ? toRecord(row) : null;
  }

  /** The current version of every tag of an image, by tag. */
  async currentByImage(imageId: string): Promise<LabelRecord[]> {
    return (await this.currentByImages([imageId])).get(imageId) ?? [];
  }

  async currentByImages(imageIds: readonly string[]): Promise<Map<string, LabelRecord[]>> {
    const rows = await this.db.label.findMany({
      where: { imageId: { in: [...imageIds] } },
      orderBy: [{ imageId: "asc" }, { tag: "asc" }, { version: "desc" }],
    });
    const out = new Map<string, LabelRecord[]>();
    let prev = "";
    for (const r of rows) {
      const key = `${r.imageId}\u0000${r.tag}`;
      if (key !== prev) {
        const list = out.get(r.imageId) ?? [];
        list.push(toRecord(r));
        out.set(r.imageId, list);
        prev = key;
      }
    }
    return out;
  }

  async versions(imageId: string, tag: string): Promise<LabelRecord[]> {
    const rows = await this.db.label.findMany({ where: { imageId, tag }, orderBy: { version: "asc" } });
    return rows.map(toRecord);
  }

  /** Removes every version of (image, tag); returns the removed rows. */
  async deleteTag(imageId: string, tag: string): Promise<LabelRecord[]> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.label.findMany({ where: { imageId, tag } });
      await tx.label.deleteMany({ where: { imageId, tag } });
      return rows.map(toRecord);
    });
  }

  async deleteBySourcePath(sourcePath: string): Promise<LabelRecord[]> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.label.findMany({ where: { sourcePath } });
      await tx.label.deleteMany({ where: { sourcePath } });
      return rows.map(toRecord);
    });
  }

  async sourcePaths(): Promise<Set<string>> {
    const rows = await this.db.label.findMany({ where: { sourcePath: { not: null } }, select: { sourcePath: true } });
    return new Set(rows.map((r) => r.sourcePath as string));
  }

  /** Shallow-merges into the current version's info; optimistic like ImageRepository.mergeInfo. */
  async mergeInfo(imageId: string, tag: string, patch: Info): Promise<LabelRecord | null> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const cur = await this.get(imageId, tag);
      if (!cur) {
        return null;
      }
      const info = { ...cur.info, ...patch } as Prisma.InputJsonObject;
      const res = await this.db.label.updateMany({ where: { id: cur.id, updatedAt: cur.updatedAt }, data: { info } });
      if (res.count === 1) {
        return this.get(imageId, tag, cur.version);
      }
    }
    throw new Error(`label info of ${imageId}/${tag} is being updated too often to merge`);
  }

  /** Final-labeled pairs for training: each image with its current final label. */
  async finalPairs(limit?: number): Promise<{ imageId: string; label: LabelRecord }[]> {
    const rows = await this.db.label.findMany({
      where: { tag: "final" },
      orderBy: [{ imageId: "asc" }, { version: "desc" }],
    });
    const out: { imageId: string; label: LabelRecord }[] = [];
    for (const r of rows) {
      if (out.at(-1)?.imageId !== r.imageId) {
        out.push({ imageId: r.imageId, label: toRecord(r) });
        if (limit !== undefined && out.length >= limit) {
          break;
        }
      }
    }
    return out;
  }
}
