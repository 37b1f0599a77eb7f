import { badge, h, healthBar, healthClass, type Rates, spark, table } from './dom.js';

export interface ServicePage {
  id: string;
  name: string;
  mode: string;
  endpointMode: string;
  lb: string;
  healthcheck: string;
  errors: string[];
  vips: { network: string; vip: string; plane: string }[];
  ports: { port: string; plane: string; reason: string }[];
  tasks: {
    id: string;
    name: string;
    node: string;
    addresses: string[];
    health: string;
    route: string;
    probe?: { healthy: boolean; since: string; output: string };
  }[];
  events: { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number }[];
  rates: Rates;
}

function when(timeNano: number): string {
  return new Date(timeNano / 1e6).toLocaleTimeString();
}

/** One service: its tasks, addresses, health history, ejections and drains. */
export function renderService(s: ServicePage): HTMLElement[] {
  const healthy = s.tasks.filter((t) => t.health === 'healthy').length;
  const tasks = table(
    ['Task', 'Node', 'Addresses', 'Health', 'Last probe', 'Path'],
    s.tasks.map((t) =>
      h(
        'tr',
        { 'data-task': t.name, 'data-health': t.health },
        h('td', { class: 'mono' }, t.name),
        h('td', {}, t.node),
        h('td', { class: 'mono' }, t.addresses.join(', ')),
        h('td', { class: 'health' }, badge(t.health, healthClass(t.health))),
        h(
          'td',
          {},
          t.probe
            ? h(
                'span',
                {},
                badge(t.probe.healthy ? 'pass' : 'fail', t.probe.healthy ? 'ok' : 'bad'),
                ' ',
                h(
                  'span',
                  { class: 'muted' },
                  `${t.probe.output} (since ${new Date(t.probe.since).toLocaleTimeString()})`,
                ),
              )
            : h('span', { class: 'muted' }, s.healthcheck === 'none' ? 'no probe' : 'not yet'),
        ),
        h('td', {}, t.route),
      ),
    ),
    'Tasks',
  );
  const history = s.events.filter((e) => e.Action.startsWith('health_status'));
  const drops = s.events.filter((e) => e.Action === 'eject' || e.Action === 'drain');
  const list = (evs: ServicePage['events'], empty: string) =>
    evs.length === 0
      ? h('p', { class: 'muted' }, empty)
      : h(
          'ul',
          { class: 'events' },
          ...evs
            .slice()
            .reverse()
            .map((e) =>
              h(
                'li',
                {},
                h('span', { class: 'muted' }, when(e.timeNano)),
                ' ',
                h('span', { class: 'mono' }, e.Actor.Attributes.name ?? e.Actor.ID),
                ' ',
                badge(
                  e.Action.replace('health_status: ', ''),
                  e.Action.endsWith('healthy') && !e.Action.endsWith('unhealthy') ? 'ok' : 'bad',
                ),
                e.Actor.Attributes.reason
                  ? h('span', { class: 'muted' }, ` ${e.Actor.Attributes.reason}`)
                  : null,
                e.Actor.Attributes.connections
                  ? h('span', { class: 'muted' }, ` ${e.Actor.Attributes.connections} connections`)
                  : null,
              ),
            ),
        );
  return [
    h('p', {}, h('a', { href: '#/' }, '← Cluster')),
    h('h1', {}, s.name),
    h(
      'div',
      { class: 'cards' },
      h(
        'div',
        { class: 'card' },
        h('div', { class: 'muted' }, 'Healthy tasks'),
        healthBar(healthy, s.tasks.length),
      ),
      h(
        'div',
        { class: 'card' },
        h('div', { class: 'muted' }, 'Mode'),
        `${s.mode}, ${s.endpointMode}, ${s.lb}`,
      ),
      h(
        'div',
        { class: 'card' },
        h('div', { class: 'muted' }, 'Connections/s'),
        spark(s.rates.connections, '/s', 'connections per second'),
      ),
      h(
        'div',
        { class: 'card' },
        h('div', { class: 'muted' }, 'Throughput'),
        spark(s.rates.bytes, 'B/s', 'bytes per second'),
      ),
    ),
    ...(s.errors.length ? [h('p', { class: 'error', role: 'alert' }, s.errors.join('; '))] : []),
    h('h2', {}, 'Tasks'),
    tasks,
    h('h2', {}, 'Virtual IPs and published ports'),
    table(
      ['Address', 'Data plane'],
      [
        ...s.vips.map((v) =>
          h('tr', {}, h('td', { class: 'mono' }, `${v.vip} (${v.network})`), h('td', {}, v.plane)),
        ),
        ...s.ports.map((p) =>
          h(
            'tr',
            {},
            h('td', { class: 'mono' }, p.port),
            h('td', {}, p.plane, p.reason ? h('span', { class: 'muted' }, ` (${p.reason})`) : null),
          ),
        ),
      ],
      'Addresses',
    ),
    h('h2', {}, 'Health history'),
    list(history, 'No health changes seen by this node.'),
    h('h2', {}, 'Ejections and drains'),
    list(drops, 'None recently.'),
  ];
}
