import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, LabelgraphError } from "../../../src/errors.js";
import { SlidingWindowInferer } from "../../../src/inferers/index.js";
import { ModelLoadError, ModelRunError, SessionPoolClosedError } from "../../../src/runtime/errors.js";
import { sessionPredictor, withPredictor } from "../../../src/runtime/predictor.js";
import { SessionPool } from "../../../src/runtime/session-pool.js";
import { conv3x3Model, identityModel, scaleModel, writeModel } from "../../helpers/onnx-models.js";

const root = mkdtempSync(join(tmpdir(), "labelgraph-pool-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dir: string;
let pool: SessionPool;
let n = 0;
beforeEach(() => {
  dir = join(root, `t${n++}`);
  pool = new SessionPool({ threads: 1 });
});
afterEach(async () => {
  await pool.close({ force: true });
});

const feeds = (values: number[]) => ({ x: new Tensor("float32", Float32Array.from(values), [1, 1, values.length]) });
const output = (r: InferenceSession.ReturnType) => Array.from(r.y?.data as Float32Array);
/** Overwrites a model file in place and moves its mtime, as a publish of a new model would. */
function overwrite(path: string, bytes: Uint8Array, mtimeSeconds: number) {
  writeFileSync(path, bytes);
  utimesSync(path, mtimeSeconds, mtimeSeconds);
}

describe("SessionPool", () => {
  it("caches one session per file, device and thread count", async () => {
    const path = writeModel(join(dir, "id.onnx"), identityModel());
    const a = await pool.get({ path });
    const b = await pool.get({ path: join(dir, ".", "id.onnx") });
    expect(b.session).toBe(a.session);
    expect(a).toMatchObject({ provider: "cpu", device: "cpu", threads: 1, inputNames: ["x"], outputNames: ["y"] });
    expect(a.warning).toBeUndefined();
    const two = await pool.get({ path, threads: 2 });
    expect(two.session).not.toBe(a.session);
    expect(pool.stats()).toMatchObject({ sessions: 2, loads: 2, disposals: 0 });
    expect(output(await pool.run({ path }, feeds([1, 2, 3])))).toEqual([1, 2, 3]);
  });

  it("defaults intra-op threads to the cores this process may use", async () => {
    const defaults = new SessionPool();
    try {
      const path = writeModel(join(dir, "id.onnx"), identityModel());
      expect((await defaults.get({ path })).threads).toBe(availableParallelism());
    } finally {
      await defaults.close();
    }
  });

  it("reloads when the file changes and disposes the old session", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    const first = await pool.get({ path });
    expect(output(await pool.run({ path }, feeds([1, 2])))).toEqual([1, 2]);

    overwrite(path, scaleModel(2), 2_000_000_000);
    const second = await pool.get({ path });
    expect(second.session).not.toBe(first.session);
    expect(second.version).not.toBe(first.version);
    expect(output(await pool.run({ path }, feeds([1, 2])))).toEqual([2, 4]);
    await Promise.resolve();
    expect(pool.stats()).toMatchObject({ sessions: 1, retired: 0, loads: 2, disposals: 1 });
    await expect(first.session.run(feeds([1]))).rejects.toThrow(/disposed/);
  });

  it("uses a caller-given version instead of the file's", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    const v1 = await pool.get({ path, version: "1" });
    overwrite(path, scaleModel(2), 2_000_000_000);
    expect((await pool.get({ path, version: "1" })).session).toBe(v1.session);
    expect(output(await pool.run({ path, version: "1" }, feeds([3])))).toEqual([3]);
    expect(output(await pool.run({ path, version: "2" }, feeds([3])))).toEqual([6]);
  });

  it("keeps a leased session alive across a reload; it is disposed at release", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    const lease = await pool.acquire({ path });
    overwrite(path, scaleModel(2), 2_000_000_000);
    const next = await pool.get({ path });
    expect(next.session).not.toBe(lease.session);
    expect(pool.stats()).toMatchObject({ sessions: 1, retired: 1, leases: 1, disposals: 0 });
    // The in-flight work on the old model completes with the old model.
    expect(output(await lease.run(feeds([5])))).toEqual([5]);
    expect(output(await pool.run({ path }, feeds([5])))).toEqual([10]);
    lease.release();
    lease.release(); // idempotent
    expect(pool.stats()).toMatchObject({ retired: 0, leases: 0, disposals: 1 });
    await expect(lease.run(feeds([5]))).rejects.toThrow(/released/);
  });

  it("a sliding-window inference started on the old model finishes on it when a new one is published", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    const input = { data: Float32Array.from({ length: 64 }, (_, i) => i), shape: [1, 1, 8, 8] };
    let calls = 0;
    const out = await withPredictor(pool, { path }, async (predictor) => {
      const publishing: typeof predictor = async (x) => {
        if (calls++ === 0) {
          overwrite(path, scaleModel(2), 2_000_000_000);
          await pool.get({ path }); // someone else picks up the new model meanwhile
        }
        return predictor(x);
      };
      return new SlidingWindowInferer({ roiSize: 4, overlap: 0.5 }).infer(input, publishing);
    });
    expect(calls).toBe(9);
    expect(out.data).toEqual(input.data); // all 9 windows ran the identity model
    expect(pool.stats()).toMatchObject({ sessions: 1, retired: 0, leases: 0, disposals: 1 });
    expect(output(await pool.run({ path }, feeds([1])))).toEqual([2]);
  });

  it("concurrent gets of a new version load it once", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    const got = await Promise.all([pool.get({ path }), pool.get({ path }), pool.get({ path })]);
    expect(new Set(got.map((g) => g.session)).size).toBe(1);
    expect(pool.stats().loads).toBe(1);
  });

  it("a corrupt or missing file is a typed error naming the file, and the pool keeps serving others", async () => {
    const good = writeModel(join(dir, "good.onnx"), scaleModel(2));
    const bad = writeModel(join(dir, "bad.onnx"), new TextEncoder().encode("this is not an onnx model"));
    await pool.get({ path: good });

    const err = await pool.get({ path: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err).toBeInstanceOf(LabelgraphError);
    expect((err as ModelLoadError).code).toBe(ErrorCode.INVALID_INPUT);
    expect((err as ModelLoadError).message).toContain(bad);
    expect((err as ModelLoadError).details).toMatchObject({ path: bad });
    // The same broken version is not parsed again.
    expect(await pool.get({ path: bad }).catch((e: unknown) => e)).toBe(err);

    const missing = await pool.get({ path: join(dir, "missing.onnx") }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ModelLoadError);
    expect((missing as Error).message).toMatch(/missing\.onnx.*ENOENT/);

    expect(output(await pool.run({ path: good }, feeds([1, 2])))).toEqual([2, 4]);

    // Fixing the file (a new version) loads it.
    overwrite(bad, identityModel(), 2_000_000_000);
    expect(output(await pool.run({ path: bad }, feeds([7])))).toEqual([7]);
  });

  it("a model file that disappears releases its session", async () => {
    const path = writeModel(join(dir, "model.onnx"), identityModel());
    await pool.get({ path });
    rmSync(path);
    await expect(pool.get({ path })).rejects.toThrow(ModelLoadError);
    await Promise.resolve();
    expect(pool.stats()).toMatchObject({ sessions: 0, disposals: 1 });
  });

  it("run errors are typed and name the model", async () => {
    const path = writeModel(join(dir, "conv.onnx"), conv3x3Model([0, 0, 0, 0, 1, 0, 0, 0, 0]));
    const twoChannels = { x: new Tensor("float32", new Float32Array(2 * 16), [1, 2, 4, 4]) };
    const err = await pool.run({ path }, twoChannels).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelRunError);
    expect((err as ModelRunError).code).toBe(ErrorCode.INVALID_INPUT);
    expect((err as Error).message).toContain(path);
    expect(pool.stats().leases).toBe(0);
  });

  it("CUDA requested without its libraries: runs on CPU with a warning", async () => {
    const path = writeModel(join(dir, "id.onnx"), identityModel());
    const got = await pool.get({ path, device: "cuda" });
    expect(got.provider).toBe("cpu");
    expect(got.device).toBe("cuda");
    expect(got.warning).toMatch(/^CUDA requested but its libraries are not installed; running on CPU/);
    expect(output(await pool.run({ path, device: "cuda" }, feeds([4])))).toEqual([4]);
    // A separate entry from the plain CPU one.
    expect((await pool.get({ path })).session).not.toBe(got.session);

    const noCudaBuild = new SessionPool({ threads: 1, listBackends: () => [{ name: "cpu", bundled: true }] });
    try {
      const g = await noCudaBuild.get({ path, device: "cuda:1" });
      expect(g.provider).toBe("cpu");
      expect(g.warning).toMatch(/no CUDA backend/);
    } finally {
      await noCudaBuild.close();
    }
  });

  it("CUDA provider that fails to start (libraries said present, not loadable): falls back to CPU with a warning", async () => {
    const path = writeModel(join(dir, "id.onnx"), identityModel());
    const liar = new SessionPool({ threads: 1, cudaLibraryInstalled: () => true });
    try {
      const g = await liar.get({ path, device: "cuda" });
      expect(g.provider).toBe("cpu");
      expect(g.warning).toMatch(/^CUDA requested but the CUDA execution provider failed to start; running on CPU/);
      expect(output(await liar.run({ path, device: "cuda" }, feeds([1, 2])))).toEqual([1, 2]);
      // A corrupt file is still a ModelLoadError, not a CUDA problem.
      const bad = writeModel(join(dir, "bad.onnx"), new Uint8Array([1, 2, 3]));
      await expect(liar.get({ path: bad, device: "cuda" })).rejects.toThrow(ModelLoadError);
    } finally {
      await liar.close();
    }
  });

  it("creates sessions with optimisation 'all', the thread count, and denormals flushed to zero", async () => {
    const create = vi.spyOn(InferenceSession, "create");
    try {
      const path = writeModel(join(dir, "tiny.onnx"), conv3x3Model([0, 0, 0, 0, 1e-30, 0, 0, 0, 0]));
      // A 1e-30 kernel on 1e-10 inputs gives 1e-40, a float32 denormal, which the session flushes to zero.
      const x = { x: new Tensor("float32", new Float32Array(1024 * 1024).fill(1e-10), [1, 1, 1024, 1024]) };
      const out = (await pool.run({ path, threads: 2 }, x)).y?.data as Float32Array;
      expect(create).toHaveBeenCalledTimes(1);
      expect(create.mock.calls[0]?.[1]).toMatchObject({
        intraOpNumThreads: 2,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        executionProviders: ["cpu"],
        extra: { session: { set_denormal_as_zero: "1" } },
      });
      // Measured: the pool threads flush their share (onnxruntime also sets FTZ/DAZ on the creating thread).
      expect(out.filter((v) => v === 0).length).toBeGreaterThan(0);
    } finally {
      create.mockRestore();
    }
  });

  it("close disposes everything, waits for held leases, and refuses new work", async () => {
    const a = writeModel(join(dir, "a.onnx"), identityModel());
    const b = writeModel(join(dir, "b.onnx"), scaleModel(2));
    await pool.get({ path: a });
    const lease = await pool.acquire({ path: b });
    let closed = false;
    const closing = pool.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    expect(pool.stats()).toMatchObject({ sessions: 0, retired: 1, disposals: 1 });
    expect(output(await lease.run(feeds([1])))).toEqual([2]);
    lease.release();
    await closing;
    expect(closed).toBe(true);
    expect(pool.stats()).toMatchObject({ retired: 0, disposals: 2 });
    await expect(pool.get({ path: a })).rejects.toThrow(SessionPoolClosedError);
  });
});

