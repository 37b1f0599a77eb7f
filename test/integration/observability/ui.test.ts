import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, httpBackend } from '../../helpers/backends.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, type TestHost } from '../../helpers/netns.js';
import { freePort } from '../../helpers/ports.js';

// The page in a real browser: Debian's chromium, driven over the DevTools protocol (nothing
// downloads a browser). Screenshots go to test-artifacts/ui (not committed).
const artifacts = join(import.meta.dirname, '..', '..', '..', 'test-artifacts', 'ui');
const chromium = '/usr/bin/chromium';

let browser: Browser;
let m: MeshdProcess;
const backends: Backend[] = [];
const cleanup: (() => Promise<unknown>)[] = [];

/** A page that records every console error and uncaught exception. */
async function open(url: string, errors: string[], viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return page;
}

const text = (page: Page, selector: string) =>
  page.$eval(selector, (el) => el.textContent ?? '').catch(() => '');

/** A screenshot of real content: big (a blank page compresses to a few kB) and unlike the other theme's. */
async function shoot(page: Page, name: string): Promise<Buffer> {
  const png = Buffer.from(await page.screenshot({ fullPage: true }));
  writeFileSync(join(artifacts, `${name}.png`), png);
  expect(png.length).toBeGreaterThan(15_000);
  return png;
}

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  const port = await freePort('127.0.0.1');
  backends.push(
    await httpBackend('w1', '127.239.0.11', 8000),
    await httpBackend('w2', '127.239.0.12', 8000),
    await httpBackend('a1', '127.239.0.21', 9000),
  );
  m = await startMeshd({
    config: `mesh:
  publishAddr: 127.0.0.1
declare:
  networks: [{ name: shop, subnet: 127.239.0.0/16, attachable: true }]
  services:
    - { name: web, networks: [{ network: shop }], ports: [{ published: ${port}, target: 8000 }] }
    - { name: api, endpointMode: dnsrr, networks: [{ network: shop }] }
  tasks:
    - { service: web, ips: [127.239.0.11, 127.239.0.12] }
    - { service: api, ips: [127.239.0.21] }
`,
  });
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await m?.stop();
  await Promise.all(backends.map((b) => b.kill()));
});

