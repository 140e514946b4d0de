import { defineConfig } from "vitest/config";

// One run for the whole suite. Boots are heavy and the CI machine has 2 cores, so test files run
// at most two at a time and slow tests get generous limits (never timing assertions).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    maxWorkers: 2,
    pool: "forks",
    reporters: ["default"],
  },
});
