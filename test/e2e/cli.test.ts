import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../helpers/fixtures.js";

const root = join(import.meta.dirname, "../..");
const bin = join(root, "bin/labelgraph.js");

/** Starts `labelgraph start_server` as a user would and waits for the address it prints. */
function startCli(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [bin, "start_server", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let err = "";
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /GraphQL \(GraphiQL, graphql-ws, SSE\) at (\S+)\/graphql/.exec(err);
      if (m?.[1]) {
        resolve({ proc, url: m[1] });
      }
    });
    proc.on("exit", (code) => reject(new Error(`labelgraph exited with ${code}:\n${err}`)));
  });
}

describe("the labelgraph CLI", () => {
  let studies: string;
  beforeAll(async () => {
    studies = await mkdtemp(join(tmpdir(), "labelgraph-e2e-"));
    await mkdir(join(studies, "labels", "final"), { recursive: true });
    await copyFile(fixture("ch2.nii.gz"), join(studies, "colin27.nii.gz"));
    await copyFile(fixture("ch2bet.nii.gz"), join(studies, "labels", "final", "colin27.nii.gz"));
    await copyFile(fixture("anatomical.nii"), join(studies, "anat.nii"));
  });
  afterAll(() => rm(studies, { recursive: true, force: true }));

  it("start_server serves the radiology app over the studies folder and stops cleanly on SIGTERM", async () => {
    const { proc, url } = await startCli([
      "--app",
      join(root, "apps/radiology"),
      "--studies",
      studies,
      "--port",
      "0",
      "-i",
      "127.0.0.1",
    ]);
    try {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ info { name labels } datastoreStatus { total completed labelTags } }" }),
      });
      expect(await res.json()).toEqual({
        data: {
          info: { name: "radiology", labels: ["brain"] },
          datastoreStatus: { total: 2, completed: 1, labelTags: { final: 1 } },
        },
      });
      const graphiql = await fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
      const page = await graphiql.text();
      expect(page).toContain("GraphiQL");
      // Served whole: an offline site cannot fetch GraphiQL from a CDN.
      expect(page).not.toContain("unpkg.com");
    } finally {
      const exited = new Promise((r) => proc.on("exit", r));
      proc.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });

  it("reports every configuration error together and exits with status 2", async () => {
    const run = promisify(execFile);
    const err = await run(process.execPath, [bin, "start_server", "--studies", studies], {
      env: { ...process.env, MONAI_LABEL_SERVER_PORT: "x", LABELGRAPH_OBJECT_STORE: "gcs" },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain("MONAI_LABEL_SERVER_PORT");
    expect((err as { stderr: string }).stderr).toContain("LABELGRAPH_OBJECT_STORE");
  });

  it("refuses an app folder without an app with a clear message", async () => {
    const empty = await mkdtemp(join(tmpdir(), "labelgraph-noapp-"));
    await expect(startCli(["--app", empty, "--studies", studies, "--port", "0"])).rejects.toThrow(/has no app/);
    await rm(empty, { recursive: true });
  });

  it("print-schema prints the committed schema.graphql", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [bin, "print-schema"]);
    expect(stdout).toBe(await readFile(join(root, "schema.graphql"), "utf8"));
  });
});
