import { interactiveInfers, writeColinItems } from "../../../apps/radiology/lib/interactive.js";
const split = await writeColinItems("/work/main/test/fixtures/.cache", "/tmp/lgitems", { testOnly: true });
const t = interactiveInfers("/work/main/apps/radiology/model").deepgrow_2d;
const item = split.test2d[17]!;
for (let i = 0; i < 5; i++) {
  let d: Record<string, unknown> = { image: item.image, foreground: [[90, 110]], background: [[10, 10]] };
  const times: string[] = [];
  for (const tr of t.preTransforms()) {
    const t0 = performance.now();
    d = await tr.call(d);
    times.push(`${tr.constructor.name}:${(performance.now() - t0).toFixed(1)}`);
  }
  console.log(times.join(" "));
}
