/** The cluster's objects, in Docker's vocabulary. Every object is readonly once built. */

export type Protocol = 'tcp' | 'udp';
export type PublishMode = 'ingress' | 'host';
export type EndpointMode = 'vip' | 'dnsrr';
export type ServiceMode = 'replicated' | 'global';
export type LbPolicy = 'round-robin' | 'least-conn' | 'p2c' | 'source-ip';
export type ProxyProtocol = 'none' | 'v1' | 'v2';
export type HealthType = 'none' | 'tcp' | 'http';
/** What an engine (or an operator) says of a task's own health; `none` means no healthcheck there. */
export type ReportedHealth = 'none' | 'starting' | 'healthy' | 'unhealthy';

/** Fields every stored object carries; `version` is the store revision of its last write. */
export interface Meta {
  readonly id: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Network extends Meta {
  readonly name: string;
  readonly driver: 'overlay';
  readonly subnet: string;
  readonly gateway: string;
  /** Where VIPs are taken from when set (so an engine's own IPAM can own the rest). */
  readonly vipRange?: string;
  readonly attachable: boolean;
  readonly ingress: boolean;
  readonly internal: boolean;
  readonly encrypted: boolean;
  readonly mtu: number;
  /** The VXLAN network identifier of its overlay; networks made before VNIs have none (logical only). */
  readonly vni?: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Healthcheck {
  readonly type: HealthType;
  /** HTTP path for `http` probes. */
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
  /** Probe interval while a task is unhealthy or starting: faster, so recovery is noticed soon. */
  readonly unhealthyIntervalMs: number;
}

export interface PortConfig {
  readonly published: number;
  readonly target: number;
  readonly protocol: Protocol;
  readonly mode: PublishMode;
  /**
   * Where an ingress port's connections go: any healthy task (`cluster`, Docker's only way), or
   * only this node's tasks (`local`, Kubernetes' externalTrafficPolicy: Local): the client's
   * address is kept and a node without a healthy task refuses, so an outside balancer moves on.
   */
  readonly traffic?: 'cluster' | 'local';
  /**
   * Publish on this address only (`-p 192.0.2.10:8080:80`, moby#26696), on every node that has
   * it; absent, on the node's publish address.
   */
  readonly hostIp?: string;
}

/** A service's attachment to one network, with its aliases and (vip mode) its VIP there. */
export interface ServiceNetwork {
  readonly network: string;
  readonly aliases: readonly string[];
  readonly vip?: string;
}

export interface Service extends Meta {
  readonly name: string;
  /** The image a `docker service create` named: recorded, not run (tasks come from a provider or `task add`). */
  readonly image?: string;
  readonly mode: ServiceMode;
  readonly endpointMode: EndpointMode;
  readonly networks: readonly ServiceNetwork[];
  /**
   * Its VIP on the ingress network, which a service with ingress-published ports joins as in
   * swarm (swarmkit adds ingress to its endpoint). Its tasks take no ingress address: the mesh
   * reaches them on their own networks, so ingress's /24 bounds services, not tasks.
   */
  readonly ingress?: { readonly network: string; readonly vip: string };
  readonly ports: readonly PortConfig[];
  /** Extra target ports balanced on the VIP without being published (like Dockerfile EXPOSE). */
  readonly expose: readonly number[];
  readonly healthcheck: Healthcheck;
  readonly lb: LbPolicy;
  readonly localFirst: boolean;
  /** `tasks.NAME` lists tasks not ready yet too (on live nodes); the VIP and the mesh do not. */
  readonly publishNotReady?: boolean;
  readonly proxyProtocol: ProxyProtocol;
  readonly idleTimeoutMs: number;
  readonly drainMs: number;
  /** Concurrent connections allowed per task; 0 means no limit. */
  readonly maxConnsPerTask: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Attachment {
  readonly network: string;
  readonly address: string;
}

export interface Task extends Meta {
  readonly name: string;
  readonly service: string;
  /** Replica slot (replicated services); global services use the node id in names instead. */
  readonly slot: number;
  readonly node: string;
  readonly addresses: readonly Attachment[];
  /** Health reported from outside meshd's probes (a container engine's HEALTHCHECK). */
  readonly reportedHealth: ReportedHealth;
  readonly labels: Readonly<Record<string, string>>;
  /** The network namespace (a path on its node) meshd joins to the overlay: veths, addresses, routes. */
  readonly netns?: string;
  /** The host-mode ports (`8080/tcp`) it holds on its node, as its service published them when it came. */
  readonly hostPorts?: readonly string[];
}

export interface Container extends Meta {
  readonly name: string;
  readonly node: string;
  /** Who registered it: a provider (`docker`), or absent when attached by hand. */
  readonly source?: string;
  readonly aliases: readonly string[];
  readonly addresses: readonly Attachment[];
  /** The network namespace (a path on its node) meshd joins to the overlay. */
  readonly netns?: string;
}

export interface Node extends Meta {
  readonly name: string;
  /** Whether its data-plane port speaks mutually authenticated TLS (it holds a cluster certificate). */
  readonly dataTls?: boolean;
  /** Whether its management API is HTTPS. */
  readonly apiTls?: boolean;
  /** Whether it holds the cluster key, so it can sign other nodes' certificates (joins, renewals). */
  readonly canIssue?: boolean;
  /** When its certificate expires (absent: it has none). */
  readonly certExpires?: string;
  /** A listener for joins and renewals only, when its API listens on loopback alone. */
  readonly joinListen?: string;
  /** Whether it can serve ports in the kernel (nftables), or serves every port in userspace. */
  readonly dataplane?: 'kernel' | 'userspace';
  /**
   * Its own address on each overlay network it carries, by network id: Docker's `lb-<network>`
   * endpoint. Traffic this node sends into the overlay on behalf of others (the routing mesh)
   * leaves from it, so replies from other nodes come back here and not to the gateway, which
   * every node holds.
   */
  readonly overlayAddresses?: Readonly<Record<string, string>>;
  readonly advertiseAddr: string;
  readonly datapathAddr: string;
  readonly dataListen: string;
  readonly apiListen: string;
}

/** A node's liveness record: present while the node's lease is alive. */
export interface NodeHeartbeat {
  readonly node: string;
  readonly lastSeen: string;
}

/** Probe results of one task, written by the node that holds the task. */
export interface TaskHealth {
  readonly task: string;
  readonly healthy: boolean;
  readonly since: string;
  readonly output: string;
}

/** Cluster-wide facts fixed at init, like swarm's cluster id. */
export interface AddrPools {
  readonly pools: readonly string[];
  readonly maskLength: number;
}

export interface ClusterInfo {
  readonly id: string;
  readonly createdAt: string;
  /** Where networks created without a subnet get one (set at init; swarm's default when absent). */
  readonly addrPools?: AddrPools;
  /** The cluster CA certificate (PEM). */
  readonly caCert?: string;
  /** The node that created the CA (any node holding the cluster key can issue). */
  readonly caHolder?: string;
  /** SHA-256 of the current join token's secret. */
  readonly tokenHash?: string;
  /** The CA key, sealed with the cluster key (which only member nodes hold, never the store). */
  readonly caKeySealed?: string;
  /** The current join token, sealed with the cluster key, so every issuer can check joins and print it. */
  readonly tokenSealed?: string;
  /** Node ids that were issued a certificate through a join: a join never reuses one. */
  readonly certified?: Readonly<Record<string, string>>;
  /** Node ids removed with `node rm`: they may not register again. */
  readonly removed?: Readonly<Record<string, string>>;
}
