import { cidrContains, parseCidr } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { ServiceSpec } from '../model/service.js';
import type { Network, Service } from '../model/types.js';
import type { EngineContainer } from './engine.js';
import { serviceFromLabels } from './labels.js';

/** A labelled container this node runs, with the network it sits on and the spec its labels say. */
export interface Replica {
  readonly container: EngineContainer;
  readonly net: Network;
  /** Its address on `net`, or '' when meshd joins it by its namespace (`netns`) and allocates one. */
  readonly address: string;
  readonly netns?: string;
  readonly spec: ServiceSpec;
}

/** Where a labelled container sits, or why it cannot be placed, in words that name the fix. */
export type Placement =
  | { readonly net: Network; readonly address: string; readonly netns?: string }
  | { readonly reason: string };

/** The meshd network a labelled container belongs to, or why it has none. */
export function placeReplica(state: ClusterState, c: EngineContainer, svc: Service | undefined): Placement {
  const addrs = c.networks.map((n) => n.address);
  const label = c.labels['meshd.network'];
  const wanted = label ?? svc?.networks[0]?.network;
  const nets = [...state.networks.values()].filter(
    (n) => !n.ingress && (!wanted || n.name === wanted || n.id === wanted),
  );
  if (label && nets.length === 0)
    return { reason: `meshd.network=${label}: there is no meshd network of that name (meshctl network ls)` };
  for (const n of nets) {
    const subnet = parseCidr(n.subnet);
    const hit = addrs.find((a) => cidrContains(subnet, a));
    if (hit) return { net: n, address: hit };
  }
  // Named by its label but not on it: meshd joins the container's namespace to the network, as
  // swarm attaches a task's sandbox to each of its networks (an interface, an address from IPAM).
  const named = nets[0];
  if (label && named && c.sandbox) return { net: named, address: '', netns: c.sandbox };
  const shown = addrs.length > 0 ? addrs.join(', ') : 'none';
  if (wanted)
    return {
      reason: `none of its addresses (${shown}) is in meshd network ${nets[0]?.name ?? wanted} (${nets[0]?.subnet ?? '?'})`,
    };
  return {
    reason: `none of its addresses (${shown}) is in a meshd network: create one with the engine network's subnet (meshctl network create --subnet ...)`,
  };
}

/** The spec of a label-made service in a canonical form, published ports auto-assigned where the labels leave them open. */
function canonical(spec: ServiceSpec, state: ClusterState, current?: Service): string {
  const netId = (ref: string) =>
    [...state.networks.values()].find((n) => n.id === ref || n.name === ref)?.id ?? ref;
  const ports = spec.ports.map((p) => {
    const published =
      p.published !== 0
        ? p.published
        : (current?.ports.find((q) => q.target === p.target && q.protocol === p.protocol && q.mode === p.mode)
            ?.published ?? 0);
    return `${published}:${p.target}/${p.protocol}/${p.mode}`;
  });
  return JSON.stringify({
    endpointMode: spec.endpointMode,
    networks: spec.networks.map((n) => ({ network: netId(n.network), aliases: [...n.aliases].sort() })),
    ports: ports.sort(),
    expose: [...spec.expose].sort((a, b) => a - b),
    lb: spec.lb,
    localFirst: spec.localFirst,
    proxyProtocol: spec.proxyProtocol,
    healthcheck: spec.healthcheck,
  });
}

/** The same projection of a stored service, to compare with what its containers' labels say. */
function canonicalOf(svc: Service, state: ClusterState): string {
  return canonical(
    { ...svc, networks: svc.networks.map((n) => ({ network: n.network, aliases: n.aliases })) },
    state,
    svc,
  );
}

/** What the replicas of one service on this node say about its spec. */
export type Verdict =
  | { readonly kind: 'agree'; readonly spec: ServiceSpec; readonly differs: boolean }
  | { readonly kind: 'disagree'; readonly groups: readonly (readonly string[])[] };

/**
 * Traefik's and stack's model: the current labels are the spec. When every replica on this node
 * says the same, that is the spec (`differs` when the stored one is another); when they do not,
 * the groups of container names that agree, and the stored spec stays.
 */
export function judgeReplicas(state: ClusterState, replicas: readonly Replica[], current?: Service): Verdict {
  const groups = new Map<string, Replica[]>();
  for (const r of replicas) {
    const key = canonical(r.spec, state, current);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  if (groups.size > 1)
    return {
      kind: 'disagree',
      groups: [...groups.values()].map((g) => g.map((r) => r.container.name).sort()),
    };
  const [key, [first]] = [...groups.entries()][0] as [string, Replica[]];
  const spec = (first as Replica).spec;
  if (!current) return { kind: 'agree', spec, differs: true };
  // Keep the ports the stored service got for those the labels leave open, and its own labels.
  const ports = spec.ports.map((p) =>
    p.published !== 0
      ? p
      : {
          ...p,
          published:
            current.ports.find((q) => q.target === p.target && q.protocol === p.protocol && q.mode === p.mode)
              ?.published ?? 0,
        },
  );
  return {
    kind: 'agree',
    spec: { ...spec, ports, labels: { ...current.labels, ...spec.labels } },
    differs: key !== canonicalOf(current, state),
  };
}

/** The spec a container's labels describe, or the error that names what is wrong with them. */
export function specOf(c: EngineContainer, net: Network): ServiceSpec | { readonly reason: string } {
  try {
    return serviceFromLabels(c.labels, net.name);
  } catch (err) {
    return { reason: (err as Error).message };
  }
}
