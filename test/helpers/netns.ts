import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function sh(cmd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { timeout: 20_000 });
  return stdout;
}

/** A network namespace joined to the host by a veth pair: a test host with its own address. */
export interface TestHost {
  readonly name: string;
  /** The host side of the veth. */
  readonly hostIf: string;
  readonly hostAddr: string;
  readonly nsAddr: string;
  exec(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

/** Runs a command in namespace `name`: its exit code and output, never a throw. */
function execIn(name: string): TestHost['exec'] {
  return async (...args) => {
    try {
      const { stdout, stderr } = await execFileP('ip', ['netns', 'exec', name, ...args], { timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
}

/** The namespace, the veth and the addresses of one test host. */
async function setUpHost(
  name: string,
  hostIf: string,
  nsIf: string,
  hostAddr: string,
  nsAddr: string,
): Promise<void> {
  await sh('ip', 'netns', 'add', name);
  await sh('ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  await sh('ip', 'link', 'set', nsIf, 'netns', name);
  await sh('ip', 'addr', 'add', `${hostAddr}/24`, 'dev', hostIf);
  await sh('ip', 'link', 'set', hostIf, 'up');
  await sh('ip', 'netns', 'exec', name, 'ip', 'addr', 'add', `${nsAddr}/24`, 'dev', nsIf);
  await sh('ip', 'netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up');
  await sh('ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
}

/**
 * Creates namespace `name` with `nsAddr/24` on its side of a veth whose host side has `hostAddr/24`,
 * and an /etc/netns resolv.conf when `nameserver` is given (ip netns exec bind-mounts it).
 */
export async function createTestHost(
  name: string,
  hostAddr: string,
  nsAddr: string,
  nameserver?: string,
): Promise<TestHost> {
  const tag = name.slice(-8);
  const hostIf = `vh${tag}`.slice(0, 15);
  const nsIf = `vn${tag}`.slice(0, 15);
  try {
    await setUpHost(name, hostIf, nsIf, hostAddr, nsAddr);
  } catch (err) {
    // Half-way failures roll back: nothing of this host stays behind.
    await sh('ip', 'link', 'del', hostIf).catch(() => undefined);
    await sh('ip', 'netns', 'del', name).catch(() => undefined);
    throw err;
  }
  if (nameserver) {
    mkdirSync(`/etc/netns/${name}`, { recursive: true });
    writeFileSync(
      `/etc/netns/${name}/resolv.conf`,
      `nameserver ${nameserver}\noptions ndots:0 timeout:1 attempts:2\n`,
    );
  }
  return {
    name,
    hostIf,
    hostAddr,
    nsAddr,
    exec: execIn(name),
    async remove() {
      await sh('ip', 'link', 'del', hostIf).catch(() => undefined);
      await sh('ip', 'netns', 'del', name).catch(() => undefined);
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
    },
  };
}

/** Network namespaces need root; CI runs as root. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Hosts on one LAN: a bridge on the host holding `bridgeAddr`, and a namespace per host address. */
export interface TestLan {
  readonly hosts: TestHost[];
  remove(): Promise<void>;
}

/**
 * Creates `addrs.length` namespaces on one bridge (`/24`), like hosts on a switch: every host
 * reaches every other, and the host side holds `bridgeAddr` on the same subnet.
 */
export async function createTestLan(
  prefix: string,
  bridgeAddr: string,
  addrs: readonly string[],
): Promise<TestLan> {
  const bridge = `${prefix}br`.slice(0, 15);
  await sh('ip', 'link', 'add', bridge, 'type', 'bridge');
  await sh('ip', 'addr', 'add', `${bridgeAddr}/24`, 'dev', bridge);
  await sh('ip', 'link', 'set', bridge, 'up');
  const hosts: TestHost[] = [];
  const lan: TestLan = {
    hosts,
    async remove() {
      for (const h of hosts) await h.remove();
      await sh('ip', 'link', 'del', bridge).catch(() => undefined);
    },
  };
  try {
    for (const [i, addr] of addrs.entries()) {
      const name = `${prefix}${i + 1}`;
      const hostIf = `${prefix}h${i + 1}`.slice(0, 15);
      const nsIf = `${prefix}n${i + 1}`.slice(0, 15);
      await sh('ip', 'netns', 'add', name);
      await sh('ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
      await sh('ip', 'link', 'set', nsIf, 'netns', name);
      await sh('ip', 'link', 'set', hostIf, 'master', bridge);
      await sh('ip', 'link', 'set', hostIf, 'up');
      await sh('ip', 'netns', 'exec', name, 'ip', 'addr', 'add', `${addr}/24`, 'dev', nsIf);
      await sh('ip', 'netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up');
      await sh('ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
      hosts.push({
        name,
        hostIf,
        hostAddr: bridgeAddr,
        nsAddr: addr,
        exec: execIn(name),
        async remove() {
          await sh('ip', 'link', 'del', hostIf).catch(() => undefined);
          await sh('ip', 'netns', 'del', name).catch(() => undefined);
        },
      });
    }
  } catch (err) {
    await lan.remove();
    throw err;
  }
  return lan;
}
