// bench/overlay: TCP throughput between two endpoints on different nodes over meshd's VXLAN
// overlay and over an encrypted overlay (frames through the mTLS tunnels), side by side with the
// same transfer directly between the two node namespaces (the underlay, no overlay), in the same
// run; and the machine's CPU per GB moved on each path; and HTTP requests/s (wrk, keep-alive) to
// an nginx on the far side of each path.
// Two node namespaces on one bridge, etcd on the bridge; node 1 and its endpoint on CPU 0, node 2
// and its endpoint on CPU 1. Needs root (namespaces, VXLAN), iperf3. Also: a client host to node
// 1's published port whose task runs on node 2 (the kernel routing mesh over VXLAN).
// BENCH_SECONDS, BENCH_REPS; BENCH_PART=requests runs the requests part alone.

import { join } from 'node:path';
import { startEtcd } from '../test/helpers/etcd.js';
import { createTestLan } from '../test/helpers/netns.js';
import {
  execFileP,
  hz,
  machineCpu,
  median,
  nginxBackendConfig,
  pinned,
  prepareNginxDir,
  startMeshd,
  stopAll,
  workdir,
} from './lib.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const reps = Number(process.env.BENCH_REPS ?? 3);
const lanPrefix = '10.239.7';
const subnet = '10.239.100.0/24';
const sealedSubnet = '10.239.101.0/24';
/** The API listens off loopback (on the node's LAN address), so it wants a token. */
const token = 'bench-overlay-token';

async function inNs(ns: string, cpu: number, args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, 'taskset', '-c', String(cpu), ...args], {
    timeout: (seconds + 30) * 1000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** One iperf3 run from `client` to `server` (an address in `serverNs`): Gbit/s and CPU s per GB. */
async function iperf(
  serverNs: string,
  client: string,
  server: string,
): Promise<{ gbps: number; cpuPerGb: number }> {
  const srv = execFileP(
    'ip',
    ['netns', 'exec', serverNs, 'taskset', '-c', '1', 'iperf3', '-s', '-1', '-p', '5201'],
    {
      timeout: (seconds + 30) * 1000,
    },
  );
  await new Promise((r) => setTimeout(r, 500));
  const before = machineCpu();
  const out = await inNs(client, 0, ['iperf3', '-c', server, '-p', '5201', '-t', String(seconds), '-J']);
  const after = machineCpu();
  await srv.catch(() => undefined);
  const end = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } }).end;
  const gb = end.sum_received.bytes / 1e9;
  return { gbps: end.sum_received.bits_per_second / 1e9, cpuPerGb: (after.busy - before.busy) / hz / gb };
}

