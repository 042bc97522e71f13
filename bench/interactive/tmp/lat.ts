import { interactiveInfers, writeColinItems } from "../../../apps/radiology/lib/interactive.js";
import { SessionPool } from "../../../src/runtime/session-pool.js";
const split = await writeColinItems("/work/main/test/fixtures/.cache", "/tmp/lgitems", { testOnly: true });
const t = interactiveInfers("/work/main/apps/radiology/model").deepgrow_2d;
const pool = new SessionPool({});
const item = split.test2d[17]!;
for (let i = 0; i < 8; i++) {
  const r = await t.run({ imagePath: item.image, params: { foreground: [[90, 110]], background: [[10, 10]] } }, { pool });
  console.log(JSON.stringify(r.json.latencies));
}
await pool.close({ force: true });
