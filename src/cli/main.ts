import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { SingleBar } from "cli-progress";
import { Command, Option } from "commander";
import { printSchema } from "graphql";
import { AppLoadError } from "../app/errors.js";
import { ConfigError, envSchema, loadConfig } from "../config/config.js";
import { AppsError, downloadApp, listApps } from "./apps.js";
import { DATASETS, DatasetError, downloadDataset, getDataset } from "./datasets.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command("labelgraph")
  .description("MONAI Label rebuilt in TypeScript: an AI-assisted labeling server over GraphQL")
  .version(pkg.version, "-v, --version")
  // Program options only before the command, so `start_server -v DEBUG` is MONAI's --verbose.
  .enablePositionalOptions();

function fail(message: string): never {
  process.stderr.write(`labelgraph: ${message}\n`);
  process.exit(2);
}

/** Errors a user can fix: message and exit status 2, no stack. */
async function friendly(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (
      err instanceof ConfigError ||
      err instanceof AppLoadError ||
      err instanceof AppsError ||
      err instanceof DatasetError
    ) {
      fail(err.message);
    }
    throw err;
  }
}

/** A bar on stderr when it is a terminal (cli-progress draws nothing otherwise). */
function progressBar(format: string): { update(done: number, total: number, what?: string): void; stop(): void } {
  const bar = new SingleBar({ format, stream: process.stderr, hideCursor: true });
  let started = false;
  return {
    update(done, total, what = "") {
      if (!started) {
        bar.start(total, 0, { what });
        started = true;
      }
      bar.update(done, { what });
    },
    stop() {
      if (started) {
        bar.stop();
      }
    },
  };
}

const LEVELS: Record<string, string> = { debug: "debug", info: "info", warning: "warn", warn: "warn", error: "error" };

interface StartOptions {
  app?: string;
  studies: string;
  conf?: string[];
  host?: string;
  port?: number;
  verbose?: string;
  logLevel?: string;
  dryrun?: boolean;
}

/** `--conf K V` pairs over MONAI_LABEL_APP_CONF (JSON, as MONAI exports it for child processes and .env). */
function appConf(pairs: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const conf: Record<string, string> = {};
  if (env.MONAI_LABEL_APP_CONF) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.MONAI_LABEL_APP_CONF);
    } catch {}
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      fail(`MONAI_LABEL_APP_CONF must be a JSON object of strings; got ${env.MONAI_LABEL_APP_CONF}`);
    }
    for (const [k, v] of Object.entries(parsed)) {
      conf[k] = typeof v === "string" ? v : JSON.stringify(v);
    }
  }
  if (pairs.length % 2 !== 0) {
    fail(`--conf takes KEY VALUE pairs; got ${pairs.join(" ")}`);
  }
  for (let i = 0; i < pairs.length; i += 2) {
    conf[pairs[i] as string] = pairs[i + 1] as string;
  }
  return conf;
}

program
  .command("start_server")
  .description("Start the server for an app over a studies folder (created when missing)")
  .option("-a, --app <dir>", "app folder (apps/<name>, or one made by `labelgraph apps --download`)")
  .requiredOption("-s, --studies <dir>", "studies folder (images at the top, labels/<tag>/ beside them)")
  .option("-c, --conf <key_value...>", "app setting as KEY VALUE (repeatable: -c models all -c preload true)")
  .option("-i, --host <host>", "address to listen on (default 0.0.0.0)")
  .addOption(new Option("-p, --port <port>", "port to listen on (default 8000)").argParser((v) => Number(v)))
  .addOption(
    new Option("-v, --verbose <level>", "log level (default INFO, or LABELGRAPH_LOG_LEVEL)").choices([
      "DEBUG",
      "INFO",
      "WARNING",
      "ERROR",
    ]),
  )
  .addOption(new Option("--log_level <level>", "log level (debug, info, warning, error)").hideHelp())
  .addOption(new Option("--log-level <level>", "log level (debug, info, warn, error)").hideHelp())
  .option("--dryrun", "write every setting to .env (and the app conf as MONAI_LABEL_APP_CONF) without starting")
  .action(async (opts: StartOptions & { log_level?: string }) =>
    friendly(async () => {
      const conf = appConf(opts.conf ?? [], process.env);
      const asked = opts.logLevel ?? opts.log_level ?? opts.verbose;
      if (asked && !LEVELS[asked.toLowerCase()]) {
        fail(`--log-level ${asked}: expected debug, info, warning or error`);
      }
      // Unset, LABELGRAPH_LOG_LEVEL stays for the configuration to check.
      const env = { ...process.env, ...(asked ? { LABELGRAPH_LOG_LEVEL: LEVELS[asked.toLowerCase()] } : {}) };
      const config = loadConfig(env, { app: opts.app, studies: opts.studies, host: opts.host, port: opts.port, conf });
      if (opts.dryrun) {
        await writeDotEnv(env, config);
        return;
      }
      // Loaded here: the server pulls in everything, which `apps`, `datasets` and `--version` do not need.
      const { startServer } = await import("./start-server.js");
      await startServer(config);
    }),
  );