describe("sessionPredictor / withPredictor", () => {
  it("feeds float32 [N, C, ...] and returns the model's output and shape", async () => {
    const path = writeModel(join(dir, "x2.onnx"), scaleModel(2));
    const input = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [1, 2, 3] };
    const out = await withPredictor(pool, { path }, (predictor, model) => {
      expect(model.path).toBe(path);
      return predictor(input);
    });
    expect(out.shape).toEqual([1, 2, 3]);
    expect(Array.from(out.data)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(pool.stats().leases).toBe(0);
  });

  it("releases the lease when the work fails, and checks names", async () => {
    const path = writeModel(join(dir, "conv.onnx"), conv3x3Model([0, 0, 0, 0, 1, 0, 0, 0, 0]));
    await expect(
      withPredictor(pool, { path }, (predictor) => predictor({ data: new Float32Array(8), shape: [1, 2, 2, 2] })),
    ).rejects.toThrow(ModelRunError);
    expect(pool.stats().leases).toBe(0);
    await expect(withPredictor(pool, { path }, async () => 1, { inputName: "image" })).rejects.toThrow(
      /has no input "image"/,
    );
    await expect(withPredictor(pool, { path }, async () => 1, { outputName: "pred" })).rejects.toThrow(
      /has no output "pred"/,
    );
    expect(pool.stats().leases).toBe(0);
    // A predictor over an unleased pooled session works too.
    const p = sessionPredictor(await pool.get({ path }));
    const out = await p({ data: Float32Array.from([1, 2, 3, 4]), shape: [1, 1, 2, 2] });
    expect(Array.from(out.data)).toEqual([1, 2, 3, 4]);
  });
});
