import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../helpers/fixtures.js";
import { bin, gqlClient, root, runCli, startCli } from "./cli-helpers.js";

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
    const { proc, url, stop } = await startCli([
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
      expect(proc.pid).toBeGreaterThan(0);
      expect(await stop()).toBe(0);
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

  it("--version prints the package version", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
    expect((await runCli(["--version"])).stdout.trim()).toBe(pkg.version);
    expect((await runCli(["-v"])).stdout.trim()).toBe(pkg.version);
  });

  it("refuses an app folder with a syntax error, naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-syntax-"));
    await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    await writeFile(
      join(dir, "app.ts"),
      'import { LabelApp } from "labelgraph";\nexport default class A extends LabelApp {\n  oops( {\n}\n',
    );
    const r = await runCli(["start_server", "--app", dir, "--studies", studies, "-p", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`labelgraph: app ${join(dir, "app.ts")} failed to load:`);
    await rm(dir, { recursive: true });
  });

  it("refuses a --conf value the app rejects, naming the key, before serving", async () => {
    const r = await runCli([
      "start_server",
      "--app",
      join(root, "apps/radiology"),
      "--studies",
      studies,
      "-p",
      "0",
      "-c",
      "max_epochs",
      "ten",
      "-c",
      "models",
      "segmentation",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("invalid --conf for app radiology:");
    expect(r.stderr).toContain('max_epochs "ten"');
    const odd = await runCli(["start_server", "--studies", studies, "-c", "models"]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toContain("--conf takes KEY VALUE pairs");
    const unknown = await runCli([
      "start_server",
      "--app",
      join(root, "apps/radiology"),
      "--studies",
      studies,
      "-c",
      "models",
      "liver",
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--conf models: liver is not a model of app radiology");
  });

  it("--dryrun writes every setting to .env and starts nothing", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "labelgraph-dryrun-"));
    const r = await runCli(
      [
        "start_server",
        "-a",
        join(root, "apps/radiology"),
        "-s",
        "st",
        "-p",
        "8123",
        "-c",
        "max_epochs",
        "3",
        "-v",
        "DEBUG",
        "--dryrun",
      ],
      { cwd, env: { MONAI_LABEL_DATASTORE_READ_ONLY: "true" } },
    );
    expect(r.code).toBe(0);
    const env = await readFile(join(cwd, ".env"), "utf8");
    expect(env).toContain(`MONAI_LABEL_APP_DIR='${join(root, "apps/radiology")}'`);
    expect(env).toContain(`MONAI_LABEL_STUDIES='${join(cwd, "st")}'`);
    expect(env).toContain("MONAI_LABEL_SERVER_PORT='8123'");
    expect(env).toContain("MONAI_LABEL_DATASTORE_READ_ONLY='true'");
    expect(env).toContain("LABELGRAPH_LOG_LEVEL='debug'");
    expect(env).toContain(`MONAI_LABEL_APP_CONF='{"max_epochs":"3"}'`);
    expect(existsSync(join(cwd, "st"))).toBe(false);
    await rm(cwd, { recursive: true });
  });

  it("apps lists the templates; --download copies one out, refuses to overwrite, and the copy serves", async () => {
    const list = await runCli(["apps"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^radiology +\S.*$/m);
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-apps-"));
    const out = join(dir, "myapp");
    const r = await runCli(["apps", "--download", "--name", "radiology", "--output", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`copied app radiology`);
    expect(await readdir(out)).toContain("app.ts");
    expect(JSON.parse(await readFile(join(out, "package.json"), "utf8")).type).toBe("module");
    const again = await runCli(["apps", "--download", "--name", "radiology", "--output", out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists; not overwriting it");
    const missing = await runCli(["apps", "--download", "--name", "nope", "--output", join(dir, "x")]);
    expect(missing.stderr).toContain("no template app named nope: available are");
    expect(missing.stderr).toContain("radiology");

    // The copy, outside the repository, on a studies folder that does not exist yet (created, as MONAI does).
    const newStudies = join(dir, "new", "studies");
    const server = await startCli(["--app", out, "--studies", newStudies, "-p", "0", "-i", "127.0.0.1"]);
    try {
      expect(existsSync(newStudies)).toBe(true);
      expect(server.log()).toContain(`created the studies folder ${newStudies}`);
      const { info } = await gqlClient(server.url)("{ info { name trainers { name } } }");
      expect(info).toEqual({
        name: "radiology",
        trainers: ["segmentation", "deepgrow_2d", "deepgrow_3d", "deepedit"].map((name) => ({ name })),
      });
    } finally {
      expect(await server.stop()).toBe(0);
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("datasets lists colin27; --download prepares a studies folder once", async () => {
    expect((await runCli(["datasets"])).stdout).toMatch(/^colin27 +Colin27 T1/m);
    const dir = await mkdtemp(join(tmpdir(), "labelgraph-datasets-"));
    const out = join(dir, "studies");
    const r = await runCli(["datasets", "--download", "--name", "colin27", "--output", out]);
    expect(r.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["colin27.nii.gz", "colin27_lr.nii.gz", "labels"]);
    expect(await readdir(join(out, "labels", "final"))).toEqual(["colin27.nii.gz"]);
    const again = await runCli(["datasets", "--download", "--name", "colin27", "--output", out]);
    expect(again.stdout).toContain("already holds colin27; left as it is");
    expect((await runCli(["datasets", "--download", "--name", "mnist", "--output", out])).stderr).toContain(
      "no dataset named mnist",
    );
    await rm(dir, { recursive: true });
  }, 120_000);
});
