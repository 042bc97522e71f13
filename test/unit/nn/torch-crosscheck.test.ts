import { execFileSync, spawnSync } from "node:child_process";
import { expect, it } from "vitest";
import { GraphBuilder } from "../../../src/graph/builder.js";
import { maxAbsDiff, random, runModel } from "../graph/reference.js";

const PYTHON = "/usr/bin/python3";

function torchAvailable(): boolean {
  return spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
}

/** Optional: compares a strided, padded Conv2d and ConvTranspose2d with Debian's python3-torch when installed. */
it("Conv2d and ConvTranspose2d agree with PyTorch", async (ctx) => {
  if (!torchAvailable()) {
    ctx.skip(`python3-torch is not installed for ${PYTHON} ("import torch" fails); torch cross-check not run`);
  }
  const x = random([1, 2, 7, 6], 1);
  const w = random([3, 2, 3, 3], 2);
  const b = random([3], 3);
  const wt = random([3, 2, 3, 3], 4);
  const g = new GraphBuilder();
  const xv = g.input("x", "float32", x.shape);
  const y = g.conv(xv, g.initializer("w", w.data, w.shape), g.initializer("b", b.data, b.shape), {
    strides: 2,
    pads: 1,
  });
  g.output(y, "y");
  g.output(
    g.convTranspose(y, g.initializer("wt", wt.data, wt.shape), undefined, { strides: 2, pads: 1, outputPadding: 1 }),
    "z",
  );
  const got = await runModel(g.serialize(), { x });
  const script = `
import json, sys, torch
d = json.load(sys.stdin)
t = lambda k: torch.tensor(d[k]["data"], dtype=torch.float32).reshape(d[k]["shape"])
y = torch.nn.functional.conv2d(t("x"), t("w"), t("b").reshape(-1), stride=2, padding=1)
z = torch.nn.functional.conv_transpose2d(y, t("wt"), stride=2, padding=1, output_padding=1)
json.dump({"y": y.flatten().tolist(), "z": z.flatten().tolist(), "zshape": list(z.shape)}, sys.stdout)
`;
  const enc = (t: { data: Float32Array; shape: number[] }) => ({ data: [...t.data], shape: t.shape });
  const out = JSON.parse(
    execFileSync(PYTHON, ["-c", script], {
      input: JSON.stringify({ x: enc(x), w: enc(w), b: enc(b), wt: enc(wt) }),
    }).toString(),
  ) as { y: number[]; z: number[]; zshape: number[] };
  expect(maxAbsDiff(got.y!.data as Float32Array, out.y)).toBeLessThan(1e-5);
  expect(got.z!.dims).toEqual(out.zshape);
  expect(maxAbsDiff(got.z!.data as Float32Array, out.z)).toBeLessThan(1e-5);
});
