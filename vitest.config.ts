import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  // the subpath first: the barrel's alias would also match '@medvault/protocol/core'
  resolve: { alias: [{ find: '@medvault/protocol/core', replacement: src('./protocol/src/core.ts') }, { find: '@medvault/protocol', replacement: src('./protocol/src/index.ts') }] },
  test: {
    include: ['{protocol,agent,controller}/src/**/*.test.ts', 'test/**/*.test.ts'],
    // the agent's bundle (what its launcher and the tests run) made current before any test
    globalSetup: ['test/support/bundle-setup.ts'],
    // Generous: under load (CI runs three files at once on two cores) real processes are slow.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most end-to-end time is waiting on real processes, so three files at once on two cores.
    maxWorkers: 3,
  },
});
