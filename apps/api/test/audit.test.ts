import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsOf, startHarness, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

type Page = { items: { id: string; entityType: string; entityId: string; action: string; actor: string; at: string }[]; nextCursor: string | null };

describe('audit log', () => {
  it('lists newest first with filters and pagination', async () => {
    const ids: string[] = [];
    for (const name of ['one', 'two', 'three']) {
      ids.push((await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: { name } })).json().id as string);
    }
    await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${ids[0]}`, payload: { description: 'changed' } });

    const all = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/audit?entityType=pool' })).json() as Page;
    expect(all.items.map((e) => e.action)).toEqual(['update', 'create', 'create', 'create']);
    expect(all.items.map((e) => BigInt(e.id))).toEqual([...all.items.map((e) => BigInt(e.id))].sort((a, b) => (a > b ? -1 : 1)));

    const one = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/audit?entityType=pool&entityId=${ids[0]}&action=update` })).json() as Page;
    expect(one.items).toHaveLength(1);
    const actor = one.items[0]!.actor;
    const byActor = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/audit?actor=${encodeURIComponent(actor)}` })).json() as Page;
    expect(byActor.items.length).toBeGreaterThanOrEqual(4);

    const p1 = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/audit?entityType=pool&limit=3' })).json() as Page;
    expect(p1.items).toHaveLength(3);
    const p2 = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/audit?entityType=pool&limit=3&cursor=${p1.nextCursor}` })).json() as Page;
    expect(p2.items).toHaveLength(1);
    expect(p2.nextCursor).toBeNull();
    expect([...p1.items, ...p2.items].map((e) => e.id)).toEqual(all.items.map((e) => e.id));

    const future = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/audit?since=2999-01-01T00:00:00Z' })).json() as Page;
    expect(future.items).toEqual([]);
    const window = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/audit?entityType=pool&since=${all.items[3]!.at}&until=${all.items[0]!.at}` })).json() as Page;
    expect(window.items).toHaveLength(4);
  });

  it('names bad filters', async () => {
    const res = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/audit?since=yesterday' });
    expect(res.statusCode).toBe(400);
    expect(fieldsOf(res)).toEqual(['query.since']);
    const order = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z' });
    expect(fieldsOf(order)).toEqual(['query.until']);
  });

  it('is admin-only', async () => {
    expect((await h.call(null, { method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(401);
    expect((await h.call(h.tokens.user, { method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(403);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(403);
  });
});
