/**
 * Errors a client can act on. Each carries a stable `code`; the GraphQL layer turns them into typed
 * error results and the REST layer into HTTP statuses. Anything that is not a LabelgraphError is
 * unexpected: it is logged and masked.
 */
export const ErrorCode = {
  IMAGE_NOT_FOUND: "IMAGE_NOT_FOUND",
  LABEL_NOT_FOUND: "LABEL_NOT_FOUND",
  JOB_NOT_FOUND: "JOB_NOT_FOUND",
  MODEL_NOT_FOUND: "MODEL_NOT_FOUND",
  SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
  OBJECT_NOT_FOUND: "OBJECT_NOT_FOUND",
  INVALID_IMAGE: "INVALID_IMAGE",
  INVALID_ID: "INVALID_ID",
  INVALID_INPUT: "INVALID_INPUT",
  SHAPE_MISMATCH: "SHAPE_MISMATCH",
  DATASTORE_READ_ONLY: "DATASTORE_READ_ONLY",
  EMPTY_DATASET: "EMPTY_DATASET",
  TASK_ALREADY_RUNNING: "TASK_ALREADY_RUNNING",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class LabelgraphError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends LabelgraphError {}
export class InvalidImageError extends LabelgraphError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCode.INVALID_IMAGE, message, details);
  }
}
export class ShapeMismatchError extends LabelgraphError {
  constructor(
    readonly imageShape: number[],
    readonly labelShape: number[],
  ) {
    super(
      ErrorCode.SHAPE_MISMATCH,
      `label shape [${labelShape.join(", ")}] does not match image shape [${imageShape.join(", ")}]`,
      { imageShape, labelShape },
    );
  }
}
export class InvalidInputError extends LabelgraphError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCode.INVALID_INPUT, message, details);
  }
}
export class InvalidIdError extends LabelgraphError {
  constructor(what: string, value: string) {
    super(ErrorCode.INVALID_ID, `invalid ${what} ${JSON.stringify(value)}`, { what, value });
  }
}
export class ReadOnlyError extends LabelgraphError {
  constructor() {
    super(ErrorCode.DATASTORE_READ_ONLY, "the datastore is read-only (MONAI_LABEL_DATASTORE_READ_ONLY)");
  }
}

export const imageNotFound = (id: string) =>
  new NotFoundError(ErrorCode.IMAGE_NOT_FOUND, `image ${JSON.stringify(id)} not found`, { id });
export const labelNotFound = (imageId: string, tag: string) =>
  new NotFoundError(
    ErrorCode.LABEL_NOT_FOUND,
    `label ${JSON.stringify(tag)} of image ${JSON.stringify(imageId)} not found`,
    {
      imageId,
      tag,
    },
  );
export const objectNotFound = (key: string) =>
  new NotFoundError(ErrorCode.OBJECT_NOT_FOUND, `object ${JSON.stringify(key)} not found`, { key });
