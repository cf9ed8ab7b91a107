// A fake browser window for the tracker's tests: a URL and history, a document with visibility and
// cookies, localStorage, fetch and sendBeacon that record what is sent, and timers on a manual clock.
// The same object serves as the global of a vm context, so the script-tag builds (and t.js) run in it too.

class Events {
  constructor() {
    this.handlers = {};
  }
  addEventListener(type, fn) {
    (this.handlers[type] ||= new Set()).add(fn);
  }
  removeEventListener(type, fn) {
    this.handlers[type]?.delete(fn);
  }
  dispatchEvent(ev) {
    for (const fn of [...(this.handlers[ev.type] || [])]) fn(ev);
  }
}

export function fakeWindow({ url = "https://shop.example/", storage = true, beacon = true, start = 1_767_225_600_000 } = {}) {
  const win = new Events();
  let href = new URL(url);
  const timers = new Map();
  let nextTimer = 1;
  win.clock = start;
  win.now = () => win.clock;
  win.sent = []; // {via: "fetch"|"beacon", url, body (parsed), keepalive}
  win.fetchStatus = 202; // the status fetch answers; a function of the call number, or "network" to reject
  win.calls = 0;

  win.location = {
    get href() { return href.href; },
    get pathname() { return href.pathname; },
    get search() { return href.search; },
    get origin() { return href.origin; },
  };
  const entries = [href];
  let at = 0;
  win.history = {
    pushState(_state, _title, u) {
      href = new URL(u, href);
      entries.splice(at + 1, entries.length, href);
      at += 1;
    },
    replaceState(_state, _title, u) {
      href = new URL(u, href);
      entries[at] = href;
    },
    back() {
      at -= 1;
      href = entries[at];
      win.dispatchEvent({ type: "popstate" });
    },
  };

  const doc = new Events();
  doc.title = "Shop";
  doc.referrer = "";
  doc.visibilityState = "visible";
  doc.body = { dataset: {} };
  let cookies = {};
  Object.defineProperty(doc, "cookie", {
    get: () => Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join("; "),
    set: (c) => {
      const [kv] = c.split(";");
      const i = kv.indexOf("=");
      cookies[kv.slice(0, i).trim()] = kv.slice(i + 1);
    },
  });
  doc.hide = () => {
    doc.visibilityState = "hidden";
    doc.dispatchEvent({ type: "visibilitychange" });
  };
  win.document = doc;

  const store = new Map();
  win.localStorage = {
    getItem(k) {
      if (!storage) throw new Error("SecurityError: storage is blocked");
      return store.has(k) ? store.get(k) : null;
    },
    setItem(k, v) {
      if (!storage) throw new Error("SecurityError: storage is blocked");
      store.set(k, String(v));
    },
  };

  win.navigator = {
    sendBeacon: beacon
      ? (u, blob) => {
          win.sent.push({ via: "beacon", url: u, blob });
          return true;
        }
      : undefined,
  };
  win.fetch = (u, init) => {
    win.calls += 1;
    const status = typeof win.fetchStatus === "function" ? win.fetchStatus(win.calls) : win.fetchStatus;
    win.sent.push({ via: "fetch", url: u, body: JSON.parse(init.body), keepalive: init.keepalive, headers: init.headers });
    return status === "network" ? Promise.reject(new TypeError("Failed to fetch")) : Promise.resolve({ status });
  };

  const addTimer = (fn, ms, every) => {
    const id = nextTimer++;
    timers.set(id, { fn, due: win.clock + Math.max(0, ms || 0), every });
    return id;
  };
  win.setTimeout = (fn, ms) => addTimer(fn, ms, 0);
  win.setInterval = (fn, ms) => addTimer(fn, ms, ms);
  win.clearTimeout = win.clearInterval = (id) => timers.delete(id);
  /** Moves the clock on by `ms`, running each timer that falls due, in order (promises settle between). */
  win.advance = async (ms) => {
    const end = win.clock + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      let next = null;
      for (const [id, t] of timers) if (t.due <= end && (!next || t.due < next[1].due)) next = [id, t];
      if (!next) break;
      const [id, t] = next;
      win.clock = t.due;
      if (t.every) t.due += t.every;
      else timers.delete(id);
      t.fn();
    }
    win.clock = end;
    await new Promise((r) => setImmediate(r));
  };
  /** Every event sent so far (beacon bodies read too), in the order sent. */
  win.events = async () => {
    const out = [];
    for (const s of win.sent) out.push(...(s.body || JSON.parse(await s.blob.text())).events);
    return out;
  };
  win.crypto = globalThis.crypto;
  win.Blob = globalThis.Blob;
  win.URL = URL;
  win.window = win;
  return win;
}
