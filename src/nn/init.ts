/**
 * Deterministic parameter initialization. Each parameter draws from its own stream, seeded by (seed, full
 * parameter name), so adding a layer to a network does not change the initial values of the others.
 */

/** How a parameter is (re)initialized; PyTorch's defaults expressed as data. */
export type Init = { kind: "uniform"; bound: number } | { kind: "fill"; value: number };

/** 32-bit FNV-1a of the name, mixed with the seed. */
function hashSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= Math.floor(seed / 0x100000000);
  return h >>> 0;
}

/** mulberry32: small, fast, good enough for weight init; returns floats in [0, 1). */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function rngFor(seed: number, name: string): () => number {
  return createRng(hashSeed(seed, name));
}

export function fillInit(data: Float32Array, init: Init, rng: () => number): void {
  if (init.kind === "fill") {
    data.fill(init.value);
    return;
  }
  for (let i = 0; i < data.length; i++) {
    data[i] = (rng() * 2 - 1) * init.bound;
  }
}

/**
 * PyTorch's default for Conv/ConvTranspose weights and biases: kaiming_uniform_(a=sqrt(5)) reduces to
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias uses the same bound.
 */
export function kaimingUniform(fanIn: number): Init {
  return { kind: "uniform", bound: 1 / Math.sqrt(fanIn) };
}
