// A synthetic cluster state for the scale benchmarks: services on 100 networks, each with its tasks.
import type { ClusterState } from '../src/model/cluster-state.js';
import { defaultHealthcheck } from '../src/model/service.js';
import type { Network, Service, Task } from '../src/model/types.js';

/** Builds a synthetic state of `services` services with `tasks` tasks each, on 100 networks. */
export function bigState(
  services: number,
  tasks: number,
  endpointMode: 'vip' | 'dnsrr' = 'vip',
): ClusterState {
  const now = new Date().toISOString();
  const networks = new Map<string, Network>();
  for (let n = 0; n < 100; n++) {
    const id = `net${n}`;
    networks.set(id, {
      id,
      version: 1,
      createdAt: now,
      updatedAt: now,
      name: id,
      driver: 'overlay',
      subnet: `10.${100 + n}.0.0/16`,
      gateway: `10.${100 + n}.0.1`,
      attachable: false,
      ingress: false,
      internal: false,
      encrypted: false,
      mtu: 1500,
      labels: {},
    });
  }
  const svcs = new Map<string, Service>();
  const taskMap = new Map<string, Task>();
  for (let s = 0; s < services; s++) {
    const id = `svc${s}`;
    const net = `net${s % 100}`;
    const base = Math.floor(s / 100) * (tasks + 1);
    const addr = (k: number) => `10.${100 + (s % 100)}.${(base + k) >> 8}.${(base + k) & 255}`;
    svcs.set(id, {
      id,
      version: 1,
      createdAt: now,
      updatedAt: now,
      name: `s${s}`,
      mode: 'replicated',
      endpointMode,
      networks: [{ network: net, aliases: [`a${s}`], ...(endpointMode === 'vip' ? { vip: addr(0) } : {}) }],
      ports: [],
      expose: [80],
      healthcheck: defaultHealthcheck,
      lb: 'round-robin',
      localFirst: false,
      proxyProtocol: 'none',
      idleTimeoutMs: 3_600_000,
      drainMs: 10_000,
      maxConnsPerTask: 0,
      labels: {},
    });
    for (let t = 1; t <= tasks; t++) {
      const tid = `t${s}-${t}`;
      taskMap.set(tid, {
        id: tid,
        version: 1,
        createdAt: now,
        updatedAt: now,
        name: `s${s}.${t}.${tid}`,
        service: id,
        slot: t,
        node: 'node1',
        addresses: [{ network: net, address: addr(t) }],
        reportedHealth: 'none',
        labels: {},
      });
    }
  }
  return {
    cluster: { id: 'c', createdAt: now },
    networks,
    services: svcs,
    tasks: taskMap,
    containers: new Map(),
    nodes: new Map(),
    heartbeats: new Map([['node1', { node: 'node1', lastSeen: now }]]),
    health: new Map(),
  };
}
