/** Helpers of the inference benchmark: statistics, a table printer, a GraphQL client, timing wrappers, PyTorch. */
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { type InferenceSession, Tensor } from "onnxruntime-node";
import type { Float32Tensor, Predictor } from "../../src/inferers/types.js";
import type { SessionLease, SessionPool } from "../../src/runtime/session-pool.js";

export function median(xs: readonly number[]): number {
  if (xs.length === 0) {
    return Number.NaN;
  }
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Seconds with 3 decimals, or "–" when not measured. */
export function sec(x: number | null | undefined): string {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(3);
}

export function msStr(x: number | null | undefined): string {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : `${x.toFixed(0)} ms`;
}

/** A Markdown table with right-aligned cells after the first column. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? `${"-".repeat(w + 1)}-` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), sep, ...rows.map(line)].join("\n");
}

export function progress(msg: string): void {
  process.stderr.write(`[bench:infer] ${msg}\n`);
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** The session options SessionPool uses for a CPU session (see src/runtime/session-pool.ts #load). */
export function poolSessionOptions(threads = availableParallelism()): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
    extra: { session: { set_denormal_as_zero: "1" } },
  };
}

/** Sums the milliseconds spent in `session.run` (and counts the calls) of whatever it wraps. */
export class RunClock {
  ms = 0;
  calls = 0;

  reset(): void {
    this.ms = 0;
    this.calls = 0;
  }

  async time<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.ms += performance.now() - t0;
      this.calls++;
    }
  }
}

/** A Predictor over a bare session that times only `session.run` (the raw baseline). */
export function rawPredictor(session: InferenceSession, clock: RunClock): Predictor {
  const inputName = session.inputNames[0] as string;
  const outputName = session.outputNames[0] as string;
  return async (input: Float32Tensor): Promise<Float32Tensor> => {
    const feeds = { [inputName]: new Tensor("float32", input.data, input.shape) };
    const results = await clock.time(() => session.run(feeds, [outputName]));
    const out = results[outputName];
    if (!out || !(out.data instanceof Float32Array)) {
      throw new Error(`no float32 output ${outputName}`);
    }
    return { data: out.data, shape: [...out.dims] };
  };
}

/**
 * Times every `lease.run` of the pool's sessions: patches `acquire` on this instance (the InferenceService holds
 * the same pool object). Inference that runs on a worker thread uses the worker's own pool and is not seen.
 */
export function instrumentPool(pool: SessionPool, clock: RunClock): void {
  const acquire = pool.acquire.bind(pool);
  pool.acquire = async (request) => {
    const lease = await acquire(request);
    const timedLease: SessionLease = {
      ...lease,
      run: (feeds, fetches) => clock.time(() => lease.run(feeds, fetches)),
    };
    return timedLease;
  };
}

export interface GqlResult<T> {
  data?: T;
  errors?: { message: string }[];
}

export async function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as GqlResult<T>;
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL error: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}

/** A GraphQL multipart request (one file, bound to `variables.<varName>`), as test/helpers/harness.ts sends it. */
export async function gqlUpload<T>(
  url: string,
  query: string,
  varName: string,
  file: { data: Uint8Array; name: string },
): Promise<T> {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query, variables: { [varName]: null } }));
  form.append("map", JSON.stringify({ "0": [`variables.${varName}`] }));
  form.append("0", new Blob([new Uint8Array(file.data)]), file.name);
  const res = await fetch(`${url}/graphql`, { method: "POST", body: form });
  const body = (await res.json()) as GqlResult<T>;
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL error: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}

export const PYTHON = "/usr/bin/python3";

export function torchAvailable(): boolean {
  const r = spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore", timeout: 120_000 });
  return r.status === 0;
}

export interface TorchConfig {
  inChannels: number;
  outChannels: number;
  channels: number[];
  strides: number[];
  numResUnits: number;
  roi: number[];
  windows: number;
  runs: number;
  threads: number;
}

export interface TorchResult {
  version: string;
  /** Per run: forward time summed over the windows, in ms. */
  runsMs: number[];
}

/**
 * MONAI's UNet (monai.networks.nets.UNet, norm INSTANCE, act PRELU, adn "NDA", kernel 3) in plain torch.nn,
 * timed forward over `windows` windows of `roi` per run (after one warm-up window), in inference mode.
 */
const TORCH_SCRIPT = `
import json, sys, time
import torch
import torch.nn as nn

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)

def conv(i, o, s, transposed=False, conv_only=False):
    if transposed:
        c = nn.ConvTranspose3d(i, o, 3, stride=s, padding=1, output_padding=s - 1)
    else:
        c = nn.Conv3d(i, o, 3, stride=s, padding=1)
    if conv_only:
        return c
    return nn.Sequential(c, nn.InstanceNorm3d(o), nn.PReLU())

class ResidualUnit(nn.Module):
    def __init__(self, i, o, s, subunits, last_conv_only=False):
        super().__init__()
        layers, ch, ss = [], i, s
        for su in range(max(1, subunits)):
            layers.append(conv(ch, o, ss, conv_only=last_conv_only and su == subunits - 1))
            ch, ss = o, 1
        self.conv = nn.Sequential(*layers)
        if s != 1 or i != o:
            k, p = (1, 0) if s == 1 else (3, 1)
            self.residual = nn.Conv3d(i, o, k, stride=s, padding=p)
        else:
            self.residual = nn.Identity()

    def forward(self, x):
        return self.conv(x) + self.residual(x)

class Skip(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.submodule = sub

    def forward(self, x):
        return torch.cat([x, self.submodule(x)], 1)

NRU = cfg["numResUnits"]

def down(i, o, s):
    return ResidualUnit(i, o, s, NRU) if NRU > 0 else conv(i, o, s)

def up(i, o, s, top):
    c = conv(i, o, s, transposed=True, conv_only=top and NRU == 0)
    if NRU == 0:
        return c
    return nn.Sequential(c, ResidualUnit(o, o, 1, 1, last_conv_only=top))

def block(i, o, chs, strides, top):
    c, s = chs[0], strides[0]
    if len(chs) > 2:
        sub, upc = block(c, c, chs[1:], strides[1:], False), c * 2
    else:
        sub, upc = down(c, chs[1], 1), c + chs[1]
    return nn.Sequential(down(i, c, s), Skip(sub), up(upc, o, s, top))

net = block(cfg["inChannels"], cfg["outChannels"], cfg["channels"], cfg["strides"], True).eval()
x = torch.rand(1, cfg["inChannels"], *cfg["roi"])
runs = []
with torch.inference_mode():
    net(x)
    for _ in range(cfg["runs"]):
        total = 0.0
        for _ in range(cfg["windows"]):
            t0 = time.perf_counter()
            y = net(x)
            total += time.perf_counter() - t0
        assert tuple(y.shape) == (1, cfg["outChannels"], *cfg["roi"]), y.shape
        runs.append(total * 1000)
print(json.dumps({"version": torch.__version__, "runsMs": runs}))
`;

export function runTorch(cfg: TorchConfig): TorchResult {
  const r = spawnSync(PYTHON, ["-c", TORCH_SCRIPT, JSON.stringify(cfg)], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(`PyTorch script failed (${r.status}): ${r.stderr}`);
  }
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as TorchResult;
}
