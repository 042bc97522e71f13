/**
 * A pool of onnxruntime-node InferenceSessions, one per (model file, device, threads), reloaded when the file
 * changes. This is MONAI Label's model cache (BasicInferTask keeps one network per device with the file's mtime
 * and reloads on a newer mtime), for ONNX models.
 *
 * - `get` returns the cached session for the file's current version (caller-given, or inode + mtime + size).
 *   A new version loads a new session; the old one is disposed as soon as no lease holds it.
 * - `acquire` pins the current session until `release` (an inference that makes several runs, e.g. a sliding
 *   window, keeps one model throughout); `run` is acquire + run + release.
 * - Sessions use graph optimisation "all", `intraOpNumThreads` (default: the cores this process may use), one
 *   inter-op thread, and flush denormals to zero (measured: denormals can double CPU time).
 * - `device: "cuda"` (or "cuda:N") uses the CUDA execution provider with CPU fallback when onnxruntime-node has
 *   its CUDA libraries; otherwise, or when the provider fails to start, the session runs on CPU and the result
 *   carries a `warning` saying so.
 * - A missing, unreadable or corrupt file rejects with ModelLoadError; the pool keeps serving other models (and
 *   the previous version of that model to leases that hold it). A failed version is remembered, so repeated
 *   requests do not re-parse a broken file until it changes.
 */
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import type { Logger } from "../logger.js";
import { ModelLoadError, ModelRunError, SessionPoolClosedError } from "./errors.js";
import { createPlacedSession, type Device, isDevice, type Provider, type ProviderProbe } from "./providers.js";

export { cudaLibraryInstalled, type Device, type Provider } from "./providers.js";

export interface SessionRequest {
  /** Model file (.onnx). Relative paths resolve against the working directory. */
  path: string;
  /** The model's version, when the caller knows it (e.g. a published model's id); skips the file stat. */
  version?: string;
  /** Default "cpu". */
  device?: Device;
  /** Intra-op threads; default the pool's `threads`. */
  threads?: number;
}

/** A loaded model. `session` stays valid while a lease holds it; after `get` alone it may be replaced. */
export interface PooledSession {
  readonly path: string;
  readonly version: string;
  /** The device asked for. */
  readonly device: Device;
  /** Where it actually runs. */
  readonly provider: Provider;
  /** Set when the session runs somewhere other than asked (CUDA requested, CPU used). */
  readonly warning?: string;
  readonly threads: number;
  readonly session: InferenceSession;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Milliseconds it took to create the session. */
  readonly loadMs: number;
}

/** A pinned session: it is not disposed before `release`, even if a newer model version is loaded meanwhile. */
export interface SessionLease extends PooledSession {
  run(feeds: InferenceSession.FeedsType, fetches?: readonly string[]): Promise<InferenceSession.ReturnType>;
  /** Idempotent. */
  release(): void;
}

export interface SessionPoolStats {
  /** Current sessions (one per model file, device and thread count). */
  sessions: number;
  /** Replaced sessions still held by a lease. */
  retired: number;
  /** Leases held (runs in flight included). */
  leases: number;
  /** Sessions created / disposed since the pool started. */
  loads: number;
  disposals: number;
}

export interface SessionPoolOptions {
  /** Default intra-op threads. Default: `os.availableParallelism()`. */
  threads?: number;
  /** Extra session options, applied under the pool's own (threads, optimisation level, denormals, providers). */
  sessionOptions?: InferenceSession.SessionOptions;
  logger?: Logger;
  /** How the CUDA provider is detected (tests replace it). */
  listBackends?: ProviderProbe["listBackends"];
  cudaLibraryInstalled?: ProviderProbe["cudaLibraryInstalled"];
}

interface Entry {
  readonly slot: string;
  readonly seq: number;
  readonly info: PooledSession;
  refs: number;
  retired: boolean;
  disposed: boolean;
}

export class SessionPool {
  readonly #threads: number;
  readonly #options: SessionPoolOptions;
  readonly #current = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<Entry>>();
  readonly #failed = new Map<string, ModelLoadError>();
  readonly #retired = new Set<Entry>();
  #seq = 0;
  #loads = 0;
  #disposals = 0;
  #closed = false;
  readonly #disposing = new Set<Promise<void>>();
  #drained: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;

