/**
 * Turns a pooled onnxruntime session into the inferers' Predictor: a float32 [n, C, ...spatial] tensor in, the
 * model's float32 output out. An InferTask does
 *
 *   await withPredictor(pool, { path, device }, (predictor) => inferer.infer(image, predictor));
 *
 * which pins one model version for the whole inference (every window of a sliding window runs the same model,
 * even if a new one is published meanwhile) and releases it afterwards.
 */
import { Tensor } from "onnxruntime-node";
import type { Float32Tensor, Predictor } from "../inferers/types.js";
import { ModelRunError } from "./errors.js";
import type { PooledSession, SessionLease, SessionPool, SessionRequest } from "./session-pool.js";

export interface PredictorOptions {
  /** Model input to feed; default the only input (required when the model has several). */
  inputName?: string;
  /** Model output to return; default the first output. */
  outputName?: string;
}

/** Input and output names a predictor will use for this model; throws ModelRunError when they do not fit. */
export function predictorNames(
  model: Pick<PooledSession, "path" | "session">,
  options: PredictorOptions = {},
): {
  inputName: string;
  outputName: string;
} {
  const { inputNames, outputNames, inputMetadata } = model.session;
  let inputName = options.inputName;
  if (inputName === undefined) {
    if (inputNames.length !== 1) {
      throw new ModelRunError(
        model.path,
        `has inputs ${JSON.stringify(inputNames)}; say which one takes the image (inputName)`,
      );
    }
    inputName = inputNames[0] as string;
  } else if (!inputNames.includes(inputName)) {
    throw new ModelRunError(model.path, `has no input ${JSON.stringify(inputName)} (inputs: ${inputNames.join(", ")})`);
  }
  const outputName = options.outputName ?? outputNames[0];
  if (outputName === undefined || !outputNames.includes(outputName)) {
    throw new ModelRunError(
      model.path,
      `has no output ${JSON.stringify(outputName)} (outputs: ${outputNames.join(", ") || "none"})`,
    );
  }
  const meta = inputMetadata.find((m) => m.name === inputName);
  if (meta?.isTensor && meta.type !== "float32") {
    throw new ModelRunError(
      model.path,
      `input ${JSON.stringify(inputName)} is ${meta.type}; only float32 is supported`,
    );
  }
  return { inputName, outputName };
}

/**
 * A Predictor over a leased session (runs are wrapped in ModelRunError by the lease) or any pooled session. The
 * input buffer is handed to onnxruntime without a copy; the output is the tensor onnxruntime returned.
 */
export function sessionPredictor(model: SessionLease | PooledSession, options: PredictorOptions = {}): Predictor {
  const { inputName, outputName } = predictorNames(model, options);
  const run =
    "run" in model
      ? (feeds: Record<string, Tensor>) => model.run(feeds, [outputName])
      : async (feeds: Record<string, Tensor>) => {
          try {
            return await model.session.run(feeds, [outputName]);
          } catch (err) {
            throw new ModelRunError(model.path, err instanceof Error ? err.message : String(err), err);
          }
        };
  return async (input: Float32Tensor): Promise<Float32Tensor> => {
    const results = await run({ [inputName]: new Tensor("float32", input.data, input.shape) });
    const out = results[outputName];
    if (!out || !("dims" in out)) {
      throw new ModelRunError(model.path, `returned no tensor for output ${JSON.stringify(outputName)}`);
    }
    if (out.type !== "float32" || !(out.data instanceof Float32Array)) {
      throw new ModelRunError(model.path, `output ${JSON.stringify(outputName)} is ${out.type}; expected float32`);
    }
    return { data: out.data, shape: [...out.dims] };
  };
}

/** Leases the current model, gives `fn` a predictor over it, and releases the lease however `fn` ends. */
export async function withPredictor<T>(
  pool: SessionPool,
  request: SessionRequest,
  fn: (predictor: Predictor, model: PooledSession) => Promise<T>,
  options: PredictorOptions = {},
): Promise<T> {
  const lease = await pool.acquire(request);
  try {
    return await fn(sessionPredictor(lease, options), lease);
  } finally {
    lease.release();
  }
}

/**
 * A predictor for a model whose batch size is fixed at `size` (labelgraph's graphs have static shapes): a call
 * with fewer items is zero-padded up to `size` and the output cut back; a call with more is split.
 */
export function fixedBatchPredictor(predictor: Predictor, size: number): Predictor {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`batch size must be a positive integer, got ${size}`);
  }
  return async (input) => {
    const n = input.shape[0]!;
    if (n === size) {
      return predictor(input);
    }
    const per = input.data.length / n;
    const outs: Float32Tensor[] = [];
    for (let b = 0; b < n; b += size) {
      const k = Math.min(size, n - b);
      const chunk = new Float32Array(per * size);
      chunk.set(input.data.subarray(b * per, (b + k) * per));
      const out = await predictor({ data: chunk, shape: [size, ...input.shape.slice(1)] });
      const perOut = out.data.length / size;
      outs.push({ data: out.data.subarray(0, perOut * k), shape: [k, ...out.shape.slice(1)] });
    }
    if (outs.length === 1) {
      return outs[0]!;
    }
    const data = new Float32Array(outs.reduce((a, o) => a + o.data.length, 0));
    let offset = 0;
    for (const o of outs) {
      data.set(o.data, offset);
      offset += o.data.length;
    }
    return { data, shape: [n, ...outs[0]!.shape.slice(1)] };
  };
}