/** MONAI's --dryrun: every setting as it would run, in .env, for `set -a; . ./.env` or a container. */
async function writeDotEnv(env: NodeJS.ProcessEnv, config: ReturnType<typeof loadConfig>): Promise<void> {
  const values: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined) {
      values[key] = v;
    }
  }
  Object.assign(values, {
    ...(config.appDir ? { MONAI_LABEL_APP_DIR: config.appDir } : {}),
    MONAI_LABEL_STUDIES: config.studiesDir,
    MONAI_LABEL_SERVER_PORT: String(config.port),
    LABELGRAPH_HOST: config.host,
    LABELGRAPH_LOG_LEVEL: config.logLevel,
    MONAI_LABEL_APP_CONF: JSON.stringify(config.conf),
  });
  const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  const text = Object.entries(values)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join("\n");
  const path = resolve(".env");
  await writeFile(path, `${text}\n`);
  process.stderr.write(`labelgraph: wrote ${path} (not starting: --dryrun)\n`);
}

program
  .command("apps")
  .description("List the template apps, or copy one to edit (--download --name NAME --output DIR)")
  .option("-d, --download", "copy the app named by --name to --output")
  .option("-n, --name <name>", "template app name")
  .option("-o, --output <dir>", "where to copy it (must not exist)")
  .action(async (opts: { download?: boolean; name?: string; output?: string }) =>
    friendly(async () => {
      if (!opts.download) {
        const apps = await listApps();
        const width = Math.max(...apps.map((a) => a.name.length));
        for (const a of apps) {
          process.stdout.write(`${a.name.padEnd(width)}  ${a.description}\n`);
        }
        return;
      }
      if (!opts.name || !opts.output) {
        fail("apps --download needs --name NAME and --output DIR");
      }
      const bar = progressBar(`copying ${opts.name} [{bar}] {value}/{total} files`);
      const n = await downloadApp(opts.name, opts.output, (done, total) => bar.update(done, total)).finally(() =>
        bar.stop(),
      );
      const out = resolve(opts.output);
      process.stdout.write(
        `copied app ${opts.name} (${n} files) to ${out}\n` +
          `start it: labelgraph start_server --app ${out} --studies STUDIES\n`,
      );
    }),
  );

program
  .command("datasets")
  .description("List the demo datasets, or prepare one as a studies folder (--download --name NAME --output DIR)")
  .option("-d, --download", "prepare the dataset named by --name in --output")
  .option("-n, --name <name>", "dataset name")
  .option("-o, --output <dir>", "studies folder to write (created when missing)")
  .action(async (opts: { download?: boolean; name?: string; output?: string }) =>
    friendly(async () => {
      if (!opts.download) {
        for (const d of Object.values(DATASETS)) {
          process.stdout.write(`${d.name}  ${d.description}\n`);
        }
        return;
      }
      if (!opts.name || !opts.output) {
        fail("datasets --download needs --name NAME and --output DIR");
      }
      const dataset = getDataset(opts.name);
      const out = resolve(opts.output);
      const bar = progressBar(`${dataset.name} [{bar}] {value}/{total} {what}`);
      const wrote = await downloadDataset(dataset.name, out, (done, total, what) =>
        bar.update(done, total, what),
      ).finally(() => bar.stop());
      process.stdout.write(
        wrote
          ? `prepared ${dataset.name} in ${out}: ${dataset.files.join(", ")}\n`
          : `${out} already holds ${dataset.name}; left as it is\n`,
      );
    }),
  );

program
  .command("print-schema")
  .description("Print the GraphQL schema (SDL)")
  .action(async () => {
    const { schema } = await import("../graphql/schema.js");
    process.stdout.write(`${printSchema(schema)}\n`);
  });

await program.parseAsync(process.argv);
