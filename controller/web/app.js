// medvault dashboard: lit 3 web components (light DOM) over the controller's JSON API and one
// WebSocket for live changes. Routes: #/ fleet overview, #/site/<site>, #/alerts. No build step:
// lit and uPlot are ES modules served from node_modules through the page's import map.
import { LitElement, html, nothing } from 'lit';
import uPlot from 'uplot';

const STATES = ['ok', 'warning', 'critical', 'offline'];
const rank = (s) => STATES.indexOf(s);

// ---- formatting --------------------------------------------------------------------------
const fmtAge = (s) => {
  if (s === undefined || s === null) return '—';
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
};
const ago = (t, now = Date.now()) => (t ? `${fmtAge(Math.max(0, (now - t) / 1000))} ago` : 'never');
const when = (t) => (t ? new Date(t).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }) : '—');
const bytes = (n) => (n === undefined ? '—' : n >= 1e12 ? `${(n / 1e12).toFixed(1)} TB` : n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);
const pct = (x) => (x === undefined ? '—' : `${Math.round(x * 100)} % free`);
const badge = (state, label = state) => html`<span class="badge ${state}" data-state=${state}>${label}</span>`;

// ---- session and API ---------------------------------------------------------------------
const session = {
  get token() { return sessionStorage.getItem('mv.token'); },
  get user() { return JSON.parse(sessionStorage.getItem('mv.user') ?? 'null'); },
  save(r) { sessionStorage.setItem('mv.token', r.token); sessionStorage.setItem('mv.user', JSON.stringify({ user: r.user, role: r.role })); },
  clear() { sessionStorage.removeItem('mv.token'); sessionStorage.removeItem('mv.user'); },
};
let lastActivity = Date.now();
for (const ev of ['pointerdown', 'keydown']) addEventListener(ev, () => (lastActivity = Date.now()), { capture: true });

class ApiError extends Error {
  constructor(status, body) { super(body?.error?.message ?? `HTTP ${status}`); this.status = status; this.code = body?.error?.code; }
}
async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== '/api/v1/login') { session.clear(); dispatchEvent(new Event('mv-logout')); }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

// ---- live store: fleet, alerts and orders, fed by the WebSocket --------------------------
class Live extends EventTarget {
  sites = new Map(); alerts = new Map(); orders = new Map(); drills = new Map(); connected = false; ws = undefined; connectedAt = 0;
  connect() {
    if (!session.token || this.ws) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: session.token }));
    ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    ws.onclose = (e) => {
      this.ws = undefined; this.connected = false; this.emit();
      if (e.code === 4401) {
        // The session ran out unless the person did something meanwhile (then it was extended).
        if (lastActivity > this.connectedAt) setTimeout(() => this.connect(), 200);
        else { session.clear(); dispatchEvent(new Event('mv-logout')); }
      } else if (session.token) setTimeout(() => this.connect(), 1000);
    };
  }
  disconnect() { const ws = this.ws; this.ws = undefined; ws?.close(); this.sites.clear(); this.alerts.clear(); }
  onMessage(m) {
    if (m.type === 'hello') { this.connected = true; this.connectedAt = Date.now(); }
    else if (m.type === 'fleet') { this.sites = new Map(m.sites.map((s) => [s.site, s])); this.alerts = new Map(m.alerts.map((a) => [a.id, a])); }
    else if (m.type === 'site') this.sites.set(m.site.site, m.site);
    else if (m.type === 'alert') this.alerts.set(m.alert.id, m.alert);
    else if (m.type === 'order') this.orders.set(m.order.id, m.order);
    else if (m.type === 'drill') this.drills.set(m.drill.id, m.drill);
    this.emit(m.type, m);
  }
  emit(type = 'change', detail) { this.dispatchEvent(new CustomEvent('change', { detail: { type, ...detail } })); }
}
const live = new Live();

/** A light-DOM element (the page's stylesheet applies) re-rendered on live changes. */
class View extends LitElement {
  createRenderRoot() { return this; }
  connectedCallback() { super.connectedCallback(); this._onLive = (e) => this.onLive(e.detail); live.addEventListener('change', this._onLive); }
  disconnectedCallback() { super.disconnectedCallback(); live.removeEventListener('change', this._onLive); }
  onLive() { this.requestUpdate(); }
}

