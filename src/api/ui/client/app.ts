// The page's script: draws the overview and the service pages from /ui/api, and redraws when
// /ui/api/live pushes an event. No framework: a few tables, built as DOM nodes (never as HTML
// text, so a service or task name cannot inject markup).

type Child = Node | string | number | null | undefined | false;

function h(
  tag: string,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children)
    if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'number' ? String(c) : c);
  return el;
}

interface Rates {
  connections: number[];
  bytes: number[];
}
interface Overview {
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
interface ServicePage {
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

const main = document.getElementById('main') as HTMLElement;
const live = document.getElementById('live') as HTMLElement;
const where = document.getElementById('where') as HTMLElement;

async function get<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
  // The token cookie went (signed out, or the token changed): the page asks for it again.
  if (res.status === 401) {
    location.reload();
    throw new Error('signed out');
  }
  if (!res.ok)
    throw new Error(
      ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `HTTP ${res.status}`,
    );
  return (await res.json()) as T;
}

function healthClass(health: string): string {
  if (health === 'healthy') return 'ok';
  if (health === 'starting') return 'warn';
  return 'bad';
}

function badge(text: string, cls: string): HTMLElement {
  return h('span', { class: `badge ${cls}` }, text);
}

function fmtRate(v: number, unit: string): string {
  if (unit === 'B/s') {
    if (v >= 1e9) return `${(v / 1e9).toFixed(1)} GB/s`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(1)} MB/s`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(1)} kB/s`;
    return `${v.toFixed(0)} B/s`;
  }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${unit}`;
}

/** A small line chart of the last minutes (one point per 5 s), drawn as SVG. */
function spark(values: number[], unit: string, label: string): HTMLElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 120 28');
  svg.setAttribute('role', 'img');
  const last = values.at(-1) ?? 0;
  svg.setAttribute('aria-label', `${label}: ${fmtRate(last, unit)}`);
  const base = document.createElementNS(ns, 'line');
  for (const [k, v] of Object.entries({ x1: '0', y1: '27', x2: '120', y2: '27' })) base.setAttribute(k, v);
  svg.append(base);
  if (values.length > 1) {
    const max = Math.max(...values, 1e-9);
    const step = 120 / (values.length - 1);
    const pts = values
      .map((v, i) => `${(i * step).toFixed(1)},${(26 - (v / max) * 24).toFixed(1)}`)
      .join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts);
    svg.append(line);
  }
  return h('div', { class: 'rate' }, svg as unknown as Node, h('span', {}, fmtRate(last, unit)));
}

function healthBar(healthy: number, total: number): HTMLElement {
  const cls = total === 0 || healthy === 0 ? 'none' : healthy < total ? 'partial' : 'full';
  return h(
    'div',
    { class: 'health-bar' },
    h('progress', {
      value: String(healthy),
      max: String(Math.max(total, 1)),
      class: cls,
      'aria-label': `${healthy} of ${total} tasks healthy`,
    }),
    h('span', { class: 'count' }, `${healthy}/${total}`),
  );
}

function table(head: string[], rows: HTMLElement[], label: string): HTMLElement {
  return h(
    'section',
    {},
    h(
      'table',
      { 'aria-label': label },
      h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows),
    ),
  );
}

function renderOverview(o: Overview): HTMLElement[] {
  where.textContent = `node ${o.node.name} · ${o.store.description}`;
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

function when(timeNano: number): string {
  return new Date(timeNano / 1e6).toLocaleTimeString();
}

function renderService(s: ServicePage): HTMLElement[] {
  where.textContent = `service ${s.name}`;
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

let pending: number | undefined;
let drawing = false;
let again = false;

/** Draws the page the address names; a redraw asked for during one runs once after it. */
async function draw(): Promise<void> {
  if (drawing) {
    again = true;
    return;
  }
  drawing = true;
  try {
    const m = /^#\/service\/(.+)$/.exec(location.hash);
    const parts = m
      ? renderService(await get<ServicePage>(`/ui/api/services/${m[1]}`))
      : renderOverview(await get<Overview>('/ui/api/overview'));
    // A redraw (every event, every chart tick) must not take the keyboard user's place: the
    // link that had focus gets it back in the new page.
    const active = document.activeElement;
    const href =
      active instanceof HTMLAnchorElement && main.contains(active) ? active.getAttribute('href') : null;
    main.replaceChildren(...parts);
    if (href)
      for (const a of main.querySelectorAll('a'))
        if (a.getAttribute('href') === href) {
          a.focus();
          break;
        }
  } catch (err) {
    main.replaceChildren(
      h('p', { class: 'error', role: 'alert' }, `Cannot read the cluster: ${(err as Error).message}`),
    );
  } finally {
    drawing = false;
    if (again) {
      again = false;
      void draw();
    }
  }
}

/** Events come in bursts (a deploy): one redraw for a burst. */
function soon(): void {
  if (pending !== undefined) return;
  pending = window.setTimeout(() => {
    pending = undefined;
    void draw();
  }, 100);
}

function connect(): void {
  const source = new EventSource('/ui/api/live');
  source.onopen = () => {
    live.textContent = 'live';
    live.classList.add('on');
    soon();
  };
  source.onerror = () => {
    live.textContent = 'reconnecting';
    live.classList.remove('on');
  };
  for (const type of ['service', 'task', 'network', 'node', 'container', 'tick'])
    source.addEventListener(type, soon);
}

window.addEventListener('hashchange', () => {
  void draw().then(() => main.focus());
});
void draw();
connect();
