/**
 * The radiology app's interactive models (DeepGrow 2D/3D, DeepEdit) on the Colin27 brain mask: their networks,
 * sizes, infer and train tasks, and the Colin27 data as the training script and the bench cut it (2D axial
 * slices split as shared/reference/data.md says; 3D slabs of 16 axial slices, split by blocks the same way).
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  InferDeepEdit,
  InferDeepGrow2D,
  InferDeepGrow3D,
  importOnnxParameters,
  loadImage,
  saveImage,
  TrainDeepEdit,
  TrainDeepGrow,
  UNet,
} from "labelgraph";

export const LABELS = { brain: 1, background: 0 };

/** 2D: a whole 181x217 axial slice (crop box larger than the slice) resized to the model. */
export const DEEPGROW_2D = { modelSize: [160, 192], spatialSize: [256, 256] };
/** 3D: a box of 16 axial slices around the clicks, in-plane halved. */
export const DEEPGROW_3D = { modelSize: [88, 104, 16], spatialSize: [192, 224, 16] };
/** DeepEdit: DeepGrow 3D's box, and its click sigma (its weights start from DeepGrow 3D's, deepEditFromDeepGrow). */
export const DEEPEDIT = { modelSize: [88, 104, 16], spatialSize: [192, 224, 16], sigma: 2 };

export const deepgrow2dNetwork = () =>
  new UNet({
    spatialDims: 2,
    inChannels: 3,
    outChannels: 1,
    channels: [16, 32, 64, 128],
    strides: [2, 2, 2],
    norm: "INSTANCE",
    act: "RELU",
    seed: 21,
  });

export const deepgrow3dNetwork = () =>
  new UNet({
    spatialDims: 3,
    inChannels: 3,
    outChannels: 1,
    channels: [8, 16, 32],
    strides: [2, 2],
    norm: "INSTANCE",
    act: "RELU",
    seed: 23,
  });

export const deepeditNetwork = () =>
  new UNet({
    spatialDims: 3,
    inChannels: 3,
    outChannels: 2,
    channels: [8, 16, 32],
    strides: [2, 2],
    norm: "INSTANCE",
    act: "RELU",
    seed: 29,
  });

/**
 * DeepEdit's starting point made from a trained DeepGrow 3D model (`deepgrowPath`), written to `outPath` (atomically)
 * for TrainDeepEdit to fine-tune: the two networks are the same UNet with the same inputs (image, brain clicks,
 * background clicks) but for the head, where DeepGrow's one logit z (sigmoid) becomes DeepEdit's two, [-z/2, z/2]
 * (softmax over background, brain), which gives the same brain probability sigmoid(z). DeepEdit trained from
 * scratch learns its automatic mode from the image alone and comes out blind to clicks (apps/radiology/README.md
 * gives the bench run); starting from a network that needs its clicks keeps them in use.
 */
export async function deepEditFromDeepGrow(deepgrowPath: string, outPath: string): Promise<void> {
  const source = await importOnnxParameters(deepgrowPath);
  const network = deepeditNetwork();
  const own = network.parameters();
  const entries = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [name, { shape }] of own) {
    const from = source.parameters.get(name);
    if (!from) {
      throw new Error(`deepEditFromDeepGrow: ${deepgrowPath} has no parameter ${name}`);
    }
    // The head: the one axis where DeepGrow has 1 output channel and DeepEdit 2 (a ConvTranspose weight
    // [in, out, ...k], or a bias [out]).
    const axis = shape.findIndex((n, i) => n === 2 && from.shape[i] === 1);
    if (axis < 0) {
      entries.set(name, { data: from.data, shape: [...shape] });
      continue;
    }
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const data = new Float32Array(outer * 2 * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const z = from.data[o * inner + i]!;
        data[(o * 2 + 0) * inner + i] = -z / 2; // background
        data[(o * 2 + 1) * inner + i] = z / 2; // brain
      }
    }
    entries.set(name, { data, shape: [...shape] });
  }
  network.loadParameters(entries);
  await mkdir(dirname(outPath), { recursive: true });
  const tmp = `${outPath}.tmp-${process.pid}`;
  await writeFile(tmp, network.toOnnx({ inputShape: [1, 3, ...DEEPEDIT.modelSize] }));
  await rename(tmp, outPath);
}

/** The file name of a shipped (pre-trained) model: apart from what a trainer publishes as `<name>.onnx`. */
export const shippedModelFile = (name: string) => `pretrained_${name}.onnx`;

/**
 * The infer tasks: the model shipped in `shippedDir` (`pretrained_<name>.onnx`), or (MONAI's [pretrained,
 * trained], the last that exists) the one a trainer published in `publishedDir` (`<name>.onnx`). Pass
 * `shippedDir: null` to serve trained models only (use_pretrained_model=false).
 */
export function interactiveInfers(shippedDir: string | null, publishedDir?: string) {
  const path = (name: string) => [
    ...(shippedDir ? [join(shippedDir, shippedModelFile(name))] : []),
    ...(publishedDir ? [join(publishedDir, `${name}.onnx`)] : []),
  ];
  return {
    deepgrow_2d: new InferDeepGrow2D({ path: path("deepgrow_2d"), labels: ["brain"], ...DEEPGROW_2D }),
    deepgrow_3d: new InferDeepGrow3D({ path: path("deepgrow_3d"), labels: ["brain"], ...DEEPGROW_3D }),
    deepedit: new InferDeepEdit({ path: path("deepedit"), labels: LABELS, ...DEEPEDIT }),
  };
}

