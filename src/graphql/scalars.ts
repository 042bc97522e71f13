import { GraphQLError, Kind, type ValueNode } from "graphql";
import { builder } from "./builder.js";

function literal(ast: ValueNode): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map(literal);
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literal(f.value)]));
    default:
      throw new GraphQLError("variables are not allowed inside JSON literals");
  }
}

builder.scalarType("JSON", {
  description: "Any JSON value",
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: literal,
});

builder.scalarType("JSONObject", {
  description: "A JSON object (image and label info, MONAI's dicts)",
  serialize: (v) => v,
  parseValue: (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new GraphQLError("expected a JSON object");
    }
    return v as Record<string, unknown>;
  },
  parseLiteral: (ast) => {
    const v = literal(ast);
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new GraphQLError("expected a JSON object");
    }
    return v as Record<string, unknown>;
  },
});

builder.scalarType("DateTime", {
  description: "An ISO-8601 timestamp",
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v as string).toISOString()),
  parseValue: (v) => {
    const d = new Date(v as string);
    if (Number.isNaN(d.getTime())) {
      throw new GraphQLError("invalid DateTime");
    }
    return d;
  },
});

builder.scalarType("File", {
  description: "A file sent as a GraphQL multipart request part",
  serialize: () => {
    throw new GraphQLError("File is an input-only scalar");
  },
  parseValue: (v) => {
    // Yoga's multipart parser hands over a WHATWG File (possibly its own ponyfill, not Node's class).
    const file = v as { stream?: unknown; arrayBuffer?: unknown } | null;
    if (typeof file?.stream !== "function" || typeof file.arrayBuffer !== "function") {
      throw new GraphQLError("expected a file upload (GraphQL multipart request)");
    }
    return v as File;
  },
});
