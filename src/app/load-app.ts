import { existsSync, readFileSync, statSync } from "node:fs";
import { register } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { AppLoadError } from "./errors.js";
import { type AppContext, LabelApp } from "./label-app.js";

export { AppLoadError } from "./errors.js";

const ENTRIES = ["app.ts", "app.js", "main.ts", "main.js", "index.ts", "index.js"];

let hookRegistered = false;
/** Lets an app outside this repository `import ... from "labelgraph"` (once per thread). */
export function registerLabelgraphResolver(): void {
  if (!hookRegistered) {
    register(new URL("./resolve-hook.mjs", import.meta.url));
    hookRegistered = true;
  }
}

/** Whether the nearest package.json above `dir` says "type": "module" (how .ts and .js files load as ESM). */
function isEsmScope(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const manifest = join(d, "package.json");
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, "utf8")) as { type?: string }).type === "module";
      } catch {
        return false;
      }
    }
    if (dirname(d) === d) {
      return false;
    }
  }
}

/**
 * Loads `<dir>/app.ts` (or main/index, .ts or .js): its default export (or else its only exported LabelApp
 * subclass) is constructed with the context and initialised (conf parsed, every init method run), so a broken
 * app fails here, at start. With no folder at all, labelgraph serves the bare datastore under a default app.
 */
export async function loadApp(context: Omit<AppContext, "appDir"> & { appDir: string | null }): Promise<LabelApp> {
  const { appDir } = context;
  if (!appDir) {
    const app = new LabelApp({ ...context, appDir: "" });
    app.init();
    return app;
  }
  if (!existsSync(appDir) || !statSync(appDir).isDirectory()) {
    throw new AppLoadError(`app folder ${appDir} does not exist`);
  }
  const entry = ENTRIES.map((e) => join(appDir, e)).find((p) => existsSync(p));
  if (!entry) {
    throw new AppLoadError(`app folder ${appDir} has no app: expected one of ${ENTRIES.join(", ")}`);
  }
  registerLabelgraphResolver();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  } catch (err) {
    const hint = isEsmScope(appDir)
      ? ""
      : ` (the app folder is not in an ES module package: add a package.json with {"type": "module"} to ${appDir})`;
    throw new AppLoadError(`app ${entry} failed to load: ${(err as Error).message}${hint}`);
  }
  const isApp = (v: unknown): v is new (ctx: AppContext) => LabelApp =>
    typeof v === "function" && (v.prototype instanceof LabelApp || v === LabelApp);
  const named = Object.values(mod).filter(isApp);
  const App = isApp(mod.default) ? mod.default : named.length === 1 ? named[0] : undefined;
  if (!App) {
    throw new AppLoadError(`app ${entry} must default-export a class extending LabelApp`);
  }
  let app: LabelApp;
  try {
    app = new App({ ...context, appDir });
    app.init();
  } catch (err) {
    if (err instanceof AppLoadError) {
      throw err;
    }
    throw new AppLoadError(`app ${entry} failed to start: ${(err as Error).message}`);
  }
  return app;
}
