import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes on addresses and ports of their own; two files at
    // once fill two cores. Three were tried: 5% faster, but timing checks of the kernel data
    // plane (a change in the kernel within 1.5 s) and 5 s leases then failed under the load.
    maxWorkers: 2,
    // Nothing left behind: no child process after a file, no namespace, lo address or nft table
    // after the run.
    setupFiles: ['test/setup/per-file.ts'],
    globalSetup: ['test/setup/global.ts'],
    projects: [
      // In-process: no root, no child process, no socket; seconds in all (`npm run test:unit`).
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // Real processes, dig, etcd, namespaces, Podman, Prometheus.
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
    ],
  },
});
