import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createTestLan, sh, type TestHost, type TestLan } from './netns.js';

/** A task: its own namespace behind its node's bridge, running task-server.mjs. */
export interface LabTask {
  readonly name: string;
  readonly ns: string;
  readonly addr: string;
  readonly node: number;
  readonly child: ChildProcess;
  /** Stops the task's server (the namespace stays until the lab is removed). */
  stop(): Promise<void>;
}

/**
 * Hosts for the kernel data plane, all in namespaces of their own: nodes on one LAN (a bridge in
 * the machine's namespace holding `lanPrefix.254`, which is where a test's client sits), each node
 * with a bridge `br0` holding the gateway of its own task /24 inside the overlay's /16, and tasks
 * in namespaces of their own behind it, routed through their node as containers are.
 */
export interface KernelLab {
  readonly lan: TestLan;
  readonly nodes: TestHost[];
  /** The overlay subnet (`10.X.0.0/16`): node i's tasks are in `10.X.i.0/24`. */
  readonly subnet: string;
  readonly tasks: LabTask[];
  addTask(node: number, name: string, cmd?: TaskCommand): Promise<LabTask>;
  remove(): Promise<void>;
}

/** task-server.mjs beside this file, from the sources or from the compiled copy in dist/. */
const serverScript = [
  fileURLToPath(new URL('./task-server.mjs', import.meta.url)),
  fileURLToPath(new URL('../../../test/helpers/task-server.mjs', import.meta.url)),
].find((p) => existsSync(p)) as string;

/** What a task runs: task-server.mjs by default; `ready` tells when it serves (else a port check). */
export interface TaskCommand {
  readonly argv: readonly string[];
  /** Written on standard output once it serves; absent: wait until TCP port 80 answers. */
  readonly ready?: string;
}

async function startTask(ns: string, name: string, cmd?: TaskCommand): Promise<ChildProcess> {
  const argv = cmd?.argv ?? [process.execPath, serverScript, name];
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = cmd ? cmd.ready : 'ready';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`task ${name} not ready`)), 10_000);
    if (ready === undefined) {
      const poll = async () => {
        const r = await sh('ip', 'netns', 'exec', ns, 'bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/80').then(
          () => true,
          () => false,
        );
        if (r) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(poll, 50);
      };
      void poll();
    }
    child.stdout?.on('data', (d: Buffer) => {
      if (ready !== undefined && d.toString().includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`task ${name} exited ${code}`));
    });
  });
  return child;
}

/**
 * `prefix`: short and unique to the test file (names of namespaces and links); `lanPrefix`:
 * `10.N.M` for the LAN; `overlay`: the second octet of the overlay /16.
 */
export async function createKernelLab(
  prefix: string,
  lanPrefix: string,
  overlay: number,
  nodes: number,
): Promise<KernelLab> {
  const subnet = `10.${overlay}.0.0/16`;
  const lan = await createTestLan(
    prefix,
    `${lanPrefix}.254`,
    Array.from({ length: nodes }, (_, i) => `${lanPrefix}.${i + 1}`),
  );
  const tasks: LabTask[] = [];
  const taskNs: string[] = [];
  const lab: KernelLab = {
    lan,
    nodes: lan.hosts,
    subnet,
    tasks,
    async addTask(node, name, cmd) {
      const host = lan.hosts[node - 1] as TestHost;
      const n = tasks.filter((t) => t.node === node).length + 2;
      const ns = `${prefix}t${node}${n}`;
      const addr = `10.${overlay}.${node}.${n}`;
      await sh('ip', 'netns', 'add', ns);
      taskNs.push(ns);
      const outer = `${prefix}o${node}${n}`.slice(0, 15);
      await sh('ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await sh('ip', 'link', 'set', outer, 'netns', host.name);
      await host.exec('ip', 'link', 'set', outer, 'master', 'br0', 'up');
      // As Docker, Podman (netavark) and Kubernetes do: a task may reach itself through its VIP.
      await host.exec('ip', 'link', 'set', outer, 'type', 'bridge_slave', 'hairpin', 'on');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', `10.${overlay}.${node}.1`);
      const child = await startTask(ns, name, cmd);
      const task: LabTask = {
        name,
        ns,
        addr,
        node,
        child,
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        },
      };
      tasks.push(task);
      return task;
    },
    async remove() {
      for (const t of tasks) await t.stop();
      for (const ns of taskNs) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
      await lan.remove();
    },
  };
  try {
    for (const [i, host] of lan.hosts.entries()) {
      const node = i + 1;
      const run = async (...args: string[]) => {
        const r = await host.exec(...args);
        if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
      };
      await run('ip', 'link', 'add', 'br0', 'type', 'bridge');
      await run('ip', 'addr', 'add', `10.${overlay}.${node}.1/24`, 'dev', 'br0');
      await run('ip', 'link', 'set', 'br0', 'up');
      await run('sysctl', '-qw', 'net.ipv4.ip_forward=1');
      // The LAN is the way out (VIPs included: the output hook rewrites them after this lookup).
      await run('ip', 'route', 'add', 'default', 'via', `${lanPrefix}.254`);
      for (let j = 1; j <= nodes; j++)
        if (j !== node)
          await run('ip', 'route', 'add', `10.${overlay}.${j}.0/24`, 'via', `${lanPrefix}.${j}`);
    }
  } catch (err) {
    await lab.remove();
    throw err;
  }
  return lab;
}
