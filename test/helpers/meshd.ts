import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { dist } from './paths.js';

const execFileP = promisify(execFile);

/** A meshd process started by a test, with the addresses it bound. */
export interface MeshdProcess {
  readonly child: ChildProcess;
  readonly api: string;
  readonly dns: string;
  readonly metrics: string;
  readonly stateDir: string;
  readonly logs: string[];
  /** Runs meshctl against this node; resolves with stdout, rejects with stderr on failure. */
  ctl(...args: string[]): Promise<string>;
  /** SIGTERM and wait; removes the state dir unless `keep`. */
  stop(keep?: boolean): Promise<number | null>;
  kill(): Promise<void>;
}

export interface StartOptions {
  readonly args?: readonly string[];
  /** YAML written to a config file and passed with --config. */
  readonly config?: string;
  readonly stateDir?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  /** An API token (required when the API listens off loopback); meshctl calls send it. */
  readonly token?: string;
  /** Run inside this network namespace (`ip netns exec`). */
  readonly netns?: string;
}

/** Starts a real meshd (compiled) on port 0 everywhere unless told otherwise, and waits for ready. */
export async function startMeshd(opts: StartOptions = {}): Promise<MeshdProcess> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'meshd-test-'));
  const args = [
    dist('src/bin/meshd.js'),
    '--state-dir',
    stateDir,
    '--store',
    'memory',
    '--api-listen',
    '127.0.0.1:0',
    '--dns-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--data-listen',
    '127.0.0.1:0',
    '--node-name',
    'test-node',
  ];
  if (opts.config !== undefined) {
    const path = join(stateDir, 'meshd.yaml');
    writeFileSync(path, opts.config);
    args.push('--config', path);
  }
  if (opts.token) args.push('--api-token', opts.token);
  // Tests never program the machine's own nftables: in its namespace, meshd stays in userspace
  // unless a test asks otherwise. In a namespace of a test's own, the default (auto) applies.
  if (!opts.netns && !(opts.args ?? []).includes('--dataplane')) args.push('--dataplane', 'userspace');
  args.push(...(opts.args ?? []));
  // In a namespace, `ip netns exec` execs node in place: the pid stays the one we signal.
  const [cmd, argv] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(cmd as string, argv as string[], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  const logs: string[] = [];
  const readyOrNot = new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`meshd did not become ready:\n${logs.join('\n')}`)),
      opts.timeoutMs ?? 15_000,
    );
    createInterface({ input: child.stderr }).on('line', (line) => {
      logs.push(line);
      if (line.includes('"meshd is ready"')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, string>);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meshd exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  let ready: Record<string, string>;
  try {
    ready = await readyOrNot;
  } catch (err) {
    // Never left running when it did not become ready; its state dir goes too, unless given.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  const api = `http://${ready.api}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).then(
    async (code) => {
      await dropVips(logs);
      return code;
    },
  );
  return {
    child,
    api,
    dns: ready.dns ?? '',
    metrics: ready.metrics ?? '',
    stateDir,
    logs,
    ctl: (...a) => meshctl(api, opts.token ? ['--token', opts.token, ...a] : a),
    async stop(keep = false) {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (!keep && !opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Takes off the VIPs a meshd added and did not take off itself (it was killed, or crashed), so a
 * failing test leaves no address on the host's interfaces.
 */
async function dropVips(logs: readonly string[]): Promise<void> {
  const left = new Map<string, string>();
  for (const line of logs) {
    const m = /"msg":"VIP (added to|taken off) an interface","address":"([^"]+)","device":"([^"]+)"/.exec(
      line,
    );
    if (!m) continue;
    if (m[1] === 'added to') left.set(m[2] as string, m[3] as string);
    else left.delete(m[2] as string);
  }
  for (const [address, device] of left) {
    const prefix = address.includes(':') ? 128 : 32;
    await execFileP('ip', ['addr', 'del', `${address}/${prefix}`, 'dev', device]).catch(() => undefined);
  }
}

/** Runs the compiled meshctl; rejects with its stderr (and exit code) on failure. */
export async function meshctl(host: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(
      process.execPath,
      [dist('src/bin/meshctl.js'), '--host', host, ...args],
      {
        timeout: 30_000,
      },
    );
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: number };
    throw new Error(`meshctl ${args.join(' ')} failed (${e.code}): ${e.stderr ?? String(err)}`);
  }
}

/** Runs meshd with arguments expected to fail at start; resolves with its exit code and stderr. */
export async function meshdFails(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  try {
    await execFileP(process.execPath, [dist('src/bin/meshd.js'), ...args], { timeout: 15_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { stderr?: string; code?: number };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}
