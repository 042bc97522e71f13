import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type AppContext, LabelApp } from "./label-app.js";

const ENTRIES = ["app.ts", "app.js", "main.ts", "main.js", "index.ts", "index.js"];

export class AppLoadError extends Error {
  override name = "AppLoadError";
}

/**
 * Loads `<dir>/app.ts` (or main/index, .ts or .js): its default export is a LabelApp subclass. With no
 * folder at all, labelgraph serves the bare datastore under a default app.
 */
export async function loadApp(context: Omit<AppContext, "appDir"> & { appDir: string | null }): Promise<LabelApp> {
  const { appDir } = context;
  if (!appDir) {
    return new LabelApp({ ...context, appDir: "" });
  }
  if (!existsSync(appDir) || !statSync(appDir).isDirectory()) {
    throw new AppLoadError(`app folder ${appDir} does not exist`);
  }
  const entry = ENTRIES.map((e) => join(appDir, e)).find((p) => existsSync(p));
  if (!entry) {
    throw new AppLoadError(`app folder ${appDir} has no app: expected one of ${ENTRIES.join(", ")}`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  } catch (err) {
    throw new AppLoadError(`app ${entry} failed to load: ${(err as Error).message}`);
  }
  const App = mod.default;
  if (typeof App !== "function" || !(App.prototype instanceof LabelApp || App === LabelApp)) {
    throw new AppLoadError(`app ${entry} must default-export a class extending LabelApp`);
  }
  try {
    return new (App as new (ctx: AppContext) => LabelApp)({ ...context, appDir });
  } catch (err) {
    throw new AppLoadError(`app ${entry} failed to start: ${(err as Error).message}`);
  }
}
