/* global document, Node */
// deskpool admin dashboard: plain ES module, no framework. Every piece of data is read from the
// REST API with the admin token as a bearer header; live changes arrive as server-sent events
// read with fetch() (EventSource cannot send headers, and the token never goes in a URL).
const TOKEN_KEY = 'deskpool.adminToken';
const STATES = ['present', 'moving', 'batch', 'idle', 'suspended', 'free', 'asleep', 'offline'];
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const state = { token: null, pcs: new Map(), users: new Map(), hosts: new Map(), selected: null, stream: null, pollTimer: null, timelineTimer: null };

class Unauthorized extends Error {}

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${state.token}`, accept: 'application/json' } });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(`${res.status}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** Every page of a list endpoint (items + nextCursor), up to `max` items. */
async function listAll(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

const time = (iso) => new Date(iso).toISOString().slice(11, 19);
const dayTime = (iso) => new Date(iso).toISOString().slice(5, 16).replace('T', ' ');
const watts = (w) => (w >= 10000 ? `${(w / 1000).toFixed(1)} kW` : `${Math.round(w)} W`);

// ---- sign-in -------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  const me = await api('/api/v1/me');
  if (me.role !== 'admin') throw new Unauthorized('not an admin token');
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  await loadAll();
  connectLive();
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.stream?.abort();
  clearInterval(state.pollTimer);
  clearInterval(state.timelineTimer);
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  setLive('off', 'offline');
}

function failed(err) {
  if (err instanceof Unauthorized) signOut('That token is not an admin token (or it was revoked).');
  else console.error(err);
}

// ---- fleet grid ----------------------------------------------------------------------------

function renderLegend(states) {
  const legend = $('legend');
  legend.replaceChildren(...states.map((s) => el('span', { class: `sw--${s.state}`, title: s.meaning, 'data-legend': s.state }, `${s.state} `, el('b', { 'data-count': s.state }, '0'))));
}

function tileText(pc) {
  const bits = [pc.owner ? `owner ${pc.owner}` : 'no owner', `state ${pc.state}`, `agent ${pc.onlineState}`, `presence ${pc.presence}`];
  if (pc.batchTasks) bits.push(`${pc.batchTasks} batch task(s), ${pc.batchCores} cores`);
  if (pc.desktopsRunning) bits.push(`${pc.desktopsRunning} desktop(s) running`);
  if (pc.desktopsSuspended) bits.push('desktop suspended');
  if (pc.drained) bits.push('drained');
  bits.push(`~${watts(pc.powerWatts)}`);
  return `${pc.name}\n${bits.join('\n')}`;
}

function renderTile(pc) {
  let tile = document.querySelector(`.pc[data-pc-id="${pc.id}"]`);
  if (!tile) {
    tile = el('div', { class: 'pc', tabindex: '0', role: 'button', dataset: { pcId: pc.id }, onclick: () => showHistory('host', pc.id, state.pcs.get(pc.id)?.name ?? pc.name) });
    tile.append(el('span', { class: 'pc-name' }), el('small'));
    insertSorted(tile, pc.name);
  }
  tile.className = `pc pc--${pc.state}${pc.drained ? ' drained' : ''}${state.selected === pc.id ? ' selected' : ''}`;
  tile.dataset.state = pc.state;
  tile.title = tileText(pc);
  tile.querySelector('.pc-name').textContent = pc.name;
  tile.querySelector('small').textContent = pc.owner ?? '—';
}

function insertSorted(tile, name) {
  const grid = $('grid');
  const after = [...grid.children].find((t) => (state.pcs.get(t.dataset.pcId)?.name ?? '') > name);
  grid.insertBefore(tile, after ?? null);
}

function applyPcs(pcs, removed = []) {
  for (const pc of pcs) {
    state.pcs.set(pc.id, pc);
    renderTile(pc);
  }
  for (const id of removed) {
    state.pcs.delete(id);
    document.querySelector(`.pc[data-pc-id="${id}"]`)?.remove();
  }
  $('pc-total').textContent = `(${state.pcs.size})`;
}

function applyCounts(counts, powerWatts, alwaysOnWatts) {
  for (const s of STATES) {
    const b = document.querySelector(`[data-count="${s}"]`);
    if (b) b.textContent = String(counts[s] ?? 0);
  }
  $('power-now').textContent = watts(powerWatts);
  $('power-always').textContent = watts(alwaysOnWatts);
}