/**
 * Train tasks (runs under `<modelDir>/train/<name>`, models published to `<publishDir>/<name>.onnx`, starting
 * from `<loadDir>/<name>.onnx` when given and nothing is published). Items: 2D slices or 3D volumes (a random
 * labelled slice, or slab of 16 slices, of each volume is taken).
 */
export function interactiveTrainers(modelDir: string, publishDir = modelDir, loadDir?: string) {
  const common = (name: string) => ({
    modelDir: join(modelDir, "train", name),
    publishPath: join(publishDir, `${name}.onnx`),
    ...(loadDir ? { loadPath: join(loadDir, shippedModelFile(name)) } : {}),
    description: `Trains ${name} with simulated clicks`,
  });
  return {
    deepgrow_2d: new TrainDeepGrow({
      ...common("deepgrow_2d"),
      network: deepgrow2dNetwork,
      dimension: 2,
      modelSize: DEEPGROW_2D.modelSize,
      config: { learning_rate: 3e-3, train_batch_size: 4, val_split: 0.1, max_train_interactions: 3 },
    }),
    deepgrow_3d: new TrainDeepGrow({
      ...common("deepgrow_3d"),
      network: deepgrow3dNetwork,
      dimension: 3,
      modelSize: DEEPGROW_3D.modelSize,
      config: { learning_rate: 3e-3, train_batch_size: 1, val_split: 0.1, max_train_interactions: 3 },
    }),
    deepedit: new TrainDeepEdit({
      ...common("deepedit"),
      network: deepeditNetwork,
      labelNames: LABELS,
      modelSize: DEEPEDIT.modelSize,
      sigma: DEEPEDIT.sigma,
      // The shipped model's recipe (scripts/train-interactive.ts): started from DeepGrow 3D, 70% of batches
      // clicked, all of those from the automatic mode (so every click corrects it), 5 clicks each, and the cross
      // entropy around the clicks added to the loss (click_loss_weight) so that the network keeps using them.
      config: {
        learning_rate: 1e-3,
        train_batch_size: 1,
        val_split: 0.1,
        max_train_interactions: 5,
        deepgrow_probability_train: 0.7,
        auto_start_probability: 1,
        click_loss_weight: 1,
      },
    }),
  };
}

// ------------------------------------------------------------------------------------------ Colin27 data

export interface Item {
  image: string;
  label: string;
  /** First axial slice (z) of the item. */
  z: number;
}

export interface ColinSplit {
  train2d: Item[];
  test2d: Item[];
  train3d: Item[];
  test3d: Item[];
}

export const SLAB = 16;

/**
 * Writes the Colin27 items under `out`: 2D axial slices with more than 200 brain pixels (test: (z // 8) % 4
 * == 3), and 16-slice slabs (test: slabs 3 and 7, z 48..63 and 112..127; train: every slab starting at a
 * multiple of 4 that does not overlap a test slab and holds brain). Label = ch2bet > 0.
 */
export async function writeColinItems(
  dataDir: string,
  out: string,
  options: { testOnly?: boolean } = {},
): Promise<ColinSplit> {
  const [img, bet] = await Promise.all([
    loadImage(join(dataDir, "ch2.nii.gz")),
    loadImage(join(dataDir, "ch2bet.nii.gz")),
  ]);
  const [X, Y, Z] = img.shape as [number, number, number];
  const plane = X * Y;
  await mkdir(out, { recursive: true });
  const label = Float32Array.from(bet.data, (v) => (v > 0 ? 1 : 0));
  const image = Float32Array.from(img.data);
  const split: ColinSplit = { train2d: [], test2d: [], train3d: [], test3d: [] };
  const write = async (name: string, z0: number, depth: number) => {
    const shape = depth === 1 ? [X, Y] : [X, Y, depth];
    const geo = { spacing: img.spacing.slice(0, shape.length), affine: img.affine, meta: {} };
    const item = { image: join(out, `${name}_image.nii.gz`), label: join(out, `${name}_label.nii.gz`), z: z0 };
    await saveImage(
      { ...geo, data: image.subarray(z0 * plane, (z0 + depth) * plane), shape, dtype: "float32" },
      item.image,
    );
    await saveImage(
      { ...geo, data: label.subarray(z0 * plane, (z0 + depth) * plane), shape, dtype: "uint8" },
      item.label,
    );
    return item;
  };
  const area = (z0: number, depth: number) => {
    let s = 0;
    for (let i = z0 * plane; i < (z0 + depth) * plane; i++) {
      s += label[i]!;
    }
    return s;
  };
  for (let z = 0; z < Z; z++) {
    const test = Math.floor(z / 8) % 4 === 3;
    if (area(z, 1) > 200 && (test || !options.testOnly)) {
      (test ? split.test2d : split.train2d).push(await write(`slice_${z}`, z, 1));
    }
  }
  const testStarts = [3 * SLAB, 7 * SLAB];
  for (const z of testStarts) {
    split.test3d.push(await write(`slab_${z}`, z, SLAB));
  }
  for (let z = 0; z + SLAB <= Z && !options.testOnly; z += 4) {
    const overlaps = testStarts.some((t) => z < t + SLAB && t < z + SLAB);
    if (!overlaps && area(z, SLAB) > 200 * SLAB) {
      split.train3d.push(await write(`slab_${z}`, z, SLAB));
    }
  }
  return split;
}
