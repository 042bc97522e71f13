import type { IncomingMessage, ServerResponse } from "node:http";
import { LabelgraphError } from "../errors.js";
import { corsHeaders, preflight } from "./cors.js";
import type { RestDeps } from "./deps.js";
import { HttpError, sendJson, sendText, statusOf } from "./http.js";
import { HANDLED, type Route, Router } from "./router.js";
import { activeLearningRoutes } from "./routes/activelearning.js";
import { datastoreRoutes } from "./routes/datastore.js";
import { inferRoutes } from "./routes/infer.js";
import { infoRoutes } from "./routes/info.js";
import { logsRoutes } from "./routes/logs.js";
import { modelRoutes } from "./routes/model.js";
import { sessionRoutes } from "./routes/session.js";
import { taskRoutes } from "./routes/tasks.js";
import { wsiRoutes } from "./routes/wsi.js";

export type { RestDeps } from "./deps.js";

/** First path segments that belong to the REST API; anything else is left to GraphQL and file routes. */
const NAMESPACES = new Set([
  "info",
  "infer",
  "batch",
  "train",
  "activelearning",
  "scoring",
  "datastore",
  "model",
  "session",
  "logs",
  "auth",
  "openapi.json",
  "reload",
]);

export function buildRestRouter(deps: RestDeps): Router {
  const routes: Route[] = [
    ...infoRoutes(deps),
    ...wsiRoutes(deps),
    ...inferRoutes(deps),
    ...taskRoutes(deps),
    ...activeLearningRoutes(deps),
    ...datastoreRoutes(deps),
    ...modelRoutes(deps),
    ...sessionRoutes(deps),
    ...logsRoutes(deps),
  ];
  return new Router(routes);
}

/**
 * MONAI Label's REST API over the same services as GraphQL. Returns a node:http listener step that
 * answers REST paths and returns false for everything else. `/auth/` is not mounted (auth is off), so it
 * answers 404 as MONAI does; clients read that as "auth disabled".
 */
export function createRestHandler(deps: RestDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const router = buildRestRouter(deps);
  const prefix = deps.config.apiPrefix;
  const origins = deps.config.corsOrigins;

  return async (req, res) => {
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
    if (!url.pathname.startsWith(prefix)) {
      return false;
    }
    const path = url.pathname.slice(prefix.length) || "/";
    if (!NAMESPACES.has(path.split("/")[1] ?? "")) {
      return false;
    }
    const method = req.method ?? "GET";
    if (method === "OPTIONS" && req.headers.origin && req.headers["access-control-request-method"]) {
      preflight(req, res, origins);
      return true;
    }
    for (const [k, v] of Object.entries(corsHeaders(req, origins))) {
      res.setHeader(k, v);
    }
    const proto = (req.headers["x-forwarded-proto"] as string | undefined)?.split(",")[0] ?? "http";
    const baseUrl = `${proto}://${url.host}${prefix}`;
    try {
      if (path === "/openapi.json" && (method === "GET" || method === "HEAD")) {
        sendJson(
          res,
          200,
          router.openapi(
            {
              title: "MONAILabel",
              version: "0.8.5",
              description: `labelgraph: MONAI Label's REST API (app ${deps.app.name}); GraphQL at ${prefix}/graphql`,
            },
            prefix,
          ),
        );
        return true;
      }
      const m = router.match(method, path);
      if (m.kind === "method") {
        throw new HttpError(405, "Method Not Allowed", { allow: m.allow.join(", ") });
      }
      if (m.kind === "none") {
        const other = router.slashRedirect(path);
        if (other) {
          // Starlette's redirect_slashes: an absolute URL, the query kept.
          res.writeHead(307, { location: `${proto}://${url.host}${prefix}${other}${url.search}`, "content-length": 0 });
          res.end();
          return true;
        }
        throw new HttpError(404, "Not Found");
      }
      const result = await router.dispatch({ req, res, url, baseUrl }, m.route, m.params);
      if (result !== HANDLED) {
        sendJson(res, 200, result);
      }
    } catch (err) {
      // Let the rest of a request body drain, so the client sees the answer rather than a reset.
      req.resume();
      if (res.headersSent) {
        res.destroy(err as Error);
      } else if (err instanceof HttpError) {
        sendJson(res, err.status, { detail: err.detail }, err.headers);
      } else if (err instanceof LabelgraphError) {
        sendJson(res, statusOf(err), { detail: err.message, code: err.code });
      } else {
        deps.log.error(`${method} ${req.url} failed`, err);
        sendText(res, 500, "Internal Server Error");
      }
    }
    return true;
  };
}
