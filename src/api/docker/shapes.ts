import { parseCidr } from '../../model/address.js';
import type { ClusterState } from '../../model/cluster-state.js';
import { invalid } from '../../model/errors.js';
import { specJsonOf } from '../../model/service.js';
import type { Network, Node, PortConfig, Service, Task } from '../../model/types.js';

// The Docker Engine API's swarm objects, built from meshd's and read back into meshd's specs.
// Pure: the routes feed them the state and what the node knows of health.

/** Docker writes `10.0.0.5/24`: an address with its network's prefix length. */
function withPrefix(state: ClusterState, network: string, address: string): string {
  const net = state.networks.get(network);
  return net ? `${address}/${parseCidr(net.subnet).prefix}` : address;
}

export function dockerNetwork(n: Network, peers: { name: string; ip: string }[]) {
  const options: Record<string, string> = {};
  if (n.vni !== undefined) options['com.docker.network.driver.overlay.vxlanid_list'] = String(n.vni);
  if (n.encrypted) options.encrypted = '';
  if (n.mtu !== 1500) options['com.docker.network.driver.mtu'] = String(n.mtu);
  return {
    Name: n.name,
    Id: n.id,
    Created: n.createdAt,
    Scope: 'swarm',
    Driver: n.driver,
    EnableIPv4: !n.subnet.includes(':'),
    EnableIPv6: n.subnet.includes(':'),
    IPAM: {
      Driver: 'default',
      Options: null,
      Config: [{ Subnet: n.subnet, Gateway: n.gateway, ...(n.vipRange ? { IPRange: n.vipRange } : {}) }],
    },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: n.ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: options,
    Labels: n.labels,
    Peers: peers.map((p) => ({ Name: p.name, IP: p.ip })),
  };
}

function dockerPorts(ports: readonly PortConfig[]) {
  return ports.map((p) => ({
    Protocol: p.protocol,
    TargetPort: p.target,
    PublishedPort: p.published,
    PublishMode: p.mode,
  }));
}

export function dockerService(
  state: ClusterState,
  s: Service,
  counts: { tasks: number; running: number },
  /** `ServiceStatus` (running and desired tasks), as Docker adds it for `?status=true`. */
  status = true,
) {
  const ports = dockerPorts(s.ports);
  const endpointSpec = { Mode: s.endpointMode, ...(ports.length ? { Ports: ports } : {}) };
  return {
    ID: s.id,
    Version: { Index: s.version },
    CreatedAt: s.createdAt,
    UpdatedAt: s.updatedAt,
    Spec: {
      Name: s.name,
      Labels: s.labels,
      TaskTemplate: {
        ContainerSpec: { Image: s.image ?? '' },
        Networks: s.networks.map((n) => ({ Target: n.network, Aliases: n.aliases })),
        ForceUpdate: 0,
        Runtime: 'container',
      },
      // meshd does not schedule: the replicas a service has are the tasks registered for it.
      Mode: s.mode === 'global' ? { Global: {} } : { Replicated: { Replicas: counts.tasks } },
      EndpointSpec: endpointSpec,
      // meshd starts no tasks, so there is nothing to watch settle: a zero monitor would mean
      // the CLI's default 5 s of "verify that tasks are stable" after every create and update.
      UpdateConfig: {
        Parallelism: 1,
        FailureAction: 'pause',
        Monitor: 1,
        MaxFailureRatio: 0,
        Order: 'stop-first',
      },
    },
    Endpoint: {
      Spec: endpointSpec,
      ...(ports.length ? { Ports: ports } : {}),
      // Docker's order: the ingress VIP first, then one per network in vip mode.
      VirtualIPs: [
        ...(s.ingress ? [{ network: s.ingress.network, vip: s.ingress.vip }] : []),
        ...s.networks.filter((n) => n.vip),
      ].map((n) => ({ NetworkID: n.network, Addr: withPrefix(state, n.network, n.vip as string) })),
    },
    ...(status
      ? { ServiceStatus: { RunningTasks: counts.running, DesiredTasks: counts.tasks, CompletedTasks: 0 } }
      : {}),
  };
}

/** Docker's task states for meshd's health words: a task in rotation runs, the rest say why not. */
function taskState(health: string): { State: string; Err?: string } {
  if (health === 'healthy') return { State: 'running' };
  if (health === 'starting') return { State: 'starting' };
  if (health === 'node-down') return { State: 'orphaned', Err: 'node is down' };
  return { State: 'failed', Err: health };
}

