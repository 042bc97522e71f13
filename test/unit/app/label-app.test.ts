import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  AppConfError,
  AppLoadError,
  appConf,
  BatchInferTask,
  confFlag,
  confInt,
  LabelApp,
} from "../../../src/app/label-app.js";
import type { DatastoreService } from "../../../src/datastore/datastore.service.js";
import type { LabelRecord } from "../../../src/datastore/types.js";
import { createLogger } from "../../../src/logger.js";
import { First } from "../../../src/tasks/activelearning/first.js";
import { Random } from "../../../src/tasks/activelearning/random.js";
import { BasicInferTask } from "../../../src/tasks/infer/basic-infer-task.js";
import type { InferTask } from "../../../src/tasks/infer/infer-task.js";
import { Dice } from "../../../src/tasks/scoring/dice.js";
import type { ScoringMethod } from "../../../src/tasks/scoring/scoring-method.js";
import { TrainTask } from "../../../src/tasks/train/basic-train-task.js";
import type { Transform } from "../../../src/transforms/compose.js";

class Model extends BasicInferTask {
  preTransforms(): Transform[] {
    return [];
  }
  postTransforms(): Transform[] {
    return [];
  }
}

class Trainer extends TrainTask {
  config() {
    return { max_epochs: 1 };
  }
  async run(): Promise<never> {
    throw new Error("not in these tests");
  }
}

const myConf = appConf.extend({ max_epochs: confInt(50), fancy: confFlag(false) });

let dir: string;
let weights: string;

/** An app with two models, one of whose weights exist, a trainer per model and one of its own. */
class TwoModels extends LabelApp<z.output<typeof myConf>> {
  override name = "two-models";
  override confSchema() {
    return myConf;
  }
  override initInfers(): Record<string, InferTask> {
    const opts = { type: "segmentation", dimension: 3, description: "" } as const;
    return {
      liver: new Model({ ...opts, path: weights, labels: ["liver"] }),
      spleen: new Model({ ...opts, path: join(dir, "missing.onnx"), labels: { spleen: 1, background: 0 } }),
    };
  }
  override initTrainers() {
    return { liver: new Trainer("liver"), spleen: new Trainer("spleen"), shared: new Trainer("shared") };
  }
  override initStrategies() {
    return { random: new Random(), first: new First() };
  }
  override initScoringMethods(): Record<string, ScoringMethod> {
    return { dice: new Dice() };
  }
}

