/**
 * The topology page: asks for a bearer token (kept in sessionStorage), lists the host's groups and
 * devices as the token's principal sees them, follows GET /v1/events to stay current, and explains a
 * selected device with why.js. Every text from the server goes in through textContent.
 */
import { followEvents, StreamRefused } from './sse.js';
import { explain, gatherFacts, isKernelDma } from './why.js';

const TOKEN_KEY = 'ioasd.token';
const $ = (id) => document.getElementById(id);

/** Builds an element: `attrs` are attributes (class, data-*, aria-*), children are nodes or text. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

class Unauthorized extends Error {}

const state = {
  token: null,
  me: null,
  policy: null,
  contexts: new Set(),
  groups: new Map(),
  devices: new Map(),
  selected: null,
  abort: null,
  whyRun: 0,
};

/** One API call as the signed-in principal: `{status, body}`; a 401 signs out. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (res.status === 401) throw new Unauthorized(parsed && parsed.detail ? parsed.detail : 'the token was refused');
  return { status: res.status, body: parsed };
}

async function get(path) {
  const res = await api('GET', path);
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}${res.body && res.body.detail ? `: ${res.body.detail}` : ''}`);
  return res.body;
}

function showError(message) {
  const p = $('error');
  p.textContent = message ?? '';
  p.hidden = !message;
}

// ---- signing in and out ------------------------------------------------------------------------

function showLogin(message) {
  stopStream();
  state.token = null;
  state.selected = null;
  state.whyRun++;
  const why = $('why-body');
  delete why.dataset.device;
  delete why.dataset.key;
  why.replaceChildren(h('p', { class: 'help' }, 'No device selected.'));
  sessionStorage.removeItem(TOKEN_KEY);
  $('topology').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.textContent = message ?? '';
  err.hidden = !message;
  $('token').value = '';
  $('token').focus();
}

async function signIn(token) {
  state.token = token;
  showError(null);
  try {
    state.me = await get('/v1/whoami');
  } catch (err) {
    if (err instanceof Unauthorized) return showLogin(`That token was refused: ${err.message}.`);
    state.token = null;
    return showLogin(`The server could not be asked: ${err.message}`);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('session').hidden = false;
  $('topology').hidden = false;
  $('who').textContent = `Signed in as ${state.me.name} (${state.me.role}); cleared for ${state.me.clearances.length ? state.me.clearances.join(', ') : 'no labels'}.`;
  startStream();
}

function stopStream() {
  if (state.abort) state.abort.abort();
  state.abort = null;
}

const STREAM_WORDS = {
  connecting: 'Connecting to the event stream…',
  reconnecting: 'Connection lost: reconnecting…',
  live: 'Live: changes appear as they happen',
  disconnected: 'Disconnected: retrying…',
  closed: 'Not connected',
};

function startStream() {
  stopStream();
  const abort = new AbortController();
  state.abort = abort;
  followEvents({
    url: '/v1/events',
    token: state.token,
    signal: abort.signal,
    onStatus: (s) => {
      const p = $('stream');
      p.textContent = STREAM_WORDS[s] ?? s;
      p.dataset.state = s;
    },
    // The stream starts with what happens next, so listing after it is answered misses nothing;
    // a resumed stream replays what was missed instead.
    onOpen: async ({ resumed }) => {
      if (!resumed) await guarded(reloadAll);
    },
    onEvent,
  }).catch((err) => {
    if (err instanceof StreamRefused && err.status === 401) showLogin('The token was refused by the event stream.');
    else showError(`The event stream stopped: ${err.message}`);
  });
}

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(`The token was refused: ${err.message}.`);
    else showError(err.message);
  }
}

// ---- the model, kept current by events ---------------------------------------------------------

async function reloadAll() {
  const [me, system, contexts, groups, devices] = await Promise.all([
    get('/v1/whoami'),
    get('/v1/system'),
    get('/v1/contexts'),
    get('/v1/groups'),
    get('/v1/devices'),
  ]);
  state.me = me;
  state.policy = system.policy;
  state.contexts = new Set(contexts.filter((c) => c.principalId === me.id).map((c) => c.id));
  state.groups = new Map(groups.map((g) => [g.id, g]));
  state.devices = new Map(devices.map((d) => [d.id, d]));
  showError(null);
  renderAll();
  refreshWhy();
}

const pending = { all: false, groups: new Set(), devices: new Set(), contexts: false, me: false, timer: null };

function schedule() {
  if (pending.timer === null) pending.timer = setTimeout(() => guarded(flush), 40);
}

function onEvent({ event, data }) {
  const kind = data && data.object ? data.object.kind : null;
  const id = data && data.object ? data.object.id : null;
  if (event === 'reset' || event === 'topology.imported' || event === 'policy.changed') pending.all = true;
  else if (kind === 'group') pending.groups.add(Number(id));
  else if (kind === 'device') pending.devices.add(String(id));
  else if (kind === 'context') pending.contexts = true;
  else if (kind === 'principal' && id === state.me?.id) pending.me = true;
  else return;
  schedule();
}

async function flush() {
  pending.timer = null;
  const all = pending.all;
  const groupIds = new Set(pending.groups);
  const deviceIds = [...pending.devices];
  const contexts = pending.contexts;
  const me = pending.me;
  pending.all = false;
  pending.groups.clear();
  pending.devices.clear();
  pending.contexts = false;
  pending.me = false;
  if (all) return reloadAll();

  if (me) {
    state.me = await get('/v1/whoami');
    $('who').textContent = `Signed in as ${state.me.name} (${state.me.role}); cleared for ${state.me.clearances.length ? state.me.clearances.join(', ') : 'no labels'}.`;
  }
  if (contexts) state.contexts = new Set((await get('/v1/contexts')).filter((c) => c.principalId === state.me.id).map((c) => c.id));
  await Promise.all(
    deviceIds.map(async (id) => {
      const before = state.devices.get(id);
      if (before && before.groupId !== null) groupIds.add(before.groupId);
      const res = await api('GET', `/v1/devices/${encodeURIComponent(id)}`);
      if (res.status === 200) {
        state.devices.set(id, res.body);
        if (res.body.groupId !== null) groupIds.add(res.body.groupId);
      } else if (res.status === 404) {
        state.devices.delete(id);
      }
    }),
  );
  await Promise.all(
    [...groupIds].map(async (id) => {
      const res = await api('GET', `/v1/groups/${id}`);
      if (res.status === 200) state.groups.set(id, res.body);
      else if (res.status === 404) state.groups.delete(id);
    }),
  );
  // A group lists its members: make sure every one is known (a device added by a merge, say).
  for (const id of groupIds) {
    for (const d of state.groups.get(id)?.devices ?? []) {
      if (!state.devices.has(d)) {
        const res = await api('GET', `/v1/devices/${encodeURIComponent(d)}`);
        if (res.status === 200) state.devices.set(d, res.body);
      }
    }
  }
  if (contexts || me) renderAll();
  else for (const id of groupIds) renderGroup(id);
  renderSummary();
  refreshWhy();
}

// ---- rendering ---------------------------------------------------------------------------------

function ownerOf(group) {
  if (group.owner === null || group.owner === undefined) return { cls: 'free', text: 'Free', mark: '○' };
  if (state.contexts.has(group.owner)) return { cls: 'mine', text: `Yours (context ${group.owner})`, mark: '●' };
  if (group.owner === 'other') return { cls: 'other', text: 'Held by another principal', mark: '◆' };
  return { cls: 'other', text: `Held by context ${group.owner}`, mark: '◆' };
}

function deviceEntry(d) {
  const kernel = isKernelDma(d);
  const cleared = d.label === null || state.me.clearances.includes(d.label);
  const warnings = Array.isArray(d.warnings) ? d.warnings : [];
  return h(
    'li',
    {},
    h(
      'button',
      { type: 'button', class: 'device', 'data-device-id': d.id, 'aria-pressed': state.selected === d.id ? 'true' : 'false' },
      h('span', { class: 'dev-id' }, d.id),
      d.description ? h('span', { class: 'dev-desc' }, d.description) : null,
      h(
        'span',
        { class: 'dev-meta' },
        h('span', { class: 'tag' }, d.kind),
        h('span', { class: `tag driver ${kernel ? 'kernel' : 'user'}` }, `${d.driver}${kernel ? ' — kernel DMA' : ''}`),
        h('span', { class: `tag label ${cleared ? '' : 'uncleared'}` }, d.label === null ? 'no label' : `label ${d.label}${cleared ? '' : ' — not cleared'}`),
        warnings.length ? h('span', { class: 'tag warn' }, `⚠ ${warnings.map((w) => w.code).join(', ')}`) : null,
      ),
    ),
  );
}

function groupBox(g) {
  const owner = ownerOf(g);
  const members = g.devices.map((id) => state.devices.get(id)).filter(Boolean);
  const warnings = Array.isArray(g.warnings) ? g.warnings : [];
  const title = `group-${g.id}-title`;
  return h(
    'li',
    { class: `group owner-${owner.cls} ${g.viable ? 'viable' : 'not-viable'}`, id: `group-${g.id}`, 'data-group-id': g.id },
    h(
      'article',
      { 'aria-labelledby': title },
      h('h3', { id: title }, `Group ${g.id}`, ' ', h('span', { class: 'group-kind' }, [g.kind, g.type].filter(Boolean).join(' · '))),
      h(
        'p',
        { class: 'badges' },
        h('span', { class: `badge ${g.viable ? 'ok' : 'bad'}` }, g.viable ? '✓ Viable' : '✗ Not viable'),
        h('span', { class: `badge owner ${owner.cls}`, 'data-owner': g.owner ?? '' }, `${owner.mark} ${owner.text}`),
      ),
      h('ul', { class: 'devices', 'aria-label': `Devices of group ${g.id}` }, members.map(deviceEntry)),
      g.blockers.length
        ? h('div', { class: 'blockers' }, h('h4', {}, 'Blockers'), h('ul', {}, g.blockers.map((b) => h('li', {}, `${b.id}: ${b.reason}`))))
        : null,
      warnings.length
        ? h(
            'div',
            { class: 'warnings' },
            h('h4', {}, 'Isolation warnings'),
            h('ul', {}, warnings.map((w) => h('li', {}, `⚠ ${w.code}${w.deviceId ? ` (${w.deviceId})` : ''}: ${w.detail ?? ''}`))),
          )
        : null,
    ),
  );
}

function orphanBox(devices) {
  return h(
    'li',
    { class: 'group orphans not-viable', id: 'group-none' },
    h(
      'article',
      { 'aria-labelledby': 'group-none-title' },
      h('h3', { id: 'group-none-title' }, 'No IOMMU group'),
      h('p', { class: 'badges' }, h('span', { class: 'badge bad' }, '✗ Cannot be assigned: nothing confines their DMA')),
      h('ul', { class: 'devices', 'aria-label': 'Devices without an IOMMU group' }, devices.map(deviceEntry)),
    ),
  );
}

/** Replaces a node, keeping keyboard focus on the same device if it had it. */
function replaceKeepingFocus(old, next) {
  const focused = document.activeElement?.closest?.('[data-device-id]')?.dataset.deviceId;
  const had = focused !== undefined && old.contains(document.activeElement);
  old.replaceWith(next);
  if (had) next.querySelector(`[data-device-id="${CSS.escape(focused)}"]`)?.focus();
}

