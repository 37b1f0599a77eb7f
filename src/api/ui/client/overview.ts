import { badge, h, healthBar, type Rates, spark, table } from './dom.js';

export interface Overview {
  node: { id: string; name: string; status: string; reason: string };
  store: { description: string; connected: boolean };
  nodes: {
    id: string;
    name: string;
    self: boolean;
    address: string;
    state: string;
    reason: string;
    dataTls: boolean;
    dataplane: string;
    lastSeen: string;
  }[];
  networks: {
    id: string;
    name: string;
    subnet: string;
    used: number;
    capacity: number;
    encrypted: boolean;
    attachable: boolean;
    ingress: boolean;
    internal: boolean;
  }[];
  services: {
    id: string;
    name: string;
    mode: string;
    endpointMode: string;
    ports: string[];
    tasks: number;
    healthy: number;
    rates: Rates;
  }[];
}

/** The cluster at a glance: nodes, networks, services. */
export function renderOverview(o: Overview): HTMLElement[] {
  const ready = o.nodes.filter((n) => n.state === 'ready').length;
  const unhealthy = o.services.reduce((a, s) => a + (s.tasks - s.healthy), 0);
  const cards = h(
    'div',
    { class: 'cards' },
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'muted' }, 'Nodes ready'),
      h('div', { class: 'n' }, `${ready}/${o.nodes.length}`),
    ),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'muted' }, 'Services'),
      h('div', { class: 'n' }, o.services.length),
    ),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'muted' }, 'Tasks not healthy'),
      h('div', { class: `n ${unhealthy ? 'bad' : 'ok'}` }, unhealthy),
    ),
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'muted' }, 'Store'),
      h('div', { class: `n ${o.store.connected ? 'ok' : 'bad'}` }, o.store.connected ? 'connected' : 'away'),
    ),
  );
  const nodes = table(
    ['Node', 'Address', 'State', 'Data plane', 'Last seen'],
    o.nodes.map((n) =>
      h(
        'tr',
        { 'data-node': n.name },
        h('td', {}, n.name, n.self ? h('span', { class: 'muted' }, ' (this node)') : null),
        h('td', { class: 'mono' }, n.address),
        h(
          'td',
          {},
          badge(n.state, n.state === 'ready' ? 'ok' : n.state === 'degraded' ? 'warn' : 'bad'),
          n.reason ? h('div', { class: 'muted' }, n.reason) : null,
        ),
        // Kernel (nftables) or userspace, and whether node-to-node traffic is mTLS.
        h('td', {}, [n.dataplane || 'unknown', n.dataTls ? 'mTLS' : 'no TLS'].join(', ')),
        h('td', { class: 'muted' }, n.lastSeen ? new Date(n.lastSeen).toLocaleTimeString() : ''),
      ),
    ),
    'Nodes',
  );
  const networks = table(
    ['Network', 'Subnet', 'Addresses in use', 'Options'],
    o.networks.map((n) =>
      h(
        'tr',
        { 'data-network': n.name },
        h('td', {}, n.name),
        h('td', { class: 'mono' }, n.subnet),
        h(
          'td',
          {},
          h(
            'div',
            { class: 'health-bar' },
            h('progress', {
              value: String(n.used),
              max: String(Math.max(n.capacity, 1)),
              'aria-label': `${n.used} of ${n.capacity} addresses in use`,
            }),
            h('span', {}, `${n.used}/${n.capacity}`),
          ),
        ),
        h(
          'td',
          {},
          ...(['ingress', 'encrypted', 'attachable', 'internal'] as const)
            .filter((k) => n[k])
            .flatMap((k) => [badge(k, 'muted'), ' ']),
        ),
      ),
    ),
    'Networks',
  );
  const services = table(
    ['Service', 'Mode', 'Ports', 'Healthy tasks', 'Connections/s', 'Throughput'],
    o.services.map((s) =>
      h(
        'tr',
        { 'data-service': s.name, class: 'clickable' },
        h('td', {}, h('a', { href: `#/service/${encodeURIComponent(s.id)}` }, s.name)),
        h('td', {}, `${s.mode}, ${s.endpointMode}`),
        h('td', { class: 'mono' }, s.ports.join(', ')),
        h('td', {}, healthBar(s.healthy, s.tasks)),
        h('td', {}, spark(s.rates.connections, '/s', `${s.name} connections per second`)),
        h('td', {}, spark(s.rates.bytes, 'B/s', `${s.name} bytes per second`)),
      ),
    ),
    'Services',
  );
  return [
    h('h1', {}, 'Cluster'),
    cards,
    h('h2', {}, 'Services'),
    services,
    h('h2', {}, 'Nodes'),
    nodes,
    h('h2', {}, 'Networks'),
    networks,
  ];
}
