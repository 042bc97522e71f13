import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { UNet } from "../../src/nn/unet.js";

const [chs, roiS] = [process.argv[2] ?? "16,32,64,128,256", Number(process.argv[3] ?? 96)];
const channels = chs.split(",").map(Number);
const net = new UNet({ spatialDims: 3, inChannels: 1, outChannels: 2, channels, strides: channels.slice(1).map(() => 2), numResUnits: 2, norm: "INSTANCE", seed: 1 });
const p = `/tmp/probe-${chs}-${roiS}.onnx`;
writeFileSync(p, net.toOnnx({ inputShape: [1, 1, roiS, roiS, roiS] }));
const s = await InferenceSession.create(p, { graphOptimizationLevel: "all", intraOpNumThreads: availableParallelism(), interOpNumThreads: 1, executionMode: "sequential", extra: { session: { set_denormal_as_zero: "1" } } });
const x = new Float32Array(roiS ** 3).map(() => Math.random());
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  await s.run({ [s.inputNames[0] as string]: new Tensor("float32", x, [1, 1, roiS, roiS, roiS]) });
  console.log(chs, roiS, (performance.now() - t).toFixed(0), "ms");
}
