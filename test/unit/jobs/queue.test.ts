import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../../src/db/jobs.repo.js";
import { createEventBus } from "../../../src/events/pubsub.js";
import { InProcessJobQueue } from "../../../src/jobs/queue.js";
import { InMemoryJobStore } from "../../helpers/fakes.js";

type TestCatalogue = {
  add: { params: { a: number; b: number }; result: { sum: number } };
  slow: { params: { steps: number }; result: { done: number } };
  boom: { params: Record<string, never>; result: null };
};

function makeQueue(store = new InMemoryJobStore(), gate?: Promise<void>) {
  const pubsub = createEventBus();
  const queue = new InProcessJobQueue<TestCatalogue>({
    repo: store,
    pubsub,
    progressWriteIntervalMs: 0,
    log: () => {},
    handlers: {
      add: async ({ a, b }) => ({ sum: a + b }),
      slow: async ({ steps }, ctx) => {
        let done = 0;
        for (let i = 0; i < steps; i++) {
          if (ctx.signal.aborted) {
            break;
          }
          await (gate ?? new Promise((r) => setTimeout(r, 5)));
          done++;
          ctx.progress(done / steps, `step ${done}`);
        }
        return { done };
      },
      boom: async () => {
        throw new Error("exploded");
      },
    },
  });
  return { queue, store, pubsub };
}

describe("InProcessJobQueue", () => {
  it("runs a job to SUCCEEDED with its result, publishing each state", async () => {
    const { queue, pubsub } = makeQueue();
    const seen: JobRecord[] = [];
    const sub = pubsub.subscribe("job:updated");
    void (async () => {
      for await (const j of sub) {
        seen.push(j);
      }
    })();
    const job = await queue.enqueue("add", { a: 2, b: 3 });
    await queue.idle();
    expect(await queue.get(job.id)).toMatchObject({ status: "SUCCEEDED", result: { sum: 5 }, progress: 1 });
    await new Promise((r) => setTimeout(r, 0));
    expect(seen.map((j) => j.status)).toEqual(["QUEUED", "RUNNING", "SUCCEEDED"]);
    await sub.return();
  });

  it("reports progress and keeps the error of a failed job", async () => {
    const { queue, pubsub } = makeQueue();
    const progress: number[] = [];
    const sub = pubsub.subscribe("job:updated");
    void (async () => {
      for await (const j of sub) {
        if (j.status === "RUNNING" && j.kind === "slow") {
          progress.push(j.progress);
        }
      }
    })();
    const slow = await queue.enqueue("slow", { steps: 4 });
    const boom = await queue.enqueue("boom", {});
    await queue.idle();
    await new Promise((r) => setTimeout(r, 0));
    expect(progress).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(await queue.get(slow.id)).toMatchObject({ status: "SUCCEEDED", message: "step 4" });
    expect(await queue.get(boom.id)).toMatchObject({ status: "FAILED", error: "exploded" });
    await sub.return();
  });

  it("runs one job of a kind at a time and cancels queued and running jobs", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { queue } = makeQueue(undefined, gate);
    const first = await queue.enqueue("slow", { steps: 3 });
    const second = await queue.enqueue("slow", { steps: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect((await queue.get(first.id))?.status).toBe("RUNNING");
    expect((await queue.get(second.id))?.status).toBe("QUEUED");
    expect((await queue.cancel(second.id)).status).toBe("CANCELLED");
    const cancelling = queue.cancel(first.id);
    release();
    expect((await cancelling).status).toBe("CANCELLED");
    await queue.idle();
    expect((await queue.get(second.id))?.startedAt).toBeNull();
  });

  it("after a restart, re-runs queued jobs and marks interrupted ones failed", async () => {
    const store = new InMemoryJobStore();
    const queued = await store.create("q1", "add", { a: 1, b: 1 });
    await store.create("r1", "slow", { steps: 1 });
    await store.update("r1", { status: "RUNNING" });
    const { queue } = makeQueue(store);
    await queue.start();
    await queue.idle();
    expect(await queue.get(queued.id)).toMatchObject({ status: "SUCCEEDED", result: { sum: 2 } });
    expect(await queue.get("r1")).toMatchObject({ status: "FAILED", error: expect.stringContaining("interrupted") });
  });

  it("refuses unknown kinds and unknown ids with typed errors", async () => {
    const { queue } = makeQueue();
    await expect(queue.enqueue("nope" as "add", { a: 1, b: 2 })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(queue.cancel("missing")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
  });
});
