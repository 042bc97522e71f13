import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

export const root = join(import.meta.dirname, "../..");
export const bin = join(root, "bin/labelgraph.js");

export interface CliServer {
  proc: ChildProcess;
  url: string;
  /** Everything it wrote to stderr so far. */
  log(): string;
  stop(): Promise<number | null>;
}

/** Starts `labelgraph start_server` as a user would and waits for the address it prints. */
export function startCli(args: string[], env: Record<string, string> = {}): Promise<CliServer> {
  const proc = spawn(process.execPath, [bin, "start_server", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  return new Promise((resolve, reject) => {
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /GraphQL \(GraphiQL, graphql-ws, SSE\) at (\S+)\/graphql/.exec(err);
      if (m?.[1]) {
        resolve({
          proc,
          url: m[1],
          log: () => err,
          stop() {
            if (proc.exitCode !== null) {
              return Promise.resolve(proc.exitCode);
            }
            const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
            proc.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
    proc.on("exit", (code) => reject(new Error(`labelgraph exited with ${code}:\n${err}`)));
  });
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary result shapes
type Data = any;

export interface Gql {
  (query: string, variables?: Record<string, unknown>): Promise<Data>;
  upload(
    query: string,
    variables: Record<string, unknown>,
    file: { path: string; data: Uint8Array; name?: string },
  ): Promise<Data>;
}

/** GraphQL over HTTP: JSON, or a multipart request with one file. Fails the test on GraphQL errors. */
export function gqlClient(url: string): Gql {
  const check = async (res: Response) => {
    const body = (await res.json()) as { data?: unknown; errors?: unknown };
    if (body.errors) {
      throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
    }
    return body.data;
  };
  const gql = (async (query: string, variables?: Record<string, unknown>) =>
    check(
      await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      }),
    )) as Gql;
  gql.upload = async (query, variables, file) => {
    const form = new FormData();
    form.append("operations", JSON.stringify({ query, variables: { ...variables, [file.path]: null } }));
    form.append("map", JSON.stringify({ 0: [`variables.${file.path}`] }));
    form.append("0", new Blob([new Uint8Array(file.data)]), file.name ?? "label.nii");
    return check(await fetch(`${url}/graphql`, { method: "POST", body: form }));
  };
  return gql;
}

/** A graphql-ws subscription that collects what arrives. */
export function subscribe<T>(url: string, query: string) {
  const client = createClient({ url: `${url.replace(/^http/, "ws")}/graphql`, webSocketImpl: WebSocket, lazy: false });
  const received: T[] = [];
  const waiters: { test: (items: T[]) => boolean; resolve: () => void }[] = [];
  const dispose = client.subscribe<T>(
    { query },
    {
      next: (msg) => {
        if (msg.data) {
          received.push(msg.data as T);
        }
        for (const w of [...waiters]) {
          if (w.test(received)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      },
      error: () => {},
      complete: () => {},
    },
  );
  return {
    received,
    until(test: (items: T[]) => boolean): Promise<void> {
      return test(received) ? Promise.resolve() : new Promise((resolve) => waiters.push({ test, resolve }));
    },
    async close() {
      dispose();
      await client.dispose();
    },
  };
}

/** Polls a job until it is no longer queued or running. */
export async function waitForJob(gql: Gql, id: string, timeoutMs = 120_000) {
  const started = Date.now();
  for (;;) {
    const { job } = await gql("query($id: ID!) { job(id: $id) { status error result } }", { id });
    if (job.status !== "QUEUED" && job.status !== "RUNNING") {
      return job as { status: string; error: string | null; result: unknown };
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
