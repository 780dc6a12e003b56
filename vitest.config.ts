import { defineConfig } from 'vitest/config';

// Tests import workspace packages from their TypeScript sources (the "source" export
// condition), so a test run never depends on a stale dist/.
export default defineConfig({
  resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] },
  // Vitest hands ssr.resolve.conditions to Node as --conditions; 'import' or 'module' there would make
  // require() in CommonJS dependencies (pg -> pg-pool) load ESM builds, so only list what Node may see.
  ssr: { resolve: { conditions: ['source', 'node', 'development|production'], externalConditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
