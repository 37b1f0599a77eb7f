import { invalid } from '../model/errors.js';
import { Fields } from '../model/fields.js';
import { readServiceSpec, type ServiceSpec } from '../model/service.js';

/**
 * The labels that make a container a task, after Traefik's and Docker stack labels:
 *
 *   meshd.service=web                 the service this container is a task of (required)
 *   meshd.network=apps                the meshd network (default: the one holding its address)
 *   meshd.alias=www,front             network aliases
 *   meshd.endpoint-mode=vip|dnsrr
 *   meshd.publish=8080:80,53:53/udp   published ports (docker's short form)
 *   meshd.expose=80,443               ports balanced on the VIP without publishing
 *   meshd.lb=round-robin|least-conn|p2c|source-ip
 *   meshd.local-first=true
 *   meshd.proxy-protocol=none|v1|v2
 *   meshd.health-type=tcp|http, meshd.health-path=/, meshd.health-interval=5s   (meshd's probes,
 *                                     on top of the engine's own HEALTHCHECK)
 *
 * They create the service when its first task appears, and the service follows them: the current
 * labels of its replicas are its spec (Traefik's and stack's model).
 */
export const serviceLabel = 'meshd.service';

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function publish(text: string): { published: number; target: number; protocol: string } {
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(text);
  if (!m) throw invalid(`label meshd.publish: "${text}" is not PUBLISHED:TARGET[/udp]`);
  return { published: Number(m[1] ?? 0), target: Number(m[2]), protocol: m[3] ?? 'tcp' };
}

/** The service spec a container's labels describe, on the given meshd network. */
export function serviceFromLabels(labels: Readonly<Record<string, string>>, network: string): ServiceSpec {
  const body: Record<string, unknown> = {
    name: labels[serviceLabel],
    // Marks the service as label-made: only such services take tasks from container labels, and
    // its spec follows them.
    labels: { 'meshd.provider': 'docker', 'meshd.spec-from': 'labels' },
    networks: [{ network, aliases: list(labels['meshd.alias']) }],
    ports: list(labels['meshd.publish']).map(publish),
    expose: list(labels['meshd.expose']).map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n)) throw invalid(`label meshd.expose: "${p}" is not a port`);
      return n;
    }),
  };
  const copy = (label: string, key: string) => {
    if (labels[label] !== undefined) body[key] = labels[label];
  };
  copy('meshd.endpoint-mode', 'endpointMode');
  copy('meshd.lb', 'lb');
  copy('meshd.proxy-protocol', 'proxyProtocol');
  if (labels['meshd.local-first'] !== undefined) body.localFirst = labels['meshd.local-first'] === 'true';
  if (labels['meshd.health-type']) {
    body.healthcheck = {
      type: labels['meshd.health-type'],
      ...(labels['meshd.health-path'] ? { path: labels['meshd.health-path'] } : {}),
      ...(labels['meshd.health-interval'] ? { interval: labels['meshd.health-interval'] } : {}),
    };
  }
  try {
    return readServiceSpec(Fields.of(body, ''));
  } catch (err) {
    throw invalid(`labels of service ${labels[serviceLabel]}: ${(err as Error).message}`);
  }
}
