import type { SessionRecord } from "../../db/sessions.repo.js";
import type { RestDeps } from "../deps.js";
import { HttpError, sendStream } from "../http.js";
import { HANDLED, type Route, type RouteContext } from "../router.js";
import { withForm } from "./datastore.js";

const TAG = "Session";
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** MONAI's SessionInfo: name, path, image, meta, create_ts, last_access_ts, expiry. */
function sessionInfo(s: SessionRecord, ctx: RouteContext) {
  return {
    name: s.id,
    path: `${ctx.baseUrl}/session/${encodeURIComponent(s.id)}`,
    image: s.name,
    meta: s.info,
    create_ts: seconds(s.createdAt),
    last_access_ts: seconds(s.lastAccessAt),
    expiry: s.expiry,
  };
}

export function sessionRoutes(deps: RestDeps): Route[] {
  const enabled = () => {
    if (!deps.config.sessions.enabled) {
      throw new HttpError(406, "Session Feature is Not Enabled");
    }
  };
  return [
    {
      method: "PUT",
      path: "/session/",
      tag: TAG,
      summary: "Create new session with Image",
      query: [
        { name: "uncompress", type: "boolean", default: false },
        { name: "expiry", type: "integer", default: 0 },
      ],
      body: { kind: "multipart", fields: [], files: ["files"] },
      handler: (ctx) => {
        enabled();
        return withForm(ctx, async (form) => {
          if (ctx.query.uncompress === true) {
            throw new HttpError(400, "uncompress=true is not supported: upload the files themselves");
          }
          const files = form.filesOf("files").map((f) => ({ fileName: f.fileName, path: f.path }));
          if (files.length === 0) {
            throw new HttpError(422, [{ type: "missing", loc: ["body", "files"], msg: "Field required", input: null }]);
          }
          const expiry = Number(ctx.query.expiry);
          const s = await deps.sessions.create(files, expiry > 0 ? expiry : null);
          return { session_id: s.id, session_info: sessionInfo(s, ctx) };
        });
      },
    },
    {
      method: "GET",
      path: "/session/{session_id}",
      tag: TAG,
      summary: "Get Session Info",
      query: [
        { name: "update_ts", type: "boolean", default: false },
        { name: "image", type: "boolean", default: false },
      ],
      handler: async (ctx) => {
        enabled();
        const s = await deps.sessions.get(ctx.path.session_id as string, ctx.query.update_ts === true);
        if (ctx.query.image !== true) {
          return sessionInfo(s, ctx);
        }
        const info = await deps.store.stat(s.objectKey);
        if (!info) {
          throw new HttpError(404, "Image NOT Found or is a directory");
        }
        await sendStream(ctx.res, await deps.store.get(s.objectKey), { size: info.size, fileName: s.name });
        return HANDLED;
      },
    },
    {
      method: "DELETE",
      path: "/session/{session_id}",
      tag: TAG,
      summary: "Delete Session",
      handler: async (ctx) => {
        enabled();
        return sessionInfo(await deps.sessions.remove(ctx.path.session_id as string), ctx);
      },
    },
  ];
}
