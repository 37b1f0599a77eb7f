// bench/churn: three meshd nodes on one etcd holding 10,000 services x 10 tasks, then 200 task
// changes a second for 30 s written through the API of all three nodes. Reports the time from a
// write on one node to the answer on another (DNS, sampled; and each node's convergence
// histogram), event loop lag on every node, and checks that every node ends with the same state.

import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import * as packet from 'dns-packet';
import { Etcd3 } from 'etcd3';
import { claimsOf } from '../src/model/claims.js';
import type { Kind } from '../src/model/kinds.js';
import { bigState } from './big-state.js';
import { startEtcd, startEtcdNode } from './etcd.js';
import { api, sleep, stopAll, workdir } from './lib.js';

const services = Number(process.env.BENCH_SERVICES ?? 10_000);
const tasksEach = Number(process.env.BENCH_TASKS ?? 10);
const rate = Number(process.env.BENCH_RATE ?? 200);
const seconds = Number(process.env.BENCH_SECONDS ?? 30);
const prefix = '/meshd/v1/';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? Number.NaN;
}

/** Writes the synthetic state straight into etcd, with its claims, 100 keys per transaction. */
async function load(endpoint: string): Promise<void> {
  const client = new Etcd3({ hosts: [`http://${endpoint}`] });
  // dnsrr: the three nodes share this host's `lo`, where each would bind every VIP of its own.
  const state = bigState(services, tasksEach, 'dnsrr');
  const puts: [string, string][] = [];
  const add = (kind: Kind, id: string, value: object) => {
    const { version: _v, ...stored } = value as { version?: number };
    puts.push([`${prefix}${kind}/${id}`, JSON.stringify(stored)]);
    for (const c of claimsOf(kind, value)) puts.push([`${prefix}claims/${c}`, `${kind}/${id}`]);
  };
  for (const n of state.networks.values()) add('networks', n.id, n);
  for (const s of state.services.values()) add('services', s.id, s);
  for (const t of state.tasks.values()) add('tasks', t.id, t);
  let next = 0;
  const worker = async () => {
    while (next < puts.length) {
      const batch = puts.slice(next, next + 100);
      next += 100;
      await client
        .if(batch[0]?.[0] as string, 'Mod', '>', -1)
        .then(...batch.map(([k, v]) => client.put(k).value(v)))
        .commit();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  client.close();
}

/** Asks `dns` for `name` until `done(answers)`; resolves with the time it took. */
function until(dns: string, name: string, done: (n: number) => boolean, limitMs = 5000): Promise<number> {
  const [host, port] = dns.split(':') as [string, string];
  const t0 = performance.now();
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let id = 0;
    const ask = () =>
      sock.send(
        packet.encode({ type: 'query', id: ++id & 0xffff, questions: [{ type: 'A', name, class: 'IN' }] }),
        Number(port),
        host,
      );
    sock.on('message', (msg) => {
      const r = packet.decode(msg);
      const elapsed = performance.now() - t0;
      if (done(r.answers?.length ?? 0) || elapsed > limitMs) {
        sock.close();
        resolve(elapsed);
      } else setTimeout(ask, 1);
    });
    ask();
  });
}

