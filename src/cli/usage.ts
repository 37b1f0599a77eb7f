/**
 * What each verb takes, as `meshctl GROUP VERB --help` prints it (and `meshctl GROUP --help`,
 * every verb of the group).
 */
export const verbUsage: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  events: {
    '': `usage: meshctl events [OPTIONS]

  -f, --filter KEY=VALUE   type=service|task|network|node|container, event=ACTION (create,
                           update, remove, health_status, eject, drain, ready, down),
                           service=, node=, network=, task=, container= (name or id), scope=swarm|local
                           (repeatable: values of one key are alternatives, keys all apply)
  --since TIME             replay from TIME (10m, unix seconds, RFC 3339) out of this node's
                           recent events, then follow
  --until TIME             stop at TIME
  --format json            one JSON object per line (Docker's event shape)`,
  },
  network: {
    create: `usage: meshctl network create [OPTIONS] NETWORK

  -d, --driver overlay     the driver (overlay, the only one)
  --subnet CIDR            the network's subnet (default: the next free one of the cluster's
                           default address pools, 10.0.0.0/8 in /24s unless set at init)
  --gateway IP             the gateway address (default the subnet's first)
  --vip-range CIDR         where VIPs are allocated (default the whole subnet)
  --attachable             standalone containers may attach
  --internal               no published ports reach it; hidden from clients outside it
  --ingress                the routing-mesh network (one per cluster)
  -o, --opt KEY[=VALUE]    encrypted, com.docker.network.driver.mtu=N
  --label KEY=VALUE`,
    ls: 'usage: meshctl network ls [--format json]',
    inspect: 'usage: meshctl network inspect NETWORK [NETWORK...]',
    rm: 'usage: meshctl network rm NETWORK [NETWORK...]',
  },
  service: {
    create: `usage: meshctl service create --name NAME [OPTIONS]

  --network NET|name=NET,alias=A   attach to a network (repeatable)
  --endpoint-mode vip|dnsrr        a VIP per network, or DNS round-robin over task addresses
  --mode replicated|global
  -p, --publish PUB:TARGET[/udp] | published=P,target=T,protocol=tcp|udp,mode=ingress|host
  --expose PORT                    balanced on the VIP without publishing (repeatable)
  --lb round-robin|least-conn|p2c|source-ip   --local-first
  --publish-not-ready              tasks.NAME lists tasks not ready yet too (peers finding
                                   each other before they are healthy); the VIP does not
  --proxy-protocol none|v1|v2      --idle-timeout DURATION   --drain DURATION
  --max-conns-per-task N
  --health-type tcp|http --health-path P --health-interval D --health-timeout D
  --health-retries N --health-start-period D --health-unhealthy-interval D
  --label KEY=VALUE`,
    update: `usage: meshctl service update [OPTIONS] SERVICE

  the options of create, and --network-add/--network-rm NET, --publish-add/--publish-rm PORT`,
    ls: 'usage: meshctl service ls [--format json] [-q]',
    inspect: 'usage: meshctl service inspect SERVICE [SERVICE...]',
    rm: 'usage: meshctl service rm SERVICE [SERVICE...]',
    ps: 'usage: meshctl service ps SERVICE [--format json]   (ROUTE: how this node reaches each task)',
  },
  task: {
    add: 'usage: meshctl task add SERVICE [--node N] [--ip IP]... [--name N] [--netns PATH]',
    rm: 'usage: meshctl task rm TASK [TASK...]   (TASK: an id, a name, or SERVICE.SLOT such as web.2)',
    ls: 'usage: meshctl task ls [--service SERVICE] [--format json]',
    health: 'usage: meshctl task health TASK none|starting|healthy|unhealthy',
  },
  container: {
    attach: 'usage: meshctl container attach NETWORK --name NAME [--alias A]... [--ip IP] [--netns PATH]',
    detach: 'usage: meshctl container detach NAME [--network NETWORK]',
    ls: 'usage: meshctl container ls [-a|--all] [--format json]   (--all: also the containers the provider could not register, and why)',
  },
  node: {
    ls: 'usage: meshctl node ls [--format json] [-q]',
    inspect: 'usage: meshctl node inspect [NODE...]   (default: this node)',
    rm: 'usage: meshctl node rm [--force] NODE [NODE...]',
  },
  swarm: {
    'join-token': `usage: meshctl swarm join-token [--rotate] [-q] worker|manager

  prints the command that adds a node to this cluster; -q only the token; --rotate replaces it.
  meshd nodes are peers: worker and manager get the same token.`,
  },
};

/** Whether the arguments ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}
