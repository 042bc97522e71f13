export * from "./basic-unet.js";
export * from "./init.js";
export * from "./layers.js";
export * from "./mc-dropout.js";
export * from "./module.js";
export * from "./unet.js";
