import { labelSum } from "./metrics.js";
import { flag, loadStored, type ScoringContext, ScoringMethod, type ScoringRequest } from "./scoring-method.js";

/**
 * MONAI's Sum: for the `final` and `original` labels of every image, `{sum, slices}` in the label's info (sum
 * of the values; indices of the first-axis slices holding any value > 0). Each label version is computed once
 * (a new version starts with fresh info) unless `force`. Returns `{imageId: {tag: {sum, slices}}}`.
 */
export class Sum extends ScoringMethod {
  readonly tags: readonly string[];

  constructor(options: { tags?: readonly string[] } = {}) {
    super("Compute Numeric Sum of Final/Original Label Tags");
    this.tags = options.tags ?? ["final", "original"];
  }

  async score(request: ScoringRequest, ctx: ScoringContext) {
    const force = flag(request.params.force);
    const { datastore } = ctx;
    let ids = request.imageIds;
    if (!ids) {
      const all = new Set<string>();
      for (const tag of this.tags) {
        for (const id of await datastore.listImageIds({ tag })) {
          all.add(id);
        }
      }
      ids = [...all].sort();
    }
    const result: Record<string, Record<string, { sum: number; slices: number[] }>> = {};
    const record = (id: string, tag: string, score: { sum: number; slices: number[] }) => {
      result[id] = { ...result[id], [tag]: score };
    };
    for (const [i, id] of ids.entries()) {
      if (ctx.signal.aborted) {
        break;
      }
      for (const tag of this.tags) {
        // Re-read when a newer version arrived while this one was being summed (merges go to the current one).
        let recompute = force;
        for (let attempt = 0; attempt < 3; attempt++) {
          const label = await datastore.findLabel(id, tag);
          if (!label) {
            break;
          }
          const { sum, slices } = label.info;
          if (!recompute && typeof sum === "number" && Array.isArray(slices)) {
            record(id, tag, { sum, slices: slices as number[] });
            break;
          }
          const volume = await loadStored(ctx, label);
          const score = labelSum(volume.data, volume.shape);
          const updated = await datastore.updateLabelInfo(id, tag, score);
          if (updated.version !== label.version) {
            recompute = true; // what was just merged into the newer version is stale
            continue;
          }
          record(id, tag, score);
          ctx.report({ imageId: id, tag, version: label.version, score });
          break;
        }
      }
      ctx.progress((i + 1) / ids.length, `${i + 1}/${ids.length} images`);
    }
    return result;
  }
}
