/**
 * Where a session runs: MONAI Label's `device` ("cpu", "cuda", "cuda:N") turned into onnxruntime execution
 * providers, with the CPU as the fallback when the CUDA provider is not installed or cannot start. Shared by the
 * inference session pool and the training loop, so both accept the same devices and say the same thing when
 * they fall back.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InferenceSession, listSupportedBackends } from "onnxruntime-node";
import { InvalidInputError } from "../errors.js";

export type Device = "cpu" | "cuda" | `cuda:${number}`;
export type Provider = "cpu" | "cuda";

export interface ProviderProbe {
  /** Backend list; default onnxruntime-node's `listSupportedBackends` (tests replace it). */
  listBackends?: () => ReadonlyArray<{ name: string; bundled: boolean }>;
  /** Whether the CUDA provider library is installed; default: look next to the onnxruntime-node binding. */
  cudaLibraryInstalled?: () => boolean;
}

export const CUDA_MISSING = "CUDA requested but its libraries are not installed; running on CPU";

export function isDevice(value: unknown): value is Device {
  return typeof value === "string" && /^(cpu|cuda(:\d+)?)$/.test(value);
}

/**
 * A request's `device` parameter as MONAI Label sends it: a string or a list of them (`["cuda:0"]`; the first one
 * is used, as one process trains on one device). Anything else is an InvalidInputError naming the value.
 */
export function parseDevice(value: unknown, fallback: Device = "cpu"): Device {
  if (value === undefined || value === null) {
    return fallback;
  }
  const first = Array.isArray(value) ? value[0] : value;
  if (Array.isArray(value) && value.length === 0) {
    return fallback;
  }
  if (!isDevice(first)) {
    throw new InvalidInputError(`unknown device ${JSON.stringify(value)} (use "cpu", "cuda" or "cuda:N")`);
  }
  return first;
}

/** Why the CUDA provider cannot be used, or undefined when it can be tried. */
export function cudaMissing(probe: ProviderProbe = {}): string | undefined {
  const backends = (probe.listBackends ?? listSupportedBackends)();
  const cuda = backends.find((b) => b.name === "cuda");
  if (!cuda) {
    return "this onnxruntime-node build has no CUDA backend";
  }
  if (cuda.bundled || (probe.cudaLibraryInstalled ?? cudaLibraryInstalled)()) {
    return undefined;
  }
  return "onnxruntime-node was installed without its CUDA 12 provider libraries; reinstall it with ONNXRUNTIME_NODE_INSTALL=cuda12";
}

/** Whether onnxruntime-node's CUDA provider library sits next to its native binding. */
export function cudaLibraryInstalled(): boolean {
  try {
    const pkgDist = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"));
    const dir = join(pkgDist, "..", "bin", "napi-v6", process.platform, process.arch);
    const lib = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
    return existsSync(join(dir, lib));
  } catch {
    return false;
  }
}

export interface PlacedSession {
  session: InferenceSession;
  /** Where it actually runs. */
  provider: Provider;
  /** Set when it runs somewhere other than asked (CUDA requested, CPU used), with the reason. */
  warning?: string;
}

/**
 * Creates a session on `device`: the CPU provider for "cpu"; for "cuda[:N]" the CUDA provider (CPU for the ops
 * it lacks) when installed, else, or when it fails to start, the CPU alone with a warning. An error creating
 * the CPU session (a corrupt model) is thrown as is.
 */
export async function createPlacedSession(
  model: string | Uint8Array,
  device: Device,
  base: InferenceSession.SessionOptions,
  probe: ProviderProbe = {},
): Promise<PlacedSession> {
  const create = (options: InferenceSession.SessionOptions) =>
    typeof model === "string" ? InferenceSession.create(model, options) : InferenceSession.create(model, options);
  const cpu: InferenceSession.SessionOptions = { ...base, executionProviders: ["cpu"] };
  if (device === "cpu") {
    return { session: await create(cpu), provider: "cpu" };
  }
  const missing = cudaMissing(probe);
  if (missing) {
    return { session: await create(cpu), provider: "cpu", warning: `${CUDA_MISSING} (${missing})` };
  }
  const deviceId = device.includes(":") ? Number(device.slice(5)) : 0;
  try {
    return {
      session: await create({ ...base, executionProviders: [{ name: "cuda", deviceId }, "cpu"] }),
      provider: "cuda",
    };
  } catch (err) {
    // Try the CPU alone: a CUDA provider that cannot start (no driver, no GPU) is not the model's fault.
    const session = await create(cpu);
    const reason = err instanceof Error ? err.message : String(err);
    return {
      session,
      provider: "cpu",
      warning: `CUDA requested but the CUDA execution provider failed to start; running on CPU (${reason})`,
    };
  }
}
