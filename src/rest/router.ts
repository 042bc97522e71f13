import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, validationError } from "./http.js";

/**
 * A small table router with Starlette's habits: `{param}` path segments, 405 with `allow` when only the
 * method differs, and a 307 to the same path with the trailing slash added or removed when only that
 * version matches. Query parameters are declared per route, parsed and checked here (422 as FastAPI
 * gives it), and the same declarations produce /openapi.json.
 */
export type ParamType = "string" | "boolean" | "integer";

export interface QueryParam {
  name: string;
  type?: ParamType;
  required?: boolean;
  default?: string | number | boolean | null;
  /** Allowed values (FastAPI enums). */
  enum?: readonly string[];
  description?: string;
}

export type Query = Record<string, string | number | boolean | null>;

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  path: Record<string, string>;
  query: Query;
  /** The server's public base URL with the API prefix (for links in responses). */
  baseUrl: string;
}

export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  path: string;
  summary: string;
  tag: string;
  query?: QueryParam[];
  /** What the body carries, for the OpenAPI document. */
  body?: { kind: "json"; description?: string } | { kind: "multipart"; fields: string[]; files: string[] };
  deprecated?: boolean;
  /** Left out of /openapi.json, as MONAI hides it (include_in_schema=False). */
  hidden?: boolean;
  /**
   * Writes the response itself and returns undefined, or returns a value sent as JSON 200 (null included:
   * FastAPI sends `null` for a handler returning None).
   */
  handler(ctx: RouteContext): Promise<unknown>;
}

/** A sentinel: the handler wrote the response itself. */
export const HANDLED = Symbol("handled");

interface Compiled {
  route: Route;
  regex: RegExp;
  names: string[];
}

function compile(route: Route): Compiled {
  const names: string[] = [];
  const pattern = route.path
    .split("/")
    .map((seg) => {
      const m = /^\{(\w+)\}$/.exec(seg);
      if (m) {
        names.push(m[1] as string);
        return "([^/]+)";
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { route, regex: new RegExp(`^${pattern}$`), names };
}

function parseQuery(url: URL, params: QueryParam[] = []): Query {
  const out: Query = {};
  for (const p of params) {
    const raw = url.searchParams.get(p.name);
    if (raw === null) {
      if (p.required) {
        throw validationError("query", p.name, "Field required");
      }
      out[p.name] = p.default ?? null;
      continue;
    }
    const type = p.type ?? "string";
    if (type === "boolean") {
      // pydantic's lax booleans.
      const v = raw.toLowerCase();
      if (["true", "1", "yes", "on", "t", "y"].includes(v)) {
        out[p.name] = true;
      } else if (["false", "0", "no", "off", "f", "n"].includes(v)) {
        out[p.name] = false;
      } else {
        throw validationError("query", p.name, "Input should be a valid boolean", raw);
      }
    } else if (type === "integer") {
      if (!/^-?\d+$/.test(raw.trim())) {
        throw validationError("query", p.name, "Input should be a valid integer", raw);
      }
      out[p.name] = Number(raw);
    } else {
      if (p.enum && !p.enum.includes(raw)) {
        throw validationError("query", p.name, `Input should be ${p.enum.map((e) => `'${e}'`).join(", ")}`, raw);
      }
      out[p.name] = raw;
    }
  }
  return out;
}

export class Router {
  private readonly compiled: Compiled[];

  constructor(readonly routes: Route[]) {
    this.compiled = routes.map(compile);
  }

  /** The route for this method and path, or why there is none. */
  match(
    method: string,
    path: string,
  ):
    | { kind: "route"; route: Route; params: Record<string, string> }
    | { kind: "method"; allow: string[] }
    | { kind: "none" } {
    const allow: string[] = [];
    for (const c of this.compiled) {
      const m = c.regex.exec(path);
      if (!m) {
        continue;
      }
      const methods = c.route.method === "GET" ? ["GET", "HEAD"] : [c.route.method];
      if (methods.includes(method)) {
        const params: Record<string, string> = {};
        c.names.forEach((n, i) => {
          params[n] = decodeURIComponent(m[i + 1] as string);
        });
        return { kind: "route", route: c.route, params };
      }
      allow.push(...methods);
    }
    return allow.length ? { kind: "method", allow: [...new Set(allow)] } : { kind: "none" };
  }

  /** Starlette's redirect_slashes: the other spelling of the path, when some route (any method) has it. */
  slashRedirect(path: string): string | null {
    if (path === "/" || path === "") {
      return null;
    }
    const other = path.endsWith("/") ? path.slice(0, -1) : `${path}/`;
    return this.compiled.some((c) => c.regex.test(other)) ? other : null;
  }

  async dispatch(ctx: Omit<RouteContext, "path" | "query">, route: Route, params: Record<string, string>) {
    const query = parseQuery(ctx.url, route.query);
    return route.handler({ ...ctx, path: params, query });
  }

  /** OpenAPI 3.1 for the visible routes. */
  openapi(info: { title: string; version: string; description: string }, prefix: string) {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.routes) {
      if (r.hidden) {
        continue;
      }
      const key = `${prefix}${r.path}`;
      const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: "path",
        required: true,
        schema: { type: "string", title: m[1] },
      }));
      const queryParams = (r.query ?? []).map((q) => ({
        name: q.name,
        in: "query",
        required: q.required ?? false,
        ...(q.description ? { description: q.description } : {}),
        schema: {
          type: q.type ?? "string",
          title: q.name,
          ...(q.enum ? { enum: q.enum } : {}),
          ...(q.default !== undefined && q.default !== null ? { default: q.default } : {}),
        },
      }));
      const op: Record<string, unknown> = {
        tags: [r.tag],
        summary: r.summary,
        operationId: `${r.method.toLowerCase()}_${r.path.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_|_$/g, "")}`,
        parameters: [...pathParams, ...queryParams],
        responses: {
          "200": { description: "Successful Response", content: { "application/json": { schema: {} } } },
          "422": { description: "Validation Error" },
        },
      };
      if (r.deprecated) {
        op.deprecated = true;
      }
      if (r.body?.kind === "json") {
        op.requestBody = {
          content: { "application/json": { schema: { type: "object", description: r.body.description ?? "" } } },
        };
      } else if (r.body?.kind === "multipart") {
        const properties: Record<string, unknown> = {};
        for (const f of r.body.fields) {
          properties[f] = { type: "string", title: f };
        }
        for (const f of r.body.files) {
          properties[f] = { type: "string", format: "binary", title: f };
        }
        op.requestBody = { content: { "multipart/form-data": { schema: { type: "object", properties } } } };
      }
      const entry = paths[key] ?? {};
      entry[r.method.toLowerCase()] = op;
      paths[key] = entry;
    }
    return { openapi: "3.1.0", info, paths };
  }
}

export function notFound(): never {
  throw new HttpError(404, "Not Found");
}