/** Requests/s of a keep-alive wrk run from namespace `client` to `url`. */
async function requests(client: string, url: string): Promise<number> {
  const out = await inNs(client, 0, ['wrk', '-t1', '-c32', `-d${seconds}s`, url]);
  const errors = /Socket errors: (.*)|Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (errors) console.warn(`  wrk ${url}: ${errors[0]}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
}

/** An nginx answering on port 8099 in namespace `ns`, on CPU 1 (ended with the other processes). */
async function nginxIn(dir: string, ns: string): Promise<void> {
  const copy = nginxBackendConfig(dir, ns, '8099');
  pinned(1, 'ip', ['netns', 'exec', ns, 'nginx', '-e', join(dir, `nginx-${ns}.err`), '-c', copy]);
  for (let i = 0; i < 50; i++) {
    const r = await execFileP('ip', ['netns', 'exec', ns, 'ss', '-ltnH', 'sport = :8099']);
    if (r.stdout.includes('8099')) return;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  throw new Error(`nginx in ${ns} did not listen`);
}

async function main(): Promise<void> {
  const dir = workdir('overlay');
  // Two nodes, and a client host on the same LAN for the routing mesh.
  const lan = await createTestLan(
    'obn',
    `${lanPrefix}.254`,
    [1, 2, 3].map((n) => `${lanPrefix}.${n}`),
  );
  const etcd = await startEtcd(`${lanPrefix}.254`);
  const eps: string[] = [];
  try {
    const apis: string[] = [];
    // Node 2 joins with node 1's token: both hold certificates, which the encrypted path needs.
    let joinArgs: string[] = [];
    for (const n of [1, 2]) {
      const a = `${lanPrefix}.${n}`;
      const { ready } = await startMeshd(
        n - 1,
        join(dir, `n${n}`),
        '',
        [
          '--store',
          `etcd://${etcd.endpoint}`,
          '--node-name',
          `node${n}`,
          '--api-listen',
          `${a}:0`,
          '--advertise-addr',
          a,
          '--api-token',
          token,
          '--data-listen',
          `${a}:0`,
          ...joinArgs,
        ],
        lan.hosts[n - 1]?.name,
      );
      apis.push(`http://${ready.api}`);
      if (n === 1) {
        const res = await fetch(`${apis[0]}/swarm/join-token`, {
          headers: { authorization: `Bearer ${token}` },
        });
        joinArgs = ['--join-token', ((await res.json()) as { worker: string }).worker];
      }
    }
    const api = async (path: string, body: unknown) => {
      const res = await fetch(`${apis[0]}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    };
    await api('/networks/create', { name: 'bench', subnet });
    await api('/services/create', { name: 'iperf', networks: [{ network: 'bench' }], endpointMode: 'dnsrr' });
    await api('/networks/create', { name: 'sealed', subnet: sealedSubnet, options: { encrypted: '' } });
    await api('/services/create', {
      name: 'sealed',
      networks: [{ network: 'sealed' }],
      endpointMode: 'dnsrr',
    });
    // A published port whose one task runs on node 2: node 1's kernel sends it over the overlay.
    await api('/services/create', {
      name: 'web',
      networks: [{ network: 'bench' }],
      ports: [{ published: 8098, target: 8099 }],
    });
    for (const [svc, tag, nodes] of [
      ['iperf', 'obe', [1, 2]],
      ['sealed', 'obs', [1, 2]],
      ['web', 'obw', [2]],
    ] as const)
      for (const n of nodes) {
        const ep = `${tag}${n}`;
        await execFileP('ip', ['netns', 'add', ep]);
        eps.push(ep);
        await api('/tasks/create', { service: svc, node: `node${n}`, netns: `/run/netns/${ep}` });
      }
    const addrOf = async (ep: string, net: string) => {
      for (let i = 0; i < 100; i++) {
        const { stdout } = await execFileP('ip', ['netns', 'exec', ep, 'ip', '-4', '-o', 'addr', 'show']);
        const m = new RegExp(`inet (${net.replace('.0/24', '').replaceAll('.', '\\.')}\\.\\d+)/`).exec(
          stdout,
        );
        if (m) return m[1] as string;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`${ep} never joined the overlay`);
    };
    const far = await addrOf('obe2', subnet);
    await addrOf('obe1', subnet);
    const sealedFar = await addrOf('obs2', sealedSubnet);
    await addrOf('obs1', sealedSubnet);
    await addrOf('obw2', subnet);
    // The first frames open the tunnel: one ping before measuring.
    await execFileP('ip', ['netns', 'exec', 'obs1', 'ping', '-c', '3', '-W', '2', sealedFar]).catch(
      () => undefined,
    );
    const runs = {
      overlay: [] as { gbps: number; cpuPerGb: number }[],
      sealed: [] as { gbps: number; cpuPerGb: number }[],
      direct: [] as { gbps: number; cpuPerGb: number }[],
    };
    // BENCH_PART=requests runs the requests part alone (for a profile of it).
    for (let r = 0; r < (process.env.BENCH_PART === 'requests' ? 0 : reps); r++) {
      runs.direct.push(
        await iperf(lan.hosts[1]?.name as string, lan.hosts[0]?.name as string, `${lanPrefix}.2`),
      );
      runs.overlay.push(await iperf('obe2', 'obe1', far));
      runs.sealed.push(await iperf('obs2', 'obs1', sealedFar));
    }
    prepareNginxDir(dir);
    for (const ns of [lan.hosts[1]?.name as string, 'obe2', 'obs2', 'obw2']) await nginxIn(dir, ns);
    const client = lan.hosts[2]?.name as string;
    const published = `http://${lanPrefix}.1:8098/`;
    for (let i = 0; i < 50; i++) {
      if (
        (await inNs(client, 0, [
          'curl',
          '-s',
          '-m',
          '1',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          published,
        ]).catch(() => '')) === '200'
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const rps = {
      direct: [] as number[],
      overlay: [] as number[],
      sealed: [] as number[],
      mesh: [] as number[],
    };
    for (let r = 0; r < reps; r++) {
      rps.direct.push(await requests(lan.hosts[0]?.name as string, `http://${lanPrefix}.2:8099/`));
      rps.overlay.push(await requests('obe1', `http://${far}:8099/`));
      rps.sealed.push(await requests('obs1', `http://${sealedFar}:8099/`));
      rps.mesh.push(await requests(client, published));
    }
    const m = (xs: { gbps: number; cpuPerGb: number }[]) => ({
      gbps: median(xs.map((x) => x.gbps)),
      cpu: median(xs.map((x) => x.cpuPerGb)),
    });
    const d = m(runs.direct);
    const o = m(runs.overlay);
    const e = m(runs.sealed);
    if (runs.direct.length > 0) {
      console.log(`TCP throughput, ${reps} runs of ${seconds} s (median), two nodes, endpoint to endpoint:`);
      console.log(
        `  direct between the node namespaces: ${d.gbps.toFixed(2)} Gbit/s, ${d.cpu.toFixed(2)} CPU s/GB`,
      );
      console.log(
        `  meshd VXLAN overlay:                ${o.gbps.toFixed(2)} Gbit/s, ${o.cpu.toFixed(2)} CPU s/GB`,
      );
      console.log(
        `  meshd encrypted overlay (mTLS):    ${e.gbps.toFixed(2)} Gbit/s, ${e.cpu.toFixed(2)} CPU s/GB`,
      );
      console.log(
        `  overlay/direct: ${(o.gbps / d.gbps).toFixed(2)}x throughput (target >= 0.8x), ${(o.cpu / d.cpu).toFixed(2)}x CPU per GB`,
      );
      console.log(
        `  encrypted/direct: ${(e.gbps / d.gbps).toFixed(3)}x throughput (target >= 0.3x), ${(e.cpu / d.cpu).toFixed(1)}x CPU per GB`,
      );
    }
    const [rd, ro, re] = [median(rps.direct), median(rps.overlay), median(rps.sealed)];
    console.log(`HTTP requests/s, wrk keep-alive -c32 to nginx, ${reps} runs of ${seconds} s (median):`);
    console.log(
      `  direct ${rd.toFixed(0)}, VXLAN overlay ${ro.toFixed(0)}, encrypted overlay ${re.toFixed(0)}`,
    );
    console.log(
      `  overlay/direct ${(ro / rd).toFixed(2)}x (target >= 0.8x), encrypted/direct ${(re / rd).toFixed(2)}x (target >= 0.3x)`,
    );
    const rm = median(rps.mesh);
    console.log(
      `  routing mesh, a client host to node 1's published port, the task on node 2 (kernel DNAT over VXLAN): ${rm.toFixed(0)}, ${(rm / rd).toFixed(2)}x direct`,
    );
  } finally {
    await stopAll();
    for (const ep of eps) await execFileP('ip', ['netns', 'del', ep]).catch(() => undefined);
    await etcd.remove();
    await lan.remove();
  }
}

await main();
