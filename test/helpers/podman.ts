import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';

const execFileP = promisify(execFile);

/** How podman runs on this kind of machine: runc, cgroupfs, no default ulimits. */
const dir = mkdtempSync(join(tmpdir(), 'meshd-podman-'));
const conf = join(dir, 'containers.conf');
writeFileSync(conf, '[containers]\ndefault_ulimits = []\n');
const env = { ...process.env, CONTAINERS_CONF: conf };
const base = ['--runtime', '/usr/sbin/runc', '--cgroup-manager=cgroupfs'];

export const image = 'localhost/meshd-busybox:test';

export async function podman(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('podman', [...base, ...args], { env, timeout: 60_000 });
  return stdout;
}

/** Like `podman`, but resolves with the exit code and output instead of throwing. */
export async function podmanTry(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, stdout: await podman(...args), stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Builds the test image from busybox-static with `podman import` (no registry is reachable). */
export async function ensureImage(): Promise<void> {
  if ((await podmanTry('image', 'exists', image)).code === 0) return;
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'www'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(root, 'bin/busybox'));
  for (const c of ['sh', 'httpd', 'wget', 'nslookup', 'sleep', 'cat', 'echo', 'true', 'false']) {
    if (!existsSync(join(root, 'bin', c))) symlinkSync('busybox', join(root, 'bin', c));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  await execFileP('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
  await podman('import', join(dir, 'rootfs.tar'), image);
}

/** Podman's Docker-compatible API service on a socket of its own. */
export interface EngineService {
  readonly socket: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startEngine(): Promise<EngineService> {
  const socket = join(dir, 'podman.sock');
  let child: ChildProcess | undefined;
  const start = async () => {
    const c = spawn('podman', [...base, 'system', 'service', '--time=0', `unix://${socket}`], {
      env,
      stdio: 'ignore',
    });
    child = c;
    try {
      await eventually(
        async () => {
          const { stdout } = await execFileP('curl', ['-s', '--unix-socket', socket, 'http://d/v1.41/_ping']);
          if (stdout.trim() !== 'OK') throw new Error('engine not up');
        },
        20_000,
        100,
      );
    } catch (err) {
      // Never left running when it did not become ready.
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await new Promise((r) => c.once('exit', r));
      }
      throw err;
    }
  };
  await start();
  return {
    socket,
    start,
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
}

export function cleanupDir(): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A pass-through proxy in front of the engine's socket that can make the engine fail: while
 * `failInspect` holds a container id, inspecting that container answers 500 (an engine hiccup),
 * while listing and everything else go through untouched.
 */
export interface FaultyEngine {
  readonly socket: string;
  failInspect: string | undefined;
  close(): Promise<void>;
}

export async function faultyEngine(target: string): Promise<FaultyEngine> {
  const { createServer, request } = await import('node:http');
  const socket = join(dir, 'faulty.sock');
  rmSync(socket, { force: true });
  const f: FaultyEngine = {
    socket,
    failInspect: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server = createServer((req, res) => {
    const id = /\/containers\/([^/]+)\/json/.exec(req.url ?? '')?.[1];
    if (id && f.failInspect?.startsWith(decodeURIComponent(id))) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"injected engine error"}');
      return;
    }
    const up = request(
      { socketPath: target, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  return f;
}
