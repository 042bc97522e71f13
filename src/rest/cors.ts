import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Starlette's CORSMiddleware as MONAI configures it: origins from MONAI_LABEL_CORS_ORIGINS (every origin
 * when empty), credentials, all methods and all headers allowed.
 */
const METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

const allowed = (origin: string, origins: string[]) =>
  origins.length === 0 || origins.includes("*") || origins.includes(origin);

/** Headers for a simple (non-preflight) request. */
export function corsHeaders(req: IncomingMessage, origins: string[]): Record<string, string> {
  const origin = req.headers.origin;
  if (!origin) {
    return {};
  }
  const allowAll = origins.length === 0 || origins.includes("*");
  if (allowAll && !req.headers.cookie) {
    return { "access-control-allow-origin": "*", "access-control-allow-credentials": "true" };
  }
  if (!allowed(origin, origins)) {
    return {};
  }
  return { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" };
}

export function preflight(req: IncomingMessage, res: ServerResponse, origins: string[]): void {
  const origin = req.headers.origin as string;
  if (!allowed(origin, origins)) {
    const body = "Disallowed CORS origin";
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8", "content-length": body.length, vary: "Origin" });
    res.end(body);
    return;
  }
  const requested = req.headers["access-control-request-headers"];
  const headers: Record<string, string> = {
    vary: "Origin",
    "access-control-allow-origin": origin,
    "access-control-allow-methods": METHODS,
    "access-control-allow-credentials": "true",
    "access-control-max-age": "600",
    "content-type": "text/plain; charset=utf-8",
    "content-length": "2",
  };
  if (requested) {
    headers["access-control-allow-headers"] = requested;
  }
  res.writeHead(200, headers);
  res.end("OK");
}
