// DataLoader worker entry: registers tsx (worker threads on Node 20 do not honour `--import tsx` in
// execArgv), then loads the TypeScript worker, which imports the pipeline factory's module.
import { register } from "tsx/esm/api";

register();
await import("./data.worker.ts");