function renderAll() {
  const list = $('groups');
  const focused = document.activeElement?.closest?.('[data-device-id]')?.dataset.deviceId;
  list.replaceChildren(...[...state.groups.values()].sort((a, b) => a.id - b.id).map(groupBox));
  const orphans = [...state.devices.values()].filter((d) => d.groupId === null || d.groupId === undefined);
  if (orphans.length) list.append(orphanBox(orphans));
  if (focused !== undefined) list.querySelector(`[data-device-id="${CSS.escape(focused)}"]`)?.focus();
  renderSummary();
}

function renderGroup(id) {
  const old = document.getElementById(`group-${id}`);
  const g = state.groups.get(id);
  if (!g) {
    old?.remove();
    return;
  }
  if (!old) return renderAll();
  replaceKeepingFocus(old, groupBox(g));
}

function renderSummary() {
  const groups = [...state.groups.values()];
  const mine = groups.filter((g) => g.owner !== null && state.contexts.has(g.owner)).length;
  const others = groups.filter((g) => g.owner !== null && !state.contexts.has(g.owner)).length;
  const notViable = groups.filter((g) => !g.viable).length;
  $('summary').textContent =
    `${groups.length} groups, ${state.devices.size} devices; policy ${state.policy}. ` +
    `${mine} yours, ${others} held by others, ${groups.length - mine - others} free; ${notViable} not viable.`;
}

