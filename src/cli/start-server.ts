import { SingleBar } from "cli-progress";
import type { Config } from "../config/config.js";
import { buildContainer } from "../container.js";
import { buildServer } from "../server.js";

/** Builds everything, registers the studies folder (with a progress bar), serves until a signal. */
export async function startServer(config: Config): Promise<void> {
  let bar: SingleBar | null = null;
  const container = await buildContainer(config, {
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
  container.log.info(`app ${container.app.name} on ${config.studiesDir}`);
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