// ---- plots -------------------------------------------------------------------------------
class MvPlot extends LitElement {
  static properties = { title: {}, data: { attribute: false }, series: { attribute: false }, points: { type: Boolean } };
  createRenderRoot() { return this; }
  render() { return html`<div class="plot-title">${this.title}</div><div class="plot"></div>`; }
  updated() {
    const el = this.querySelector('.plot');
    this.plot?.destroy();
    if (!this.data || !this.data[0]?.length) { el.innerHTML = '<div class="muted small">no data yet</div>'; return; }
    el.innerHTML = '';
    const colors = ['#1f5fa8', '#2e7d32', '#c77800', '#6a1b9a'];
    // A lone point would get uPlot's default span of 1,000 days: give short histories half an hour.
    const x0 = Math.min(...this.data[0]), x1 = Math.max(...this.data[0]);
    const xRange = x1 - x0 < 600 ? [x0 - 1500, x1 + 300] : [x0, x1];
    this.plot = new uPlot({
      width: Math.max(280, el.clientWidth || 420), height: 200,
      scales: { x: { time: true, range: () => xRange }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.15 : 1] } }, legend: { show: true, live: false },
      series: [{}, ...this.series.map((s, i) => ({ label: s, stroke: colors[i % colors.length], width: 2, ...(this.points ? { paths: () => null, points: { show: true, size: 7, fill: colors[i % colors.length] } } : { points: { show: false } }) }))],
      axes: [{}, { size: 60 }],
    }, this.data, el);
  }
  disconnectedCallback() { super.disconnectedCallback(); this.plot?.destroy(); }
}
customElements.define('mv-plot', MvPlot);

// ---- login (password + TOTP) -------------------------------------------------------------
class MvLogin extends LitElement {
  static properties = { error: { state: true }, busy: { state: true } };
  createRenderRoot() { return this; }
  async submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    this.busy = true; this.error = undefined;
    try {
      session.save(await api('/api/v1/login', { method: 'POST', body: { user: f.get('user'), password: f.get('password'), totp: f.get('totp') } }));
      this.dispatchEvent(new Event('login', { bubbles: true }));
    } catch (err) { this.error = err.message; } finally { this.busy = false; }
  }
  render() {
    return html`<div class="card login"><h1>medvault</h1><p class="muted">Central IT: fleet health, alerts and restores. Sign in with your password and the 6-digit code from your authenticator app.</p>
      <form @submit=${this.submit}>
        <label for="user">User</label><input id="user" name="user" autocomplete="username" required>
        <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
        <label for="totp">Authenticator code</label><input id="totp" name="totp" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required>
        <p><button type="submit" ?disabled=${this.busy}>Sign in</button></p>
        ${this.error ? html`<div class="error" role="alert">${this.error}</div>` : nothing}
      </form></div>`;
  }
}
customElements.define('mv-login', MvLogin);

