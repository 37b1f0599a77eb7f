import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import { SampleBackends } from '../sample/backends.js';
import type { Controller } from '../state/controller.js';
import { applyDeclared } from '../state/declare.js';
import type { DockerProvider } from './provider.js';

/**
 * What runs on this node beyond meshd itself: the config file's declared networks, services and
 * tasks (with sample backends on a first run), and the container engine's labelled containers.
 * Returns what to close at shutdown, and the container provider when there is one.
 */
export async function startWorkloads(
  s: Settings,
  controller: Controller,
  nodeId: string,
  registry: Registry,
): Promise<{ closers: (() => Promise<void>)[]; provider: DockerProvider | undefined }> {
  const closers: (() => Promise<void>)[] = [];
  const d = s.declare;
  await applyDeclared(controller, nodeId, d.networks, d.services, d.tasks);
  if (d.sampleBackends) {
    const samples = new SampleBackends(logger('sample'));
    await samples.start(controller.state, nodeId, new Set(d.services.map((x) => x.name)));
    closers.push(() => samples.close());
  }
  if (s.provider.kind === 'docker') {
    const { EngineClient } = await import('./engine.js');
    const { DockerProvider } = await import('./provider.js');
    const provider = new DockerProvider(
      new EngineClient(s.provider.dockerSocket),
      controller,
      nodeId,
      logger('provider'),
      registry,
      s.provider.serviceGraceMs,
    );
    provider.start();
    closers.push(() => provider.close());
    return { closers, provider };
  }
  return { closers, provider: undefined };
}
