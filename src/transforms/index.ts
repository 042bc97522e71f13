/**
 * MONAI's dictionary transforms for inference pipelines (pre-processing, post-processing, inversion and click
 * guidance), over `MetaTensor`. See each module for the options; names and semantics follow MONAI / MONAI Label.
 */
export * from "./affine.js";
export * from "./compose.js";
export * from "./croppad.js";
export * from "./deepedit.js";
export * from "./deepgrow.js";
export * from "./guidance.js";
export * from "./intensity.js";
export * from "./inverse.js";
export * from "./io.js";
export * from "./kernels.js";
export * from "./post.js";
export * from "./random.js";
export * from "./spatial.js";
export * from "./tensor.js";
