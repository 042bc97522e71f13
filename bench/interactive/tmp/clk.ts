import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { interactiveInfers, writeColinItems } from "../../../apps/radiology/lib/interactive.js";
import { loadImage } from "../../../src/io/load.js";
import { SessionPool } from "../../../src/runtime/session-pool.js";
import { dice, nextClick } from "../lib.js";
const split = await writeColinItems("/work/main/test/fixtures/.cache", "/tmp/lgitems", { testOnly: true });
const t = interactiveInfers("/work/main/apps/radiology/model").deepgrow_2d;
const pool = new SessionPool({});
for (const k of [0, 5, 10, 17, 25, 33]) {
  const item = split.test2d[k]!;
  const label = await loadImage(item.label);
  const c: { foreground: number[][]; background: number[][] } = { foreground: [], background: [] };
  let pred: ArrayLike<number> = new Uint8Array(label.data.length);
  const log: string[] = [];
  for (let n = 0; n < 6; n++) {
    const cl = nextClick(pred, label.data, label.shape)!;
    c[cl.kind].push(cl.point);
    const r = await t.run({ imagePath: item.image, params: c }, { pool });
    const p = (await loadImage(r.labelPath!)).data;
    await rm(dirname(r.labelPath!), { recursive: true });
    let sum = 0;
    for (const v of p) sum += v;
    log.push(`${cl.kind[0]}${JSON.stringify(cl.point)}(${cl.size}) -> ${dice(p, label.data).toFixed(3)} [${sum}]`);
    pred = p;
  }
  console.log(`z=${item.z}: ${log.join("  ")}`);
}
await pool.close({ force: true });
