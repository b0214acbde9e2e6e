import { defineConfig } from 'vitest/config';

// Tests that touch namespaces, XDP and real peers are heavy on a 2-core box:
// run files one at a time so timing-sensitive peers (curl, the kernel's TCP)
// are not starved, and give them generous timeouts. Never assert a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