async function loadFleet() {
  const fleet = await api('/api/v1/dashboard/fleet');
  if (!$('legend').children.length) renderLegend(fleet.states);
  const seen = new Set(fleet.pcs.map((p) => p.id));
  applyPcs(fleet.pcs, [...state.pcs.keys()].filter((id) => !seen.has(id)));
  applyCounts(fleet.counts, fleet.powerWatts, fleet.alwaysOnWatts);
  $('clock').textContent = `as of ${dayTime(fleet.at)} UTC`;
}

// ---- pools, desktops, queue, history --------------------------------------------------------

async function loadPools() {
  const pools = await listAll('/api/v1/pools');
  $('pools').replaceChildren(
    ...pools.map((p) =>
      el('tr', {},
        el('td', { title: p.description }, p.name),
        el('td', {}, `${p.officeHoursStart}–${p.officeHoursEnd} ${p.timeZone}`),
        el('td', {}, `${p.idleThresholdMinutes} min`),
        el('td', {}, `${p.nightWindowStart}–${p.nightWindowEnd}`),
        el('td', {}, p.batchAllowed ? `yes (≤${p.maxBatchPercentOwnerPresent}% if present)` : 'no'),
        el('td', {}, p.preStaging ? 'on' : 'off'),
        el('td', {}, p.powerManagement ? 'on' : 'off'),
        el('td', {}, p.storageMode),
      ),
    ),
  );
}

async function loadUsers() {
  for (const u of await listAll('/api/v1/users')) state.users.set(u.id, u.name);
}

async function loadVms() {
  const vms = await listAll('/api/v1/vms');
  $('vms').replaceChildren(
    ...vms.map((v) =>
      el('tr', { class: 'clickable', dataset: { vmId: v.id }, onclick: () => showHistory('vm', v.id, v.name) },
        el('td', {}, v.name + (v.pinned ? ' (pinned)' : '')),
        el('td', {}, state.users.get(v.ownerUserId) ?? v.ownerUserId.slice(0, 8)),
        el('td', {}, v.state),
        el('td', {}, state.pcs.get(v.currentHostId ?? '')?.name ?? (v.savedStateHostId ? `saved on ${state.pcs.get(v.savedStateHostId)?.name ?? '?'}` : '—')),
      ),
    ),
  );
}

async function loadQueue() {
  const [counts, running, queued] = await Promise.all([api('/api/v1/dashboard/queue'), api('/api/v1/jobs?state=running&limit=50'), api('/api/v1/jobs?state=queued&limit=50')]);
  $('queue-counts').replaceChildren(
    el('span', {}, 'tasks: '),
    ...Object.entries(counts.tasks).map(([s, n]) => el('span', { dataset: { taskState: s } }, `${s} ${n}`)),
  );
  $('jobs').replaceChildren(
    ...[...running.items, ...queued.items].map((j) =>
      el('tr', { class: 'clickable', onclick: () => showHistory('job', j.id, j.name) },
        el('td', {}, j.name),
        el('td', {}, j.state),
        el('td', {}, j.priority),
        el('td', { title: JSON.stringify(j.taskStates) }, Object.entries(j.taskStates).map(([s, n]) => `${s} ${n}`).join(', ')),
        el('td', {}, j.submittedBy ?? ''),
      ),
    ),
  );
}

function auditLine(e) {
  const who = e.entityType === 'host' ? state.pcs.get(e.entityId)?.name : undefined;
  return el('li', {}, el('time', { datetime: e.at }, time(e.at)), `${e.action} `, el('span', { class: 'muted' }, `${who ?? `${e.entityType} ${e.entityId.slice(0, 8)}`} · ${e.actor}`));
}

async function showHistory(entityType, entityId, label) {
  state.selected = entityType === 'host' ? entityId : null;
  for (const t of document.querySelectorAll('.pc.selected')) t.classList.remove('selected');
  if (state.selected) document.querySelector(`.pc[data-pc-id="${entityId}"]`)?.classList.add('selected');
  $('history-of').textContent = `${entityType} ${label}`;
  const page = await api(`/api/v1/audit?entityType=${encodeURIComponent(entityType)}&entityId=${encodeURIComponent(entityId)}&limit=100`);
  $('history').replaceChildren(...page.items.map((e) => el('li', {}, el('time', { datetime: e.at }, dayTime(e.at)), `${e.action} `, el('span', { class: 'muted' }, `${e.actor} · ${e.cause}`))));
}