/** A histogram's p99 over what it counted between two scrapes (the upper bound of the bucket). */
function histogramP99(before: string, after: string, name: string): { count: number; p99: string } {
  const read = (text: string) =>
    new Map(
      [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map(
        (m) => [m[1] as string, Number(m[2])] as const,
      ),
    );
  const b0 = read(before);
  const buckets = [...read(after)].map(([le, n]) => [le, n - (b0.get(le) ?? 0)] as const);
  const total = buckets.at(-1)?.[1] ?? 0;
  const hit = buckets.find(([, n]) => n >= total * 0.99);
  return { count: total, p99: hit ? hit[0] : 'n/a' };
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function main(): Promise<void> {
  const dir = workdir('churn');
  const etcd = await startEtcd(dir, 23890);
  try {
    const nodes: Record<string, string>[] = [];
    const start = async (i: number) => {
      const a = `127.0.${60 + i}.1`;
      const t0 = performance.now();
      const ready = await startEtcdNode(i % 2, join(dir, `n${i}`), etcd.endpoint, `c${i}`, a);
      nodes.push(ready);
      return performance.now() - t0;
    };
    await start(1);
    const t0 = performance.now();
    await load(etcd.endpoint);
    console.log(
      `loaded ${services} services x ${tasksEach} tasks into etcd in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const startup = [await start(2), await start(3)];
    console.log(
      `nodes 2 and 3 ready (list, decode, full build) in ${startup.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' and ')}`,
    );
    const bases = nodes.map((n) => `http://${n.api}`);
    const before = await Promise.all(
      nodes.map(async (n) => (await fetch(`http://${n.metrics}/metrics`)).text()),
    );
    const lag: number[][] = nodes.map(() => []);
    const scrape = setInterval(() => {
      nodes.forEach(async (n, i) => {
        const text = await (await fetch(`http://${n.metrics}/metrics`)).text().catch(() => '');
        const v = gauge(text, 'meshd_event_loop_lag_seconds{quantile="0.99"}');
        if (!Number.isNaN(v)) lag[i]?.push(v * 1000);
      });
    }, 1000);

    // The churn: health flips of loaded tasks, and tasks added to and removed from services.
    const added: string[] = [];
    let sent = 0;
    let failed = 0;
    let inflight = 0;
    const ops = rate * seconds;
    const churnStart = performance.now();
    const samples: number[] = [];
    let sampling = false;
    while (sent < ops) {
      const due = churnStart + (sent * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (inflight > 64) {
        await sleep(1);
        continue;
      }
      const i = sent++;
      const base = bases[i % 3] as string;
      const s = (i * 7919) % services;
      const taskId = `t${s}-${(i % tasksEach) + 1}`;
      const kind = i % 4;
      inflight++;
      const op =
        kind === 0 || kind === 1
          ? api(base, 'POST', `/tasks/${taskId}/health`, {
              reportedHealth: kind === 0 ? 'unhealthy' : 'none',
            })
          : kind === 2
            ? api(base, 'POST', '/tasks/create', { service: `svc${s}` }).then((r) =>
                added.push((r as { id: string }).id),
              )
            : added.length > 0
              ? api(base, 'DELETE', `/tasks/${added.shift()}`)
              : Promise.resolve();
      // Every 60th change (about three a second, enough for a p99), a write on node 1 timed to
      // the answer on node 3: a task of a service (its own name) leaves node 3's DNS when node 1
      // marks it unhealthy. (i % 60 === 0: node 1's API, and a health change to unhealthy.)
      if (!sampling && i % 60 === 0) {
        sampling = true;
        const name = `s${s}.${(i % tasksEach) + 1}.${taskId}`;
        const seen = until(nodes[2]?.dns as string, name, (n) => n === 0);
        void op.then(
          async () => {
            samples.push(await seen);
            sampling = false;
          },
          () => {
            sampling = false;
          },
        );
      }
      void op.catch(() => failed++).finally(() => inflight--);
    }
    while (inflight > 0) await sleep(10);
    const churnMs = performance.now() - churnStart;
    clearInterval(scrape);
    await sleep(2000);
    const after = await Promise.all(
      nodes.map(async (n) => (await fetch(`http://${n.metrics}/metrics`)).text()),
    );
    console.log(
      `churn: ${ops} changes in ${(churnMs / 1000).toFixed(1)} s (${((ops / churnMs) * 1000).toFixed(0)}/s, target ${rate}/s) through the APIs of all three nodes; ${failed} refused`,
    );
    console.log(
      `write on node 1 -> answer on node 3 (DNS, ${samples.length} samples): p50 ${pct(samples, 0.5).toFixed(1)} ms, p99 ${pct(samples, 0.99).toFixed(1)} ms, max ${Math.max(...samples).toFixed(1)} ms (target p99 < 100 ms)`,
    );
    nodes.forEach((_, i) => {
      const h = histogramP99(before[i] as string, after[i] as string, 'meshd_state_convergence_seconds');
      console.log(
        `node ${i + 1}: write-to-serving p99 <= ${h.p99} s over ${h.count} snapshots; event loop lag p99 (per 1 s scrape) median ${pct(lag[i] ?? [], 0.5).toFixed(1)} ms, worst ${Math.max(...(lag[i] ?? [])).toFixed(1)} ms (target < 20 ms)`,
      );
    });
    // No change lost: every node holds the same tasks with the same health and addresses.
    const digests = await Promise.all(
      bases.map(async (b) => {
        const tasks = (await api(b, 'GET', '/tasks')) as Record<string, unknown>[];
        // What every node must agree on (the route a node takes to a task is its own).
        const lines = tasks.map((t) =>
          JSON.stringify([t.id, t.version, t.reportedHealth, t.addresses, t.health]),
        );
        const h = createHash('sha256');
        for (const line of lines.sort()) h.update(line);
        return { n: tasks.length, digest: h.digest('hex').slice(0, 16) };
      }),
    );
    const same = digests.every((d) => d.digest === digests[0]?.digest);
    console.log(
      `final state: ${digests.map((d, i) => `node ${i + 1} ${d.n} tasks ${d.digest}`).join(', ')}: ${same ? 'identical' : 'DIFFERENT'}`,
    );
    if (!same) process.exitCode = 1;
  } finally {
    await stopAll();
    etcd.child.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
