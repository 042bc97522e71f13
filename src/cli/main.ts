import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { printSchema } from "graphql";
import { AppLoadError } from "../app/load-app.js";
import { ConfigError, loadConfig } from "../config/config.js";
import { startServer } from "./start-server.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command("labelgraph")
  .description("MONAI Label rebuilt in TypeScript: an AI-assisted labeling server over GraphQL")
  .version(pkg.version, "-v, --version");

program
  .command("start_server")
  .description("Start the server for an app over a studies folder")
  .option("-a, --app <dir>", "app folder (apps/<name>)")
  .requiredOption("-s, --studies <dir>", "studies folder (images at the top, labels/<tag>/ beside them)")
  .option("-c, --conf <key_value...>", "app setting as KEY VALUE (repeatable)")
  .option("-i, --host <host>", "address to listen on")
  .addOption(new Option("-p, --port <port>", "port to listen on").argParser((v) => Number(v)))
  .option("--log-level <level>", "debug, info, warn or error")
  .action(
    async (opts: {
      app?: string;
      studies: string;
      conf?: string[];
      host?: string;
      port?: number;
      logLevel?: string;
    }) => {
      const conf: Record<string, string> = {};
      const pairs = opts.conf ?? [];
      if (pairs.length % 2 !== 0) {
        fail(`--conf takes KEY VALUE pairs; got ${pairs.join(" ")}`);
      }
      for (let i = 0; i < pairs.length; i += 2) {
        conf[pairs[i] as string] = pairs[i + 1] as string;
      }
      const env = { ...process.env, ...(opts.logLevel ? { LABELGRAPH_LOG_LEVEL: opts.logLevel } : {}) };
      try {
        const config = loadConfig(env, {
          app: opts.app,
          studies: opts.studies,
          host: opts.host,
          port: opts.port,
          conf,
        });
        await startServer(config);
      } catch (err) {
        if (err instanceof ConfigError || err instanceof AppLoadError) {
          fail(err.message);
        }
        throw err;
      }
    },
  );

program
  .command("print-schema")
  .description("Print the GraphQL schema (SDL)")
  .action(async () => {
    const { schema } = await import("../graphql/schema.js");
    process.stdout.write(`${printSchema(schema)}\n`);
  });

function fail(message: string): never {
  process.stderr.write(`labelgraph: ${message}\n`);
  process.exit(2);
}

await program.parseAsync(process.argv);
