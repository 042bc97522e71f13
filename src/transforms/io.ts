import { InvalidInputError } from "../errors.js";
import { loadImage } from "../io/load.js";
import type { Volume } from "../io/types.js";
import { type Data, MapTransform, type MapTransformOptions } from "./compose.js";
import { cloneAffine, MetaTensor, numel, tensorAt } from "./tensor.js";

/** Reads an image file into a Volume. */
export type ImageReader = (path: string) => Promise<Volume> | Volume;

/**
 * The default reader: every format labelgraph reads (NIfTI, NRRD, PNG/JPEG, a DICOM file, or a folder
 * holding a DICOM series), chosen from the file's content and name by `loadImage`.
 */
export const defaultReader: ImageReader = (path: string) => loadImage(path);

/**
 * A Volume as a MetaTensor as MONAI's LoadImage leaves it: float32 values, no channel axis added (shape is the
 * file's: `[X, Y(, Z)]`, or `[X, Y, Z, C]` / `[X, Y, C]` when it has more axes than spatial ones or several
 * components per voxel), and meta with `filename_or_obj`, `spatial_shape`, `original_affine`, `pixdim`, `original_channel_dim` ("no_channel" or -1) and `space` "RAS", plus the reader's own meta.
 */
export function volumeToTensor(volume: Volume, filename?: string): MetaTensor {
  const r = Math.min(volume.spacing.length || volume.shape.length, 3, volume.shape.length);
  const spatial = volume.shape.slice(0, r);
  const nSpatial = numel(spatial);
  const components = typeof volume.meta.components === "number" ? volume.meta.components : 1;
  let data: Float32Array;
  let channels = numel(volume.shape.slice(r));
  if (components > 1 && volume.data.length === numel(volume.shape) * components) {
    // interleaved components (NIfTI rgb24/rgba32): de-interleave into trailing channels
    channels *= components;
    data = new Float32Array(volume.data.length);
    const perComp = numel(volume.shape);
    for (let i = 0; i < perComp; i++) {
      for (let k = 0; k < components; k++) {
        data[k * perComp + i] = volume.data[i * components + k]!;
      }
    }
  } else {
    data = volume.data instanceof Float32Array ? volume.data : Float32Array.from(volume.data);
  }
  const hasChannel = channels > 1 || volume.shape.length > r;
  const shape = hasChannel ? [...spatial, channels] : spatial;
  if (data.length !== nSpatial * channels) {
    throw new InvalidInputError(
      `LoadImaged: ${volume.data.length} values do not fill shape [${volume.shape.join(", ")}]`,
      {},
    );
  }
  const meta: Record<string, unknown> = {
    ...volume.meta,
    filename_or_obj: filename ?? volume.meta.filename_or_obj ?? null,
    spatial_shape: [...spatial],
    original_affine: cloneAffine(volume.affine),
    original_channel_dim: hasChannel ? -1 : "no_channel",
    space: "RAS",
    dtype: volume.dtype,
  };
  if (!Array.isArray(meta.pixdim)) {
    meta.pixdim = [1, ...volume.spacing, ...Array.from({ length: 7 - volume.spacing.length }, () => 1)];
  }
  return new MetaTensor({ data, shape, affine: volume.affine, meta });
}

export interface LoadImagedOptions extends MapTransformOptions {
  /** Reads a path into a Volume (default: `defaultReader`, any format `loadImage` reads). */
  reader?: ImageReader;
  /** MONAI's `image_only` (default true). When false, also store the meta as `${key}_${metaKeyPostfix}`. */
  imageOnly?: boolean;
  metaKeyPostfix?: string;
  /** Put the channel axis first right away (MONAI's `ensure_channel_first`, default false). */
  ensureChannelFirst?: boolean;
}

/**
 * MONAI's `LoadImaged`: replaces each key's file path by the loaded MetaTensor (see `volumeToTensor`).
 * A Volume or a MetaTensor already in the dictionary is accepted as is (like MONAI Label's LoadImageTensord).
 */
