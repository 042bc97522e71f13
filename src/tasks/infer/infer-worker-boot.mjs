// Worker entry: registers tsx (worker threads on Node 20 do not honour `--import tsx` in execArgv), then
// loads the TypeScript worker, which may itself load a TypeScript app.
import { register } from "tsx/esm/api";

register();
await import("./infer.worker.ts");