// ---- fleet overview ----------------------------------------------------------------------
const columns = [
  ['site', 'Site', (s) => s.site],
  ['state', 'State', (s) => rank(s.state)],
  ['lastBackupAt', 'Last backup', (s) => s.lastBackupAt ?? 0],
  ['rpoAgeS', 'RPO age / target', (s) => s.rpoAgeS ?? -1],
  ['offsiteLagS', 'Off-site lag', (s) => s.offsiteLagS ?? -1],
  ['diskState', 'Disks', (s) => (s.diskState === 'unknown' ? -1 : rank(s.diskState))],
  ['lastHeartbeatAt', 'Last heartbeat', (s) => s.lastHeartbeatAt ?? 0],
  ['openAlerts', 'Alerts', (s) => s.openAlerts],
];
class MvFleet extends View {
  static properties = { sort: { state: true }, asc: { state: true }, filter: { state: true }, stateFilter: { state: true } };
  constructor() { super(); this.sort = 'state'; this.asc = false; this.filter = ''; this.stateFilter = ''; this.tick = setInterval(() => this.requestUpdate(), 1000); }
  disconnectedCallback() { super.disconnectedCallback(); clearInterval(this.tick); }
  setSort(k) { if (this.sort === k) this.asc = !this.asc; else { this.sort = k; this.asc = k === 'site'; } }
  render() {
    const all = [...live.sites.values()];
    const counts = Object.fromEntries(STATES.map((s) => [s, all.filter((x) => x.state === s).length]));
    const key = columns.find((c) => c[0] === this.sort)[2];
    const q = this.filter.trim().toLowerCase();
    const rows = all
      .filter((s) => (!this.stateFilter || s.state === this.stateFilter) && (!q || s.site.includes(q) || (s.headline ?? '').toLowerCase().includes(q)))
      .sort((a, b) => { const x = key(a), y = key(b); const c = x < y ? -1 : x > y ? 1 : a.site.localeCompare(b.site); return this.asc ? c : -c; });
    const now = Date.now();
    return html`<h1>Fleet <span class="muted small">${all.length} sites</span></h1>
      <div class="counts">${STATES.map((s) => html`<div class="count ${s}" data-count=${s} @click=${() => (this.stateFilter = this.stateFilter === s ? '' : s)}><b>${counts[s]}</b>${s}</div>`)}</div>
      <div class="toolbar">
        <input type="search" placeholder="Filter by site or reason" aria-label="filter" .value=${this.filter} @input=${(e) => (this.filter = e.target.value)}>
        <select aria-label="state filter" .value=${this.stateFilter} @change=${(e) => (this.stateFilter = e.target.value)}>
          <option value="">all states</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
        <span class="muted small">${rows.length} shown</span>
      </div>
      <table class="fleet"><thead><tr>${columns.map(([k, label]) => html`<th class="sortable ${this.sort === k ? 'sorted' : ''} ${this.asc ? 'asc' : ''}" @click=${() => this.setSort(k)}>${label}</th>`)}<th>Why</th></tr></thead>
      <tbody>${rows.map((s) => html`<tr class="site-row" data-site=${s.site} data-state=${s.state} @click=${() => (location.hash = `#/site/${s.site}`)}>
        <td><a href="#/site/${s.site}">${s.site}</a></td><td>${badge(s.state)}</td>
        <td>${ago(s.lastBackupAt, now)}</td>
        <td>${fmtAge(s.rpoAgeS)} / ${fmtAge(s.rpoTargetS)}</td>
        <td>${fmtAge(s.offsiteLagS)}${s.catchUp ? html`<div class="small muted catch-up">${s.catchUp}</div>` : ''}</td>
        <td>${badge(s.diskState)} <span class="muted small">${pct(s.diskFree)}</span></td>
        <td>${ago(s.lastHeartbeatAt, now)}</td>
        <td>${s.openAlerts || ''}</td>
        <td class="small">${s.headline ?? ''}</td></tr>`)}</tbody></table>`;
  }
}
customElements.define('mv-fleet', MvFleet);

// ---- alerts ------------------------------------------------------------------------------
async function acknowledge(a) {
  const r = await api(`/api/v1/alerts/${a.id}/ack`, { method: 'POST', body: {} });
  live.alerts.set(r.alert.id, r.alert); live.emit();
}
const alertRow = (a, withSite = true) => html`<tr data-alert=${a.id} data-code=${a.code} data-alert-state=${a.state}>
  <td>${badge(a.severity)}</td>${withSite ? html`<td>${a.site.startsWith('_') ? html`<i>${a.site.slice(1)}</i>` : html`<a href="#/site/${a.site}">${a.site}</a>`}</td>` : nothing}
  <td class="mono">${a.code}</td><td>${a.message}${a.store ? html` <span class="muted small">(${a.store})</span>` : nothing}</td>
  <td class="small">${when(a.openedAt)}${a.resolvedAt ? html`<br>resolved ${when(a.resolvedAt)}` : nothing}</td>
  <td>${a.state === 'resolved' ? badge('resolved') : a.ack ? html`${badge('acked', 'acknowledged')}<div class="small muted">${a.ack.by}, ${when(a.ack.at)}</div>` : html`<button class="ack" @click=${() => acknowledge(a).catch((e) => alert(e.message))}>Acknowledge</button>`}</td></tr>`;
