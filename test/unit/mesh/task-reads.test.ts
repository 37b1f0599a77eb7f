import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskReads } from '../../../src/mesh/task-reads.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(onConn: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, onConn);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * A proxy on loopback as the mesh splices a connection: the task's side read through TaskReads,
 * attached to the client's socket once `delay` ms have passed (the task may speak first).
 */
async function proxyTo(taskPort: number, delay = 0): Promise<number> {
  return listen((client) => {
    const reads = new TaskReads();
    const upstream = connect({
      port: taskPort,
      host: '127.0.0.1',
      allowHalfOpen: true,
      onread: reads.onread,
    });
    reads.watch(upstream);
    upstream.once('connect', () =>
      setTimeout(() => {
        client.pipe(upstream);
        reads.attach(client, upstream);
      }, delay),
    );
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
}

describe('TaskReads', () => {
  it("delivers a task's greeting sent before the splice, then the rest, then its FIN", async () => {
    const task = await listen((s) => {
      s.write('220 ready\r\n');
      s.once('data', (d) => s.end(`echo ${d}`));
    });
    const client = connect({ port: await proxyTo(task, 50), host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    client.on('data', (d) => {
      got += d.toString();
      if (got === '220 ready\r\n') client.write('hi');
    });
    await once(client, 'end');
    expect(got).toBe('220 ready\r\necho hi');
    client.destroy();
  });

  it('ends the client once the task has sent its greeting and FIN before the splice', async () => {
    const task = await listen((s) => s.end('bye\r\n'));
    const client = connect({ port: await proxyTo(task, 50), host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    client.on('data', (d) => {
      got += d.toString();
    });
    await once(client, 'end');
    expect(got).toBe('bye\r\n');
    client.destroy();
  });

  it('keeps connections apart while they all read through the one shared buffer', async () => {
    // Each task connection sends its own numbered lines in small writes, all at once.
    let next = 0;
    const task = await listen((s) => {
      const me = next++;
      let i = 0;
      const tick = setInterval(() => {
        s.write(`conn ${me} line ${i}\n`);
        if (++i === 50) {
          clearInterval(tick);
          s.end();
        }
      }, 1);
    });
    const port = await proxyTo(task);
    const got = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = connect({ port, host: '127.0.0.1' });
        let text = '';
        c.on('data', (d) => {
          text += d.toString();
        });
        await once(c, 'end');
        return text;
      }),
    );
    for (const text of got) {
      const lines = text.trim().split('\n');
      const who = lines[0]?.split(' ')[1];
      expect(lines).toEqual(Array.from({ length: 50 }, (_, i) => `conn ${who} line ${i}`));
    }
  });

  it('carries 32 MB intact to a client that reads slowly (buffers reused only once written)', async () => {
    const chunk = Buffer.alloc(1 << 20);
    const sent = createHash('sha256');
    const task = await listen((s) => {
      let i = 0;
      const more = () => {
        while (i < 32) {
          for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((i * chunk.length + j) >>> 0, j);
          sent.update(chunk);
          i++;
          if (!s.write(Buffer.from(chunk))) return void s.once('drain', more);
        }
        s.end();
      };
      more();
    });
    const client = connect({ port: await proxyTo(task), host: '127.0.0.1' });
    const got = createHash('sha256');
    let bytes = 0;
    client.on('data', (d: Buffer) => {
      got.update(d);
      bytes += d.length;
      // Now and then the client stops reading, so the proxy's writes back up.
      if (bytes % (4 << 20) < d.length) {
        client.pause();
        setTimeout(() => client.resume(), 20);
      }
    });
    await once(client, 'end');
    expect(bytes).toBe(32 << 20);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  });
});
