import * as ort from "onnxruntime-node";
import { UNet } from "../../../src/nn/unet.js";
const nets = {
  small: new UNet({ spatialDims: 3, inChannels: 1, outChannels: 2, channels: [4, 8, 16], strides: [2, 2] }),
  radiology_batch: new UNet({ spatialDims: 3, inChannels: 1, outChannels: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], numResUnits: 2, norm: "BATCH" }),
  radiology_instance: new UNet({ spatialDims: 3, inChannels: 1, outChannels: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], numResUnits: 2 }),
};
for (const threads of [2, 1]) for (const [name, net] of Object.entries(nets)) {
  const shape = [1, 1, 96, 96, 96];
  const s = await ort.InferenceSession.create(net.toOnnx({ inputShape: shape }), { graphOptimizationLevel: "all", intraOpNumThreads: threads, interOpNumThreads: 1, extra: { session: { set_denormal_as_zero: "1" } } });
  const x = new ort.Tensor("float32", new Float32Array(96 ** 3).map(() => Math.random()), shape);
  await s.run({ image: x });
  const t: number[] = [];
  for (let i = 0; i < 9; i++) { const t0 = performance.now(); await s.run({ image: x }); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(`${name} threads=${threads}: median ${t[4]!.toFixed(0)} ms, min ${t[0]!.toFixed(0)}, max ${t[8]!.toFixed(0)}`);
  await s.release();
}