describe('the web page at /ui', () => {
  it('lists the services with their task counts, in both themes, with no console error', async () => {
    const errors: string[] = [];
    const page = await open(`${m.api}/ui/`, errors);
    await eventually(async () => {
      expect(await text(page, 'tr[data-service="web"] .count')).toBe('2/2');
      expect(await text(page, 'tr[data-service="api"] .count')).toBe('1/1');
    }, 5000);
    expect(await text(page, 'tr[data-network="shop"]')).toContain('127.239.0.0/16');
    // Each node says which data plane it can run, as it registered.
    expect(await text(page, 'tr[data-node="test-node"]')).toMatch(/(kernel|userspace), (mTLS|no TLS)/);
    expect(await text(page, '#live')).toBe('live');
    const light = await shoot(page, 'overview-light');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    // Browser-side code as text: the test compiles without the DOM's types.
    const bg = await page.evaluate('getComputedStyle(document.documentElement).backgroundColor');
    expect(bg).not.toBe('rgb(255, 255, 255)');
    const dark = await shoot(page, 'overview-dark');
    expect(dark.equals(light)).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('turns a task red on its service page within a second of it going unhealthy, without a reload', async () => {
    const errors: string[] = [];
    const page = await open(`${m.api}/ui/`, errors);
    // Keyboard: Tab to the service's link and follow it.
    await page.waitForSelector('tr[data-service="web"] a');
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'web'; i++) {
      await page.keyboard.press('Tab');
      focused = String(await page.evaluate("document.activeElement?.textContent ?? ''"));
    }
    expect(focused).toBe('web');
    // A change redraws the page (so does the chart tick every 5 s): the focus stays where it was.
    await fetch(`${m.api}/networks/create`, { method: 'POST', body: JSON.stringify({ name: 'redraw' }) });
    await eventually(async () => expect(await text(page, 'tr[data-network="redraw"]')).toContain('redraw'));
    expect(await page.evaluate("document.activeElement?.textContent ?? ''")).toBe('web');
    await page.keyboard.press('Enter');
    await page.waitForSelector('tr[data-task]', { timeout: 5000 });
    const rows = await page.$$eval('tr[data-task]', (trs) => trs.map((tr) => tr.getAttribute('data-health')));
    expect(rows).toEqual(['healthy', 'healthy']);
    await page.evaluate('window.marker = 42');
    const tasks = JSON.parse(await m.ctl('task', 'ls', '--service', 'web', '--format', 'json')) as {
      id: string;
      name: string;
    }[];
    const sick = tasks[0] as { id: string; name: string };
    await m.ctl('task', 'health', sick.id, 'unhealthy');
    const changed = Date.now();
    await eventually(
      async () => {
        const cls = await page.$eval(`tr[data-task="${sick.name}"] .health .badge`, (el) => el.className);
        expect(cls).toContain('bad');
      },
      1000,
      20,
    );
    console.log(`task shown unhealthy ${Date.now() - changed} ms after the API call returned`);
    expect(await page.evaluate('window.marker')).toBe(42);
    // The history comes with the event itself, which may follow the state by a redraw.
    await eventually(async () => expect(await text(page, 'ul.events')).toContain('unhealthy'), 1000, 20);
    await shoot(page, 'service-light');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    await shoot(page, 'service-dark');
    await m.ctl('task', 'health', sick.id, 'none');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fits a phone-sized screen', async () => {
    const errors: string[] = [];
    const page = await open(`${m.api}/ui/`, errors, { width: 390, height: 844 });
    await page.waitForSelector('tr[data-service="web"]');
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    expect(overflow).toBeLessThanOrEqual(0);
    await shoot(page, 'overview-phone');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('off loopback, asks for the token, keeps it in a strict cookie, and the API refuses the page without it', async () => {
    expect(isRoot()).toBe(true);
    // A non-loopback address of this host: a browser here reaching it comes from that address.
    const net = `10.243.${process.pid % 200}`;
    const host: TestHost = await createTestHost(`mui${process.pid % 1000}`, `${net}.1`, `${net}.2`);
    cleanup.push(() => host.remove());
    const port = await freePort(`${net}.1`);
    const token = 'ui-test-token-0123456789';
    const remote = await startMeshd({ args: ['--api-listen', `${net}.1:${port}`, '--api-token', token] });
    cleanup.push(() => remote.stop());
    const base = `http://${net}.1:${port}`;
    const errors: string[] = [];
    const page = await open(`${base}/ui/`, errors);
    expect(await page.$('form[action="/ui/login"]')).not.toBeNull();
    // The page's own calls are refused without the token.
    expect(await page.evaluate(async () => (await fetch('/ui/api/overview')).status)).toBe(401);
    expect(await page.evaluate(async () => (await fetch('/services')).status)).toBe(401);
    // A wrong token: the form again, saying so.
    await page.type('#token', 'wrong');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    expect(await text(page, '.error')).toMatch(/not the API token/);
    await page.type('#token', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    await eventually(async () => expect(await text(page, '#live')).toBe('live'), 5000);
    const [cookie] = await browser.cookies();
    expect(cookie).toMatchObject({ name: 'meshd_token', httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(async () => (await fetch('/ui/api/overview')).status)).toBe(200);
    // The cookie reads; it never writes, so a forged form post cannot change the cluster.
    const post = await page.evaluate(
      async () => (await fetch('/networks/create', { method: 'POST', body: '{"name":"x"}' })).status,
    );
    expect(post).toBe(401);
    // The console shows the refused calls made on purpose above; nothing else.
    expect(errors.filter((e) => !/401/.test(e))).toEqual([]);
    await page.close();
  }, 60_000);
});
