import { ErrorCode, LabelgraphError } from "../errors.js";

const reason = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));

/** A model file that is missing, unreadable or not a model onnxruntime can load. */
export class ModelLoadError extends LabelgraphError {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(ErrorCode.INVALID_INPUT, `cannot load model ${JSON.stringify(path)}: ${reason(cause)}`, {
      path,
      reason: reason(cause),
    });
    this.cause = cause;
  }
}

/** A model that loaded but failed on this input (wrong rank, channel count, dtype ...), or a predictor misuse. */
export class ModelRunError extends LabelgraphError {
  constructor(
    readonly path: string,
    message: string,
    cause?: unknown,
  ) {
    super(ErrorCode.INVALID_INPUT, `model ${JSON.stringify(path)}: ${message}`, { path });
    if (cause !== undefined) {
      this.cause = cause;
    }
  }
}

/** The pool was closed (server shutting down); not a client error. */
export class SessionPoolClosedError extends Error {
  constructor() {
    super("the session pool is closed");
    this.name = "SessionPoolClosedError";
  }
}
