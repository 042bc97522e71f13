import type { RestDeps } from "../deps.js";
import { DEFAULT_USER } from "../deps.js";
import type { Route } from "../router.js";
import { jsonParams } from "./tasks.js";

/**
 * MONAI's next_sample: the strategy's pick, its result (`id`, `weight` ...) merged with the image info
 * (`name`, `ts`, `strategy` ...) and a `path`; `{}` when every image is labeled. The serve is recorded
 * by the same service GraphQL's nextImage calls.
 */
export function activeLearningRoutes(deps: RestDeps): Route[] {
  return [
    {
      method: "POST",
      path: "/activelearning/{strategy}",
      tag: "ActiveLearning",
      summary: "Run Active Learning strategy to get next sample",
      body: { kind: "json", description: "Strategy params; clients send {client_id}" },
      handler: async (ctx) => {
        const params = await jsonParams(ctx);
        const next = await deps.activeLearning.nextImage({
          strategy: ctx.path.strategy as string,
          clientId: typeof params.client_id === "string" ? params.client_id : DEFAULT_USER,
          params,
        });
        if (!next) {
          return {};
        }
        const { image, result } = next;
        // A client opens `path` when it exists on its own disk (Slicer next to the server), else downloads.
        const path = image.sourcePath ?? `${ctx.baseUrl}/datastore/image?image=${encodeURIComponent(image.id)}`;
        return { ...result, path, ...image.info, id: image.id };
      },
    },
  ];
}
