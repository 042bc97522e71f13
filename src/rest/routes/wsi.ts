import type { WsiInput, WsiOutput } from "../../tasks/infer/wsi.js";
import type { RestDeps } from "../deps.js";
import { HttpError, parseJsonObject, sendJson, sendText } from "../http.js";
import { parseMultipart } from "../multipart.js";
import { HANDLED, type Route, type RouteContext } from "../router.js";
import { jsonParams } from "./tasks.js";

const TAG = "Infer";

const ints = (v: unknown, name: string): number[] | undefined => {
  if (v === undefined || v === null) {
    return undefined;
  }
  if (!Array.isArray(v) || !v.every((n) => typeof n === "number")) {
    throw new HttpError(422, [
      { type: "list_type", loc: ["body", name], msg: "Input should be a list of numbers", input: v },
    ]);
  }
  return v as number[];
};

/** MONAI's WSIInput (extra keys ignored) plus the query, into the service's input. */
function wsiInput(ctx: RouteContext, body: Record<string, unknown>): WsiInput {
  const output = ((ctx.query.output as string | null) ?? "dsa") as WsiOutput;
  const params = body.params && typeof body.params === "object" ? (body.params as Record<string, unknown>) : {};
  const sessionId = (ctx.query.session_id as string | null) || null;
  const imageId = (ctx.query.image as string | null) || null;
  if (!sessionId && !imageId) {
    throw new HttpError(400, "Neither Image nor Session ID input is provided");
  }
  return {
    model: ctx.path.model as string,
    imageId: sessionId ? null : imageId,
    sessionId,
    level: typeof body.level === "number" ? body.level : 0,
    location: ints(body.location, "location"),
    size: ints(body.size, "size"),
    tileSize: ints(body.tile_size, "tile_size"),
    minPolyArea: typeof body.min_poly_area === "number" ? body.min_poly_area : undefined,
    output,
    params,
  };
}

/**
 * MONAI's WSI routes for the pathology app (QuPath, the DSA plugin, the Python client's wsi_infer): JSON
 * when output=json, otherwise the DSA JSON or ASAP XML document as a file.
 */
export function wsiRoutes(deps: RestDeps): Route[] {
  const run = async (ctx: RouteContext, body: Record<string, unknown>) => {
    const service = deps.wsi;
    if (!service) {
      throw new HttpError(501, "WSI inference is not available on this server");
    }
    const outcome = await service.infer(wsiInput(ctx, body));
    if (!outcome.document) {
      sendJson(ctx.res, 200, outcome.result);
      return HANDLED;
    }
    ctx.res.setHeader("content-disposition", `attachment; filename="${outcome.document.fileName}"`);
    sendText(ctx.res, 200, outcome.document.content, outcome.document.mimeType);
    return HANDLED;
  };
  const query = [
    { name: "image", default: "" },
    { name: "session_id" },
    { name: "output", enum: ["asap", "dsa", "json"] },
  ];
  return [
    {
      method: "POST",
      path: "/infer/wsi/{model}",
      tag: TAG,
      summary: "Run WSI Inference (deprecated: /infer/wsi_v2/{model})",
      deprecated: true,
      hidden: true,
      query,
      body: { kind: "json", description: "WSIInput: level, location, size, tile_size, min_poly_area, params" },
      handler: async (ctx) => run(ctx, await jsonParams(ctx)),
    },
    {
      method: "POST",
      path: "/infer/wsi_v2/{model}",
      tag: TAG,
      summary: "Run WSI Inference",
      query,
      body: { kind: "multipart", fields: ["wsi"], files: ["file"] },
      handler: async (ctx) => {
        const form = await parseMultipart(ctx.req);
        try {
          const body = parseJsonObject(form.field("wsi"), "wsi");
          const file = form.file("file");
          if (!file) {
            return await run(ctx, body);
          }
          // An uploaded slide runs as a short-lived session, as /infer/{model} does with `file`.
          const session = await deps.sessions.create([{ fileName: file.fileName, path: file.path }]);
          try {
            const url = new URL(ctx.url);
            url.searchParams.set("session_id", session.id);
            return await run({ ...ctx, query: { ...ctx.query, session_id: session.id }, url }, body);
          } finally {
            await deps.sessions.remove(session.id).catch(() => {});
          }
        } finally {
          await form.cleanup();
        }
      },
    },
  ];
}