  constructor(options: SessionPoolOptions = {}) {
    this.#options = options;
    this.#threads = options.threads ?? availableParallelism();
    checkThreads(this.#threads);
  }

  /** The current session for the model file, loading it (or its new version) when needed. */
  async get(request: SessionRequest): Promise<PooledSession> {
    return (await this.#entry(request, false)).info;
  }

  /** The current session, pinned until `release()`. */
  async acquire(request: SessionRequest): Promise<SessionLease> {
    const entry = await this.#entry(request, true);
    let released = false;
    const info = entry.info;
    return {
      ...info,
      run: async (feeds, fetches) => {
        if (released) {
          throw new Error(`lease on ${info.path} was released`);
        }
        try {
          return await (fetches ? info.session.run(feeds, fetches) : info.session.run(feeds));
        } catch (err) {
          throw new ModelRunError(info.path, err instanceof Error ? err.message : String(err), err);
        }
      },
      release: () => {
        if (!released) {
          released = true;
          this.#unref(entry);
        }
      },
    };
  }

  /** Runs the current session once, holding it for the run. */
  async run(
    request: SessionRequest,
    feeds: InferenceSession.FeedsType,
    fetches?: readonly string[],
  ): Promise<InferenceSession.ReturnType> {
    const lease = await this.acquire(request);
    try {
      return await lease.run(feeds, fetches);
    } finally {
      lease.release();
    }
  }

  stats(): SessionPoolStats {
    let leases = 0;
    for (const e of [...this.#current.values(), ...this.#retired]) {
      leases += e.refs;
    }
    return {
      sessions: this.#current.size,
      retired: this.#retired.size,
      leases,
      loads: this.#loads,
      disposals: this.#disposals,
    };
  }

  /**
   * Disposes every session. Idle ones go at once; ones held by a lease go at its release, and the promise
   * resolves then (with `force`, they are disposed at once and a later run on them fails). Later `get`s reject.
   */
  async close(options: { force?: boolean } = {}): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#loading.values()]);
    for (const entry of this.#current.values()) {
      this.#retire(entry);
    }
    this.#current.clear();
    this.#failed.clear();
    if (options.force) {
      for (const entry of [...this.#retired]) {
        void this.#dispose(entry);
      }
    }
    if (this.#retired.size > 0 || this.#disposing.size > 0) {
      this.#drained ??= new Promise<void>((done) => {
        this.#onDrained = done;
      });
      await this.#drained;
    }
  }

  async #entry(request: SessionRequest, pin: boolean): Promise<Entry> {
    this.#assertOpen();
    const path = resolve(request.path);
    const device = request.device ?? "cpu";
    const threads = request.threads ?? this.#threads;
    checkThreads(threads);
    if (!isDevice(device)) {
      throw new ModelLoadError(path, `unknown device ${JSON.stringify(device)} (use "cpu", "cuda" or "cuda:N")`);
    }
    const slot = JSON.stringify([path, device, threads]);
    let version = request.version;
    if (version === undefined) {
      try {
        version = await fileVersion(path);
      } catch (err) {
        this.#assertOpen();
        // The model is gone: let its session go too (held leases keep theirs until release).
        const gone = this.#current.get(slot);
        if (gone && (err as NodeJS.ErrnoException).code === "ENOENT") {
          this.#current.delete(slot);
          this.#retire(gone);
        }
        throw new ModelLoadError(path, err);
      }
      this.#assertOpen();
    }
    const current = this.#current.get(slot);
    if (current && current.info.version === version) {
      return this.#ref(current, pin);
    }
    const loadKey = `${slot}\n${version}`;
    const failed = this.#failed.get(loadKey);
    if (failed) {
      throw failed;
    }
    let loading = this.#loading.get(loadKey);
    if (!loading) {
      loading = this.#load(slot, path, version, device, threads);
      this.#loading.set(loadKey, loading);
      loading.then(
        () => this.#loading.delete(loadKey),
        (err: unknown) => {
          this.#loading.delete(loadKey);
          // Remember a broken file until it changes; a caller-given version may hide a fix, so retry those.
          if (err instanceof ModelLoadError && request.version === undefined && !this.#closed) {
            this.#failed.set(loadKey, err);
          }
        },
      );
    }
    const entry = await loading;
    if (this.#closed) {
      if (!entry.retired) {
        this.#retire(entry);
      }
      throw new SessionPoolClosedError();
    }
    const now = this.#current.get(slot);
    if (now === entry) {
      return this.#ref(entry, pin);
    }
    if (now && now.seq > entry.seq) {
      // A newer version finished loading first; this one is already stale.
      if (!entry.retired) {
        this.#retire(entry);
      }
      return this.#ref(now, pin);
    }
    this.#current.set(slot, entry);
    for (const [key] of this.#failed) {
      if (key.startsWith(`${slot}\n`)) {
        this.#failed.delete(key);
      }
    }
    if (now) {
      this.#retire(now);
    }
    return this.#ref(entry, pin);
  }

