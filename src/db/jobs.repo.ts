import type { Db } from "./client.js";
import type { Prisma } from "./generated/sqlite/client.js";

export const JobStatus = {
  QUEUED: "QUEUED",
  RUNNING: "RUNNING",
  SUCCEEDED: "SUCCEEDED",
  FAILED: "FAILED",
  CANCELLED: "CANCELLED",
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];
export const FINISHED: readonly JobStatus[] = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED];

export interface JobRecord {
  id: string;
  kind: string;
  status: JobStatus;
  params: unknown;
  progress: number;
  message: string | null;
  result: unknown;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

const toRecord = (r: Prisma.JobModel): JobRecord => ({ ...r, status: r.status as JobStatus });

export interface JobFilter {
  kind?: string;
  status?: JobStatus[];
}

export class JobRepository {
  constructor(private readonly db: Db) {}

  async create(id: string, kind: string, params: unknown): Promise<JobRecord> {
    const row = await this.db.job.create({
      data: { id, kind, status: JobStatus.QUEUED, params: params as Prisma.InputJsonValue },
    });
    return toRecord(row);
  }

  async get(id: string): Promise<JobRecord | null> {
    const row = await this.db.job.findUnique({ where: { id } });
    return row ? toRecord(row) : null;
  }

  async update(
    id: string,
    patch: Partial<Pick<JobRecord, "status" | "progress" | "message" | "error" | "startedAt" | "finishedAt">> & {
      result?: unknown;
    },
  ): Promise<JobRecord> {
    const { result, ...rest } = patch;
    const data: Prisma.JobUpdateInput = { ...rest };
    if (result !== undefined) {
      data.result = result as Prisma.InputJsonValue;
    }
    return toRecord(await this.db.job.update({ where: { id }, data }));
  }

  async list(filter: JobFilter, limit: number, offset = 0): Promise<JobRecord[]> {
    const rows = await this.db.job.findMany({
      where: { kind: filter.kind, status: filter.status ? { in: filter.status } : undefined },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: limit,
      skip: offset,
    });
    return rows.map(toRecord);
  }

  async count(filter: JobFilter): Promise<number> {
    return this.db.job.count({
      where: { kind: filter.kind, status: filter.status ? { in: filter.status } : undefined },
    });
  }

  /** Jobs a previous process left behind, oldest first. */
  async unfinished(): Promise<JobRecord[]> {
    const rows = await this.db.job.findMany({
      where: { status: { in: [JobStatus.QUEUED, JobStatus.RUNNING] } },
      orderBy: { createdAt: "asc" },
    });
    return rows.map(toRecord);
  }
}
