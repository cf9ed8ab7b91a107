// The live view: one WebSocket (snapshot on connect, then snapshots and alerts), reconnection with
// backoff, the connection indicator, cards with per-minute sparklines, the funnel and the top lists.
import { $, h, fmtNum, fmtWindow, fmtTime } from "./dom.js";
import { sparkline } from "./charts.js";
import { api, sellerPath } from "./api.js";

const sum = (o) => Object.values(o || {}).reduce((a, b) => a + Number(b || 0), 0);

// Each card: id, title, how to read it from a snapshot, its window, and its per-minute series name.
const CARDS = [
  { id: "home", title: "On the homepage", value: (s) => s.live.home, win: "live" },
  { id: "category", title: "On category pages", value: (s) => sum(s.live.category), win: "live" },
  { id: "offer", title: "On offer pages", value: (s) => sum(s.live.offer), win: "live" },
  { id: "product", title: "On product pages", value: (s) => s.live.product, win: "live" },
  { id: "cart", title: "In the cart", value: (s) => s.live.cart, win: "live" },
  { id: "checkout", title: "In checkout", value: (s) => s.live.checkout, win: "live", rate: "checkouts", rateText: "checkouts started" },
  { id: "payment", title: "In payment", value: (s) => s.live.payment, win: "live", rate: "payments_started", rateText: "payments started" },
  { id: "purchased", title: "Purchased", value: (s) => s.purchased_30m, win: "timeout", rate: "payments_succeeded", rateText: "payments succeeded" },
  { id: "active", title: "Active sessions", value: (s) => s.active_sessions, win: "timeout", rate: "page_views", rateText: "page views" },
  { id: "failures", title: "Payment failures", value: (s) => s.payment_failures_30m, win: "timeout", rate: "payments_failed", rateText: "payments failed", bad: true },
];

// Per-minute series: the snapshot's `rates_per_minute` when the pipeline sends it, otherwise what this
// page has seen itself since it opened (the peak of each minute).
const localSeries = {};
function remember(id, v) {
  const minute = Math.floor(Date.now() / 60000);
  const arr = (localSeries[id] ||= []);
  const last = arr[arr.length - 1];
  if (last && last.m === minute) last.v = Math.max(last.v, v);
  else arr.push({ m: minute, v });
  while (arr.length && arr[0].m <= minute - 60) arr.shift();
}
function seriesFor(snap, card) {
  // Event counts per minute from the pipeline (docs/live-semantics.md), oldest first, 60 buckets.
  const vals = card.rate ? snap.rates_per_minute?.series?.[card.rate] : null;
  if (Array.isArray(vals) && vals.length) return { vals, text: `${card.rateText} per minute, last hour` };
  return { vals: (localSeries[card.id] || []).map((x) => x.v), text: "sessions, per minute since this page opened" };
}

export function buildCards() {
  const root = $("#cards");
  root.replaceChildren(...CARDS.map((c) => h("section", { class: `card${c.bad ? " bad" : ""}`, id: `card-${c.id}`, "aria-labelledby": `card-${c.id}-t` },
    h("h2", { id: `card-${c.id}-t` }, c.title),
    h("output", { class: "value", "aria-live": "off" }, "0"),
    h("p", { class: "window" }, ""),
    h("div", { class: "spark" }),
    h("p", { class: "window spark-text" }, ""))));
}

function renderCards(snap) {
  for (const c of CARDS) {
    const el = $(`#card-${c.id}`), v = Number(c.value(snap) || 0);
    const out = $(".value", el);
    if (out.textContent !== fmtNum(v)) {
      out.textContent = fmtNum(v);
      out.classList.add("changed");
      setTimeout(() => out.classList.remove("changed"), 800);
    }
    out.dataset.value = String(v);
    const secs = c.win === "live" ? snap.window_s : snap.session_timeout_s;
    $(".window", el).textContent = c.win === "live" ? `sessions now (seen in the ${fmtWindow(secs)})` : `sessions, ${fmtWindow(secs)}`;
    remember(c.id, v);
    const { vals, text } = seriesFor(snap, c);
    $(".spark", el).replaceChildren(sparkline(vals, `${c.title}: ${text}`));
    $(".spark-text", el).textContent = text;
  }
}

// Past a seller's cap, live values are counted under "~other" (docs/live-semantics.md): shown last.
const OTHER = "~other";

function renderBars(listSel, counts, empty) {
  const { [OTHER]: other, ...named } = counts || {};
  const entries = Object.entries(named).sort((a, b) => b[1] - a[1]).slice(0, other ? 11 : 12);
  if (other) entries.push(["Other (past the seller's limit)", other]);
  const max = Math.max(1, ...entries.map((e) => e[1]));
  const list = $(listSel);
  if (!entries.length) { list.replaceChildren(h("li", { class: "muted" }, empty)); return; }
  list.replaceChildren(...entries.map(([k, n]) => h("li", { "data-key": k },
    h("span", { class: "label", title: k }, k),
    h("span", { class: "bar", role: "presentation" }, h("span", { style: { width: `${(n / max) * 100}%` } })),
    h("span", { class: "n" }, fmtNum(n)))));
}

