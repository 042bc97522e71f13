import type { SessionRecord } from "../db/sessions.repo.js";
import { builder } from "./builder.js";
import { datastoreErrors } from "./errors.js";
import { withUploads } from "./upload.js";

const SessionRef = builder.objectRef<SessionRecord>("Session").implement({
  description: "Images uploaded once for inference (MONAI Label's /session/), outside the datastore",
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    info: t.field({ type: "JSONObject", resolve: (s) => s.info }),
    expiry: t.exposeInt("expiry", { description: "Seconds idle before it is removed" }),
    createdAt: t.field({ type: "DateTime", resolve: (s) => s.createdAt }),
    lastAccessAt: t.field({ type: "DateTime", resolve: (s) => s.lastAccessAt }),
    expiresAt: t.field({ type: "DateTime", resolve: (s) => new Date(s.lastAccessAt.getTime() + s.expiry * 1000) }),
  }),
});

builder.queryField("session", (t) =>
  t.field({
    type: SessionRef,
    nullable: true,
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.services.sessions.get(String(args.id), false).catch(() => null),
  }),
);

builder.mutationFields((t) => ({
  createSession: t.field({
    type: SessionRef,
    description: "Uploads one image, or several files that form one (a DICOM series); infer on it with sessionId",
    errors: { types: datastoreErrors },
    args: {
      files: t.arg({ type: ["File"], required: true }),
      expiry: t.arg.int({ required: false, description: "Seconds (default MONAI_LABEL_SESSION_EXPIRY)" }),
    },
    resolve: (_r, args, ctx) => withUploads(args.files, (files) => ctx.services.sessions.create(files, args.expiry)),
  }),
  deleteSession: t.field({
    type: SessionRef,
    errors: { types: datastoreErrors },
    args: { id: t.arg.id() },
    resolve: (_r, args, ctx) => ctx.services.sessions.remove(String(args.id)),
  }),
}));
