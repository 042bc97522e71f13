import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { SingleBar } from "cli-progress";
import type { Config } from "../config/config.js";
import { buildContainer } from "../container.js";
import { createLogger } from "../logger.js";
import { buildServer } from "../server.js";

/**
 * Builds everything, registers the studies folder (with a progress bar), serves until a signal. A missing
 * studies folder is created, as MONAI Label does.
 */
export async function startServer(config: Config): Promise<void> {
  const log = createLogger(config.logLevel);
  if (!existsSync(config.studiesDir)) {
    await mkdir(config.studiesDir, { recursive: true });
    log.info(`created the studies folder ${config.studiesDir}`);
  }
  let bar: SingleBar | null = null;
  const container = await buildContainer(config, {
    log,
    onImportProgress: (done, total) => {
      if (!process.stderr.isTTY || total < 20) {
        return;
      }
      if (!bar) {
        bar = new SingleBar({ format: "registering studies [{bar}] {value}/{total} files", stream: process.stderr });
        bar.start(total, 0);
      }
      bar.update(done);
      if (done === total) {
        bar.stop();
      }
    },
  });
  const server = buildServer(container);
  const { url } = await server.start();
  const models = Object.keys(container.app.info().models);
  container.log.info(
    `app ${container.app.name} on ${config.studiesDir}: models ${models.join(", ") || "(none with weights yet)"}; ` +
      `trainers ${Object.keys(container.app.trainers()).join(", ") || "(none)"}`,
  );
  container.log.info(`GraphQL (GraphiQL, graphql-ws, SSE) at ${url}/graphql`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      return;
    }
    stopping = true;
    container.log.info(`${signal}: stopping`);
    await server.stop();
    await container.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}
