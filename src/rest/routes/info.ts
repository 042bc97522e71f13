import type { RestDeps } from "../deps.js";
import type { Route } from "../router.js";
import { trainStats } from "./model.js";

const infoOf = (task: unknown): Record<string, unknown> =>
  typeof task === "object" && task !== null && "info" in task && typeof task.info === "function"
    ? (task.info() as Record<string, unknown>)
    : {};

/** MONAILabelApp.info(): what clients read at connect (models, trainers, strategies, scoring, train_stats, datastore). */
export async function appInfo(deps: RestDeps): Promise<Record<string, unknown>> {
  const info = deps.app.info();
  const trainers = Object.fromEntries(
    Object.entries(info.trainers).map(([name, t]) => {
      const i = infoOf(t);
      const labels = (t as { labels?: unknown }).labels;
      return [name, Array.isArray(labels) && labels.length ? { ...i, labels } : i];
    }),
  );
  const train_stats: Record<string, unknown> = {};
  for (const name of Object.keys(info.trainers)) {
    train_stats[name] = await trainStats(deps, name);
  }
  const status = await deps.datastore.status();
  return {
    name: info.name,
    description: info.description,
    version: info.version,
    labels: info.labels,
    models: Object.fromEntries(Object.entries(info.models).map(([n, t]) => [n, infoOf(t)])),
    trainers,
    strategies: Object.fromEntries(Object.entries(info.strategies).map(([n, s]) => [n, infoOf(s)])),
    scoring: Object.fromEntries(Object.entries(info.scoring).map(([n, s]) => [n, infoOf(s)])),
    train_stats,
    datastore: { total: status.total, completed: status.completed, label_tags: status.labelTags },
  };
}

export function infoRoutes(deps: RestDeps): Route[] {
  return [
    {
      method: "GET",
      path: "/info/",
      tag: "AppService",
      summary: "Get App Info",
      handler: () => appInfo(deps),
    },
  ];
}