  async #load(slot: string, path: string, version: string, device: Device, threads: number): Promise<Entry> {
    const seq = ++this.#seq;
    const base: InferenceSession.SessionOptions = {
      ...this.#options.sessionOptions,
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      extra: {
        ...this.#options.sessionOptions?.extra,
        session: {
          ...(this.#options.sessionOptions?.extra?.session as Record<string, unknown> | undefined),
          set_denormal_as_zero: "1",
        },
      },
    };
    const started = performance.now();
    let placed: Awaited<ReturnType<typeof createPlacedSession>>;
    try {
      placed = await createPlacedSession(path, device, base, this.#options);
    } catch (err) {
      throw new ModelLoadError(path, err);
    }
    const { session, provider, warning } = placed;
    const loadMs = performance.now() - started;
    this.#loads++;
    if (this.#closed) {
      this.#disposals++;
      await session.release().catch(() => {});
      throw new SessionPoolClosedError();
    }
    if (warning) {
      this.#options.logger?.warn(`model ${path}: ${warning}`);
    }
    this.#options.logger?.debug(`model ${path} (version ${version}) loaded on ${provider} in ${loadMs.toFixed(0)} ms`);
    const info: PooledSession = {
      path,
      version,
      device,
      provider,
      ...(warning === undefined ? {} : { warning }),
      threads,
      session,
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      loadMs,
    };
    return { slot, seq, info: Object.freeze(info), refs: 0, retired: false, disposed: false };
  }

  #ref(entry: Entry, pin: boolean): Entry {
    if (pin) {
      entry.refs++;
    }
    return entry;
  }

  #unref(entry: Entry): void {
    entry.refs--;
    if (entry.retired && entry.refs === 0) {
      void this.#dispose(entry);
    }
  }

  #retire(entry: Entry): void {
    entry.retired = true;
    this.#retired.add(entry);
    if (entry.refs === 0) {
      void this.#dispose(entry);
    }
  }

  #dispose(entry: Entry): Promise<void> {
    if (entry.disposed) {
      return Promise.resolve();
    }
    entry.disposed = true;
    this.#retired.delete(entry);
    this.#disposals++;
    const done = entry.info.session
      .release()
      .catch((err: unknown) => this.#options.logger?.error(`disposing the session of ${entry.info.path}`, err))
      .finally(() => {
        this.#disposing.delete(done);
        if (this.#closed && this.#retired.size === 0 && this.#disposing.size === 0) {
          this.#onDrained?.();
        }
      });
    this.#disposing.add(done);
    return done;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new SessionPoolClosedError();
    }
  }
}

/** inode, mtime (ns) and size: a rewrite, a replacement by rename, or a copy with preserved mtime all change it. */
async function fileVersion(path: string): Promise<string> {
  const st = await stat(path, { bigint: true });
  if (!st.isFile()) {
    throw new Error("not a regular file");
  }
  return `${st.ino}-${st.mtimeNs}-${st.size}`;
}

function checkThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be a positive integer, got ${threads}`);
  }
}
