import {
  ErrorCode,
  InvalidIdError,
  InvalidImageError,
  InvalidInputError,
  LabelgraphError,
  NotFoundError,
  ReadOnlyError,
  ShapeMismatchError,
} from "../errors.js";
import { builder } from "./builder.js";

/**
 * Errors a client can act on are data: each mutation's result is a union of its success type and
 * these. Their `code` is stable; unexpected errors stay GraphQL errors and are masked.
 */
export const ErrorCodeEnum = builder.enumType("ErrorCode", { values: Object.values(ErrorCode) });

export const ErrorInterface = builder.interfaceRef<LabelgraphError>("Error").implement({
  fields: (t) => ({
    message: t.exposeString("message"),
    code: t.field({ type: ErrorCodeEnum, resolve: (e) => e.code }),
  }),
});

const plain = (
  cls: typeof LabelgraphError | (new (...args: never[]) => LabelgraphError),
  name: string,
  description: string,
) =>
  builder.objectType(cls as typeof LabelgraphError, {
    name,
    description,
    interfaces: [ErrorInterface],
    fields: () => ({}),
  });

plain(
  LabelgraphError,
  "ClientError",
  "Any other error the client can act on (EMPTY_DATASET, TASK_ALREADY_RUNNING ...)",
);
plain(NotFoundError, "NotFoundError", "IMAGE_NOT_FOUND, LABEL_NOT_FOUND, JOB_NOT_FOUND ...");
plain(InvalidImageError, "InvalidImageError", "The file is not a readable image of a supported format");
plain(InvalidIdError, "InvalidIdError", "An id, tag or extension with characters that are not allowed");
plain(InvalidInputError, "InvalidInputError", "An argument is out of range or malformed");
plain(ReadOnlyError, "ReadOnlyError", "The datastore is read-only");
builder.objectType(ShapeMismatchError, {
  name: "ShapeMismatchError",
  description: "A label's spatial shape differs from its image's",
  interfaces: [ErrorInterface],
  fields: (t) => ({
    imageShape: t.intList({ resolve: (e) => e.imageShape }),
    labelShape: t.intList({ resolve: (e) => e.labelShape }),
  }),
});

/** The error types every datastore mutation can return. */
export const datastoreErrors = [
  LabelgraphError,
  NotFoundError,
  InvalidImageError,
  InvalidIdError,
  InvalidInputError,
  ReadOnlyError,
  ShapeMismatchError,
];
