// peerkeeper dashboard: GET api/state, draw it, and follow the `events` websocket.
// Plain script, no libraries, no build step. Every piece of data goes into the page
// through textContent (peer user agents and addresses are chosen by the peers).
"use strict";

const STATE_URL = new URL("api/state", location.href);
const EVENTS_URL = (() => {
  const u = new URL("events", location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.searchParams.set("filter", "net:*,ban,discourage");
  return u;
})();
const REFRESH_GAP_MS = 250; // at most one api/state fetch per 250 ms
const POLL_MS = 5000; // ping and byte counters move without events
const FETCH_TIMEOUT_MS = 10000; // a hung api/state request must not stop later ones
const RETRY_MIN_MS = 500; // websocket reconnect back-off: 0.5 s, 1 s, 2 s ... 15 s
const RETRY_MAX_MS = 15000;
const STABLE_MS = 10000; // a connection open this long resets the back-off
const LOG_MAX = 50;
// Events after which the peer list (or the ban list) has changed.
const REFRESH_EVENTS = new Set([
  "net:inbound_connection", "net:outbound_connection", "net:closed_connection",
  "net:evicted_inbound_connection", "net:handshake", "ban", "discourage",
]);

const $ = (sel) => document.querySelector(sel);

// -- formatting ----------------------------------------------------------------------

function bytes(n) {
  if (typeof n !== "number" || !isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  if (i === 0) return String(n < 10 ? Math.round(n * 10) / 10 : Math.round(n)) + " B";
  return n.toFixed(n < 10 ? 2 : 1) + " " + units[i];
}

function duration(s) {
  if (typeof s !== "number" || !isFinite(s)) return "—";
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60, sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

const ms = (s) => (typeof s === "number" && isFinite(s) ? (s * 1000).toFixed(1) : "—");
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const str = (v) => (v === undefined || v === null ? "" : String(v));

// -- DOM helpers ---------------------------------------------------------------------

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = str(text);
  if (cls) e.className = cls;
  return e;
}

// Replace a table body with one row per item; `cells` gives [text, class?] pairs.
function fillTable(tbody, items, cells) {
  tbody.replaceChildren(...items.map((item) => {
    const tr = el("tr");
    for (const [text, cls] of cells(item)) tr.append(el("td", text, cls));
    return tr;
  }));
}

function setCell(td, text, title) {
  text = str(text);
  if (td.textContent !== text) td.textContent = text;
  if (title !== undefined) td.title = str(title);
}

// -- rendering -----------------------------------------------------------------------

const PEER_COLUMNS = 11;

// Peer rows are kept by id (<tr data-peer-id>) and updated in place, so a refresh
// every few seconds does not lose a selection or scroll position.
function renderPeers(state) {
  const tbody = $("#peers tbody");
  const peers = Array.isArray(state.peers) ? state.peers.slice() : [];
  peers.sort((a, b) => a.id - b.id);
  const rows = new Map();
  for (const tr of tbody.rows) rows.set(tr.dataset.peerId, tr);
  const keep = new Set();
  for (const p of peers) {
    const key = str(p.id);
    keep.add(key);
    let tr = rows.get(key);
    if (!tr) {
      tr = el("tr");
      tr.dataset.peerId = key;
      for (let i = 0; i < PEER_COLUMNS; i++) tr.append(el("td"));
      for (const i of [0, 5, 6, 7, 10]) tr.cells[i].className = "num";
    }
    tr.className = p.inbound ? "inbound" : "outbound";
    const c = tr.cells;
    setCell(c[0], p.id);
    setCell(c[1], p.addr);
    setCell(c[2], p.network);
    setCell(c[3], p.connection_type);
    setCell(c[4], p.transport_protocol_type);
    setCell(c[5], ms(p.pingtime), "min ping " + ms(p.minping) + " ms");
    setCell(c[6], bytes(p.bytessent), str(p.bytessent) + " B");
    setCell(c[7], bytes(p.bytesrecv), str(p.bytesrecv) + " B");
    setCell(c[8], Array.isArray(p.servicesnames) ? p.servicesnames.join(" ") : "",
      str(p.services));
    setCell(c[9], p.subver, p.subver);
    setCell(c[10], duration(state.time - p.conntime));
    tbody.append(tr); // appends a new row, moves an existing one into id order
  }
  for (const [key, tr] of rows) if (!keep.has(key)) tr.remove();
  $("#peer-count").textContent = `(${peers.length})`;
}

function renderCounts(state) {
  const counts = state.counts || {};
  const byNet = Object.entries(counts.by_network || {}).sort();
  fillTable($("#by-network tbody"), byNet, ([net, c]) => [
    [net], [c.in, "num"], [c.out, "num"], [(c.in || 0) + (c.out || 0), "num"],
  ]);
  const byType = Object.entries(counts.by_type || {}).sort();
  fillTable($("#by-type tbody"), byType, ([type, n]) => [[type], [n, "num"]]);
}

function renderAddrman(state) {
  const entries = Object.entries(state.addrman || {});
  // Networks by name, the all_networks sum last.
  entries.sort(([a], [b]) => (a === "all_networks") - (b === "all_networks") || a.localeCompare(b));
  fillTable($("#addrman tbody"), entries, ([net, c]) => [
    [net === "all_networks" ? "all" : net], [c.new, "num"], [c.tried, "num"], [c.total, "num"],
  ]);
}

function renderBans(state) {
  const bans = Array.isArray(state.banned) ? state.banned : [];
  fillTable($("#bans tbody"), bans, (b) => [
    [b.address],
    [typeof b.banned_until === "number" ? new Date(b.banned_until * 1000).toLocaleString() : ""],
    [duration(b.time_remaining), "num"],
  ]);
  $("#ban-count").textContent = `(${bans.length})`;
}

function renderNode(state) {
  const n = state.node || {};
  const parts = [n.subversion, n.chain];
  if (n.networkactive === false) parts.push("network inactive");
  $("#node").textContent = parts.filter(Boolean).join(" · ");
}

// -- traffic chart -------------------------------------------------------------------

// The samples are cumulative totals [t, recv, sent]; the chart shows the rate between
// consecutive samples (bytes/s). A total that went down (a restart) gives no point.
function rates(traffic) {
  const out = [];
  for (let i = 1; i < traffic.length; i++) {
    const [t0, r0, s0] = traffic[i - 1], [t1, r1, s1] = traffic[i];
    const dt = t1 - t0;
    if (!(dt > 0) || r1 < r0 || s1 < s0) continue;
    out.push([t1, (r1 - r0) / dt, (s1 - s0) / dt]);
  }
  return out;
}

function drawTraffic(state) {
  const canvas = $("#traffic");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(canvas);
  const color = (name) => css.getPropertyValue(name).trim();

  const pts = rates(Array.isArray(state.traffic) ? state.traffic : []);
  const end = typeof state.time === "number" ? state.time : Date.now() / 1000;
  const start = end - 3600;
  const max = Math.max(1, ...pts.map((p) => Math.max(p[1], p[2])));
  const pad = { l: 70, r: 8, t: 8, b: 20 };
  const x = (t) => pad.l + ((t - start) / 3600) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = color("--muted");
  ctx.strokeStyle = color("--grid");
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  for (const f of [0, 0.5, 1]) { // horizontal grid with the rate on the left
    const yy = Math.round(y(max * f)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(w - pad.r, yy); ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(bytes(max * f) + "/s", pad.l - 6, yy);
  }
  ctx.textBaseline = "alphabetic";
  for (const min of [60, 45, 30, 15, 0]) { // time axis
    ctx.textAlign = min === 60 ? "left" : min === 0 ? "right" : "center";
    ctx.fillText(min ? `-${min} min` : "now", x(end - min * 60), h - 4);
  }
  for (const [i, name] of [[1, "--in"], [2, "--out"]]) {
    ctx.strokeStyle = color(name);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    pts.filter((p) => p[0] >= start).forEach((p, k) => {
      if (k === 0) ctx.moveTo(x(p[0]), y(p[i])); else ctx.lineTo(x(p[0]), y(p[i]));
    });
    ctx.stroke();
  }
  const last = pts[pts.length - 1];
  $("#rate-in").textContent = last ? bytes(last[1]) + "/s" : "";
  $("#rate-out").textContent = last ? bytes(last[2]) + "/s" : "";
}

// -- api/state -----------------------------------------------------------------------

let lastState = null;
let lastFetch = 0, inFlight = false, again = false, refreshTimer = null;

function render(state) {
  lastState = state;
  renderNode(state);
  renderPeers(state);
  renderCounts(state);
  renderAddrman(state);
  renderBans(state);
  drawTraffic(state);
}

function showError(text) {
  const e = $("#error");
  e.textContent = text || "";
  e.hidden = !text;
}

// Ask for a refresh: runs at once unless one ran less than REFRESH_GAP_MS ago, and
// never two at a time (a request made during a fetch runs right after it).
function scheduleRefresh() {
  if (inFlight) { again = true; return; }
  if (refreshTimer !== null) return;
  const wait = Math.max(0, lastFetch + REFRESH_GAP_MS - Date.now());
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, wait);
}

async function refresh() {
  inFlight = true;
  lastFetch = Date.now();
  try {
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    const r = await fetch(STATE_URL, { cache: "no-store", signal });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
    showError("");
  } catch (e) {
    showError(`api/state: ${e.message || e}`);
  } finally {
    inFlight = false;
    if (again) { again = false; scheduleRefresh(); }
  }
}

// -- events websocket ----------------------------------------------------------------

let retryMs = RETRY_MIN_MS;

function setStatus(state, text) {
  const s = $("#status");
  s.dataset.state = state;
  s.textContent = text;
}

function summary(ev) {
  const skip = new Set(["event", "time"]);
  const parts = [];
  for (const [k, v] of Object.entries(ev)) {
    if (skip.has(k)) continue;
    parts.push(`${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : str(v)}`);
  }
  const text = parts.join(" ");
  return text.length > 200 ? text.slice(0, 199) + "…" : text;
}

function logEvent(ev) {
  const li = el("li", undefined, "ev-" + ev.event.replace(/[^a-z0-9]+/gi, "-"));
  li.append(el("time", typeof ev.time === "number" ? clock(ev.time) : ""), " ",
    el("b", ev.event), " ", el("span", summary(ev)));
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
}

function onMessage(data) {
  let ev;
  try {
    ev = JSON.parse(data);
  } catch (e) {
    ev = null;
  }
  if (!ev || typeof ev !== "object" || Array.isArray(ev) || typeof ev.event !== "string") {
    console.warn("events: ignored a malformed message", String(data).slice(0, 200));
    return;
  }
  logEvent(ev);
  if (REFRESH_EVENTS.has(ev.event)) scheduleRefresh();
}

function connect() {
  let ws;
  try {
    ws = new WebSocket(EVENTS_URL.href);
  } catch (e) {
    retry();
    return;
  }
  let openedAt = null;
  setStatus("connecting", "connecting");
  ws.onopen = () => {
    openedAt = Date.now();
    setStatus("live", "live");
    scheduleRefresh(); // events may have been missed while disconnected
  };
  ws.onmessage = (m) => {
    retryMs = RETRY_MIN_MS; // a working stream: the next drop retries quickly again
    if (typeof m.data === "string") onMessage(m.data);
  };
  ws.onclose = () => {
    if (openedAt !== null && Date.now() - openedAt >= STABLE_MS) retryMs = RETRY_MIN_MS;
    retry();
  };
}

// Reconnect after retryMs (±20 %), doubling it up to RETRY_MAX_MS.
function retry() {
  const delay = Math.round(retryMs * (0.8 + 0.4 * Math.random()));
  retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
  setStatus("reconnecting", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
  console.info(`events: reconnecting in ${delay} ms`);
  setTimeout(connect, delay);
}

// -- start ---------------------------------------------------------------------------

scheduleRefresh();
connect();
setInterval(scheduleRefresh, POLL_MS);
window.addEventListener("resize", () => { if (lastState) drawTraffic(lastState); });
