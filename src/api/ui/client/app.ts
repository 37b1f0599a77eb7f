// The page's script: draws the overview and the service pages from /ui/api, and redraws when
// /ui/api/live pushes an event. No framework: a few tables, built as DOM nodes (dom.ts).

import { h } from './dom.js';
import { type Overview, renderOverview } from './overview.js';
import { renderService, type ServicePage } from './service-page.js';

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
    let parts: HTMLElement[];
    if (m) {
      const s = await get<ServicePage>(`/ui/api/services/${m[1]}`);
      where.textContent = `service ${s.name}`;
      parts = renderService(s);
    } else {
      const o = await get<Overview>('/ui/api/overview');
      where.textContent = `node ${o.node.name} · ${o.store.description}`;
      parts = renderOverview(o);
    }
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