class MvAlerts extends View {
  static properties = { show: { state: true }, history: { state: true } };
  constructor() { super(); this.show = 'open'; }
  async load() { this.history = (await api('/api/v1/alerts?state=all&limit=500')).alerts; }
  render() {
    const list = this.show === 'open' ? [...live.alerts.values()].filter((a) => a.state === 'open') : (this.history ?? []);
    list.sort((a, b) => (a.severity === b.severity ? b.updatedAt - a.updatedAt : a.severity === 'critical' ? -1 : 1));
    return html`<h1>Alerts</h1><div class="toolbar">
      <select aria-label="alert filter" @change=${(e) => { this.show = e.target.value; if (this.show === 'all') this.load(); }}><option value="open">open</option><option value="all">all (history)</option></select>
      <span class="muted small">${list.length} alerts</span></div>
      <table class="alerts"><thead><tr><th>Severity</th><th>Site</th><th>Code</th><th>What</th><th>Opened</th><th></th></tr></thead>
      <tbody>${list.map((a) => alertRow(a))}</tbody></table>`;
  }
}
customElements.define('mv-alerts', MvAlerts);

// ---- site page ---------------------------------------------------------------------------
class MvSite extends View {
  static properties = { site: {}, health: { state: true }, timeline: { state: true }, orders: { state: true }, drills: { state: true }, error: { state: true }, order: { state: true }, orderError: { state: true } };
  connectedCallback() { super.connectedCallback(); this.load(); this.tick = setInterval(() => this.requestUpdate(), 1000); }
  disconnectedCallback() { super.disconnectedCallback(); clearInterval(this.tick); clearInterval(this.poll); }
  async load() {
    try {
      const [h, t, o, d] = await Promise.all([api(`/api/v1/sites/${this.site}/health`), api(`/api/v1/sites/${this.site}/timeline`), api(`/api/v1/sites/${this.site}/orders`), api(`/api/v1/drills/schedule?site=${this.site}`)]);
      this.health = h; this.timeline = t; this.orders = o.orders; this.drills = d; this.error = undefined;
    } catch (err) { this.error = err.message; }
  }
  onLive(d) {
    if (d.type === 'site' && d.site?.site === this.site) this.reload();
    else if (d.type === 'alert' && d.alert?.site === this.site) this.reload();
    else if (d.type === 'drill' && d.drill?.site === this.site) this.reload();
    else if (d.type === 'order' && d.order?.order.site === this.site) {
      if (this.order?.id === d.order.id) this.order = d.order;
      this.reload();
    }
    this.requestUpdate();
  }
  reload() { clearTimeout(this.pending); this.pending = setTimeout(() => this.load(), 150); }
  updated(changed) { if (changed.has('site') && changed.get('site') !== undefined) { this.health = undefined; this.order = undefined; this.load(); } }
  async submitOrder(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const paths = String(f.get('paths') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    this.orderError = undefined;
    try {
      const r = await api('/api/v1/orders', { method: 'POST', body: { site: this.site, snapshot: f.get('snapshot'), ...(f.get('store') ? { store: f.get('store') } : {}), paths: paths.length ? paths : [''], target: f.get('target'), source: 'local', mode: f.get('mode') } });
      this.order = r;
      clearInterval(this.poll);
      // The WebSocket brings progress; polling is the fallback until the order is final.
      this.poll = setInterval(async () => {
        if (!this.order || this.order.final) return clearInterval(this.poll);
        const cur = live.orders.get(this.order.id) ?? (await api(`/api/v1/orders/${this.order.id}`).catch(() => undefined));
        if (cur) this.order = cur;
      }, 2000);
    } catch (err) { this.orderError = err.message; }
  }
  renderOrder(o) {
    if (!o) return nothing;
    const p = o.progress;
    const frac = o.state === 'done' ? 1 : p && p.totalFiles ? p.files / p.totalFiles : 0;
    return html`<div class="card order-progress" data-order=${o.id} data-order-state=${o.state}>
      <div>Order <span class="mono">${o.id}</span>: ${badge(o.state === 'done' ? 'ok' : o.state === 'failed' || o.state === 'refused' ? 'critical' : 'unknown', o.state)}</div>
      <div class="bar" style="margin:8px 0"><div style="width:${Math.round(frac * 100)}%"></div></div>
      ${o.result ? nothing : html`<div class="small">${p ? `${p.files} of ${p.totalFiles} files, ${bytes(p.bytes)} of ${bytes(p.totalBytes)}` : 'waiting for the agent…'}</div>`}
      ${o.result ? html`<div class="result">restored ${o.result.files} files, <b>${o.result.verified} verified</b>${o.result.failed.length ? html`, <span class="error">${o.result.failed.length} failed</span>` : nothing}</div>` : nothing}
      ${o.reason ? html`<div class="error">${o.reason.code}: ${o.reason.message}</div>` : nothing}</div>`;
  }
  render() {
    if (this.error) return html`<h1>${this.site}</h1><div class="error">${this.error}</div>`;
    const h = this.health, t = this.timeline;
    if (!h || !t) return html`<h1>${this.site}</h1><p class="muted">loading…</p>`;
    const s = live.sites.get(this.site) ?? h.summary;
    const alerts = [...live.alerts.values()].filter((a) => a.site === this.site && a.state === 'open');
    const sec = (ms) => ms / 1000;
    const byJob = (job) => t.snapshots.filter((x) => x.job === job);
    const jobs = ['full', 'incremental', 'continuous'];
    const xs = t.snapshots.map((x) => sec(x.time));
    const timeline = [xs, ...jobs.map((j, i) => t.snapshots.map((x) => (x.job === j ? i + 1 : null)))];
    const storage = [xs, t.snapshots.map((x) => x.bytes / 1e6)];
    const runs = t.runs.filter((r) => ['full', 'incremental', 'continuous'].includes(r.job));
    const durations = [runs.map((r) => sec(r.endedAt)), runs.map((r) => (r.endedAt - r.startedAt) / 1000)];
    const rpo = [t.rpo.t.map(sec), t.rpo.rpoAgeS, t.rpo.offsiteLagS];
    const stores = h.stores.map((x) => x.name);
    return html`<h1>${this.site} ${badge(s.state)} <span class="muted small">agent ${h.agentVersion ?? '?'}, heartbeat ${ago(h.lastHeartbeatAt)}${h.clockOffsetMs !== undefined ? `, clock offset ${Math.round(h.clockOffsetMs / 100) / 10} s` : ''}</span></h1>
      ${h.reasons.length ? html`<div class="card"><b>Why</b><ul class="reasons">${h.reasons.map((r) => html`<li class=${r.severity}>${r.message}</li>`)}</ul></div>` : html`<div class="card">Every record store is backed up, within its RPO target and off site.</div>`}
      <div class="grid">
        <div class="card"><mv-plot .title=${'Snapshots: full (1), incremental (2), continuous (3)'} .data=${timeline} .series=${jobs} points></mv-plot></div>
        <div class="card"><mv-plot .title=${'Storage growth (snapshot size, MB)'} .data=${storage} .series=${['MB']}></mv-plot></div>
        <div class="card"><mv-plot .title=${'Backup durations (s)'} .data=${durations} .series=${['seconds']} points></mv-plot></div>
        <div class="card"><mv-plot .title=${'RPO age and off-site lag over time (s)'} .data=${rpo} .series=${['RPO age', 'off-site lag']}></mv-plot></div>
      </div>
      <h2>Stores</h2><table class="stores"><thead><tr><th>Store</th><th>State</th><th>Last full</th><th>Last incremental</th><th>Last continuous</th><th>RPO age / target</th><th>Watcher</th><th>Last job</th></tr></thead>
      <tbody>${h.stores.map((x) => html`<tr data-store=${x.name}><td>${x.name}</td><td>${badge(x.state)}</td><td>${ago(x.lastFullAt)}</td><td>${ago(x.lastIncrementalAt)}</td><td>${ago(x.lastContinuousAt)}</td>
        <td>${fmtAge(x.rpoAgeS)} / ${fmtAge(x.rpoTargetS)}</td><td>${x.watcher ?? '—'}</td><td>${x.lastJob ? `${x.lastJob.job} ${x.lastJob.result}, ${ago(x.lastJob.endedAt)}` : '—'}</td></tr>`)}</tbody></table>
      <h2>Disks</h2><table class="disks"><thead><tr><th>Path</th><th>Mount</th><th>Size</th><th>Free</th><th>SMART</th><th>State</th></tr></thead>
      <tbody>${h.disks.map((d) => html`<tr><td class="mono">${d.path}</td><td class="mono">${d.mount ?? '—'}</td><td>${bytes(d.sizeBytes)}</td><td>${bytes(d.freeBytes)}</td><td>${d.smart ?? '—'}</td><td>${badge(d.ok ? 'ok' : 'critical', d.ok ? 'usable' : d.error ?? 'not usable')}</td></tr>`)}</tbody></table>
      <p class="small muted">Off site: ${h.backlog ? `${h.backlog.objects} objects, ${bytes(h.backlog.bytes)} waiting; lag ${fmtAge(h.offsiteLagS)}` : '—'}${h.catchUp ? html`; <span class="catch-up">${h.catchUp}</span>` : ''}. Last verified restore or check: ${ago(h.lastVerifiedAt)}.</p>
      <h2>Alerts</h2>${alerts.length ? html`<table class="alerts"><tbody>${alerts.map((a) => alertRow(a, false))}</tbody></table>` : html`<p class="muted">no open alerts</p>`}
      <h2>Disaster-recovery drills <span class="muted small">every ${this.drills?.every ?? '—'}</span></h2>${drillTable(this.drills?.schedule ?? [], false)}
      <h2>Restore</h2><div class="card"><form class="order" @submit=${(e) => this.submitOrder(e)}>
        <div><label for="store">Store</label><select id="store" name="store"><option value="">any</option>${stores.map((x) => html`<option>${x}</option>`)}</select></div>
        <div><label for="snapshot">Snapshot</label><select id="snapshot" name="snapshot"><option value="latest">latest</option>${[...t.snapshots].reverse().slice(0, 50).map((x) => html`<option value=${x.id}>${when(x.time)} ${x.job} ${x.store} ${x.id.slice(0, 12)}</option>`)}</select></div>
        <div class="wide"><label for="paths">Paths in the snapshot (comma separated; empty = everything)</label><input id="paths" name="paths" placeholder="fhir, dicom/CT_small.dcm"></div>
        <div><label for="target">Target folder on the appliance</label><input id="target" name="target" required placeholder="/srv/restore"></div>
        <div><label for="mode">Mode</label><select id="mode" name="mode"><option value="new">new files only</option><option value="overwrite">overwrite in place</option></select></div>
        <div class="wide"><p><button type="submit" id="restore">Send restore order</button></p>${this.orderError ? html`<div class="error">${this.orderError}</div>` : nothing}</div>
      </form>${this.renderOrder(this.order)}</div>
      <h2>Orders</h2><table class="orders"><thead><tr><th>Order</th><th>State</th><th>Requested by</th><th>Target</th><th>Result</th></tr></thead>
      <tbody>${(this.orders ?? []).map((o) => html`<tr><td class="mono">${o.id.slice(0, 8)}</td><td>${o.state}</td><td>${o.order.requestedBy.user}</td><td class="mono">${o.order.target}</td><td>${o.result ? `${o.result.verified}/${o.result.files} verified` : o.reason?.message ?? ''}</td></tr>`)}</tbody></table>
      <h2>Backup log</h2><table class="log"><thead><tr><th>Ended</th><th>Job</th><th>Store</th><th>Result</th><th>Files</th><th>Bytes</th><th>Duration</th><th>By</th></tr></thead>
      <tbody>${[...t.runs].reverse().slice(0, 100).map((r) => html`<tr><td>${when(r.endedAt)}</td><td>${r.job}</td><td>${r.store}</td><td>${badge(r.result === 'ok' ? 'ok' : r.result === 'partial' ? 'warning' : 'critical', r.result)}</td><td>${r.files}</td><td>${bytes(r.bytes)}</td><td>${((r.endedAt - r.startedAt) / 1000).toFixed(1)} s</td><td class="small">${r.actor.kind}:${r.actor.id}</td></tr>`)}</tbody></table>`;
  }
}
customElements.define('mv-site', MvSite);

// ---- disaster-recovery drills (SOP 5.4) ----------------------------------------------------
const secs = (s) => (s === undefined ? '—' : s < 120 ? `${Math.round(s * 10) / 10} s` : fmtAge(s));
const mark = (ok) => html`<span class="mark ${ok ? 'pass' : 'fail'}" data-mark=${ok ? 'pass' : 'fail'}>${ok ? '✓' : '✗'}</span>`;
const drillBadge = (state) => badge(state === 'passed' ? 'ok' : state === 'failed' ? 'critical' : 'unknown', state);
/** The report as a file: fetched with the session (the API wants the bearer token), then saved. */
const reportLinks = (d) => ['pdf', 'html', 'json'].map((f) => html`<a class="report" data-format=${f} href=${d.report[f]}
  @click=${(e) => { e.preventDefault(); download(d.report[f], `drill-${d.id}.${f}`).catch((err) => alert(err.message)); }}>${f.toUpperCase()}</a> `);
/** One row per store: its last drill (RTO per copy and RPO against the targets), report, next drill, overdue. */
function drillTable(rows, withSite = true) {
  if (!rows.length) return html`<p class="muted">no record store reported yet</p>`;
  return html`<table class="drills"><thead><tr>${withSite ? html`<th>Site</th>` : nothing}<th>Store</th><th>Last drill</th><th>RTO per copy</th><th>RPO</th><th>Report</th><th>Next drill</th></tr></thead>
    <tbody>${rows.map((o) => {
      const d = o.last, r = d?.result;
      return html`<tr class="drill-row" data-site=${o.site} data-drill-store=${o.store} data-drill-state=${d?.state ?? 'none'} data-overdue=${o.overdue ? 'yes' : 'no'}>
        ${withSite ? html`<td><a href="#/site/${o.site}">${o.site}</a></td>` : nothing}<td>${o.store}</td>
        <td>${d ? html`${drillBadge(d.state)} <span class="small">${when(r?.endedAt ?? d.issuedAt)}</span>${r?.error ? html`<div class="small error">${r.error.message}</div>` : d.state === 'issued' ? html`<div class="small muted">waiting for the agent</div>` : nothing}` : html`<span class="muted">never</span>`}</td>
        <td class="rto">${r?.runs.length ? html`${r.runs.map((x) => html`<div data-source=${x.source}>${x.source} ${secs(x.rtoS)} ${mark(x.result === 'passed' && x.rtoS <= r.targets.rtoS)}</div>`)}<div class="small muted">target ${secs(r.targets.rtoS)}</div>` : '—'}</td>
        <td class="rpo">${r?.rpoS !== undefined ? html`${secs(r.rpoS)} ${mark(r.met.rpo)}<div class="small muted">target ${secs(r.targets.rpoS)}</div>` : '—'}</td>
        <td>${d?.report ? reportLinks(d) : '—'}</td>
        <td>${o.nextAt <= Date.now() ? 'due now' : when(o.nextAt)}${o.overdue ? html` ${badge('warning', 'overdue')}` : nothing}</td></tr>`;
    })}</tbody></table>`;
}
class MvDrills extends View {
  static properties = { data: { state: true }, error: { state: true } };
  connectedCallback() { super.connectedCallback(); this.load(); }
  async load() { try { this.data = await api('/api/v1/drills/schedule'); this.error = undefined; } catch (e) { this.error = e.message; } }
  onLive(d) { if (d.type === 'drill') { clearTimeout(this.pending); this.pending = setTimeout(() => this.load(), 150); } }
  render() {
    const rank = (o) => (o.last?.state === 'failed' ? 0 : o.overdue ? 1 : 2);
    const rows = [...(this.data?.schedule ?? [])].sort((a, b) => rank(a) - rank(b) || a.site.localeCompare(b.site) || a.store.localeCompare(b.store));
    const n = (f) => rows.filter(f).length;
    return html`<h1>Disaster-recovery drills <span class="muted small">one per store, <span class="mono">every = ${this.data?.every ?? '…'}</span> (SOP 5.4)</span></h1>
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      <div class="counts"><div class="count ok"><b>${n((o) => o.last?.state === 'passed')}</b>last drill passed</div><div class="count critical"><b>${n((o) => o.last?.state === 'failed')}</b>last drill failed</div>
        <div class="count warning"><b>${n((o) => o.overdue)}</b>overdue</div><div class="count"><b>${n((o) => !o.last)}</b>never drilled</div></div>
      ${drillTable(rows)}
      <p class="small muted">RTO: seconds from the start of a copy's restore to its last verified byte; RPO: age of the store's newest snapshot when the drill started; ✓/✗ against the store's targets. Overdue: no passed drill within the interval plus a day.</p>`;
  }
}
customElements.define('mv-drills', MvDrills);

// ---- incidents (SOP 5.5) -------------------------------------------------------------------
async function download(path, name) {
  const r = await fetch(path, { headers: { authorization: `Bearer ${session.token}` } });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(await r.blob()), download: name });
  a.click();
  URL.revokeObjectURL(a.href);
}
class MvIncidents extends View {
  static properties = { list: { state: true }, error: { state: true } };
  connectedCallback() { super.connectedCallback(); this.load(); }
  async load() { try { this.list = (await api('/api/v1/incidents')).incidents; } catch (e) { this.error = e.message; } }
  render() {
    const list = this.list ?? [];
    return html`<h1>Incidents</h1>${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      <p class="muted small">Open one from an alert (<code>medvault incident open --alert ID</code>) or by hand; ${list.filter((i) => i.state === 'open').length} open.</p>
      <table class="incidents"><thead><tr><th>State</th><th>Incident</th><th>Sites</th><th>Opened</th><th>Proposed restore point</th><th>Orders</th><th></th></tr></thead>
      <tbody>${list.map((i) => html`<tr data-incident=${i.id} data-incident-state=${i.state}>
        <td>${badge(i.state === 'open' ? 'critical' : 'resolved', i.state)}</td><td>${i.title}<div class="small muted mono">${i.id}</div>${i.resolution ? html`<div class="small">${i.resolution}</div>` : nothing}</td>
        <td>${i.scope.sites.map((x) => html`<a href="#/site/${x}">${x}</a> `)}</td><td class="small">${when(i.openedAt)}<br>${i.openedBy}</td>
        <td class="small mono">${i.proposed ? html`${i.proposed.snapshot.slice(0, 12)} <span class="muted">(${when(i.proposed.time)})</span>` : '—'}</td><td>${i.orders.length}</td>
        <td><button class="secondary" @click=${() => download(`/api/v1/incidents/${i.id}/report?format=pdf`, `incident-${i.id}.pdf`).catch((e) => alert(e.message))}>PDF</button></td></tr>`)}</tbody></table>`;
  }
}
customElements.define('mv-incidents', MvIncidents);

