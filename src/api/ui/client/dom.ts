// DOM building for the page: elements made as nodes (never as HTML text, so a service or task
// name cannot inject markup), and the small pieces every view uses.

export type Child = Node | string | number | null | undefined | false;

export function h(
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

export interface Rates {
  connections: number[];
  bytes: number[];
}

export function healthClass(health: string): string {
  if (health === 'healthy') return 'ok';
  if (health === 'starting') return 'warn';
  return 'bad';
}

export function badge(text: string, cls: string): HTMLElement {
  return h('span', { class: `badge ${cls}` }, text);
}

export function fmtRate(v: number, unit: string): string {
  if (unit === 'B/s') {
    if (v >= 1e9) return `${(v / 1e9).toFixed(1)} GB/s`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(1)} MB/s`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(1)} kB/s`;
    return `${v.toFixed(0)} B/s`;
  }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${unit}`;
}

/** A small line chart of the last minutes (one point per 5 s), drawn as SVG. */
export function spark(values: number[], unit: string, label: string): HTMLElement {
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

export function healthBar(healthy: number, total: number): HTMLElement {
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

export function table(head: string[], rows: HTMLElement[], label: string): HTMLElement {
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
