import { existsSync } from 'node:fs';
import { run } from '../host/commands.js';
import type { Logger } from '../log.js';
import { ip } from './ip.js';

/**
 * Netfilter on meshd's own bridges. A task's reply to a caller on its own bridge is bridged, and
 * only netfilter on the bridge can undo the DNAT of the caller's VIP connection. Each bridge's own
 * switch (`nf_call_iptables`) turns it on for that bridge alone, whatever the host's
 * `bridge-nf-call-*` sysctls say (Docker sets those host-wide instead, which reaches every other
 * bridge on the host); frames to and from other nodes skip it (the fast path).
 */
export class BridgeNetfilter {
  private checked = false;

  constructor(private readonly log: Logger) {}

  async enable(bridge: string): Promise<void> {
    await this.ensureModule();
    await ip('link', 'set', bridge, 'type', 'bridge', 'nf_call_iptables', '1', 'nf_call_ip6tables', '1');
  }

  /** Loads br_netfilter once when the host lacks it; says what breaks when it cannot. */
  private async ensureModule(): Promise<void> {
    if (this.checked) return;
    this.checked = true;
    if (existsSync('/proc/sys/net/bridge')) return;
    await run('modprobe', ['br_netfilter']);
    if (!existsSync('/proc/sys/net/bridge'))
      this.log.warn(
        "the br_netfilter module is not loaded and cannot be (modprobe br_netfilter): a VIP whose task runs on the caller's own node does not answer from inside an overlay",
      );
  }
}
