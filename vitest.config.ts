import { defineConfig } from 'vitest/config';

const ALL = ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'];

/**
 * Files that must have the machine to themselves: the libvirt contract suite stops and restarts
 * the local libvirtd (every other real-guest test would fail meanwhile), and the chaos and
 * simulator runs play many processes on an accelerated clock whose verdicts assume the control
 * plane keeps up. They run one at a time, after everything else.
 */
const EXCLUSIVE = ['packages/kvm-driver/test/libvirt.contract.test.ts', 'packages/chaos/test/**/*.test.ts', 'packages/simulator/test/**/*.test.ts'];

// Tests import workspace packages from their TypeScript sources (the "source" export
// condition), so a test run never depends on a stale dist/.
export default defineConfig({
  resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] },
  // Vitest hands ssr.resolve.conditions to Node as --conditions; 'import' or 'module' there would make
  // require() in CommonJS dependencies (pg -> pg-pool) load ESM builds, so only list what Node may see.
  ssr: { resolve: { conditions: ['source', 'node', 'development|production'], externalConditions: ['source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        extends: true,
        // Every other file isolates itself (own database, Redis prefix, domain names, test host),
        // and most of their time is spent waiting on a guest, a process or a socket: two at once.
        test: { name: 'shared', include: ALL, exclude: EXCLUSIVE, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'exclusive', include: EXCLUSIVE, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
