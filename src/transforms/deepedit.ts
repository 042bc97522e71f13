import { InvalidInputError } from "../errors.js";
import type { Data, Transform } from "./compose.js";
import { discrepancy, type Point, sampleClick, seedPoints } from "./deepgrow.js";
import { type Randomizable, RandomState } from "./random.js";
import { pad3, tensorAt } from "./tensor.js";

/**
 * MONAI's deepedit transforms (monai.apps.deepedit.transforms): the multi-label counterparts of the deepgrow
 * click simulation. Guidance is `{label name: points}` with one entry per label, `background` included
 * (its clicks are the negative ones); the label map holds each label's value (background 0).
 */

function labelMask(label: Float32Array, size: number, value: number): Uint8Array {
  const m = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    m[i] = Math.round(label[i]!) === value ? 1 : 0;
  }
  return m;
}

abstract class RandomizableTransform implements Transform, Randomizable {
  readonly R = new RandomState();
  setRandomState(seed: number): this {
    this.R.seed(seed);
    return this;
  }
  abstract call(data: Data): Data;
}

export interface AddInitialSeedPointMissingLabelsdOptions {
  label?: string;
  guidance?: string;
  /** `{name: value}`, background included. */
  labelNames: Record<string, number>;
  /** Key of the valid slices per label (`{name: sids}`, default "sids"); 3D seeds then lie on one of them. */
  sids?: string;
  connectedRegions?: number;
}

/**
 * MONAI's `AddInitialSeedPointMissingLabelsd`: for every label (background too) present in the label map,
 * seed clicks drawn deep inside it as deepgrow's AddInitialSeedPointd does; a label with no voxel gets
 * `[[-1, ...]]` (no click).
 */
export class AddInitialSeedPointMissingLabelsd extends RandomizableTransform {
  readonly label: string;
  readonly guidance: string;
  readonly labelNames: Record<string, number>;
  readonly sids: string;
  readonly connectedRegions: number;

  constructor(options: AddInitialSeedPointMissingLabelsdOptions) {
    super();
    this.label = options.label ?? "label";
    this.guidance = options.guidance ?? "guidance";
    this.labelNames = options.labelNames;
    this.sids = options.sids ?? "sids";
    this.connectedRegions = options.connectedRegions ?? 5;
  }

  call(data: Data): Data {
    const t = tensorAt(data, this.label, "AddInitialSeedPointMissingLabelsd");
    const rank = t.spatialShape.length;
    const shape = pad3(t.spatialShape);
    const allSids = (data[this.sids] ?? {}) as Record<string, number[]>;
    const guidance: Record<string, Point[]> = {};
    for (const [name, value] of Object.entries(this.labelNames)) {
      const mask = labelMask(t.data, t.channelSize, value);
      const sids = allSids[name];
      const sid = rank === 3 && sids && sids.length > 0 ? sids[this.R.randint(sids.length)] : undefined;
      const points = seedPoints(mask, shape, rank, sid, this.connectedRegions, this.R);
      guidance[name] = points.length > 0 ? points : [Array.from({ length: rank + 1 }, () => -1)];
    }
    return { ...data, [this.guidance]: guidance };
  }
}

export interface FindAllValidSlicesMissingLabelsdOptions {
  label?: string;
  sids?: string;
  labelNames: Record<string, number>;
}

/** MONAI's `FindAllValidSlicesMissingLabelsd`: per label, the depth slices (last axis) holding it. */
export class FindAllValidSlicesMissingLabelsd implements Transform {
  readonly label: string;
  readonly sids: string;
  readonly labelNames: Record<string, number>;
  constructor(options: FindAllValidSlicesMissingLabelsdOptions) {
    this.label = options.label ?? "label";
    this.sids = options.sids ?? "sids";
    this.labelNames = options.labelNames;
  }
  call(data: Data): Data {
    const t = tensorAt(data, this.label, "FindAllValidSlicesMissingLabelsd");
    if (t.spatialShape.length !== 3) {
      throw new InvalidInputError(`FindAllValidSlicesMissingLabelsd: the label must be 3D, got [${t.shape}]`);
    }
    const [X, Y, Z] = t.spatialShape as [number, number, number];
    const out: Record<string, number[]> = {};
    for (const [name, value] of Object.entries(this.labelNames)) {
      out[name] = [];
      for (let z = 0; z < Z; z++) {
        const plane = t.data.subarray(z * X * Y, (z + 1) * X * Y);
        if (plane.some((v) => Math.round(v) === value)) {
          out[name].push(z);
        }
      }
    }
    return { ...data, [this.sids]: out };
  }
}

export interface FindDiscrepancyRegionsDeepEditdOptions {
  label?: string;
  /** The discrete prediction (label values, e.g. argmax), default "pred". */
  pred?: string;
  discrepancy?: string;
  labelNames: Record<string, number>;
}

