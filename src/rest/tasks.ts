import { FINISHED, type JobRecord, JobStatus } from "../db/jobs.repo.js";
import type { PubSub } from "../events/pubsub.js";
import type { JobCatalogue } from "../jobs/catalogue.js";
import type { JobQueue } from "../jobs/queue.js";

/**
 * MONAI Label's background task records (utils/async_tasks): `{id, status, request, start_ts, end_ts,
 * details}`, over labelgraph's job queue. Jobs live in the database, so unlike MONAI's in-memory list they
 * survive a restart, and a job queued over GraphQL is the same task here.
 */
export type TaskMethod = "train" | "scoring" | "batchInference";

const STATUS: Record<JobStatus, string> = {
  QUEUED: "SUBMITTED",
  RUNNING: "RUNNING",
  SUCCEEDED: "DONE",
  FAILED: "ERROR",
  CANCELLED: "STOPPED",
};

/** MONAI's "%Y-%m-%d %H:%M:%S", in local time as datetime.today() gives it. */
export function monaiTs(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The request MONAI would have recorded: `{model | method, ...params}`. */
function requestOf(job: JobRecord): Record<string, unknown> {
  const p = (job.params ?? {}) as Record<string, unknown>;
  const params = (p.params ?? {}) as Record<string, unknown>;
  if (job.kind === "train") {
    return { model: p.model, ...params };
  }
  if (job.kind === "scoring") {
    return { method: p.method, ...params, ...(p.imageIds ? { images: p.imageIds } : {}) };
  }
  return { model: p.model, images: p.images, ...params };
}

/** MONAI keeps the child's last 20 stdout lines; here: one line per epoch (training), the message, the error. */
function detailsOf(job: JobRecord): string[] {
  const lines: string[] = [];
  const result = job.result as { history?: Record<string, unknown>[] } | null;
  for (const e of result?.history ?? []) {
    if (e.kind !== "epoch") {
      continue;
    }
    const parts = [`Epoch: ${e.epoch}`];
    for (const k of ["loss", "trainDice", "valDice", "bestMetric"]) {
      if (typeof e[k] === "number") {
        parts.push(`${k}: ${(e[k] as number).toFixed(4)}`);
      }
    }
    lines.push(parts.join("; "));
  }
  if (job.message) {
    lines.push(job.message);
  }
  if (job.error) {
    lines.push(job.error);
  }
  return lines.slice(-20);
}

export function taskRecord(job: JobRecord): Record<string, unknown> {
  const record: Record<string, unknown> = {
    id: job.id,
    status: STATUS[job.status],
    request: requestOf(job),
    start_ts: monaiTs(job.startedAt ?? job.createdAt),
  };
  if (job.status !== JobStatus.QUEUED) {
    record.details = detailsOf(job);
  }
  if (job.finishedAt) {
    record.end_ts = monaiTs(job.finishedAt);
  }
  return record;
}

const ACTIVE = [JobStatus.QUEUED, JobStatus.RUNNING];

type Queue = JobQueue<JobCatalogue>;

export async function activeJobs(jobs: Queue, kind: TaskMethod): Promise<JobRecord[]> {
  return (await jobs.list({ kind, status: ACTIVE }, 100)).reverse();
}

/** MONAI's AsyncTask.status: the last task, all of them (oldest first), or the running one. */
export async function taskStatus(
  jobs: Queue,
  kind: TaskMethod,
  label: string,
  opts: { all: boolean; checkIfRunning: boolean },
): Promise<{ found: unknown } | { missing: string }> {
  if (opts.checkIfRunning) {
    const running = await activeJobs(jobs, kind);
    const first = running[0];
    return first ? { found: taskRecord(first) } : { missing: `No ${label} Tasks are currently Running` };
  }
  const recent = await jobs.list({ kind }, opts.all ? 500 : 1);
  if (recent.length === 0) {
    return { missing: `No ${label.charAt(0).toUpperCase()}${label.slice(1)} Tasks Found` };
  }
  return { found: opts.all ? recent.reverse().map(taskRecord) : taskRecord(recent[0] as JobRecord) };
}

/** Stops the running (or else the oldest queued) task of a kind; null when there is none. */
export async function stopTask(jobs: Queue, kind: TaskMethod): Promise<Record<string, unknown> | null> {
  const active = await activeJobs(jobs, kind);
  const target = active.find((j) => j.status === JobStatus.RUNNING) ?? active[0];
  if (!target) {
    return null;
  }
  return taskRecord(await jobs.cancel(target.id));
}

/** Waits for a job to finish (MONAI's run_sync runs the task inside the request). */
export async function waitFor(jobs: Queue, pubsub: PubSub, id: string): Promise<JobRecord> {
  const events = pubsub.subscribe("job:updated");
  try {
    const now = await jobs.get(id);
    if (now && FINISHED.includes(now.status)) {
      return now;
    }
    for await (const job of events) {
      if (job.id === id && FINISHED.includes(job.status)) {
        return job;
      }
    }
    throw new Error(`job ${id}: the event stream ended before it finished`);
  } finally {
    await events.return?.();
  }
}
