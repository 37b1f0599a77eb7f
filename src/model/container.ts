import { removingClaim } from './claims.js';
import {
  type Change,
  type ClusterState,
  checkDnsName,
  checkObjectName,
  emptyChange,
  lookup,
  stored,
} from './cluster-state.js';
import { invalid, MeshError } from './errors.js';
import type { Fields } from './fields.js';
import { newId } from './ids.js';
import { checkNameFree } from './names.js';
import { attachAddresses } from './task.js';
import type { Container } from './types.js';

/** `meshctl container attach NETWORK --name N [--alias A]... [--ip IP]`. */
export interface AttachSpec {
  readonly network: string;
  readonly name: string;
  readonly aliases: readonly string[];
  readonly ip?: string;
  readonly node?: string;
  readonly source?: string;
  /** A network namespace on the container's node for meshd to join to the overlay. */
  readonly netns?: string;
}

export function readAttachSpec(f: Fields): AttachSpec {
  const spec: AttachSpec = {
    network: f.string('network'),
    name: f.string('name'),
    aliases: f.strings('aliases'),
    ip: f.optionalString('ip'),
    node: f.optionalString('node'),
    netns: f.optionalString('netns'),
  };
  if (spec.netns !== undefined && !spec.netns.startsWith('/'))
    throw invalid(`netns must be an absolute path (as /run/netns/NAME or /proc/PID/ns/net): ${spec.netns}`);
  f.done();
  return spec;
}

/** Attaches a standalone container to an attachable network, creating the container record if new. */
export function attachContainer(
  state: ClusterState,
  spec: AttachSpec,
  localNode: string,
  now: string,
): Change {
  checkObjectName(spec.name, 'container name');
  for (const a of spec.aliases) checkDnsName(a, 'alias');
  const net = lookup(state.networks, spec.network, 'network');
  if (!net.attachable || net.ingress) {
    throw new MeshError(
      'permission_denied',
      `Could not attach to network ${net.name}: rpc error: code = PermissionDenied desc = network ${net.name} not manually attachable`,
    );
  }
  const existing = [...state.containers.values()].find((c) => c.name === spec.name);
  if (existing?.addresses.some((a) => a.network === net.id)) {
    throw new MeshError(
      'already_exists',
      `container ${spec.name} is already attached to network ${net.name}`,
    );
  }
  const self = existing ? { kind: 'container' as const, id: existing.id } : undefined;
  for (const n of new Set([spec.name, ...(existing?.aliases ?? []), ...spec.aliases]))
    checkNameFree(state, net, n, n === spec.name ? 'container name' : 'alias', self);
  const [attachment] = attachAddresses(state, [net.id], spec.ip ? [spec.ip] : [], `network ${net.name}`);
  const id = existing?.id ?? newId();
  const container: Omit<Container, 'version'> = existing
    ? {
        ...stored(existing),
        aliases: [...new Set([...existing.aliases, ...spec.aliases])],
        addresses: [...existing.addresses, attachment as Container['addresses'][number]],
        ...(spec.netns && !existing.netns ? { netns: spec.netns } : {}),
        updatedAt: now,
      }
    : {
        id,
        name: spec.name,
        node: spec.node ? lookup(state.nodes, spec.node, 'node').id : localNode,
        ...(spec.source ? { source: spec.source } : {}),
        aliases: [...new Set(spec.aliases)],
        addresses: [attachment as Container['addresses'][number]],
        ...(spec.netns ? { netns: spec.netns } : {}),
        createdAt: now,
        updatedAt: now,
      };
  const change = emptyChange();
  change.puts.push({ kind: 'containers', id, value: container });
  change.expect.push({ kind: 'containers', id, version: existing?.version ?? 0 });
  change.guards.push(removingClaim('networks', net.id));
  return change;
}

/** Detaches a container from one network, or from all when no network is named. */
export function detachContainer(
  state: ClusterState,
  name: string,
  network: string | undefined,
  now: string,
): Change {
  const container = lookup(state.containers, name, 'container');
  const netId = network ? lookup(state.networks, network, 'network').id : undefined;
  const addresses = netId ? container.addresses.filter((a) => a.network !== netId) : [];
  if (netId && addresses.length === container.addresses.length) {
    throw new MeshError('not_found', `container ${container.name} is not attached to network ${network}`);
  }
  const change = emptyChange();
  if (addresses.length === 0) change.deletes.push({ kind: 'containers', id: container.id });
  else
    change.puts.push({
      kind: 'containers',
      id: container.id,
      value: { ...stored(container), addresses, updatedAt: now },
    });
  change.expect.push({ kind: 'containers', id: container.id, version: container.version });
  return change;
}
