import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import type { ServerOptions } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, maskError } from "graphql-yoga";
import { WebSocketServer } from "ws";
import type { Container } from "./container.js";
import { JobStatus } from "./db/jobs.repo.js";
import { LabelgraphError, NotFoundError } from "./errors.js";
import { type Context, createContext } from "./graphql/context.js";
import { schema } from "./graphql/schema.js";
import { createRestHandler } from "./rest/index.js";

export interface Server {
  /** Listens on `port` (0 picks a free one) and resolves with the bound address. */
  start(port?: number, host?: string): Promise<{ port: number; url: string }>;
  stop(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".nii.gz": "application/gzip",
  ".nii": "application/octet-stream",
  ".nrrd": "application/octet-stream",
  ".seg.nrrd": "application/octet-stream",
  ".png": "image/png",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
};

type Exec = (args: unknown) => ReturnType<NonNullable<ServerOptions["execute"]>>;
/** Yoga's enveloped execute/subscribe, carried to graphql-ws through rootValue. */
interface EnvelopedRoot {
  execute: Exec;
  subscribe: Exec;
}

export function buildServer(container: Container): Server {
  const services = {
    config: container.config,
    datastore: container.datastore,
    jobs: container.jobs,
    pubsub: container.pubsub,
    app: container.app,
    log: container.log,
    inference: container.inference,
    sessions: container.sessions,
    activeLearning: container.activeLearning,
    scoring: container.scoring,
    wsi: container.wsi,
  };
  const prefix = container.config.apiPrefix;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: `${prefix}/graphql`,
    context: ({ request }) => createContext(services, request),
    cors: {
      origin: container.config.corsOrigins.length ? container.config.corsOrigins : "*",
      credentials: true,
    },
    maskedErrors: {
      maskError(error, message, isDev) {
        const original = (error as { originalError?: unknown }).originalError;
        if (!(original instanceof LabelgraphError)) {
          container.log.error("unexpected error in a GraphQL resolver", original ?? error);
        }
        return maskError(error, message, isDev);
      },
    },
    logging: false,
    landingPage: false,
    // GraphiQL with its assets inlined: the default page loads them from a CDN, which offline sites cannot reach.
    renderGraphiQL,
  });

  /** Serves one stored object as a download. */
  async function sendObject(res: ServerResponse, key: string, fileName: string, ext: string) {
    const info = await container.store.stat(key);
    if (!info) {
      throw new NotFoundError("OBJECT_NOT_FOUND", `${fileName} is missing from the object store`);
    }
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
      "content-length": info.size,
      "content-disposition": `attachment; filename="${fileName.replaceAll('"', "")}"`,
    });
    await pipeline(await container.store.get(key), res);
  }

  /** Downloads that GraphQL hands out as URLs (the MONAI REST paths for images and labels). */
  async function files(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.slice(prefix.length);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return false;
    }
    if (path === "/datastore/image") {
      const image = await container.datastore.getImage(url.searchParams.get("image") ?? "");
      await sendObject(res, image.objectKey, image.name, image.extension);
      return true;
    }
    if (path === "/datastore/label") {
      const version = url.searchParams.get("version");
      const label = await container.datastore.getLabel(
        url.searchParams.get("label") ?? "",
        url.searchParams.get("tag") ?? "final",
        version ? Number(version) : undefined,
      );
      await sendObject(res, label.objectKey, `${label.imageId}${label.extension}`, label.extension);
      return true;
    }
    const result = /^\/results\/([A-Za-z0-9-]+)((?:\.[a-z0-9]+){1,2})$/.exec(path);
    if (result) {
      const key = `results/${result[1]}${result[2]}`;
      await sendObject(res, key, `label${result[2]}`, result[2] as string);
      return true;
    }
    const job = /^\/jobs\/([^/]+)\/download$/.exec(path);
    if (job) {
      const record = await container.jobs.get(decodeURIComponent(job[1] as string));
      const result = record?.result as { key?: string } | null | undefined;
      if (!record || record.status !== JobStatus.SUCCEEDED || !result?.key) {
        throw new NotFoundError("JOB_NOT_FOUND", "no finished export with this id");
      }
      await sendObject(res, result.key, "dataset.zip", ".zip");
      return true;
    }
    return false;
  }

  // MONAI Label's REST API, over the same services (it also serves the image and label downloads below).
  const rest = createRestHandler(container);

  const http = createServer(async (req, res) => {
    try {
      if (await rest(req, res)) {
        return;
      }
      if (await files(req, res)) {
        return;
      }
      if ((req.url ?? "/") === `${prefix}/` || req.url === prefix) {
        res.writeHead(302, { location: `${prefix}/graphql` }).end();
        return;
      }
      await yoga.requestListener(req, res);
    } catch (err) {
      if (res.headersSent) {
        res.destroy(err as Error);
        return;
      }
      const status = err instanceof NotFoundError ? 404 : err instanceof LabelgraphError ? 400 : 500;
      if (status === 500) {
        container.log.error(`${req.method} ${req.url} failed`, err);
      }
      const detail = status === 500 ? "Internal Server Error" : (err as Error).message;
      const body = JSON.stringify({ detail, ...(err instanceof LabelgraphError ? { code: err.code } : {}) });
      res.writeHead(status, { "content-type": "application/json" }).end(body);
    }
  });

  // graphql-ws on the same path; it goes through Yoga's envelop so HTTP, SSE and WS share one context path.
  const wss = new WebSocketServer({ server: http, path: yoga.graphqlEndpoint });
  const wsCleanup = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const request = new Request(`http://${ctx.extra.request.headers.host ?? "localhost"}${yoga.graphqlEndpoint}`);
        const {
          schema: s,
          execute,
          subscribe,
          contextFactory,
          parse,
          validate,
        } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          request,
        });
        const args = {
          schema: s,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        return errors.length ? errors : args;
      },
    },
    wss,
  );

  const sockets = new Set<import("node:net").Socket>();
  http.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  return {
    start(port = container.config.port, host = container.config.host) {
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          const addr = http.address() as AddressInfo;
          const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
          resolve({ port: addr.port, url: `http://${shown}:${addr.port}${prefix}` });
        });
      });
    },
    async stop() {
      await wsCleanup.dispose();
      wss.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        for (const s of sockets) {
          s.destroy();
        }
      });
    },
  };
}
