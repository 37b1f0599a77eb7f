import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes, each file on addresses and ports of its own, and
    // spend much of their time waiting on them: three files at once keep two cores busy (266 s
    // against 278 s with two, for more tests).
    maxWorkers: 3,
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
