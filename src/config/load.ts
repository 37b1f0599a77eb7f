import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { invalid, messageOf } from '../model/errors.js';
import { readSettings, type Settings } from './settings.js';

/** meshd's flags and the config path each one overrides; `many` flags repeat into a list. */
const flagPaths: Record<string, { path: string; many?: boolean }> = {
  '--store': { path: 'store' },
  '--store-ca': { path: 'storeTls.ca' },
  '--store-cert': { path: 'storeTls.cert' },
  '--store-key': { path: 'storeTls.key' },
  '--api-listen': { path: 'api.listen' },
  '--api-token': { path: 'api.token' },
  '--api-tls': { path: 'api.tls' },
  '--dns-listen': { path: 'dns.listen' },
  '--metrics-listen': { path: 'metrics.listen' },
  '--data-listen': { path: 'mesh.dataListen' },
  '--data-advertise': { path: 'mesh.dataAdvertise' },
  '--publish-addr': { path: 'mesh.publishAddr' },
  '--remote-tasks': { path: 'mesh.remoteTasks' },
  '--dataplane': { path: 'mesh.dataplane' },
  '--kernel-state-on-stop': { path: 'mesh.kernelStateOnStop' },
  '--node-name': { path: 'node.name' },
  '--advertise-addr': { path: 'node.advertiseAddr' },
  '--datapath-addr': { path: 'node.datapathAddr' },
  '--state-dir': { path: 'node.stateDir' },
  '--upstream': { path: 'dns.upstreams', many: true },
  '--ingress-subnet': { path: 'cluster.ingressSubnet' },
  '--default-addr-pool': { path: 'cluster.defaultAddrPool', many: true },
  '--default-addr-pool-mask-length': { path: 'cluster.defaultAddrPoolMaskLength' },
  '--lease-ttl': { path: 'cluster.leaseTtl' },
  '--log-level': { path: 'log.level' },
  '--provider': { path: 'provider.kind' },
  '--join-token': { path: 'security.joinToken' },
  '--cert-rotation': { path: 'security.certRotation' },
  '--docker-host': { path: 'provider.dockerHost' },
};

export const usage = `usage: meshd [--config FILE] [flags]

  --config FILE            YAML configuration (flags override it)
  --store memory|file:PATH|etcd://HOST:PORT[,HOST:PORT...]|etcds://...
  --store-ca FILE --store-cert FILE --store-key FILE   TLS and client certificate for etcds://
  --api-listen HOST:PORT   management API (default 127.0.0.1:2377)
  --api-token TOKEN        bearer token required when the API listens off loopback
  --api-tls true|false     serve the API over HTTPS with the node's cluster certificate
  --dns-listen HOST:PORT   DNS over UDP and TCP (default 127.0.0.1:1053; off to disable)
  --metrics-listen HOST:PORT  Prometheus metrics (default 127.0.0.1:9377)
  --data-listen HOST:PORT  data plane between nodes (default DATAPATH_ADDR:4789)
  --data-advertise HOST:PORT  what other nodes dial for the data plane (default the data-listen address)
  --publish-addr ADDR      address published ports bind on (default 0.0.0.0)
  --remote-tasks auto|direct|dataplane  how tasks on other nodes are reached (default auto: over an
                           overlay this node carries, else the authenticated data plane whenever
                           both nodes hold a certificate; dataplane: always the data plane)
  --dataplane auto|kernel|userspace  what serves published ports and VIPs (default auto: nftables
                           where meshd may program it and a port needs nothing only the proxy does)
  --kernel-state-on-stop remove|keep  whether a clean stop removes meshd's nftables tables (default
                           remove; keep lets new connections flow while meshd restarts)
  --cleanup                remove meshd's nftables tables and exit
  --node-name NAME         this node's name (default the hostname)
  --advertise-addr ADDR    address other nodes reach this node's API on
  --datapath-addr ADDR     address other nodes send data-plane traffic to
  --state-dir DIR          where the node id and the embedded store live (default var)
  --upstream IP[:PORT]     upstream resolver, repeatable, at most 3
  --ingress-subnet CIDR    subnet of the default ingress network at cluster init
  --default-addr-pool CIDR where networks created without --subnet get one, at cluster init
                           (repeatable; default 10.0.0.0/8, as swarm)
  --default-addr-pool-mask-length N
                           the size of each of those subnets (default 24)
  --lease-ttl DURATION     node liveness lease (default 5s)
  --log-level debug|info|warn|error
  --join-token TOKEN       join an existing cluster (meshctl swarm join-token worker prints it)
  --cert-rotation DURATION how often node certificates are renewed (default 12h)
  --provider none|docker   register labelled containers of a Docker/Podman engine as tasks
  --docker-host unix:///PATH  the engine's socket (default DOCKER_HOST, else /var/run/docker.sock)
`;

export interface CommandLine {
  readonly configPath: string | undefined;
  readonly overrides: readonly { path: string; value: string; many: boolean; flag: string }[];
  readonly help: boolean;
  readonly version: boolean;
  /** `--cleanup`: remove what meshd left in the kernel and exit. */
  readonly cleanup: boolean;
}

export function parseFlags(argv: readonly string[]): CommandLine {
  let configPath: string | undefined;
  const overrides: { path: string; value: string; many: boolean; flag: string }[] = [];
  let help = false;
  let version = false;
  let cleanup = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    if (arg === '--cleanup') {
      cleanup = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    let value = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (name !== '--config' && !flagPaths[name])
      throw invalid(`flag ${name}: unknown flag (see meshd --help)`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw invalid(`flag ${name}: needs a value`);
    }
    if (name === '--config') configPath = value;
    else {
      const target = flagPaths[name] as { path: string; many?: boolean };
      overrides.push({ path: target.path, value, many: target.many ?? false, flag: name });
    }
  }
  return { configPath, overrides, help, version, cleanup };
}

function setPath(
  obj: Record<string, unknown>,
  path: string,
  value: string,
  many: boolean,
  seenMany: Set<string>,
): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  const last = parts.at(-1) as string;
  if (many) {
    // The first use of a repeatable flag replaces the file's list; later uses append.
    if (!seenMany.has(path)) cur[last] = [];
    seenMany.add(path);
    (cur[last] as unknown[]).push(value);
  } else {
    cur[last] = value;
  }
}

/** Reads the config file (if any), applies flag overrides, and validates the result. */
export function loadSettings(cmd: CommandLine): Settings {
  let raw: Record<string, unknown> = {};
  if (cmd.configPath) {
    let text: string;
    try {
      text = readFileSync(cmd.configPath, 'utf8');
    } catch (err) {
      throw invalid(`config ${cmd.configPath}: ${messageOf(err)}`);
    }
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      throw invalid(`config ${cmd.configPath}: not valid YAML: ${messageOf(err)}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc))
        throw invalid(`config ${cmd.configPath}: must be a mapping`);
      raw = doc as Record<string, unknown>;
    }
  }
  const seenMany = new Set<string>();
  for (const o of cmd.overrides) {
    // Numbers given as flags arrive as strings; the few numeric keys set by flags are durations.
    setPath(raw, o.path, o.value, o.many, seenMany);
  }
  try {
    return readSettings(raw);
  } catch (err) {
    const where = cmd.configPath ? `config ${cmd.configPath}: ` : '';
    throw invalid(`${where}${messageOf(err)}`);
  }
}
