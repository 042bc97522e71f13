// Worker entry: registers tsx (worker threads on Node 20 do not honour `--import tsx`), then loads the
// TypeScript training worker.
import { register } from "tsx/esm/api";

register();
await import("./train.worker.ts");
