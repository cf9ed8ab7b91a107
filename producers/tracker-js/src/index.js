// @livemetrics/tracker: the browser tracker as an ES module. The wire format, session rules, page
// detection, batching and delivery are t.js's (producers/tracker/t.js, docs/ingest.md), so events from
// either look the same downstream.
import { createSender } from "./delivery.js";
import { compilePatterns, declaredPage, detectPage, pageContext, PAGE_TYPES } from "./pages.js";
import { sessionId, uuid } from "./session.js";

export { PAGE_TYPES };

function options(o) {
  if (!o || typeof o.key !== "string" || !o.key) throw new TypeError("livemetrics: createTracker needs `key`, a browser key (lm_pk_...)");
  if (o.key.startsWith("lm_sk_")) throw new TypeError("livemetrics: `key` is a server key, which is secret: browsers use a browser key (lm_pk_...)");
  if (typeof o.endpoint !== "string" || !/^https?:\/\//.test(o.endpoint)) {
    throw new TypeError("livemetrics: createTracker needs `endpoint`, the gateway's URL (e.g. https://gateway.example)");
  }
  const pageViews = o.pageViews == null ? "auto" : o.pageViews;
  if (pageViews !== "auto" && pageViews !== "manual") throw new TypeError(`livemetrics: \`pageViews\` is "auto" or "manual", not ${JSON.stringify(pageViews)}`);
  const win = o.window || globalThis.window;
  if (!win || !win.document) throw new TypeError("livemetrics: createTracker runs in a browser (no `window` here; create it on the client)");
  return {
    win,
    url: `${o.endpoint.replace(/\/$/, "")}/v1/events?key=${encodeURIComponent(o.key)}`,
    base: (o.base || "").replace(/\/$/, ""),
    patterns: compilePatterns(o.patterns),
    heartbeatMs: Math.max(5, o.heartbeatSeconds == null ? 15 : +o.heartbeatSeconds) * 1000,
    spa: o.spa !== false,
    pageViews,
    now: o.now || Date.now,
  };
}

/** Patches history.pushState/replaceState and listens to popstate; calls `onChange` a tick after each URL
 * change (as t.js does: the app has usually rendered the new route by then). Returns the undo function. */
function followRoutes(win, onChange) {
  const h = win.history;
  let live = true;
  const changed = () => live && win.setTimeout(onChange, 0);
  const originals = {};
  const wrappers = {};
  for (const name of ["pushState", "replaceState"]) {
    const orig = (originals[name] = h[name]);
    h[name] = wrappers[name] = function (...args) {
      const before = win.location.href;
      const r = orig.apply(this, args);
      if (win.location.href !== before) changed();
      return r;
    };
  }
  win.addEventListener("popstate", changed);
  return () => {
    live = false; // a wrapper that someone patched over stays in place, inert
    win.removeEventListener("popstate", changed);
    for (const name of Object.keys(originals)) if (h[name] === wrappers[name]) h[name] = originals[name];
  };
}

/**
 * A tracker for one page (or single-page app). With `pageViews: "auto"` (the default) it sends a page
 * view now and on every route change, its type detected from the URL like t.js; with "manual" the app
 * sends them (`pageView({type, ...})`, or the React hook).
 */
export function createTracker(opts) {
  const o = options(opts);
  const { win, now } = o;
  const sender = createSender(win, o.url, now, `lm_q_${opts.key}`);
  let lastPage = null;
  let stopped = false;

  function event(type, extra) {
    if (stopped) throw new Error("livemetrics: this tracker was destroyed");
    const ev = { event_id: uuid(win), type, session_id: sessionId(win, now), ts: now() };
    for (const k in extra) if (extra[k] != null) ev[k] = extra[k];
    sender.push(ev);
    return ev.event_id;
  }

  function pageView(page) {
    const p = page ? declaredPage(page) : detectPage(win, o.base, o.patterns);
    lastPage = pageContext(win, p);
    return event("page_view", { page: lastPage });
  }

  function payment(type, p0) {
    const x = p0 || {};
    const p = { method: x.method || "card", amount: +x.amount || 0, currency: x.currency, order_id: String(x.orderId || x.order_id || "") };
    if (x.items) p.items = x.items;
    if (type === "payment_failed") {
      p.error_code = String(x.errorCode || x.error_code || "unknown");
      if (x.errorMessage || x.error_message) p.error_message = String(x.errorMessage || x.error_message);
      if (x.details) p.details = x.details;
    }
    const id = event(type, { payment: p, customer: x.customer });
    sender.flush(); // payments matter now, and often precede a navigation
    return id;
  }

  const timers = [];
  const onHidden = () => win.document.visibilityState === "hidden" && sender.flush(true);
  const onPageHide = () => sender.flush(true);
  win.document.addEventListener("visibilitychange", onHidden);
  win.addEventListener("pagehide", onPageHide);
  timers.push(win.setInterval(() => {
    if (win.document.visibilityState === "visible") event("heartbeat", { page: lastPage || pageContext(win, detectPage(win, o.base, o.patterns)) });
  }, o.heartbeatMs));
  // Route changes are page views only in "auto" mode: in "manual" the app's own calls name each page.
  const auto = o.pageViews === "auto";
  const unfollow = auto && o.spa ? followRoutes(win, () => pageView()) : () => {};
  if (auto) pageView();

  return {
    pageViews: o.pageViews,
    pageView,
    checkoutStarted(c0) {
      const c = c0 || {};
      const id = event("checkout_started", { checkout: { items: c.items || [], total: +c.total || 0, currency: c.currency }, customer: c.customer });
      sender.flush();
      return id;
    },
    paymentStarted: (p) => payment("payment_started", p),
    paymentSucceeded: (p) => payment("payment_succeeded", p),
    paymentFailed: (p) => payment("payment_failed", p),
    flush: () => sender.flush(),
    dropped: () => sender.dropped(),
    sessionId: () => sessionId(win, now),
    destroy() {
      if (stopped) return;
      sender.flush(true);
      stopped = true;
      sender.stop();
      unfollow();
      timers.forEach((t) => win.clearInterval(t));
      win.document.removeEventListener("visibilitychange", onHidden);
      win.removeEventListener("pagehide", onPageHide);
    },
  };
}
