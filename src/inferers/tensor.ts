import { InfererError } from "./errors.js";
import type { Float32Tensor } from "./types.js";

export const formatShape = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
  }
  return n;
}

/**
 * Checks that `t` is a float32 tensor of rank `minRank`..`maxRank` with positive integer sizes and as many values
 * as its shape says. `what` names it in the error ("input", "predictor output").
 */
export function checkTensor(t: Float32Tensor, what: string, minRank: number, maxRank: number, expected: string): void {
  if (!(t.data instanceof Float32Array)) {
    throw new InfererError(`${what}: data must be a Float32Array`);
  }
  if (!Array.isArray(t.shape) || t.shape.length < minRank || t.shape.length > maxRank) {
    const shown = Array.isArray(t.shape) ? formatShape(t.shape) : String(t.shape);
    throw new InfererError(`${what}: shape ${shown} must be ${expected}`, { shape: t.shape });
  }
  if (!t.shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InfererError(`${what}: shape ${formatShape(t.shape)} must hold positive integers`, { shape: t.shape });
  }
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new InfererError(`${what}: shape ${formatShape(t.shape)} needs ${n} values, data has ${t.data.length}`, {
      shape: t.shape,
      length: t.data.length,
    });
  }
}

/** A batch-first image tensor [N, C, H, W] or [N, C, D, H, W]. */
export function checkImageTensor(t: Float32Tensor, what: string): void {
  checkTensor(t, what, 4, 5, "[N, C, H, W] or [N, C, D, H, W]");
}
