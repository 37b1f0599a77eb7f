// bench/convergence: how fast a write on node 1 is served by node 3 (three meshd nodes on one
// etcd), for single changes and a burst of 1,000 task registrations; and the snapshot rebuild
// time and memory for 10,000 services x 10 tasks.
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as packet from 'dns-packet';
import { Etcd3 } from 'etcd3';
import { DnsIndex } from '../src/dns/zone.js';
import { buildListeners, type RouteOptions, serviceListeners } from '../src/mesh/routes.js';
import type { ClusterState } from '../src/model/cluster-state.js';
import type { Task } from '../src/model/types.js';
import type { Changed } from '../src/state/delta.js';
import { SnapshotBuilder } from '../src/state/snapshot.js';
import { bigState } from './big-state.js';
import { startEtcd, startEtcdNode } from './etcd.js';
import { api, median, pinned, stopAll } from './lib.js';

const singles = Number(process.env.BENCH_SINGLES ?? 50);
const burst = Number(process.env.BENCH_BURST ?? 1000);
/** The in-process part's cluster: services x tasks each. */
const nServices = Number(process.env.BENCH_SERVICES ?? 10_000);
const nTasks = Number(process.env.BENCH_TASKS ?? 10);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] as number;
}

/** Polls node 3's DNS over UDP until `name` answers `count` records; resolves with the time. */
function waitForAnswer(dns: string, name: string, count: number, tcp = false): Promise<number> {
  const [host, port] = dns.split(':') as [string, string];
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let id = 0;
    const ask = () =>
      sock.send(
        packet.encode({
          type: 'query',
          id: ++id & 0xffff,
          questions: [{ type: 'A', name, class: 'IN' }],
          additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 65000 } as never],
        }),
        Number(port),
        host,
      );
    sock.on('message', (msg) => {
      const r = packet.decode(msg);
      if (
        (r.answers?.length ?? 0) >= count ||
        (tcp && r.flag_tc && (r.answers?.length ?? 0) >= Math.min(count, 1))
      ) {
        sock.close();
        resolve(performance.now());
      } else setTimeout(ask, 1);
    });
    ask();
  });
}

async function cluster(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-bench-conv-'));
  // The writer under test, node 1 or the raw etcd3 client, has CPU 0 to itself; etcd, the
  // followers and this script's load generator share CPU 1. Both writers get the same machine.
  execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const etcd = await startEtcd(dir, 23790, 1);
  try {
    const nodes = [];
    for (let i = 1; i <= 3; i++) {
      const a = `127.0.${40 + i}.1`;
      // Node 1 takes the writes on a CPU of its own; nodes 2 and 3 only follow, on the other.
      const ready = await startEtcdNode(i === 1 ? 0 : 1, join(dir, `n${i}`), etcd.endpoint, `c${i}`, a);
      nodes.push(ready);
    }
    const n1 = `http://${nodes[0]?.api}`;
    const n3dns = nodes[2]?.dns as string;
    await api(n1, 'POST', '/networks/create', { name: 'conv', subnet: '10.128.0.0/9' });
    await api(n1, 'POST', '/services/create', {
      name: 'one',
      networks: [{ network: 'conv' }],
      endpointMode: 'dnsrr',
    });
    const single: number[] = [];
    for (let i = 0; i < singles; i++) {
      const ip = `10.128.1.${i + 1}`;
      const t0 = performance.now();
      const seen = waitForAnswer(n3dns, 'tasks.one', i + 1);
      await api(n1, 'POST', '/tasks/create', { service: 'one', ips: [ip] });
      single.push((await seen) - t0);
    }
    await api(n1, 'POST', '/services/create', {
      name: 'many',
      networks: [{ network: 'conv' }],
      endpointMode: 'dnsrr',
    });
    const t0 = performance.now();
    const latencies: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < burst) {
        next++;
        const s = performance.now();
        await api(n1, 'POST', '/tasks/create', { service: 'many' });
        latencies.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const written = performance.now();
    const rawRate = await rawPutsOnCpu0(etcd.endpoint, burst);
    await waitForAnswer(n3dns, 'tasks.many', 1, true);
    // Full convergence: node 3 serves every one of the 1,000 (checked over the EDNS size limit).
    const done = performance.now();
    const metrics = await (await fetch(`http://${nodes[2]?.metrics}/metrics`)).text();
    const conv = [
      ...metrics.matchAll(/^meshd_state_convergence_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm),
    ].map((m) => [m[1], Number(m[2])] as const);
    console.log(
      `three nodes on one etcd; node 1 (and later the raw client) on CPU 0 alone, etcd, nodes 2 and 3 and the load generator on CPU 1; write on node 1, answer from node 3's DNS`,
    );
    console.log(
      `single changes (${singles}): p50 ${median(single).toFixed(1)} ms, p99 ${pct(single, 0.99).toFixed(1)} ms, max ${Math.max(...single).toFixed(1)} ms (target p99 < 1000 ms)`,
    );
    console.log(
      `burst of ${burst} task registrations (16 concurrent writers): written in ${(written - t0).toFixed(0)} ms (${((burst / (written - t0)) * 1000).toFixed(0)}/s, API p50 ${median(latencies).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms); node 3 serving them ${(done - written).toFixed(0)} ms after the last write`,
    );
    const apiRate = (burst / (written - t0)) * 1000;
    console.log(
      `the same etcd, raw etcd3 puts with 16 concurrent writers: ${rawRate.toFixed(0)}/s; registrations through the API: ${apiRate.toFixed(0)}/s = ${(apiRate / rawRate).toFixed(2)}x raw (targets: >= 1000/s and >= 0.5x)`,
    );
    console.log(
      `node 3 meshd_state_convergence_seconds buckets: ${conv.map(([le, n]) => `le=${le}:${n}`).join(' ')}`,
    );
  } finally {
    await stopAll();
    etcd.child.kill('SIGTERM');
  }
}