// ---- the why panel -----------------------------------------------------------------------------

function select(deviceId) {
  state.selected = deviceId;
  for (const b of document.querySelectorAll('button.device')) b.setAttribute('aria-pressed', b.dataset.deviceId === deviceId ? 'true' : 'false');
  refreshWhy();
}

const VERDICT = {
  yes: { cls: 'ok', mark: '✓' },
  yours: { cls: 'mine', mark: '●' },
  no: { cls: 'bad', mark: '✗' },
  unknown: { cls: 'bad', mark: '?' },
};

async function refreshWhy() {
  const deviceId = state.selected;
  if (deviceId === null) return;
  const run = ++state.whyRun;
  const body = $('why-body');
  if (body.dataset.device !== deviceId) {
    body.dataset.device = deviceId;
    delete body.dataset.key;
    body.replaceChildren(h('p', { class: 'help' }, `Asking about ${deviceId}…`));
  }
  let x;
  try {
    x = explain(await gatherFacts(api, deviceId));
  } catch (err) {
    if (run !== state.whyRun) return;
    if (err instanceof Unauthorized) return showLogin(`The token was refused: ${err.message}.`);
    delete body.dataset.key;
    body.replaceChildren(h('p', { class: 'error' }, `Could not explain ${deviceId}: ${err.message}`));
    return;
  }
  if (run !== state.whyRun) return; // a newer question is on its way
  // The same answer again (most events touch other groups) leaves the panel, and screen readers, alone.
  const key = JSON.stringify(x);
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  body.replaceChildren(renderExplanation(x));
}

