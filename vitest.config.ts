import { defineConfig } from "vitest/config";

export default defineConfig({
  // Node resolves "graphql" to its CommonJS build (no exports map); Vite would pick the .mjs one, and two
  // copies of graphql refuse each other's types. Make the tests load what production loads.
  resolve: { alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }] },
  test: {
    include: ["test/**/*.test.ts", "apps/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ["test/helpers/global-setup.ts"],
  },
});
