import type { LabelApp } from "./app/label-app.js";
import { loadApp } from "./app/load-app.js";
import { preloadModels } from "./app/preload.js";
import type { Config } from "./config/config.js";
import { DatastoreService } from "./datastore/datastore.service.js";
import { exportDataset } from "./datastore/export.js";
import { SessionService } from "./datastore/session.service.js";
import { StudiesFolder } from "./datastore/studies.js";
import { type Database, openDatabase } from "./db/client.js";
import { ImageRepository } from "./db/images.repo.js";
import { JobRepository } from "./db/jobs.repo.js";
import { LabelRepository } from "./db/labels.repo.js";
import { SessionRepository } from "./db/sessions.repo.js";
import { InvalidInputError } from "./errors.js";
import { createEventBus, type PubSub } from "./events/pubsub.js";
import type { JobCatalogue } from "./jobs/catalogue.js";
import { InProcessJobQueue, type JobQueue } from "./jobs/queue.js";
import { createLogger, type Logger } from "./logger.js";
import { SessionPool } from "./runtime/session-pool.js";
import { createObjectStore } from "./storage/factory.js";
import type { ObjectStore } from "./storage/object-store.js";
import { ActiveLearningService } from "./tasks/activelearning/active-learning.service.js";
import { InferenceService } from "./tasks/infer/inference.service.js";
import { InferenceWorkers } from "./tasks/infer/worker-pool.js";
import { WsiInferenceService } from "./tasks/infer/wsi.js";
import { ScoringService } from "./tasks/scoring/scoring.service.js";
import { trainJob } from "./tasks/train/training.js";

/** The composition root: plain factories, no DI framework. */
export interface Container {
  config: Config;
  log: Logger;
  database: Database;
  store: ObjectStore;
  pubsub: PubSub;
  datastore: DatastoreService;
  studies: StudiesFolder;
  jobs: JobQueue<JobCatalogue>;
  sessions: SessionService;
  app: LabelApp;
  pool: SessionPool;
  inference: InferenceService;
  /** Tiled inference over regions of large 2D images (pathology). */
  wsi: WsiInferenceService;
  activeLearning: ActiveLearningService;
  scoring: ScoringService;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Called while the studies folder is registered at start (the CLI draws a progress bar). */
  onImportProgress?: (done: number, total: number) => void;
  log?: Logger;
}

export async function buildContainer(config: Config, opts: BuildOptions = {}): Promise<Container> {
  const log = opts.log ?? createLogger(config.logLevel);
  const app = await loadApp({ appDir: config.appDir, studiesDir: config.studiesDir, conf: config.conf });
  const datastoreSettings = app.initDatastore({ studiesDir: config.studiesDir, ...config.datastore });
  const database = await openDatabase(config.database);
  const store = await createObjectStore(config.objectStore);
  const pubsub = createEventBus();
  const datastore = new DatastoreService({
    images: new ImageRepository(database),
    labels: new LabelRepository(database.db),
    store,
    pubsub,
    readOnly: datastoreSettings.readOnly,
  });
  app.attach({ datastore, log });
  const studies = new StudiesFolder(datastore, {
    dir: datastoreSettings.studiesDir,
    extensions: datastoreSettings.extensions,
    log: (m) => log.warn(m),
    onProgress: opts.onImportProgress,
  });
  const pool = new SessionPool({});
  const sessions = new SessionService({
    repo: new SessionRepository(database.db),
    store,
    defaultExpiry: config.sessions.expiry,
  });
  sessions.startPurging();
  const workers =
    config.inferWorkers > 0
      ? new InferenceWorkers(
          { appDir: config.appDir, studiesDir: config.studiesDir, conf: config.conf },
          config.inferWorkers,
        )
      : null;
  const inference = new InferenceService({ app, datastore, store, pool, sessions, workers });
  const wsi = new WsiInferenceService({ inference, datastore, store, sessions, pool });
  const activeLearning = new ActiveLearningService({ app, datastore, pubsub, log });
  // The queue below runs scoring jobs through this service, which queues them through the queue.
  const scoring = new ScoringService({ app, datastore, store, pool, pubsub, log, jobs: () => jobs });
  const jobs: JobQueue<JobCatalogue> = new InProcessJobQueue<JobCatalogue>({
    repo: new JobRepository(database.db),
    pubsub,
    handlers: {
      exportDataset: (params, ctx) => exportDataset(datastore, store, params, ctx),
      batchInference: (params, ctx) => {
        const task = app.batchInfer();
        if (!task) {
          throw new InvalidInputError(`batch inference is disabled by app ${app.name}`);
        }
        return task.run({ inference, datastore }, params, ctx);
      },
      train: (params, ctx) =>
        trainJob(
          {
            app,
            datastore,
            store,
            pubsub,
            onPublished: (model) =>
              void scoring.onModelPublished(model).catch((e) => log.error("scoring after training", e)),
            worker:
              config.inferWorkers > 0
                ? { appDir: config.appDir, studiesDir: config.studiesDir, conf: config.conf }
                : null,
          },
          params,
          ctx,
        ),
      scoring: (params, ctx) => scoring.run(params, ctx),
    },
    log: (m, e) => log.error(m, e),
  });

  const report = await studies.sync("import");
  log.info(
    `studies ${config.studiesDir}: ${report.imagesAdded} images and ${report.labelsAdded} labels registered, ` +
      `${report.imagesRemoved + report.labelsRemoved} removed, ${report.skipped.length} skipped`,
  );
  if (datastoreSettings.autoReload) {
    await studies.watch();
  }
  await jobs.start();
  activeLearning.start();
  if (config.autoUpdateScoring) {
    await scoring.startAutoUpdate();
  }
  if (app.conf.preload) {
    await preloadModels(app, pool, log);
  }
  await app.onInitComplete();

  return {
    config,
    log,
    database,
    store,
    pubsub,
    datastore,
    studies,
    jobs,
    sessions,
    app,
    pool,
    inference,
    wsi,
    activeLearning,
    scoring,
    async close() {
      sessions.stop();
      await scoring.stop();
      await activeLearning.stop();
      await studies.close();
      await jobs.stop();
      await workers?.close();
      await pool.close({ force: true });
      await store.close?.();
      await database.close();
    },
  };
}
