import type { Info } from "../datastore/types.js";
import type { Db } from "./client.js";
import type { Prisma } from "./generated/sqlite/client.js";
import { asInfo } from "./json.js";

export interface SessionRecord {
  id: string;
  name: string;
  objectKey: string;
  info: Info;
  createdAt: Date;
  lastAccessAt: Date;
  expiry: number;
}

const toRecord = (r: Prisma.SessionModel): SessionRecord => ({ ...r, info: asInfo(r.info) });

export class SessionRepository {
  constructor(private readonly db: Db) {}

  async create(s: Omit<SessionRecord, "createdAt" | "lastAccessAt">): Promise<SessionRecord> {
    return toRecord(await this.db.session.create({ data: { ...s, info: s.info as Prisma.InputJsonObject } }));
  }

  async get(id: string, touch = false): Promise<SessionRecord | null> {
    if (touch) {
      const res = await this.db.session.updateMany({ where: { id }, data: { lastAccessAt: new Date() } });
      if (res.count === 0) {
        return null;
      }
    }
    const row = await this.db.session.findUnique({ where: { id } });
    return row ? toRecord(row) : null;
  }

  async delete(id: string): Promise<SessionRecord | null> {
    const row = await this.db.session.findUnique({ where: { id } });
    if (!row) {
      return null;
    }
    await this.db.session.delete({ where: { id } });
    return toRecord(row);
  }

  /** Sessions idle for longer than their expiry at `now`. */
  async expired(now: Date): Promise<SessionRecord[]> {
    const rows = await this.db.session.findMany();
    return rows.map(toRecord).filter((s) => s.lastAccessAt.getTime() + s.expiry * 1000 < now.getTime());
  }
}
