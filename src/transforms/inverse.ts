import { type Data, type InvertibleTransform, MapTransform, type MapTransformOptions, perKey } from "./compose.js";
import { MetaTensor, type TraceItem } from "./tensor.js";

/** Interpolation modes that `nearestInterp` turns into "nearest" (MONAI's convert_applied_interp_mode). */
const INTERP_MODES = new Set(["bilinear", "linear", "trilinear", "bicubic", "area", "nearest-exact", "nearest"]);

/** A trace with every interpolation mode set to "nearest" and align-corners dropped. */
export function toNearestTrace(applied: readonly TraceItem[]): TraceItem[] {
  return applied.map((item) => {
    const extraInfo = structuredClone(item.extraInfo);
    if (typeof extraInfo.mode === "string" && INTERP_MODES.has(extraInfo.mode)) {
      extraInfo.mode = "nearest";
      delete extraInfo.alignCorners;
    }
    return { ...item, origSize: [...item.origSize], extraInfo };
  });
}

export interface InvertdOptions extends MapTransformOptions {
  /** The pre-transforms (usually the Compose) whose recorded operations to undo. */
  transform: InvertibleTransform;
  /** Keys whose trace to use, one or per key (MONAI's `orig_keys`; default the same key). */
  origKeys?: string | string[];
  /** Alias of `origKeys` for a single key. */
  origKey?: string;
  /** Invert spatial resampling with nearest interpolation (default true, right for labels); one or per key. */
  nearestInterp?: boolean | boolean[];
}

/**
 * MONAI's `Invertd`: takes the operations recorded on `origKeys` (e.g. "image") and undoes them on `keys`
 * (e.g. "pred", on the same grid as the transformed image), with `transform.inverse`, so the prediction
 * lands in the original image's space (shape and affine). A missing orig key is skipped, as in MONAI.
 */
export class Invertd extends MapTransform {
  readonly transform: InvertibleTransform;
  readonly origKeys: string[];
  readonly nearestInterp: boolean[];

  constructor(options: InvertdOptions) {
    super(options);
    this.transform = options.transform;
    const n = this.keys.length;
    this.origKeys = perKey(options.origKeys ?? options.origKey ?? this.keys, n, "Invertd origKeys");
    this.nearestInterp = perKey(options.nearestInterp ?? true, n, "Invertd nearestInterp");
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key, i] of this.keyIterator(d)) {
      const origKey = this.origKeys[i]!;
      const orig = d[origKey];
      if (!(orig instanceof MetaTensor)) {
        continue;
      }
      const value = d[key];
      let pred: MetaTensor;
      if (value instanceof MetaTensor) {
        pred = value;
      } else if (isTensorLike(value)) {
        pred = new MetaTensor({ data: value.data, shape: value.shape });
      } else {
        throw new TypeError(`${this.name}: data["${key}"] must be a MetaTensor or { data, shape }`);
      }
      const predSpatial = pred.spatialShape;
      const origSpatial = orig.spatialShape;
      if (predSpatial.length !== origSpatial.length || predSpatial.some((s, a) => s !== origSpatial[a])) {
        throw new Error(
          `${this.name}: data["${key}"] has spatial shape [${predSpatial.join(", ")}] but data["${origKey}"] has [${origSpatial.join(", ")}]; the prediction must be on the transformed image's grid`,
        );
      }
      const applied = this.nearestInterp[i] ? toNearestTrace(orig.applied) : structuredClone(orig.applied);
      const proxy = new MetaTensor({
        data: pred.data,
        shape: pred.shape,
        affine: orig.affine,
        meta: { ...orig.meta, ...pred.meta },
        applied,
      });
      const inverted = this.transform.inverse({ [origKey]: proxy }, { allowMissingKeys: true });
      const out = inverted[origKey];
      if (!(out instanceof MetaTensor)) {
        throw new Error(`${this.name}: inverting data["${origKey}"] did not give a tensor`);
      }
      d[key] = out;
    }
    return d;
  }
}

function isTensorLike(value: unknown): value is { data: ArrayLike<number>; shape: number[] } {
  const v = value as { data?: unknown; shape?: unknown } | null;
  return typeof v === "object" && v !== null && Array.isArray(v.shape) && typeof v.data === "object";
}