function renderFunnel(snap) {
  const l = snap.live;
  const steps = [
    ["Browsing", l.home + sum(l.category) + sum(l.offer) + l.product + l.other],
    ["Cart", l.cart], ["Checkout", l.checkout], ["Payment", l.payment],
    ["Purchased (30 min)", snap.purchased_30m],
  ];
  const max = Math.max(1, ...steps.map((s) => s[1]));
  $("#funnel").replaceChildren(...steps.map(([name, n], i) => h("li", { "data-step": name },
    h("span", { class: "label" }, name),
    h("span", { class: "bar", role: "presentation" }, h("span", { style: { width: `${(n / max) * 100}%` } })),
    h("span", { class: "n" }, fmtNum(n)))));
  $("#funnel-window").textContent = `Sessions where they are now (${fmtWindow(snap.window_s)}); purchased over ${fmtWindow(snap.session_timeout_s)}.`;
  $("#abandon-checkout").textContent = fmtNum(snap.abandoned_30m?.checkout);
  $("#abandon-payment").textContent = fmtNum(snap.abandoned_30m?.payment);
}

export function renderSnapshot(snap) {
  renderCards(snap);
  renderFunnel(snap);
  renderBars("#cat-list", snap.live.category, "Nobody on a category page now.");
  renderBars("#offer-list", snap.live.offer, "Nobody on an offer page now.");
  const w = `sessions now, ${fmtWindow(snap.window_s)}`;
  $("#cats-window").textContent = w;
  $("#offers-window").textContent = w;
  const asOf = $("#as-of");
  asOf.textContent = fmtTime(snap.as_of_ms ?? snap.as_of);
  asOf.setAttribute("datetime", snap.as_of);
  $("#recovering").hidden = !snap.recovering;
  $("#delayed").hidden = !snap.delayed;
  $("#sessions-capped").hidden = !snap.sessions_capped; // past live_sessions_per_seller_max (docs/live-semantics.md)
  $("#tab-live").classList.toggle("recovering", !!snap.recovering);
}

// --- the connection ------------------------------------------------------------------------------
const FATAL = { 4401: "Your token is unknown, expired or was revoked.", 4404: "This token cannot read that seller.", 4403: "This page's origin is not allowed by the API." };

export class LiveConnection {
  constructor({ seller, token, onAlert, onFatal }) {
    Object.assign(this, { seller, token, onAlert, onFatal });
    this.attempt = 0; this.ws = null; this.stopped = false; this.timer = null; this.watchdog = null;
  }
  // The token never goes in a URL (proxies and browsers log URLs) and a browser cannot put it in a
  // WebSocket header: each connection trades it (in the Authorization header) for a single-use ticket
  // valid ~30 s, and only the ticket goes in the socket's URL.
  async url() {
    const { ticket } = await api("/v1/ws-tickets", { token: this.token, method: "POST", body: { seller_id: this.seller } });
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}${sellerPath(this.seller, "/live/ws")}?ticket=${encodeURIComponent(ticket)}`;
  }
  setState(state, text) {
    const conn = $("#conn");
    conn.dataset.state = state;
    $("#conn-text").textContent = text;
    const off = $("#offline-banner");
    // Out of date from the first failure until a snapshot comes: the reconnect attempts in between keep
    // the banner (hiding it for each attempt made it flicker while the API was away).
    const stale = state === "offline" || (state === "connecting" && this.attempt > 0);
    off.hidden = !stale;
    if (stale) off.textContent = `${text.replace(/…$/, "")}. The numbers below are from ${$("#as-of").textContent || "before"} and may be out of date.`;
    $("#tab-live").classList.toggle("stale", state === "offline" || state === "connecting");
  }
  async start() {
    this.stopped = false;
    this.setState("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
    let url;
    try {
      url = await this.url();
    } catch (e) {
      if (this.stopped) return;
      // 401/404 from the ticket request mean what 4401/4404 mean on the socket; 503 (this API process holds
      // too many tickets) and 429 (this token holds its share) wait as a full server does; anything else
      // (the API unreachable) is retried with the same backoff.
      const code = e.status === 401 ? 4401 : e.status === 404 ? 4404 : e.status === 503 || e.status === 429 ? 4429 : 1006;
      this.onClose({ code });
      return;
    }
    if (this.stopped) return;
    const ws = (this.ws = new WebSocket(url));
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onclose = (ev) => this.onClose(ev);
    ws.onerror = () => {};
    this.kick();
  }
  kick() { // no message (not even a heartbeat) for 40 s: the connection is dead even if TCP has not said so
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.ws?.close(), 40000);
  }
  onMessage(ev) {
    this.kick();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === "snapshot") {
      this.attempt = 0;
      const s = msg.data;
      if (s.recovering) this.setState("recovering", "Live, recovering");
      else this.setState("live", "Live");
      renderSnapshot(s);
    } else if (msg.type === "alert") {
      this.onAlert(msg.data, !!msg.replay);
    }
  }
  onClose(ev) {
    clearTimeout(this.watchdog);
    if (this.stopped) return;
    if (FATAL[ev.code]) { this.setState("offline", "Disconnected"); this.onFatal(FATAL[ev.code]); return; }
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 15 s; "too many dashboards" waits longer.
    const base = ev.code === 4429 ? 15000 : Math.min(15000, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.setState("offline", `Offline, reconnecting in ${Math.ceil(delay / 1000)} s`);
    this.timer = setTimeout(() => this.start(), delay);
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer); clearTimeout(this.watchdog);
    this.ws?.close();
  }
}
