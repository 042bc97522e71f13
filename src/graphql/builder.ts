import SchemaBuilder from "@pothos/core";
import ErrorsPlugin from "@pothos/plugin-errors";
import RelayPlugin from "@pothos/plugin-relay";
import SimpleObjectsPlugin from "@pothos/plugin-simple-objects";
import type { Context } from "./context.js";

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The one Pothos builder. Types live in their own files; this file defines none. */
export const builder = new SchemaBuilder<{
  Context: Context;
  Scalars: {
    JSON: { Input: unknown; Output: unknown };
    JSONObject: { Input: Record<string, unknown>; Output: Record<string, unknown> };
    DateTime: { Input: Date; Output: Date };
    File: { Input: File; Output: never };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
}>({
  plugins: [ErrorsPlugin, RelayPlugin, SimpleObjectsPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  relay: { clientMutationId: "omit", cursorType: "String", nodesOnConnection: true },
  errors: {
    defaultTypes: [],
    // uploadImage -> UploadImageResult = UploadImageSuccess | NotFoundError | ...
    defaultResultOptions: { name: ({ fieldName }) => `${upperFirst(fieldName)}Success` },
    defaultUnionOptions: { name: ({ fieldName }) => `${upperFirst(fieldName)}Result` },
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
