// The dashboard in real headless Chromium (Debian's package, driven by playwright-core) against
// a real API on PostgreSQL and Redis: sign in with an admin token, the grid shows the PCs in the
// database in their colours, and when an agent reports a tap over a real WebSocket the PC's
// tile turns "present" without a reload — checked in the DOM and in a screenshot's pixels.
import { existsSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '@deskpool/db';
import { FleetSampler } from '../src/dashboard/index.js';
import { addHost, connectAgent, startDashboardApi, type DashboardApi, type FakeAgent } from './dashboard-harness.js';
import { decodePng, hex } from './dashboard-png.js';

const CHROMIUM = process.env.DESKPOOL_CHROMIUM ?? '/usr/bin/chromium';
/** The tile colours of dashboard.css. */
const COLOURS = { present: '#2e9e4f', batch: '#5b5bd6', suspended: '#8aa0b8', asleep: '#27324a', offline: '#c4413a', free: '#d9dee4' } as const;

let api: DashboardApi;
let browser: Browser;
let page: Page;
let agent: FakeAgent | undefined;
const pcs: Record<string, { hostId: string; credential: string }> = {};
const requestedUrls: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/services.sh as root (it installs Debian's chromium package), or set DESKPOOL_CHROMIUM`);
  }
  api = await startDashboardApi({ dashboard: { feedPollMs: 200 } });
  const p = api.db.prisma;
  const person = async (name: string) => (await p.user.create({ data: { name } })).id;
  const desktop = (owner: string, state: 'RUNNING' | 'SUSPENDED', hostId: string | null) =>
    p.desktopVm.create({ data: { name: `dpt-ui-${randomUUID().slice(0, 8)}`, ownerUserId: owner, poolId: api.poolId, vcpus: 2, memoryMiB: 2048, maxVcpus: 2, maxMemoryMiB: 2048, diskLocation: '/d', state, currentHostId: hostId } });

  const ann = await person('ann');
  pcs.present = await addHost(api, { name: 'pc-01-present', onlineState: 'online', presenceState: 'present', ownerUserId: ann });
  await desktop(ann, 'RUNNING', pcs.present.hostId);
  pcs.batch = await addHost(api, { name: 'pc-02-batch', onlineState: 'online', presenceState: 'idle' });
  const job = await p.batchJob.create({ data: { name: 'render', submittedBy: 'token:t', spec: { cores: 2 }, taskCount: 1, state: 'running' } });
  await p.batchTask.create({ data: { jobId: job.id, index: 0, state: 'running', hostId: pcs.batch.hostId } });
  pcs.asleep = await addHost(api, { name: 'pc-03-asleep', asleep: true });
  pcs.offline = await addHost(api, { name: 'pc-04-offline' });
  pcs.free = await addHost(api, { name: 'pc-05-free', onlineState: 'online' });
  // Tom's PC: offline until its agent connects; his desktop is suspended for the night.
  const tom = await person('tom');
  pcs.tap = await addHost(api, { name: 'pc-06-tom', ownerUserId: tom, presenceState: 'idle' });
  const tomsDesktop = await desktop(tom, 'SUSPENDED', null);
  await recordAudit(p, { entityType: 'vm', entityId: tomsDesktop.id, action: 'vm.state.SUSPENDING->SUSPENDED', actor: 'scheduler', cause: 'rule:idle-suspend' });
  // Two samples for the charts.
  let now = Date.now() - 3600_000;
  const sampler = new FleetSampler(p, { now: () => new Date(now) }, { periodMs: 60_000, tickMs: 0, retentionMs: 86_400_000 });
  await sampler.sampleNow();
  now += 1800_000;
  await sampler.sampleNow();

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  page.on('request', (r) => requestedUrls.push(r.url()));
}, 120_000);

afterAll(async () => {
  await agent?.close().catch(() => undefined);
  await browser?.close();
  await api?.close();
});

const tile = (name: keyof typeof pcs) => page.locator(`.pc[data-pc-id="${pcs[name]!.hostId}"]`);

