import { afterEach, describe, expect, it } from 'vitest';
import { DnsIndex } from '../../../src/dns/zone.js';
import type { Change, ClusterState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec, removeService, updateService } from '../../../src/model/service.js';
import { addTask, removeTask, setReportedHealth } from '../../../src/model/task.js';
import { SnapshotBuilder } from '../../../src/state/snapshot.js';
import { memoryCluster } from '../../helpers/memory-cluster.js';

const now = '2026-01-01T00:00:00.000Z';
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A node's DNS index fed change by change from a mirror, as the daemon feeds it. */
async function node() {
  const { mirror, controller } = await memoryCluster(closers);
  const builder = new SnapshotBuilder();
  const dns = new DnsIndex('meshd');
  const write = async (op: (s: ClusterState) => Change) => {
    await controller.apply(op);
    const { snap, change } = builder.apply(mirror.state, mirror.takeDelta(), mirror.revision);
    dns.apply(snap, change);
  };
  await write((s) => initCluster(s, '10.0.0.0/24', now));
  const self = { id: 'n1', name: 'n1', advertiseAddr: '', datapathAddr: '', dataListen: '', apiListen: '' };
  await write((s) => registerNode(s, self, now));
  await write((s) =>
    createNetwork(s, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.9.0.0/16' }, '')), now),
  );
  const zone = () => dns.zoneByName.get('apps');
  const a = (name: string) => [...(zone()?.names.get(name)?.v4 ?? [])].sort();
  return { mirror, write, zone, a, known: (n: string) => dns.known.has(n) };
}

const spec = (body: Record<string, unknown>) => readServiceSpec(Fields.of(body, ''));
const task = (service: string, ip: string) => (s: ClusterState) =>
  addTask(s, { service, ips: [ip], reportedHealth: 'none', labels: {} }, 'n1', now);

describe('DNS index, change by change', () => {
  it('lists each task of a big service under tasks.NAME as it comes, is asked for, and goes', async () => {
    const { write, a } = await node();
    await write((s) => createService(s, spec({ name: 'big', networks: [{ network: 'apps' }] }), now));
    const want: string[] = [];
    for (let i = 1; i <= 60; i++) {
      const ip = `10.9.1.${i}`;
      await write(task('big', ip));
      want.push(ip);
      // Asked after every change: the answer made at the last query must not be served again.
      expect(a('tasks.big')).toEqual([...want].sort());
    }
    await write((s) =>
      removeTask(s, [...s.tasks.values()].find((t) => t.addresses[0]?.address === '10.9.1.7')?.id ?? ''),
    );
    expect(a('tasks.big')).not.toContain('10.9.1.7');
    expect(a('tasks.big')).toHaveLength(59);
  });

  it('drops an unhealthy task from tasks.NAME, NAME and SRV of a dnsrr service, and brings it back', async () => {
    const { write, a, zone, mirror } = await node();
    await write((s) =>
      createService(
        s,
        spec({ name: 'api', endpointMode: 'dnsrr', networks: [{ network: 'apps' }], expose: [9000] }),
        now,
      ),
    );
    await write(task('api', '10.9.2.1'));
    await write(task('api', '10.9.2.2'));
    const srv = () => (zone()?.srv.get('_9000._tcp.api') ?? []).map((t) => t.address).sort();
    expect([a('api'), a('tasks.api'), srv()]).toEqual([
      ['10.9.2.1', '10.9.2.2'],
      ['10.9.2.1', '10.9.2.2'],
      ['10.9.2.1', '10.9.2.2'],
    ]);
    const id = [...mirror.state.tasks.values()].find((t) => t.addresses[0]?.address === '10.9.2.2')?.id ?? '';
    await write((s) => setReportedHealth(s, id, 'unhealthy', now));
    expect([a('api'), a('tasks.api'), srv()]).toEqual([['10.9.2.1'], ['10.9.2.1'], ['10.9.2.1']]);
    await write((s) => setReportedHealth(s, id, 'healthy', now));
    expect(a('tasks.api')).toEqual(['10.9.2.1', '10.9.2.2']);
  });

  it('lists tasks not ready yet under tasks.NAME of a service that publishes them, never under NAME or SRV', async () => {
    const { write, a, zone, mirror } = await node();
    const body = { name: 'db', endpointMode: 'dnsrr', networks: [{ network: 'apps' }], expose: [5432] };
    await write((s) => createService(s, spec({ ...body, publishNotReady: true }), now));
    await write((s) => createService(s, spec({ ...body, name: 'plain' }), now));
    const starting = (service: string, ip: string) => (s: ClusterState) =>
      addTask(s, { service, ips: [ip], reportedHealth: 'starting', labels: {} }, 'n1', now);
    await write(starting('db', '10.9.5.1'));
    await write(task('db', '10.9.5.2'));
    await write(starting('plain', '10.9.5.3'));
    const srv = (n: string) => (zone()?.srv.get(`_5432._tcp.${n}`) ?? []).map((t) => t.address).sort();
    // Peers find the starting one; clients of the service (NAME, SRV) get the ready one only.
    expect([a('tasks.db'), a('db'), srv('db')]).toEqual([
      ['10.9.5.1', '10.9.5.2'],
      ['10.9.5.2'],
      ['10.9.5.2'],
    ]);
    // Without the option, a starting task is nowhere.
    expect([a('tasks.plain'), a('plain')]).toEqual([[], []]);
    const id = [...mirror.state.tasks.values()].find((t) => t.addresses[0]?.address === '10.9.5.1')?.id ?? '';
    await write((s) => setReportedHealth(s, id, 'healthy', now));
    expect(a('db')).toEqual(['10.9.5.1', '10.9.5.2']);
  });

  it('follows a service that changes endpoint mode and aliases, and goes', async () => {
    const { write, a, known, mirror } = await node();
    await write((s) => createService(s, spec({ name: 'web', networks: [{ network: 'apps' }] }), now));
    await write(task('web', '10.9.3.1'));
    const vip = mirror.state.services.values().next().value?.networks[0]?.vip as string;
    expect([a('web'), a('tasks.web')]).toEqual([[vip], ['10.9.3.1']]);
    const id = mirror.state.services.values().next().value?.id as string;
    const version = () => mirror.state.services.get(id)?.version;
    await write((s) =>
      updateService(
        s,
        id,
        spec({ name: 'web', endpointMode: 'dnsrr', networks: [{ network: 'apps' }] }),
        version(),
        now,
      ),
    );
    expect([a('web'), a('tasks.web')]).toEqual([['10.9.3.1'], ['10.9.3.1']]);
    await write((s) =>
      updateService(
        s,
        id,
        spec({ name: 'web', endpointMode: 'dnsrr', networks: [{ network: 'apps', aliases: ['site'] }] }),
        version(),
        now,
      ),
    );
    expect([a('site'), a('tasks.site')]).toEqual([['10.9.3.1'], ['10.9.3.1']]);
    await write((s) =>
      updateService(s, id, spec({ name: 'web', networks: [{ network: 'apps' }] }), version(), now),
    );
    expect([a('web'), a('tasks.web'), known('site'), known('tasks.site')]).toEqual([
      [mirror.state.services.get(id)?.networks[0]?.vip],
      ['10.9.3.1'],
      false,
      false,
    ]);
    await write((s) => removeService(s, id));
    expect([a('web'), known('web'), known('tasks.web')]).toEqual([[], false, false]);
  });
});