export class LoadImaged extends MapTransform {
  readonly reader: ImageReader;
  readonly imageOnly: boolean;
  readonly metaKeyPostfix: string;
  readonly ensureChannelFirst: boolean;

  constructor(options: LoadImagedOptions) {
    super(options);
    this.reader = options.reader ?? defaultReader;
    this.imageOnly = options.imageOnly ?? true;
    this.metaKeyPostfix = options.metaKeyPostfix ?? "meta_dict";
    this.ensureChannelFirst = options.ensureChannelFirst ?? false;
  }

  async call(data: Data): Promise<Data> {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      const value = d[key];
      let tensor: MetaTensor;
      if (value instanceof MetaTensor) {
        tensor = value;
      } else if (typeof value === "string") {
        tensor = volumeToTensor(await this.reader(value), value);
      } else if (isVolume(value)) {
        tensor = volumeToTensor(value);
      } else {
        throw new InvalidInputError(`LoadImaged: data["${key}"] must be a file path, got ${typeof value}`, { key });
      }
      if (this.ensureChannelFirst) {
        tensor = toChannelFirst(tensor, undefined, "LoadImaged");
      }
      d[key] = tensor;
      if (!this.imageOnly) {
        d[`${key}_${this.metaKeyPostfix}`] = { ...tensor.meta, affine: cloneAffine(tensor.affine) };
      }
    }
    return d;
  }
}

function isVolume(value: unknown): value is Volume {
  const v = value as Partial<Volume> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    Array.isArray(v.shape) &&
    Array.isArray(v.affine) &&
    Array.isArray(v.spacing) &&
    typeof v.data === "object"
  );
}

/** Moves the channel axis to the front (or adds one); see EnsureChannelFirstd. */
function toChannelFirst(t: MetaTensor, channelDim: number | "no_channel" | undefined, name: string): MetaTensor {
  const dim = channelDim ?? (t.meta.original_channel_dim as number | "no_channel" | undefined);
  if (dim === undefined || dim === null) {
    throw new Error(
      `${name}: the channel dimension is unknown (no meta.original_channel_dim); set channelDim (a number, or "no_channel")`,
    );
  }
  const meta = { ...t.meta, original_channel_dim: dim };
  if (dim === "no_channel") {
    return t.derive({ data: t.data, shape: [1, ...t.shape], meta });
  }
  const axis = dim < 0 ? t.shape.length + dim : dim;
  if (axis === 0) {
    return t.derive({ data: t.data, shape: [...t.shape], meta });
  }
  if (axis !== t.shape.length - 1) {
    throw new Error(
      `${name}: only a first or last channel axis is supported, got ${dim} for shape [${t.shape.join(", ")}]`,
    );
  }
  // a trailing channel axis is already the slowest in memory: the move is free
  const shape = [t.shape[axis]!, ...t.shape.slice(0, axis)];
  return t.derive({ data: t.data, shape, meta });
}

export interface EnsureChannelFirstdOptions extends MapTransformOptions {
  /** Where the channel is (overrides meta.original_channel_dim): an axis, or "no_channel" to add one. */
  channelDim?: number | "no_channel";
}

/**
 * MONAI's `EnsureChannelFirstd`: from meta.original_channel_dim, adds a leading channel of 1 ("no_channel")
 * or moves the trailing channel axis to the front.
 */
export class EnsureChannelFirstd extends MapTransform {
  readonly channelDim: number | "no_channel" | undefined;

  constructor(options: EnsureChannelFirstdOptions) {
    super(options);
    this.channelDim = options.channelDim;
  }

  call(data: Data): Data {
    const d = { ...data };
    for (const [key] of this.keyIterator(d)) {
      d[key] = toChannelFirst(tensorAt(d, key, this.name), this.channelDim, this.name);
    }
    return d;
  }
}
