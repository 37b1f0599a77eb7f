import type { ClusterState } from './cluster-state.js';
import { MeshError } from './errors.js';
import type { Network } from './types.js';

/** An object that answers a name on a network, as an error message names it. */
export interface NameHolder {
  readonly kind: 'service' | 'container';
  readonly id: string;
  readonly name: string;
}

/**
 * Who already answers `name` on `network`: a service (its name or an alias there) or a container
 * (its name or an alias, when attached there). `self` is left out (an update of that object).
 * Names are compared case-insensitively, as DNS does.
 */
export function holderOf(
  state: ClusterState,
  network: string,
  name: string,
  self?: { readonly kind: 'service' | 'container'; readonly id: string },
): NameHolder | undefined {
  const wanted = name.toLowerCase();
  for (const s of state.services.values()) {
    if (self?.kind === 'service' && self.id === s.id) continue;
    const att = s.networks.find((n) => n.network === network);
    if (!att) continue;
    if ([s.name, ...att.aliases].some((n) => n.toLowerCase() === wanted))
      return { kind: 'service', id: s.id, name: s.name };
  }
  for (const c of state.containers.values()) {
    if (self?.kind === 'container' && self.id === c.id) continue;
    if (!c.addresses.some((a) => a.network === network)) continue;
    if ([c.name, ...c.aliases].some((n) => n.toLowerCase() === wanted))
      return { kind: 'container', id: c.id, name: c.name };
  }
  return undefined;
}

/**
 * Refuses a name another object already answers on the network: an alias equal to a service's
 * name would otherwise merge into that service's records (a container named `web` joining
 * `web`'s answers), which is how a container could take a service's traffic.
 */
export function checkNameFree(
  state: ClusterState,
  net: Network,
  name: string,
  what: string,
  self?: { readonly kind: 'service' | 'container'; readonly id: string },
): void {
  const holder = holderOf(state, net.id, name, self);
  if (holder) {
    throw new MeshError(
      'already_exists',
      `${what} ${name} is already in use on network ${net.name} by ${holder.kind} ${holder.name}`,
    );
  }
}
