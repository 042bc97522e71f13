import { ErrorCode, LabelgraphError } from "../errors.js";

/** Bad inferer options, an input tensor whose shape does not fit, or a predictor output that does not fit. */
export class InfererError extends LabelgraphError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCode.INVALID_INPUT, message, details);
  }
}
