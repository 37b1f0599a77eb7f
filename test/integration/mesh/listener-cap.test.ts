import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';

// A task that never answers: a socket listening with a backlog of one that nobody accepts from,
// so once the queue is full the kernel drops further SYNs and connects to it hang.
const blackhole = `
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.232.0.10', 7100))
s.listen(0)
print('ready', flush=True)
time.sleep(120)
`;

let m: MeshdProcess;
let hole: ChildProcess;

beforeAll(async () => {
  hole = spawn('python3', ['-c', blackhole], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => hole.stdout?.once('data', () => resolve()));
  m = await startMeshd({
    config: `
mesh:
  maxConnsPerListener: 5
  connectTimeout: 20s
  shutdownGrace: 1s
declare:
  networks:
    - { name: apps, subnet: 127.232.0.0/16 }
  services:
    - { name: dead, networks: [{ network: apps }], ports: [{ published: 0, target: 7100 }] }
  tasks:
    - { service: dead, ips: [127.232.0.10] }
`,
  });
}, 60_000);

afterAll(async () => {
  await m?.stop();
  hole?.kill('SIGKILL');
});

describe('the per-listener connection cap', () => {
  it('counts connections from accept, so a flood towards a task that never answers is capped', async () => {
    const svc = JSON.parse(await m.ctl('service', 'inspect', 'dead'))[0] as {
      ports: { published: number }[];
    };
    const port = svc.ports[0]?.published as number;
    const clients: Socket[] = [];
    const resets: number[] = [];
    for (let i = 0; i < 20; i++) {
      const c = connect(port, '127.0.0.1');
      c.on('error', () => resets.push(i));
      clients.push(c);
    }
    // Five are held connecting towards the dead task; the other fifteen are refused at once.
    await eventually(async () => expect(resets.length).toBeGreaterThanOrEqual(15));
    const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(
      Number(
        /meshd_mesh_connect_errors_total\{service="dead",reason="listener_limit"\} (\d+)/.exec(text)?.[1],
      ),
    ).toBe(15);
    for (const c of clients) c.destroy();
  });
});
