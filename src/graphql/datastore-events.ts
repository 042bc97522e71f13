import type { DatastoreChange } from "../datastore/types.js";
import { builder } from "./builder.js";

const ChangeKind = builder.enumType("DatastoreChangeKind", {
  values: ["IMAGE_ADDED", "IMAGE_UPDATED", "IMAGE_REMOVED", "LABEL_SAVED", "LABEL_UPDATED", "LABEL_REMOVED"] as const,
});
const ChangeSource = builder.enumType("ChangeSource", {
  values: { API: { value: "api" }, WATCHER: { value: "watcher" }, IMPORT: { value: "import" } } as const,
});

const DatastoreChangeRef = builder.objectRef<DatastoreChange>("DatastoreChange").implement({
  fields: (t) => ({
    kind: t.field({ type: ChangeKind, resolve: (c) => c.kind }),
    imageId: t.exposeID("imageId"),
    tag: t.exposeString("tag", { nullable: true }),
    version: t.exposeInt("version", { nullable: true }),
    source: t.field({ type: ChangeSource, resolve: (c) => c.source }),
    at: t.field({ type: "DateTime", resolve: (c) => c.at }),
  }),
});

builder.subscriptionField("datastoreChanged", (t) =>
  t.field({
    type: DatastoreChangeRef,
    description: "Every image or label added, changed or removed, by any path (GraphQL, REST, the folder watcher)",
    args: { imageId: t.arg.id({ required: false, description: "Only changes of this image" }) },
    subscribe: async function* (_r, args, ctx) {
      for await (const change of ctx.services.pubsub.subscribe("datastore:changed")) {
        if (args.imageId == null || change.imageId === String(args.imageId)) {
          yield change;
        }
      }
    },
    resolve: (c) => c,
  }),
);