/**
 * MONAI's `FindDiscrepancyRegionsDeepEditd`: per label, `[missed, extra]` of that label's mask in the label
 * map against the prediction's; for background, its missed region is where the prediction put a label on
 * background (so a background click there is a negative click).
 */
export class FindDiscrepancyRegionsDeepEditd implements Transform {
  readonly label: string;
  readonly pred: string;
  readonly discrepancy: string;
  readonly labelNames: Record<string, number>;
  constructor(options: FindDiscrepancyRegionsDeepEditdOptions) {
    this.label = options.label ?? "label";
    this.pred = options.pred ?? "pred";
    this.discrepancy = options.discrepancy ?? "discrepancy";
    this.labelNames = options.labelNames;
  }
  call(data: Data): Data {
    const label = tensorAt(data, this.label, "FindDiscrepancyRegionsDeepEditd");
    const pred = tensorAt(data, this.pred, "FindDiscrepancyRegionsDeepEditd");
    const size = label.channelSize;
    if (pred.channelSize !== size) {
      throw new Error(`FindDiscrepancyRegionsDeepEditd: label [${label.shape}] and pred [${pred.shape}] differ`);
    }
    const out: Record<string, [Uint8Array, Uint8Array]> = {};
    for (const [name, value] of Object.entries(this.labelNames)) {
      out[name] = discrepancy(labelMask(label.data, size, value), labelMask(pred.data, size, value), size);
    }
    return { ...data, [this.discrepancy]: out };
  }
}

export interface AddRandomGuidanceDeepEditdOptions {
  guidance?: string;
  discrepancy?: string;
  probability?: string;
  labelNames: Record<string, number>;
  /** The tensor whose spatial shape the discrepancy maps have (default "label"). */
  refKey?: string;
}

/**
 * MONAI's `AddRandomGuidanceDeepEditd`: with the sample's probability, one new click per label in the region
 * that label's prediction missed (drawn as `sampleClick` does); labels with nothing missed get none.
 * MONAI also clicks where a label's region was wrongly given to another label when that covers more than 50
 * voxels; with one label and background those are the same regions, so this is left out.
 */
export class AddRandomGuidanceDeepEditd extends RandomizableTransform {
  readonly guidance: string;
  readonly discrepancy: string;
  readonly probability: string;
  readonly labelNames: Record<string, number>;
  readonly refKey: string;
  constructor(options: AddRandomGuidanceDeepEditdOptions) {
    super();
    this.guidance = options.guidance ?? "guidance";
    this.discrepancy = options.discrepancy ?? "discrepancy";
    this.probability = options.probability ?? "probability";
    this.labelNames = options.labelNames;
    this.refKey = options.refKey ?? "label";
  }
  call(data: Data): Data {
    const ref = tensorAt(data, this.refKey, "AddRandomGuidanceDeepEditd");
    const rank = ref.spatialShape.length;
    const shape = pad3(ref.spatialShape);
    const discr = data[this.discrepancy] as Record<string, [Uint8Array, Uint8Array]>;
    const old = (data[this.guidance] ?? {}) as Record<string, Point[]>;
    const p = typeof data[this.probability] === "number" ? (data[this.probability] as number) : 1;
    const guidance: Record<string, Point[]> = {};
    const willInteract = this.R.rand() < p;
    for (const name of Object.keys(this.labelNames)) {
      const points = [...(old[name] ?? [])];
      const missed = discr[name]?.[0];
      if (willInteract && missed) {
        const click = sampleClick(missed, shape, rank, this.R);
        if (click) {
          points.push(click);
        }
      }
      guidance[name] = points;
    }
    return { ...data, [this.guidance]: guidance };
  }
}

export interface DropGuidanceDeepEditdOptions {
  guidance?: string;
  labelNames: Record<string, number>;
  /** Probability that the guidance is emptied (default 0.5). */
  prob?: number;
}

/**
 * Empties every label's guidance (`{name: []}`) with probability `prob`: in DeepEdit training, a clicked batch
 * then starts from the automatic mode (no seeds from the label) and its clicks land in the regions the
 * automatic prediction gets wrong, as an annotator correcting it would place them (not MONAI's; MONAI always
 * seeds from the label).
 */
export class DropGuidanceDeepEditd extends RandomizableTransform {
  readonly guidance: string;
  readonly labelNames: Record<string, number>;
  readonly prob: number;
  constructor(options: DropGuidanceDeepEditdOptions) {
    super();
    this.guidance = options.guidance ?? "guidance";
    this.labelNames = options.labelNames;
    this.prob = options.prob ?? 0.5;
  }
  call(data: Data): Data {
    if (!(this.R.rand() < this.prob)) {
      return data;
    }
    return { ...data, [this.guidance]: Object.fromEntries(Object.keys(this.labelNames).map((k) => [k, []])) };
  }
}
