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
  win.retryAfter = null; // the answer's Retry-After header (a string, or a function of the call number)
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
    removeItem(k) {
      if (!storage) throw new Error("SecurityError: storage is blocked");
      store.delete(k);
    },
    get length() {
      if (!storage) throw new Error("SecurityError: storage is blocked");
      return store.size;
    },
    key(i) {
      if (!storage) throw new Error("SecurityError: storage is blocked");
      return [...store.keys()][i] ?? null;
    },
  };

  win.navigator = {
    sendBeacon: beacon
      ? (u, blob) => {
          if (blob.size > 65536) return false; // browsers refuse a beacon over 64 KiB
          win.sent.push({ via: "beacon", url: u, blob, at: win.clock });
          return true;
        }
      : undefined,
  };
  win.fetch = (u, init) => {
    win.calls += 1;
    const bytes = Buffer.byteLength(init.body);
    let status = typeof win.fetchStatus === "function" ? win.fetchStatus(win.calls) : win.fetchStatus;
    if (bytes > 1024 * 1024 && status !== "network") status = 413; // the gateway refuses such a body whole
    const retryAfter = typeof win.retryAfter === "function" ? win.retryAfter(win.calls) : win.retryAfter;
    win.sent.push({ via: "fetch", url: u, body: JSON.parse(init.body), bytes, status, keepalive: init.keepalive, headers: init.headers, at: win.clock });
    const headers = { get: (name) => (name.toLowerCase() === "retry-after" ? retryAfter ?? null : null) };
    return status === "network" ? Promise.reject(new TypeError("Failed to fetch")) : Promise.resolve({ status, headers });
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

// What the gateway answers in turn (429 and 503, with and without Retry-After), and when each send comes,
// in ms from the first: Retry-After when over 5 s, capped at 60 s; an HTTP date too; else 5 s.
export const REFUSALS = [[429, "30"], [503, "2"], [429, "3600"], [503, null], [429, "date+20"], [202, null]];
export const REFUSAL_TIMES = [0, 30_000, 35_000, 95_000, 100_000, 120_000];
/** Makes `win`'s gateway answer REFUSALS in turn. */
export function refuse(win) {
  win.fetchStatus = (n) => (REFUSALS[n - 1] ?? [202])[0];
  win.retryAfter = (n) => {
    const v = (REFUSALS[n - 1] ?? [0, null])[1];
    return v === "date+20" ? new Date(win.clock + 20_000).toUTCString() : v;
  };
}
