import { writeFile } from "node:fs/promises";
import { InferenceSession } from "onnxruntime-node";
import { SlidingWindowInferer } from "../../src/inferers/sliding-window.js";
import { UNet } from "../../src/nn/unet.js";
import { Compose } from "../../src/transforms/compose.js";
import { ScaleIntensityd } from "../../src/transforms/intensity.js";
import { EnsureChannelFirstd, LoadImaged } from "../../src/transforms/io.js";
import { type MetaTensor, toCOrder } from "../../src/transforms/tensor.js";
import { poolSessionOptions, RunClock, rawPredictor } from "./lib.js";

const net = new UNet({
  spatialDims: 3,
  inChannels: 1,
  outChannels: 1,
  channels: [16, 32, 64, 128, 256],
  strides: [2, 2, 2, 2],
  numResUnits: 2,
  seed: 1,
});
await writeFile("/tmp/prof/m.onnx", net.toOnnx({ inputShape: [1, 1, 96, 96, 96] }));
const session = await InferenceSession.create("/tmp/prof/m.onnx", poolSessionOptions(2));
const d = await new Compose([
  new LoadImaged({ keys: "image" }),
  new EnsureChannelFirstd({ keys: "image" }),
  new ScaleIntensityd({ keys: "image" }),
]).call({ image: "test/fixtures/.cache/ch2.nii.gz" });
const img = d.image as MetaTensor;
const input = { data: toCOrder(img), shape: [1, ...img.shape] };
const sw = new SlidingWindowInferer({ roiSize: [96, 96, 96], overlap: 0.25, precision: "float32" });
for (let r = 0; r < 2; r++) {
  const clock = new RunClock();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await sw.infer(input, rawPredictor(session, clock));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  console.log(
    `run ${r}: wall ${wall.toFixed(0)} ms, session.run ${clock.ms.toFixed(0)} ms, outside ${(wall - clock.ms).toFixed(0)} ms; cpu user ${(cpu.user / 1000).toFixed(0)} ms`,
  );
}
