import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";

/** The template apps shipped in `apps/`, and copying one out to edit (`labelgraph apps --download`). */
export const appsRoot = resolve(import.meta.dirname, "../../apps");

const ENTRIES = ["app.ts", "app.js", "main.ts", "main.js", "index.ts", "index.js"];
/** What a copy leaves behind: runtime state, not the app. */
const SKIP = new Set(["node_modules", "logs", ".labelgraph", ".cache"]);

export class AppsError extends Error {
  override name = "AppsError";
}

export interface TemplateApp {
  name: string;
  description: string;
  dir: string;
}

/** The first paragraph of the app's README after its title, else its `description = "..."`. */
function describe(dir: string, entry: string): string {
  const readme = join(dir, "README.md");
  if (existsSync(readme)) {
    const paragraph = readFileSync(readme, "utf8")
      .split(/\n\s*\n/)
      .map((p) => p.trim())
      .find((p) => p && !p.startsWith("#") && !p.startsWith("```") && !p.startsWith("|"));
    if (paragraph) {
      return paragraph.replace(/\s+/g, " ");
    }
  }
  const m = /description\s*=\s*"([^"]*)"/.exec(readFileSync(entry, "utf8"));
  return m?.[1] ?? "";
}

export async function listApps(root = appsRoot): Promise<TemplateApp[]> {
  const apps: TemplateApp[] = [];
  for (const name of (await readdir(root)).sort()) {
    const dir = join(root, name);
    const entry = ENTRIES.map((e) => join(dir, e)).find((p) => existsSync(p));
    if (entry) {
      apps.push({ name, description: describe(dir, entry), dir });
    }
  }
  return apps;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) {
      continue;
    }
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...(await filesUnder(path)));
    } else if (entry.isFile()) {
      out.push(path);
    }
  }
  return out;
}

/**
 * Copies template app `name` to `output` (which must not exist, or be empty), file by file into a staging
 * folder beside it that is renamed at the end: an interrupted copy leaves no half app. Returns the files copied.
 */
export async function downloadApp(
  name: string,
  output: string,
  onProgress: (done: number, total: number) => void = () => {},
  root = appsRoot,
): Promise<number> {
  const app = (await listApps(root)).find((a) => a.name === name);
  if (!app) {
    const names = (await listApps(root)).map((a) => a.name);
    throw new AppsError(`no template app named ${name}: available are ${names.join(", ")}`);
  }
  const target = resolve(output);
  if (existsSync(target)) {
    if (!(await stat(target)).isDirectory() || (await readdir(target)).length > 0) {
      throw new AppsError(`${target} already exists; not overwriting it (choose another --output)`);
    }
    await rm(target, { recursive: true });
  }
  const files = await filesUnder(app.dir);
  const staging = join(dirname(target), `.${name}-${process.pid}-${Date.now()}.partial`);
  try {
    for (const [i, file] of files.entries()) {
      const to = join(staging, relative(app.dir, file));
      await mkdir(dirname(to), { recursive: true });
      await copyFile(file, to);
      onProgress(i + 1, files.length);
    }
    await mkdir(staging, { recursive: true });
    // Inside this repository the root package.json makes apps ES modules; a copy needs its own.
    if (!existsSync(join(staging, "package.json"))) {
      const manifest = { name: basename(target), private: true, type: "module" };
      await writeFile(join(staging, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    }
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return files.length;
}