async function loadActivity() {
  const page = await api('/api/v1/audit?limit=30');
  $('activity').replaceChildren(...page.items.map(auditLine));
}

function prependActivity(events) {
  const list = $('activity');
  for (const e of events) list.prepend(auditLine(e));
  while (list.children.length > 100) list.lastChild.remove();
}

// ---- timeline charts (inline SVG) ------------------------------------------------------------

const W = 600;
const H = 180;
const PAD = { left: 50, right: 8, top: 8, bottom: 22 };

function axes(chart, t0, t1, yMax, yLabel) {
  chart.append(svg('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, stroke: '#c9ced5' }));
  chart.append(Object.assign(svg('text', { x: 2, y: PAD.top + 12 }), { textContent: yLabel(yMax) }));
  chart.append(Object.assign(svg('text', { x: 2, y: H - PAD.bottom }), { textContent: '0' }));
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const x = PAD.left + ((W - PAD.left - PAD.right) * i) / 4;
    chart.append(Object.assign(svg('text', { x: Math.min(x - 18, W - 40), y: H - 5 }), { textContent: new Date(t).toISOString().slice(11, 16) }));
  }
}

function scales(points, yMax) {
  const t0 = Date.parse(points[0].at);
  const t1 = Math.max(Date.parse(points[points.length - 1].at), t0 + 1);
  const x = (iso) => PAD.left + ((Date.parse(iso) - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / (yMax || 1)) * (H - PAD.top - PAD.bottom);
  return { t0, t1, x, y };
}

function drawStates(points) {
  const chart = $('chart-states');
  chart.replaceChildren();
  const total = Math.max(1, ...points.map((p) => STATES.reduce((a, s) => a + (p.pcs[s] ?? 0), 0)));
  const { t0, t1, x, y } = scales(points, total);
  // Stacked areas, bottom to top in legend order.
  const base = points.map(() => 0);
  for (const s of STATES) {
    const top = points.map((p, i) => base[i] + (p.pcs[s] ?? 0));
    if (top.every((v, i) => v === base[i])) continue;
    const upper = points.map((p, i) => `${x(p.at).toFixed(1)},${y(top[i]).toFixed(1)}`);
    const lower = points.map((p, i) => `${x(p.at).toFixed(1)},${y(base[i]).toFixed(1)}`).reverse();
    chart.append(svg('polygon', { points: [...upper, ...lower].join(' '), class: `fill--${s}`, 'data-series': s }));
    top.forEach((v, i) => (base[i] = v));
  }
  axes(chart, t0, t1, total, (v) => String(v));
}

function drawPower(points) {
  const chart = $('chart-power');
  chart.replaceChildren();
  const max = Math.max(1, ...points.map((p) => Math.max(p.powerWatts, p.alwaysOnWatts)));
  const { t0, t1, x, y } = scales(points, max);
  const line = (key, cls) => chart.append(svg('polyline', { class: cls, points: points.map((p) => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ') }));
  line('alwaysOnWatts', 'line-always');
  line('powerWatts', 'line-power');
  axes(chart, t0, t1, max, watts);
}

function drawThroughput(points) {
  const chart = $('chart-throughput');
  chart.replaceChildren();
  const rates = points.map((p) => p.tasksPerHour ?? 0);
  const max = Math.max(1, ...rates);
  const { t0, t1, x, y } = scales(points, max);
  const width = Math.max(1, (W - PAD.left - PAD.right) / Math.max(1, points.length) - 1);
  points.forEach((p, i) => {
    if (!rates[i]) return;
    chart.append(svg('rect', { class: 'bar', x: (x(p.at) - width).toFixed(1), y: y(rates[i]).toFixed(1), width: width.toFixed(1), height: (H - PAD.bottom - y(rates[i])).toFixed(1) }));
  });
  axes(chart, t0, t1, max, (v) => `${Math.round(v)}/h`);
}

async function loadTimeline() {
  const tl = await api('/api/v1/dashboard/timeline');
  const points = tl.samples;
  $('timeline-empty').hidden = points.length > 0;
  $('timeline-range').textContent = points.length ? `${dayTime(points[0].at)} – ${dayTime(points[points.length - 1].at)} UTC, ${points.length} samples` : '';
  if (points.length === 0) return;
  drawStates(points);
  drawPower(points);
  drawThroughput(points);
  const saved = tl.alwaysOnKWh > 0 ? Math.round((1 - tl.energyKWh / tl.alwaysOnKWh) * 100) : 0;
  $('energy').textContent = `${tl.energyKWh.toFixed(1)} kWh vs ${tl.alwaysOnKWh.toFixed(1)} kWh always-on (${saved}% less)`;
}

// ---- live updates ----------------------------------------------------------------------------

function setLive(kind, text) {
  const badge = $('live');
  badge.className = `live live--${kind}`;
  badge.textContent = text;
}

let refreshTimer = null;
const pending = new Set();
/** Panels other than the grid are re-read at most once a second, however many events arrive. */
function refreshSoon(...panels) {
  for (const p of panels) pending.add(p);
  refreshTimer ??= setTimeout(() => {
    refreshTimer = null;
    const todo = [...pending];
    pending.clear();
    if (todo.includes('queue')) loadQueue().catch(failed);
    if (todo.includes('vms')) loadVms().catch(failed);
    if (todo.includes('pools')) loadPools().catch(failed);
    if (todo.includes('timeline')) loadTimeline().catch(failed);
  }, 1000);
}

function onEvent(name, data) {
  if (name === 'hello') {
    // Every change from here on will be pushed; catch up with what happened before.
    loadFleet().catch(failed);
  } else if (name === 'change') {
    applyPcs(data.pcs, data.removed);
    applyCounts(data.counts, data.powerWatts, data.alwaysOnWatts);
    prependActivity(data.audit);
    if (data.touched.includes('job') || data.touched.includes('task')) refreshSoon('queue');
    if (data.touched.includes('vm')) refreshSoon('vms');
    if (data.touched.includes('pool')) refreshSoon('pools');
    if (state.selected && data.audit.some((e) => e.entityId === state.selected)) showHistory('host', state.selected, state.pcs.get(state.selected)?.name ?? '').catch(failed);
  } else if (name === 'sample') {
    refreshSoon('timeline');
  }
}

/** Reads one server-sent event stream until it ends; resolves when it does. */
async function readStream(controller) {
  const res = await fetch('/api/v1/dashboard/events', { headers: { authorization: `Bearer ${state.token}`, accept: 'text/event-stream' }, signal: controller.signal });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(String(res.status));
  if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
  setLive('on', 'live');
  clearInterval(state.pollTimer);
  state.pollTimer = null;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

async function connectLive() {
  let failures = 0;
  while (state.token) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      await readStream(controller);
      failures = 0;
    } catch (err) {
      if (err instanceof Unauthorized) return failed(err);
      if (controller.signal.aborted) return;
      failures += 1;
    }
    if (!state.token) return;
    // Changes missed while disconnected: read the grid again, then reconnect.
    setLive('off', 'reconnecting');
    await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** failures)));
    await loadFleet().catch(failed);
    if (failures >= 3 && !state.pollTimer) {
      // The stream keeps failing (a proxy that buffers?): poll the grid meanwhile.
      setLive('poll', 'polling');
      state.pollTimer = setInterval(() => loadFleet().catch(failed), 10_000);
    } else if (failures === 0 && state.pollTimer) {
      clearInterval(state.pollTimer);
      state.pollTimer = null;
    }
  }
}

// ---- start -----------------------------------------------------------------------------------

async function loadAll() {
  await loadFleet();
  await loadUsers();
  await Promise.all([loadPools(), loadVms(), loadQueue(), loadActivity(), loadTimeline()]);
  state.timelineTimer = setInterval(() => loadTimeline().catch(failed), 60_000);
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('token');
  const token = input.value.trim();
  input.value = '';
  $('login-error').textContent = '';
  signIn(token).catch((err) => (err instanceof Unauthorized ? signOut('That token is not an admin token (or it was revoked).') : ($('login-error').textContent = `Could not reach the API: ${err.message}`)));
});
$('logout').addEventListener('click', () => signOut());

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved).catch(failed);