/** The etcd3 client's own put rate against `endpoint`, run in a process of its own on CPU 0. */
async function rawPutsOnCpu0(endpoint: string, count: number): Promise<number> {
  const child = pinned(0, process.execPath, [
    fileURLToPath(import.meta.url),
    'raw-puts',
    endpoint,
    String(count),
  ]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`raw puts exited ${code}`);
  return Number(out.trim());
}

/** `count` puts from 16 concurrent writers through one etcd3 client; resolves with puts per second. */
async function rawPuts(endpoint: string, count: number): Promise<number> {
  const client = new Etcd3({ hosts: [`http://${endpoint}`] });
  try {
    await client.put('/bench/warm').value('x');
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < count) {
        const i = next++;
        await client.put(`/bench/raw/${i}`).value(JSON.stringify({ i, at: Date.now() }));
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return (count / (performance.now() - t0)) * 1000;
  } finally {
    client.close();
  }
}

/**
 * The node's own work for one change at 10,000 services x 10 tasks: the snapshot builder, the
 * DNS index and the routes of the services it touched, as the daemon runs them (sockets aside).
 */
function incremental(): void {
  const state = bigState(nServices, nTasks);
  const tasks = state.tasks as Map<string, Task>;
  const health = state.health as Map<
    string,
    ClusterState['health'] extends ReadonlyMap<string, infer H> ? H : never
  >;
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const opts: RouteOptions = {
    nodeId: 'node1',
    publishAddr: '0.0.0.0',
    remote: 'auto',
    reserved: () => false,
  };
  const builder = new SnapshotBuilder();
  const dns = new DnsIndex('meshd');
  const routes = new Map<string, unknown>();
  const apply = (changes: Changed[], full = false) => {
    const { snap, change } = builder.apply(state, { full, changes }, 1);
    dns.apply(snap, change);
    for (const id of change.services) {
      const svc = state.services.get(id);
      routes.set(id, svc ? serviceListeners(snap, svc, opts) : []);
    }
  };
  // The first (full) build, step by step, with the heap each part holds.
  const held = () => {
    global.gc?.();
    return process.memoryUsage().heapUsed;
  };
  const t0 = performance.now();
  const first = builder.apply(state, { full: true, changes: [] }, 1);
  const heap1 = held();
  dns.apply(first.snap, first.change);
  const heap2 = held();
  for (const svc of state.services.values()) routes.set(svc.id, serviceListeners(first.snap, svc, opts));
  const fullMs = performance.now() - t0;
  const heap = held() - heap0;
  const parts = `snapshot indexes ${((heap1 - heap0) / tasks.size).toFixed(0)}, DNS ${((heap2 - heap1) / tasks.size).toFixed(0)}, routes ${((heap0 + heap - heap2) / tasks.size).toFixed(0)}`;
  const times: number[] = [];
  const now = new Date().toISOString();
  for (let i = 0; i < 2000; i++) {
    const s = (i * 7919) % nServices;
    const id = `t${s}-${(i % nTasks) + 1}`;
    const before = tasks.get(id) as Task;
    const started = performance.now();
    switch (i % 4) {
      case 0: // a task leaves
        tasks.delete(id);
        apply([{ kind: 'tasks', id, before }]);
        break;
      case 1: // and comes back
        tasks.set(id, before);
        apply([{ kind: 'tasks', id, before: undefined }]);
        break;
      case 2: // its engine reports it unhealthy
        tasks.set(id, { ...before, reportedHealth: 'unhealthy', updatedAt: now });
        apply([{ kind: 'tasks', id, before }]);
        break;
      default: {
        // a probe result
        const had = health.get(id);
        tasks.set(id, { ...before, reportedHealth: 'none' });
        health.set(id, { task: id, healthy: true, since: now, output: '' } as never);
        apply([
          { kind: 'tasks', id, before },
          { kind: 'health', id, before: had },
        ]);
      }
    }
    times.push(performance.now() - started);
  }
  const rebuilt = performance.now();
  buildListeners(builder.apply(state, { full: true, changes: [] }, 2).snap, opts);
  const listenersMs = performance.now() - rebuilt;
  console.log(
    `${nServices} services x ${nTasks} tasks: full build ${fullMs.toFixed(0)} ms including GC (start-up and re-lists only; all routes alone ${listenersMs.toFixed(0)} ms)`,
  );
  console.log(
    `one task change, the node's own work (snapshot + DNS + routes of the service): p50 ${median(times).toFixed(3)} ms, p99 ${pct(times, 0.99).toFixed(3)} ms, max ${Math.max(...times).toFixed(1)} ms (target p99 < 5 ms)`,
  );
  console.log(
    `heap held by the snapshot indexes, DNS view and routes: ${(heap / 1e6).toFixed(0)} MB, ${(heap / tasks.size).toFixed(0)} bytes per task (${parts}; before this design: about 1,050 per task)`,
  );
}

async function main(): Promise<void> {
  // The raw-client child of rawPutsOnCpu0.
  if (process.argv[2] === 'raw-puts') {
    console.log(await rawPuts(process.argv[3] as string, Number(process.argv[4])));
    return;
  }
  // BENCH_PART=apply runs the in-process part alone, BENCH_PART=cluster the cluster part alone.
  if (process.env.BENCH_PART !== 'cluster') incremental();
  if (process.env.BENCH_PART !== 'apply') await cluster();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
