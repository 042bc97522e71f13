import { type JobFilter, type JobRecord, JobStatus } from "../../src/db/jobs.repo.js";
import type { JobStore } from "../../src/jobs/queue.js";

/** An in-memory JobStore with the same observable behaviour as JobRepository. */
export class InMemoryJobStore implements JobStore {
  readonly rows = new Map<string, JobRecord>();
  writes = 0;

  async create(id: string, kind: string, params: unknown): Promise<JobRecord> {
    const now = new Date();
    const job: JobRecord = {
      id,
      kind,
      status: JobStatus.QUEUED,
      params,
      progress: 0,
      message: null,
      result: null,
      error: null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
    };
    this.rows.set(id, job);
    return { ...job };
  }
  async get(id: string) {
    const j = this.rows.get(id);
    return j ? { ...j } : null;
  }
  async update(id: string, patch: Partial<JobRecord>): Promise<JobRecord> {
    const j = this.rows.get(id);
    if (!j) {
      throw new Error(`no job ${id}`);
    }
    this.writes++;
    const next = { ...j, ...patch, updatedAt: new Date() };
    this.rows.set(id, next);
    return { ...next };
  }
  private filtered(f: JobFilter) {
    return [...this.rows.values()]
      .filter((j) => (f.kind ? j.kind === f.kind : true) && (f.status ? f.status.includes(j.status) : true))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  }
  async list(f: JobFilter, limit: number, offset = 0) {
    return this.filtered(f).slice(offset, offset + limit);
  }
  async count(f: JobFilter) {
    return this.filtered(f).length;
  }
  async unfinished() {
    return [...this.rows.values()].filter((j) => j.status === JobStatus.QUEUED || j.status === JobStatus.RUNNING);
  }
}