function renderExplanation(x) {
  const v = VERDICT[x.verdict];
  const parts = [h('h3', { class: 'why-device' }, x.deviceId), h('p', { class: `verdict ${v.cls}`, 'data-verdict': x.verdict }, `${v.mark} ${x.summary}`)];
  if (x.next.length) parts.push(h('h4', {}, 'To take it'), h('ol', { class: 'why-next' }, x.next.map((step) => h('li', {}, h('code', {}, step)))));
  if (x.blockers.length) {
    parts.push(
      h('h4', {}, 'Blockers and their fixes'),
      h(
        'ol',
        { class: 'why-blockers' },
        x.blockers.map((b) => h('li', { 'data-rule': b.rule }, h('p', {}, b.text), h('p', { class: 'fix' }, h('strong', {}, 'Fix: '), b.fix))),
      ),
    );
  }
  if (x.warnings.length) {
    parts.push(
      h('h4', {}, 'Isolation warnings'),
      h(
        'ul',
        { class: 'why-warnings' },
        x.warnings.map((w) => h('li', {}, h('p', {}, `⚠ ${w.code} (${w.subject}): ${w.detail}`), w.advice ? h('p', { class: 'advice' }, h('strong', {}, 'Advice: '), w.advice) : null)),
      ),
    );
  }
  if (x.notes.length) parts.push(h('ul', { class: 'why-notes' }, x.notes.map((n) => h('li', {}, n))));
  if (x.dryRun) {
    const d = x.dryRun;
    parts.push(
      h(
        'p',
        { class: 'dry-run' },
        'Dry run in context ',
        h('code', {}, d.contextId),
        ': ',
        h('code', {}, `${d.request} → ${d.status}${d.errno ? ` ${d.errno}` : ''}`),
        d.ok ? ` would go through${d.effects.length ? ` (${d.effects.map((e) => e.kind).join(', ')})` : ''}.` : ` ${d.detail}`,
      ),
    );
  }
  return h('div', { class: 'explanation' }, parts);
}

// ---- wiring ------------------------------------------------------------------------------------

function init() {
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      const err = $('login-error');
      err.textContent = 'Enter a token.';
      err.hidden = false;
      return;
    }
    signIn(token);
  });
  $('sign-out').addEventListener('click', () => showLogin('Signed out: the token is forgotten.'));
  $('groups').addEventListener('click', (e) => {
    const button = e.target.closest('button.device');
    if (button) select(button.dataset.deviceId);
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else showLogin();
}

init();
