/* livemetrics browser tracker: page views, heartbeats, checkout and payment events. No dependencies.
 * <script src="https://gateway/t.js" data-key="lm_pk_..." async></script>   (docs/ingest.md) */
(function (w, d) {
  "use strict";
  if (w.livemetrics && w.livemetrics._loaded) return;
  var script = d.currentScript || d.querySelector("script[data-key][src*='t.js']") || {};
  var attr = function (n, dflt) { var v = script.getAttribute && script.getAttribute("data-" + n); return v == null ? dflt : v; };
  var KEY = attr("key", "");
  var ENDPOINT = (attr("endpoint", "") || (script.src ? new URL(script.src, w.location.href).origin : w.location.origin)).replace(/\/$/, "");
  var BASE = attr("base", "").replace(/\/$/, "");
  var HEARTBEAT_MS = Math.max(5, +attr("heartbeat", 15)) * 1000;
  var FOLLOW_SPA = attr("spa", "true") !== "false";
  var SESSION_MS = 30 * 60 * 1000, FLUSH_MS = 1000, MAX_BATCH = 20, RETRY_MS = 5000, MAX_RETRY_AFTER_MS = 60000;
  var BEACON_BYTES = 60000, BODY_BYTES = 1000000;  // a beacon's body at most; a fetch's (the gateway 413s over 1 MiB)
  var URL_EVENTS = ENDPOINT + "/v1/events?key=" + encodeURIComponent(KEY);
  var KEPT = "lm_q_" + KEY, KEPT_MS = 23 * 3600 * 1000, KEPT_CHARS = 500000;
  var cfg = w.livemetricsConfig || {};
  var DEFAULT_PATTERNS = [
    { type: "home", re: "^/?$" },
    { type: "category", re: "^/(?:c|category|categories)/([^/?#]+)" },
    { type: "offer", re: "^/(?:o|offer|offers|deal|deals)/([^/?#]+)" },
    { type: "product", re: "^/(?:p|product|products|item)/" },
    { type: "cart", re: "^/(?:cart|basket|bag)(?:/|$)" },
    { type: "checkout", re: "^/checkout(?:/|$)" },
    { type: "payment", re: "^/(?:payment|pay)(?:/|$)" }
  ];
  var patterns = (cfg.patterns || []).concat(DEFAULT_PATTERNS).map(function (p) {
    return { type: p.type, re: p.re instanceof RegExp ? p.re : new RegExp(p.re) };
  });

  // --- session id: random, 30-minute rolling expiry, localStorage or a cookie ---------------------
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16); (w.crypto || {}).getRandomValues ? crypto.getRandomValues(b) : b.forEach(function (_, i) { b[i] = Math.random() * 256; });
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  // decodeURIComponent, or the text as written when it holds a malformed escape (a link anyone can make,
  // /c/%E0%A4%A, or a cookie set from a sibling subdomain): URIError stopped the script, or every call.
  function decoded(s) { try { return decodeURIComponent(s); } catch (e) { return s; } }
  function store(name, value) {
    try { if (value === undefined) return w.localStorage.getItem(name); w.localStorage.setItem(name, value); return value; }
    catch (e) {
      if (value === undefined) { var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)")); return m ? decoded(m[1]) : null; }
      d.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=1800; SameSite=Lax"; return value;
    }
  }
  function sessionId() {
    var now = Date.now(), raw = store("lm_sid"), parts = raw ? raw.split("|") : [];
    var sid = parts.length === 2 && now - (+parts[1]) < SESSION_MS ? parts[0] : "s-" + uuid().replace(/-/g, "");
    store("lm_sid", sid + "|" + now);  // every event extends the session
    return sid;
  }

  // --- page detection: data attributes, configured patterns, defaults -----------------------------
  function detectPage() {
    var path = w.location.pathname;
    if (BASE && path.indexOf(BASE) === 0) path = path.slice(BASE.length) || "/";
    var page = { type: "other", path: w.location.pathname + w.location.search };
    var ds = (d.body && d.body.dataset) || {};
    if (ds.lmPage) {
      page.type = ds.lmPage;
      if (ds.lmCategory) page.category = ds.lmCategory;
      if (ds.lmOffer) page.offer_id = ds.lmOffer;
    } else {
      for (var i = 0; i < patterns.length; i++) {
        var m = patterns[i].re.exec(path);
        if (!m) continue;
        page.type = patterns[i].type;
        if (page.type === "category") page.category = decoded(m[1]);
        if (page.type === "offer") page.offer_id = decoded(m[1]);
        break;
      }
    }
    if (d.title) page.title = cut(d.title, 200);
    if (d.referrer) page.referrer = cut(d.referrer, 2048);
    return page;
  }

  // The first n UTF-16 units of s, never half of a surrogate pair (an emoji): JSON.stringify writes a lone
  // half as "\ud83d", which the gateway refuses.
  function cut(s, n) {
    s = s.slice(0, n);
    var c = s.charCodeAt(s.length - 1);
    return c >= 0xd800 && c <= 0xdbff ? s.slice(0, -1) : s;
  }

  // --- batching and delivery ------------------------------------------------------------------------
  var queue = [], timer = null, lastPage = null, holdUntil = 0, dropped = 0;  // no fetch before holdUntil (a retry's wait)
  function event(type, extra) {
    var ev = { event_id: uuid(), type: type, session_id: sessionId(), ts: Date.now() };
    for (var k in extra) if (extra[k] != null) ev[k] = extra[k];
    queue.push(ev);
    if (queue.length > 500) queue = bound(queue);
    if (queue.length >= MAX_BATCH) flush(); else if (!timer) timer = setTimeout(flush, FLUSH_MS);
    return ev.event_id;
  }
  function flush(useBeacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!KEY) return;
    var wait = holdUntil - Date.now();
    if (!useBeacon && wait > 0) { if (queue.length) timer = setTimeout(flush, wait); return; }  // a beacon (page going away) goes anyway
    if (!useBeacon) { var k = unkeep(); if (k.length) queue = bound(k.concat(queue)); }  // what an earlier page kept
    if (!queue.length) return;
    var batch = queue.splice(0, 500), body = JSON.stringify({ events: batch });
    // text/plain keeps the request "simple": no CORS preflight, and sendBeacon accepts it. Browsers refuse a
    // beacon over 64 KiB: pieces under 60,000 bytes, in order, while they are taken; the rest by fetch below.
    if (useBeacon && navigator.sendBeacon) {
      var parts = pieces(batch, BEACON_BYTES), i = 0;
      while (i < parts.length && navigator.sendBeacon(URL_EVENTS, new Blob([JSON.stringify({ events: parts[i] })], { type: "text/plain" }))) i++;
      if (i === parts.length) return;
      batch = [].concat.apply([], parts.slice(i));
      // What the browser would not take (~64 KiB in flight at most, beacons and keepalive fetches alike) is
      // kept in localStorage for the next page of this site (or this one, back in view), never sent here:
      // a fetch of it died with the page. Only where storage is blocked is it fetched, as before.
      if (keep(batch)) return;
      body = JSON.stringify({ events: batch });
    }
    // A long refusal's 500 events can be over the gateway's 1 MiB, which it refuses whole (413, not retried):
    // the first of them that fit go now, the rest back at the queue's head for the next flush.
    var fit = pieces(batch, BODY_BYTES)[0];
    if (fit.length < batch.length) {
      queue = batch.slice(fit.length).concat(queue);
      batch = fit;
      body = JSON.stringify({ events: batch });
      if (!timer && !useBeacon) timer = setTimeout(flush, FLUSH_MS);
    }
    try {
      fetch(URL_EVENTS, { method: "POST", body: body, keepalive: body.length < 60000, headers: { "Content-Type": "text/plain" } })
        .then(function (r) { if (r.status === 429 || r.status >= 500) requeue(batch, retryAfterMs(r)); })
        .catch(function () { requeue(batch); });
    } catch (e) { requeue(batch); }
  }
  // Consecutive pieces of a batch whose {"events": [...]} bodies are at most `limit` bytes (UTF-8) each.
  function pieces(batch, limit) {
    var out = [], cur = [], size = 13;
    for (var j = 0; j < batch.length; j++) {
      var n = encodeURIComponent(JSON.stringify(batch[j])).replace(/%[0-9A-F]{2}/g, "x").length + 1;
      if (cur.length && size + n > limit) { out.push(cur); cur = []; size = 13; }
      cur.push(batch[j]);
      size += n;
    }
    if (cur.length) out.push(cur);
    return out;
  }
  // Retry-After (seconds or an HTTP date; the gateway exposes it to other origins), capped; else 0.
  function retryAfterMs(r) {
    var v = r && r.headers && r.headers.get ? r.headers.get("Retry-After") : null;
    if (v == null) return 0;
    v = String(v).replace(/^\s+|\s+$/g, "");
    var ms = /^\d+$/.test(v) ? v * 1000 : Date.parse(v) - Date.now();
    return ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : 0;
  }
  function requeue(batch, waitMs) {  // same event ids: the gateway and the pipeline de-duplicate
    var ms = Math.max(RETRY_MS, waitMs || 0);  // 5 s, or the gateway's Retry-After when longer
    holdUntil = Math.max(holdUntil, Date.now() + ms);  // events queued meanwhile wait too
    queue = bound(batch.concat(queue));
    if (!timer) timer = setTimeout(flush, ms);
  }
  // Events a hiding page could not hand to the browser, kept for the next page: in localStorage, each keep
  // in an entry of its own, lm_q_<key>.<tab>.<n> (written once, never read back and rewritten: two tabs
  // hiding at the same moment both read-modify-wrote one lm_q_<key>, and one's events were lost), the
  // queue's bound and drop order, all entries of the key together at most KEPT_CHARS of JSON. Sent again only
  // if not older than KEPT_MS (the gateway refuses a `ts` a day off its clock). Nothing sent is kept, so
  // nothing the gateway took is sent twice (it does not de-duplicate; downstream does, by event_id).
  var TAB = uuid().replace(/-/g, "").slice(0, 12), keeps = 0;
  function keptNames() {  // this key's entries: one per keep, and the single lm_q_<key> of older versions
    var out = [], i, n;
    for (i = 0; i < w.localStorage.length; i++) {
      n = w.localStorage.key(i);
      if (n === KEPT || (n && n.indexOf(KEPT + ".") === 0)) out.push(n);
    }
    return out;
  }
  function keep(batch) {
    try {
      var names = keptNames(), room = KEPT_CHARS, i, v;
      for (i = 0; i < names.length; i++) { v = w.localStorage.getItem(names[i]); room -= v ? v.length : 0; }
      var q = bound(batch, 500), s = JSON.stringify(q);
      while (q.length && s.length > room) { q = bound(q, Math.floor(q.length * Math.max(room, 0) / s.length) - 1); s = JSON.stringify(q); }
      if (q.length) w.localStorage.setItem(KEPT + "." + TAB + "." + (++keeps), s);
      return true;
    } catch (e) { return false; }
  }
  // Every kept entry of the key (other pages', and this page's own once back in view), each claimed: the
  // names read once, and an entry removed before its events are sent. Two pages starting at the same moment
  // can still both read one entry before either removes it (sent twice, de-duplicated downstream by event_id).
  function unkeep() {
    try {
      var names = keptNames(), out = [], now = Date.now(), n = 0, i, raw, q;
      for (i = 0; i < names.length; i++) {
        raw = w.localStorage.getItem(names[i]);
        if (raw == null) continue;  // another page took it first
        w.localStorage.removeItem(names[i]);
        try { q = JSON.parse(raw); } catch (e) { q = null; }
        if (!Array.isArray(q)) continue;
        n += q.length;
        out = out.concat(q.filter(function (ev) { return ev && typeof ev.ts === "number" && now - ev.ts < KEPT_MS; }));
      }
      dropped += n - out.length;
      return out.sort(function (a, b) { return a.ts - b.ts; });  // the pages' entries interleaved, in time order
    } catch (e) { return []; }
  }
  // At most 500 wait (a refusal can last minutes): past it the oldest heartbeats go first, then the oldest
  // page views, then the oldest of the rest (a payment failure is the seller's alert); the console says so once.
  function bound(q, max) {
    var over = q.length - (max == null ? 500 : Math.max(0, max));
    if (over <= 0) return q;
    if (!dropped && w.console) w.console.warn("livemetrics: the gateway has not taken events for a while; more than 500 are waiting, the oldest are dropped");
    dropped += over;
    for (var rank = 0; rank < 3 && over > 0; rank++) {
      q = q.filter(function (ev) {
        var r = ev.type === "heartbeat" ? 0 : ev.type === "page_view" ? 1 : 2;
        if (over > 0 && r === rank) { over--; return false; }
        return true;
      });
    }
    return q;
  }

  function pageView() {
    lastPage = detectPage();
    return event("page_view", { page: lastPage });
  }
  function heartbeat() {
    if (d.visibilityState === "visible") event("heartbeat", { page: lastPage || detectPage() });
  }

  // --- the public API -------------------------------------------------------------------------------
  function payment(type, o) {
    o = o || {};
    var p = { method: o.method || "card", amount: +o.amount || 0, currency: o.currency, order_id: String(o.orderId || o.order_id || "") };
    if (o.items) p.items = o.items;
    if (type === "payment_failed") {
      p.error_code = String(o.errorCode || o.error_code || "unknown");
      if (o.errorMessage || o.error_message) p.error_message = String(o.errorMessage || o.error_message);
      if (o.details) p.details = o.details;
    }
    var id = event(type, { payment: p, customer: o.customer });
    flush();  // payments matter now, and often precede a navigation
    return id;
  }
  var api = {
    _loaded: true,
    page: pageView,
    flush: function () { flush(); },
    dropped: function () { return dropped; },
    sessionId: function () { return sessionId(); },
    checkoutStarted: function (o) {
      o = o || {};
      var id = event("checkout_started", { checkout: { items: o.items || [], total: +o.total || 0, currency: o.currency }, customer: o.customer });
      flush();
      return id;
    },
    paymentStarted: function (o) { return payment("payment_started", o); },
    paymentSucceeded: function (o) { return payment("payment_succeeded", o); },
    paymentFailed: function (o) { return payment("payment_failed", o); }
  };
  var pending = w.livemetricsQueue || [];
  w.livemetrics = api;

  // --- wiring: first page view, SPA route changes, heartbeats, page hide ---------------------------
  pageView();
  if (FOLLOW_SPA) {
    ["pushState", "replaceState"].forEach(function (name) {
      var orig = history[name];
      history[name] = function () {
        var before = w.location.href, r = orig.apply(this, arguments);
        if (w.location.href !== before) setTimeout(pageView, 0);
        return r;
      };
    });
    w.addEventListener("popstate", function () { pageView(); });
  }
  setInterval(heartbeat, HEARTBEAT_MS);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(true); });
  w.addEventListener("pagehide", function () { flush(true); });
  pending.forEach(function (call) { if (api[call[0]]) api[call[0]](call[1]); });
})(window, document);
