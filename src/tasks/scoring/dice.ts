import type { LabelRecord } from "../../datastore/types.js";
import { dice, dicePerLabel } from "./metrics.js";
import {
  flag,
  loadStored,
  type ScoringContext,
  ScoringMethod,
  type ScoringRequest,
  storeImageScore,
} from "./scoring-method.js";

const str = (v: unknown, fallback: string) => (typeof v === "string" && v !== "" ? v : fallback);

/** {value: name} from a label's `label_names` ({name: value}, as inference stores it). */
function namesOf(...labels: LabelRecord[]): Map<number, string> {
  const names = new Map<number, string>();
  for (const label of labels) {
    const map = label.info.label_names;
    if (map && typeof map === "object" && !Array.isArray(map)) {
      for (const [name, value] of Object.entries(map as Record<string, unknown>)) {
        if (typeof value === "number" && !names.has(value)) {
          names.set(value, name);
        }
      }
    }
  }
  return names;
}

/**
 * MONAI's Dice: for every image with both a `y` label (default `final`) and a `y_pred` label (default
 * `original`), 2·Σ(y·ŷ)/(Σy+Σŷ) (1 when both are empty) stored as `info.dice`, as MONAI stores it. Beside it:
 * `dice_labels` (Dice per label value, by label name when the label says its names), `dice_source` (the
 * label versions compared; an image whose labels have not changed is not recomputed unless `force`) and
 * `dice_ts`. Returns `{id: dice}` like MONAI.
 */
export class Dice extends ScoringMethod {
  readonly y: string;
  readonly yPred: string;

  constructor(options: { y?: string; yPred?: string } = {}) {
    super("Compute Dice between final vs original tags");
    this.y = options.y ?? "final";
    this.yPred = options.yPred ?? "original";
  }

  async score(request: ScoringRequest, ctx: ScoringContext) {
    const yTag = str(request.params.y, this.y);
    const predTag = str(request.params.y_pred, this.yPred);
    const force = flag(request.params.force);
    const { datastore } = ctx;
    let ids = request.imageIds;
    if (!ids) {
      const withPred = new Set(await datastore.listImageIds({ tag: predTag }));
      ids = (await datastore.listImageIds({ tag: yTag })).filter((id) => withPred.has(id));
    }
    const result: Record<string, number> = {};
    for (const [i, id] of ids.entries()) {
      if (ctx.signal.aborted) {
        break;
      }
      const labels = await datastore.labelsOf(id);
      const y = labels.find((l) => l.tag === yTag);
      const pred = labels.find((l) => l.tag === predTag);
      if (y && pred) {
        const source = { [yTag]: y.version, [predTag]: pred.version };
        const image = force ? null : await datastore.findImage(id);
        const stored = image?.info;
        if (
          stored &&
          typeof stored.dice === "number" &&
          JSON.stringify(stored.dice_source) === JSON.stringify(source)
        ) {
          result[id] = stored.dice;
        } else {
          const [a, b] = await Promise.all([loadStored(ctx, y), loadStored(ctx, pred)]);
          if (a.data.length === b.data.length) {
            const names = namesOf(pred, y);
            const perLabel = Object.fromEntries(
              [...dicePerLabel(a.data, b.data)].map(([v, d]) => [names.get(v) ?? String(v), d]),
            );
            const value = dice(a.data, b.data);
            await storeImageScore(ctx, id, {
              dice: value,
              dice_labels: perLabel,
              dice_source: source,
              dice_ts: ctx.now(),
            });
            result[id] = value;
          }
        }
      }
      ctx.progress((i + 1) / ids.length, `${i + 1}/${ids.length} images`);
    }
    return result;
  }
}
