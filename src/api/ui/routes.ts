import { readFileSync } from 'node:fs';
import { lookup } from '../../model/cluster-state.js';
import { MeshError } from '../../model/errors.js';
import { streamEvents } from '../events-stream.js';
import { sendPage } from '../http-util.js';
import type { ApiContext, Route } from '../routes.js';
import { appPage } from './page.js';
import { RateSampler, rateStepMs } from './rates.js';
import { styles } from './styles.js';
import { overview, serviceView } from './view.js';

/** The page's script modules (compiled from ./client), each read once: a fixed list, never a path from the request. */
const modules = ['app', 'dom', 'overview', 'service-page'] as const;
const scripts = new Map<string, string>();
function pageScript(name: string): string {
  let text = scripts.get(name);
  if (text === undefined) {
    try {
      text = readFileSync(new URL(`./client/${name}.js`, import.meta.url), 'utf8');
    } catch {
      throw new MeshError('not_found', 'the page script is not built: run npm run build');
    }
    scripts.set(name, text);
  }
  return text;
}

const ref = '([^/]+)';

/**
 * `/ui`: a live, read-only page of the cluster on the API listener (Consul's UI, Traefik's
 * dashboard), with the API's rules: free on loopback, the token (or its cookie) elsewhere. The
 * page and its styles are static; its data comes from `/ui/api/*`, and `/ui/api/live` pushes each
 * event (and a tick for the charts every 5 s) so it redraws without polling.
 */
export function uiRoutes(ctx: ApiContext): { routes: Route[]; close(): void } {
  const rates = new RateSampler(ctx.registry);
  rates.start();
  const page = (path: string, handle: Route['handle'], open = false): Route => ({
    method: 'GET',
    path: new RegExp(`^${path}$`),
    handle,
    page: true,
    open,
  });
  const routes: Route[] = [
    page('/ui/?', async () => ({ stream: (res) => sendPage(res, 200, 'text/html', appPage()) })),
    // The styles and script hold nothing of the cluster; the sign-in form needs the styles.
    page('/ui/app\\.css', async () => ({ stream: (res) => sendPage(res, 200, 'text/css', styles) }), true),
    page(
      `/ui/(${modules.join('|')})\\.js`,
      async ({ params }) => {
        const js = pageScript(params[0] as string);
        return { stream: (res) => sendPage(res, 200, 'text/javascript', js) };
      },
      true,
    ),
    { method: 'GET', path: /^\/ui\/api\/overview$/, handle: async () => ({ body: overview(ctx, rates) }) },
    {
      method: 'GET',
      path: new RegExp(`^/ui/api/services/${ref}$`),
      handle: async ({ params }) => ({
        body: serviceView(ctx, lookup(ctx.controller.state.services, params[0] as string, 'service'), rates),
      }),
    },
    {
      method: 'GET',
      path: /^\/ui\/api\/live$/,
      handle: async ({ req, query, closing }) => {
        req.headers.accept = 'text/event-stream';
        return { stream: (res) => streamEvents(ctx.events, req, res, query, closing, rateStepMs) };
      },
    },
  ];
  return { routes, close: () => rates.stop() };
}
