import { execFile } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { messageOf } from '../model/errors.js';

const execFileP = promisify(execFile);

/** Whether an address is already local (every 127/8 address is, on Linux). */
export function isLocal(address: string): boolean {
  if (address.startsWith('127.') || address === '::1') return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.address === address) return true;
  }
  return false;
}

/**
 * Puts VIPs that are not local yet on an interface (`ip addr add VIP/32 dev lo`, which needs root
 * or CAP_NET_ADMIN) and takes off again exactly the ones it added.
 */
export class VipAddresses {
  private readonly added = new Set<string>();

  constructor(
    private readonly manage: boolean,
    private readonly device = 'lo',
    private readonly log?: Logger,
  ) {}

  /** Resolves when the address can be bound; rejects with a message saying why not. */
  async ensure(address: string): Promise<void> {
    if (isLocal(address)) return;
    if (!this.manage)
      throw new Error(`VIP ${address} is not a local address and mesh.manageVipInterfaces is off`);
    const prefix = address.includes(':') ? 128 : 32;
    try {
      await execFileP('ip', ['addr', 'add', `${address}/${prefix}`, 'dev', this.device]);
      this.added.add(address);
      // Said, so an operator (or a test harness after a crash) knows what to take off again.
      this.log?.info('VIP added to an interface', { address, device: this.device });
    } catch (err) {
      throw new Error(
        `VIP ${address} is not a local address and adding it failed (${messageOf(err).split('\n')[0]}): run meshd as root or with CAP_NET_ADMIN`,
      );
    }
  }

  async release(address: string): Promise<void> {
    if (!this.added.delete(address)) return;
    const prefix = address.includes(':') ? 128 : 32;
    await execFileP('ip', ['addr', 'del', `${address}/${prefix}`, 'dev', this.device]).catch(() => undefined);
    this.log?.info('VIP taken off an interface', { address, device: this.device });
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.added].map((a) => this.release(a)));
  }
}
