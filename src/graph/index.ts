export * from "./builder.js";
export * from "./ir.js";
export * from "./serialize.js";
export * from "./shape-inference.js";