// ---- the app shell -----------------------------------------------------------------------
class MvApp extends View {
  static properties = { route: { state: true } };
  constructor() {
    super();
    this.route = location.hash;
    addEventListener('hashchange', () => (this.route = location.hash));
    addEventListener('mv-logout', () => { live.disconnect(); this.requestUpdate(); });
    this.addEventListener('login', () => { live.connect(); this.requestUpdate(); });
    live.connect();
  }
  async logout() { await api('/api/v1/logout', { method: 'POST', body: {} }).catch(() => {}); session.clear(); live.disconnect(); this.requestUpdate(); }
  render() {
    if (!session.token) return html`<mv-login></mv-login>`;
    const m = /^#\/site\/([a-z0-9-]+)$/.exec(this.route ?? '');
    const page = m ? html`<mv-site .site=${m[1]}></mv-site>` : this.route === '#/alerts' ? html`<mv-alerts></mv-alerts>` : this.route === '#/drills' ? html`<mv-drills></mv-drills>` : this.route === '#/incidents' ? html`<mv-incidents></mv-incidents>` : html`<mv-fleet></mv-fleet>`;
    const open = [...live.alerts.values()].filter((a) => a.state === 'open').length;
    return html`<header class="top"><span class="brand">medvault</span>
      <nav><a href="#/" class=${!m && !['#/alerts', '#/drills', '#/incidents'].includes(this.route) && this.route !== '#/incidents' ? 'active' : ''}>Fleet</a><a href="#/alerts" class=${this.route === '#/alerts' ? 'active' : ''}>Alerts${open ? ` (${open})` : ''}</a><a href="#/drills" class=${this.route === '#/drills' ? 'active' : ''}>Drills</a><a href="#/incidents" class=${this.route === '#/incidents' ? 'active' : ''}>Incidents</a></nav>
      <span class="who"><span class="live ${live.connected ? '' : 'down'}" id="live">${live.connected ? 'live' : 'connecting…'}</span>${session.user?.user} (${session.user?.role}) <button class="secondary" @click=${() => this.logout()}>Sign out</button></span></header>
      <main>${page}</main>`;
  }
}
customElements.define('mv-app', MvApp);
