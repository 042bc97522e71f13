import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppConfError, AppLoadError, LabelApp } from "../../../src/app/label-app.js";
import { loadApp } from "../../../src/app/load-app.js";

const labelApp = JSON.stringify(join(import.meta.dirname, "../../../src/app/label-app.ts"));
let root: string;

/** Writes an app folder holding `files` and loads it. */
async function load(name: string, files: Record<string, string>, conf: Record<string, string> = {}) {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await writeFile(join(dir, file), text);
  }
  return loadApp({ appDir: dir, studiesDir: join(root, "studies"), conf });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "labelgraph-load-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("loadApp", () => {
  it("loads a TypeScript app's default export, constructed with the context and initialised", async () => {
    const app = await load("ts", {
      "app.ts": `import { LabelApp, appConf, confInt } from ${labelApp};
        const schema = appConf.extend({ epochs: confInt(5) });
        export default class TsApp extends LabelApp<ReturnType<typeof schema.parse>> {
          override name = "ts-app";
          override confSchema() { return schema; }
        }`,
    });
    expect(app).toBeInstanceOf(LabelApp);
    expect(app.name).toBe("ts-app");
    expect(app.appDir).toBe(join(root, "ts"));
    expect(app.conf.epochs).toBe(5);
  });

  it("loads a JavaScript main.js whose only LabelApp subclass is a named export", async () => {
    const app = await load(
      "js",
      {
        "main.js": `import { LabelApp } from ${labelApp};
          export const helper = 1;
          export class JsApp extends LabelApp { name = "js-app"; }`,
      },
      { models: "all" },
    );
    expect(app.name).toBe("js-app");
  });

  it("a folder with no app, or with no LabelApp in it", async () => {
    await expect(load("empty", { "README.md": "# nothing" })).rejects.toThrow(/has no app: expected one of app\.ts/);
    await expect(load("plain", { "app.ts": "export default class NotAnApp {}" })).rejects.toThrow(
      /must default-export a class extending LabelApp/,
    );
    await expect(loadApp({ appDir: join(root, "nope"), studiesDir: root, conf: {} })).rejects.toThrow(
      /app folder .*nope does not exist/,
    );
  });

  it("an app with a syntax error fails to load with the file named", async () => {
    const err = await load("syntax", {
      "app.ts": `import { LabelApp } from ${labelApp};\nexport default class Broken extends LabelApp {\n  initInfers( {\n}`,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppLoadError);
    expect((err as Error).message).toContain(`app ${join(root, "syntax", "app.ts")} failed to load:`);
  });

  it("an app that throws while starting (constructor or an init method)", async () => {
    const ctor = await load("ctor", {
      "app.ts": `import { LabelApp } from ${labelApp};
        export default class A extends LabelApp { constructor(c: never) { super(c); throw new Error("no GPU here"); } }`,
    }).catch((e: unknown) => e);
    expect(ctor).toBeInstanceOf(AppLoadError);
    expect((ctor as Error).message).toMatch(/app .*ctor.app\.ts failed to start: no GPU here/);
    await expect(
      load("init", {
        "app.ts": `import { LabelApp } from ${labelApp};
          export default class A extends LabelApp { override initTrainers(): never { throw new Error("bad trainer"); } }`,
      }),
    ).rejects.toThrow(/failed to start: bad trainer/);
  });

  it("a --conf value the app rejects stops it at start with a typed error", async () => {
    const err = await load(
      "conf",
      { "app.ts": `import { LabelApp } from ${labelApp};\nexport default class C extends LabelApp { name = "c"; }` },
      { preload: "sometimes" },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppConfError);
    expect((err as Error).message).toBe('invalid --conf for app c:\n  - preload "sometimes": expected true or false');
  });

  it("with no app folder serves the default app", async () => {
    const app = await loadApp({ appDir: null, studiesDir: root, conf: {} });
    expect(app.name).toBe("labelgraph");
    expect(Object.keys(app.strategies())).toEqual(["random"]);
  });
});