/** The colour a tile is painted with, read from a screenshot of the grid (not from the DOM). */
async function paintedColours(): Promise<{ colours: Record<string, string>; distinct: number }> {
  const grid = page.locator('#grid');
  const shot = decodePng(await grid.screenshot());
  const box = (await grid.boundingBox())!;
  const colours: Record<string, string> = {};
  for (const name of Object.keys(pcs)) {
    const t = (await tile(name).boundingBox())!;
    // A point inside the tile, right of the text's start and below its first line.
    colours[name] = hex(shot.pixel(Math.round(t.x - box.x + t.width - 6), Math.round(t.y - box.y + t.height - 4)));
  }
  const seen = new Set<string>();
  for (let y = 0; y < shot.height; y += 2) for (let x = 0; x < shot.width; x += 2) seen.add(hex(shot.pixel(x, y)));
  return { colours, distinct: seen.size };
}

describe('dashboard in Chromium', () => {
  it('signs in with an admin token kept in session storage, never in a URL', async () => {
    await page.goto(`${api.url}/dashboard`);
    await expect.poll(() => page.locator('#login').isVisible()).toBe(true);
    await page.fill('#token', 'dpa_not-a-real-token');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/not an admin token/);

    await page.fill('#token', api.adminToken);
    await page.click('#login-form button[type=submit]');
    await page.locator('#grid .pc').first().waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('deskpool.adminToken'))).toBe(api.adminToken);
    expect(page.url()).toBe(`${api.url}/dashboard`);
    expect(requestedUrls.filter((u) => u.includes(api.adminToken))).toEqual([]);
    await expect.poll(() => page.locator('#live').textContent(), { timeout: 15_000 }).toBe('live');
  });

  it('shows every PC of the database in the colour of its state, and the night charts', async () => {
    for (const name of ['present', 'batch', 'asleep', 'offline', 'free'] as const) {
      await expect.poll(() => tile(name).getAttribute('class')).toContain(`pc--${name}`);
    }
    await expect.poll(() => tile('tap').getAttribute('class')).toContain('pc--offline');
    expect(await page.locator('#grid .pc').count()).toBe(Object.keys(pcs).length);
    expect(await tile('present').textContent()).toContain('ann');

    const { colours, distinct } = await paintedColours();
    for (const name of ['present', 'batch', 'asleep', 'offline', 'free'] as const) expect(colours[name], name).toBe(COLOURS[name]);
    expect(distinct).toBeGreaterThan(6); // five tile colours, the background and text at least

    await expect.poll(() => page.locator('#chart-states polygon').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-power polyline').count()).toBe(2);
    expect(await page.locator('#pools tr').count()).toBe(1);
    expect(await page.locator('#vms tr').count()).toBe(2);
  });

  it("turns a PC's tile live when its agent connects and when its owner taps, without a reload", async () => {
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));
    let navigations = 0;
    page.on('framenavigated', () => (navigations += 1));

    agent = await connectAgent(api, pcs.tap!.credential);
    // Online now; nobody there and the desktop suspended.
    await expect.poll(() => tile('tap').getAttribute('class'), { timeout: 15_000 }).toContain('pc--suspended');

    await agent.send({ type: 'presence', state: 'present', idleSince: null, source: 'evdev' });
    await expect.poll(() => tile('tap').getAttribute('class'), { timeout: 15_000 }).toContain('pc--present');
    await expect.poll(() => page.locator('[data-count="present"]').textContent()).toBe('2');
    await expect.poll(() => page.locator('#activity li').first().textContent()).toContain('presence.present');

    expect(navigations).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    const { colours } = await paintedColours();
    expect(colours.tap).toBe(COLOURS.present);
    // To look at the page: DESKPOOL_DASHBOARD_SCREENSHOT=/tmp/dashboard.png npx vitest run <this file>
    const keep = process.env.DESKPOOL_DASHBOARD_SCREENSHOT;
    if (keep) writeFileSync(keep, await page.screenshot({ fullPage: true }));
  });

  it("shows a PC's and a desktop's history when clicked", async () => {
    await tile('tap').click();
    await expect.poll(() => page.locator('#history-of').textContent()).toBe('host pc-06-tom');
    await expect.poll(async () => (await page.locator('#history li').allTextContents()).join('\n')).toMatch(/presence\.present[\s\S]*agent\.connected/);

    // A desktop's history, from the audit trail.
    await page.locator('#vms tr', { hasText: 'tom' }).click();
    await expect.poll(() => page.locator('#history-of').textContent()).toMatch(/^vm dpt-ui-/);
    await expect.poll(async () => (await page.locator('#history li').allTextContents()).join('\n')).toContain('vm.state.SUSPENDING->SUSPENDED');
  });
});