export function dockerTask(state: ClusterState, t: Task, health: string) {
  const svc = state.services.get(t.service);
  return {
    ID: t.id,
    Version: { Index: t.version },
    CreatedAt: t.createdAt,
    UpdatedAt: t.updatedAt,
    Name: t.name,
    Labels: t.labels,
    Spec: {
      ContainerSpec: { Image: svc?.image ?? '' },
      Networks: (svc?.networks ?? []).map((n) => ({ Target: n.network, Aliases: n.aliases })),
    },
    ServiceID: t.service,
    Slot: t.slot,
    NodeID: t.node,
    Status: { Timestamp: t.updatedAt, Message: health, ...taskState(health), ContainerStatus: {} },
    DesiredState: 'running',
    NetworksAttachments: t.addresses.map((a) => {
      const net = state.networks.get(a.network);
      return {
        Network: { ID: a.network, Spec: { Name: net?.name ?? a.network } },
        Addresses: [withPrefix(state, a.network, a.address)],
      };
    }),
  };
}

export function dockerNode(state: ClusterState, n: Node, engine: string, arch: string) {
  const up = state.heartbeats.has(n.id);
  return {
    ID: n.id,
    Version: { Index: n.version },
    CreatedAt: n.createdAt,
    UpdatedAt: n.updatedAt,
    // Every meshd node can change the state and (with the key) sign joins: a manager in swarm's words.
    Spec: { Labels: {}, Role: 'manager', Availability: 'active' },
    Description: {
      Hostname: n.name,
      Platform: { Architecture: arch, OS: 'linux' },
      Resources: {},
      Engine: { EngineVersion: engine },
    },
    Status: { State: up ? 'ready' : 'down', Addr: n.advertiseAddr },
    ManagerStatus: {
      Leader: n.canIssue === true && n.id === state.cluster?.caHolder,
      Reachability: up ? 'reachable' : 'unreachable',
      Addr: n.apiListen,
    },
  };
}

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what}: must be an object`);
  return v as Obj;
};
const list = (v: unknown, what: string): unknown[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(`${what}: must be a list`);
  return v;
};

/**
 * `POST /networks/create` as the docker CLI sends it, read into meshd's network spec (the JSON
 * `readNetworkSpec` takes). Only the overlay driver, and one IPAM config.
 */
export function networkSpecOf(body: unknown): Obj {
  const b = obj(body, 'body');
  const ipam = obj(b.IPAM, 'IPAM');
  const configs = list(ipam.Config, 'IPAM.Config').map((c, i) => obj(c, `IPAM.Config[${i}]`));
  if (configs.length > 1) throw invalid('IPAM.Config: meshd networks have one subnet');
  const c = configs[0] ?? {};
  const driver = b.Driver === undefined || b.Driver === '' ? 'overlay' : b.Driver;
  return {
    name: b.Name,
    driver,
    ...(c.Subnet ? { subnet: c.Subnet } : {}),
    ...(c.Gateway ? { gateway: c.Gateway } : {}),
    ...(c.IPRange ? { vipRange: c.IPRange } : {}),
    attachable: b.Attachable === true,
    ingress: b.Ingress === true,
    internal: b.Internal === true,
    labels: b.Labels ?? {},
    options: b.Options ?? {},
  };
}

/**
 * A Docker `ServiceSpec` read into meshd's service spec. Networks may be named by id or name;
 * `resolveNetwork` gives meshd's reference. What meshd has no use for (resources, restart
 * policy, placement) is accepted and left alone, as a swarm of one image would.
 */
export function serviceSpecOf(body: unknown, keep?: Service): Obj {
  const b = obj(body, 'body');
  const tt = obj(b.TaskTemplate, 'TaskTemplate');
  const cs = obj(tt.ContainerSpec, 'TaskTemplate.ContainerSpec');
  const mode = obj(b.Mode, 'Mode');
  const ep = obj(b.EndpointSpec, 'EndpointSpec');
  // The CLI sends networks in TaskTemplate (the old top-level Networks too, from older clients).
  const nets = list(tt.Networks ?? b.Networks, 'TaskTemplate.Networks').map((n, i) => {
    const o = obj(n, `TaskTemplate.Networks[${i}]`);
    return { network: o.Target, aliases: o.Aliases ?? [] };
  });
  const ports = list(ep.Ports, 'EndpointSpec.Ports').map((p, i) => {
    const o = obj(p, `EndpointSpec.Ports[${i}]`);
    return {
      target: o.TargetPort,
      ...(o.PublishedPort ? { published: o.PublishedPort } : {}),
      protocol: o.Protocol ?? 'tcp',
      mode: o.PublishMode ?? 'ingress',
    };
  });
  const spec: Obj = {
    name: b.Name,
    ...(cs.Image ? { image: cs.Image } : {}),
    mode: mode.Global !== undefined ? 'global' : 'replicated',
    endpointMode: ep.Mode ?? 'vip',
    networks: nets,
    ports,
    labels: b.Labels ?? {},
  };
  // What Docker's spec cannot say (meshd's balancing, probes, timeouts) stays as it was;
  // Docker's own fields (name, image, mode, networks, ports, labels) come from its spec.
  if (keep) return { ...specJsonOf(keep), ...spec };
  return spec;
}