const make = (conf: Record<string, string> = {}) => {
  const app = new TwoModels({ appDir: dir, studiesDir: join(dir, "studies"), conf });
  app.init();
  return app;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "labelgraph-app-"));
  weights = join(dir, "liver.onnx");
  await writeFile(weights, "not read by these tests");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("LabelApp", () => {
  it("parses MONAI's common conf keys and the app's own, with defaults", () => {
    const app = make({ max_epochs: "3", preload: "TRUE", whatever: "kept" });
    expect(app.conf).toMatchObject({
      models: "all",
      preload: true,
      skip_trainers: false,
      skip_strategies: false,
      skip_scoring: false,
      use_pretrained_model: true,
      max_epochs: 3,
      fancy: false,
      whatever: "kept",
    });
    expect(make().conf.max_epochs).toBe(50);
  });

  it("rejects a --conf value the app's schema refuses, naming every bad key, at init", () => {
    const app = new TwoModels({ appDir: dir, studiesDir: dir, conf: { max_epochs: "ten", skip_scoring: "maybe" } });
    expect(() => app.init()).toThrow(AppConfError);
    try {
      app.init();
    } catch (e) {
      expect(e).toBeInstanceOf(AppLoadError);
      expect((e as AppConfError).problems).toEqual([
        'skip_scoring "maybe": expected true or false',
        'max_epochs "ten": expected an integer >= 1',
      ]);
      expect((e as Error).message).toMatch(/^invalid --conf for app two-models:/);
    }
  });

  it("lists only the models whose weights exist, and every trainer", () => {
    const info = make().info();
    expect(Object.keys(info.models)).toEqual(["liver"]);
    expect(Object.keys(info.trainers)).toEqual(["liver", "spleen", "shared"]);
    expect(Object.keys(info.strategies)).toEqual(["random", "first"]);
    expect(Object.keys(info.scoring)).toEqual(["dice"]);
    // No labels of its own: the union of its models' labels, dict labels in index order.
    expect(info.labels).toEqual(["liver", "background", "spleen"]);
  });

  it("serves only the models named in `models`, with their trainers and the trainers of no model", () => {
    const app = make({ models: "spleen" });
    expect(Object.keys(app.infers())).toEqual(["spleen"]);
    expect(Object.keys(app.trainers())).toEqual(["spleen", "shared"]);
    expect(Object.keys(make({ models: "liver, spleen" }).infers())).toEqual(["liver", "spleen"]);
    expect(Object.keys(make({ models: "all" }).infers())).toEqual(["liver", "spleen"]);
  });

  it("refuses a model the app does not offer, naming what it offers", () => {
    expect(() => make({ models: "liver,kidney" })).toThrow(
      "--conf models: kidney is not a model of app two-models (it offers liver, spleen; or use all)",
    );
  });

  it("skip_trainers, skip_strategies and skip_scoring", () => {
    const app = make({ skip_trainers: "true", skip_strategies: "1", skip_scoring: "yes" });
    expect(app.trainers()).toEqual({});
    // MONAI's default strategy stays so that nextImage still works.
    expect(Object.keys(app.strategies())).toEqual(["random"]);
    expect(app.scoringMethods()).toEqual({});
  });

  it("defaults as MONAI: {random} strategies, a batch infer task, no scoring, the datastore settings as given", () => {
    const app = new LabelApp({ appDir: dir, studiesDir: dir, conf: {} });
    app.init();
    expect(Object.keys(app.strategies())).toEqual(["random"]);
    expect(app.strategies().random).toBeInstanceOf(Random);
    expect(app.batchInfer()).toBeInstanceOf(BatchInferTask);
    expect(app.scoringMethods()).toEqual({});
    const settings = { studiesDir: dir, extensions: ["*.nii.gz"], autoReload: true, readOnly: false };
    expect(app.initDatastore(settings)).toEqual(settings);
    expect(app.modelPath("seg")).toBe(join(dir, "model", "seg.onnx"));
  });

  it("saveLabel stores the label, then merges what onSaveLabel returns into the response", async () => {
    const calls: string[] = [];
    const record = { imageId: "img1", tag: "final", version: 2 } as LabelRecord;
    const fakeDatastore = {
      async saveLabel(input: { imageId: string }) {
        calls.push(`save ${input.imageId}`);
        return record;
      },
    } as unknown as DatastoreService;
    class Hooked extends LabelApp {
      override async onSaveLabel(imageId: string, labelId: string) {
        calls.push(`hook ${imageId} ${labelId}`);
        const label = await this.datastore().saveLabel({ imageId: "again", fileName: "x", path: "x" });
        return { version: label.version, label: "overridden" };
      }
    }
    const app = new Hooked({ appDir: dir, studiesDir: dir, conf: {} });
    expect(() => app.datastore()).toThrow(/once the server has started/);
    app.attach({ datastore: fakeDatastore, log: createLogger("error") });
    const saved = await app.saveLabel({ imageId: "img1", fileName: "l.nii.gz", path: "/tmp/l.nii.gz" });
    expect(saved.label).toBe(record);
    expect(saved.response).toEqual({ image: "img1", label: "overridden", version: 2 });
    expect(calls).toEqual(["save img1", "hook img1 img1", "save again"]);
  });

  it("a failing onSaveLabel is logged; the saved label is still returned", async () => {
    const lines: string[] = [];
    const record = { imageId: "img1", tag: "final", version: 1 } as LabelRecord;
    class Broken extends LabelApp {
      override onSaveLabel(): Record<string, unknown> {
        throw new Error("hook exploded");
      }
    }
    const app = new Broken({ appDir: dir, studiesDir: dir, conf: {} });
    app.attach({
      datastore: { saveLabel: async () => record } as unknown as DatastoreService,
      log: createLogger("error", (l) => lines.push(l)),
    });
    const saved = await app.saveLabel({ imageId: "img1", fileName: "l.nii.gz", path: "/x" });
    expect(saved.response).toEqual({ image: "img1", label: "img1" });
    expect(lines.join("\n")).toContain("onSaveLabel(img1) failed: Error: hook exploded");
  });
});
