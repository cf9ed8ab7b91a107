// Batching and delivery, t.js's wire format: POST <endpoint>/v1/events?key=<browser key> with
// {"events": [...]} as text/plain (a "simple" request: no CORS preflight, and sendBeacon accepts it).
// At least once: a batch whose fetch fails, or is answered 429/5xx, is queued again with the same event
// ids (the gateway and the pipeline de-duplicate by event_id), and nothing is fetched for RETRY_MS, or for
// the answer's Retry-After when longer (up to MAX_RETRY_AFTER_MS; the gateway exposes it to other origins):
// events queued meanwhile wait with it. A beacon (the page going away) is sent anyway.
// At most MAX_QUEUE events wait (a refusal can last minutes: the gateway's 503 while Kafka is away, a 429
// while the shop's public key is over its rate). Past it the oldest heartbeats go first (a later one says
// the same), then the oldest events; the page's console says so once, and `dropped()` counts them.
// Before, a refused batch was put back ahead of the queue and the queue cut to its first 500: the newest
// events (the visitor's current page, a payment failure) were the ones lost, and `push` had no bound.

export const FLUSH_MS = 1000;
export const MAX_BATCH = 20; // a batch is sent at once when this many events wait
export const MAX_QUEUE = 500; // the gateway's batch limit; heartbeats, then older events beyond it are dropped
export const RETRY_MS = 5000;
export const MAX_RETRY_AFTER_MS = 60_000;

/** The wait a 429/5xx answer asks for in ms: its Retry-After (seconds, or an HTTP date), capped; else 0. */
export function retryAfterMs(r, nowMs) {
  const v = r && r.headers && typeof r.headers.get === "function" ? r.headers.get("Retry-After") : null;
  if (v == null) return 0;
  const s = String(v).trim();
  const ms = /^\d+$/.test(s) ? +s * 1000 : Date.parse(s) - nowMs;
  return ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : 0;
}

export const KEPT_MS = 23 * 3600 * 1000; // kept events older than this are dropped (the gateway refuses a `ts` a day off)
export const KEPT_CHARS = 500_000; // kept events' JSON at most (localStorage holds ~5 M characters an origin)

export const BEACON_BYTES = 60_000; // a beacon's body at most (browsers refuse more than 64 KiB)
export const BODY_BYTES = 1_000_000; // a fetch's body at most (the gateway refuses one over 1 MiB whole, 413)

/** UTF-8 bytes of a string. */
const utf8Bytes = (s) => encodeURIComponent(s).replace(/%[0-9A-F]{2}/g, "x").length;

/** Consecutive pieces of `batch` whose `{"events": [...]}` bodies are at most `limit` bytes each. */
export function pieces(batch, limit = BEACON_BYTES) {
  const out = [];
  let cur = [];
  let size = 13; // {"events":[]}
  for (const ev of batch) {
    const n = utf8Bytes(JSON.stringify(ev)) + 1;
    if (cur.length && size + n > limit) {
      out.push(cur);
      cur = [];
      size = 13;
    }
    cur.push(ev);
    size += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

const dropRank = (ev) => (ev.type === "heartbeat" ? 0 : ev.type === "page_view" ? 1 : 2);

/**
 * `keptName`: the prefix of the localStorage items (t.js's `lm_q_<key>`) where a hiding page keeps what the
 * browser would not take as beacons (~64 KiB in flight at most, beacons and keepalive fetches alike): each
 * keep in an entry of its own, `<keptName>.<tab>.<n>`, written once and never read back and rewritten (two
 * tabs hiding at the same moment both read-modify-wrote one item, and one tab's events were lost). The next
 * page of the site (or this one, back in view) claims every entry of the prefix (the names read once, each
 * removed before its events are sent) and sends them with its next batch. Bounded like the queue (MAX_QUEUE,
 * the same drop order), all entries together to KEPT_CHARS; events older than KEPT_MS are dropped. Nothing
 * sent is kept, so nothing the gateway took is sent twice (it does not de-duplicate; downstream does, by
 * event_id). Two pages starting at the same moment can both read one entry before either removes it: sent
 * twice, never lost.
 */
export function createSender(win, url, now = Date.now, keptName = null) {
  let queue = [];
  let timer = null;
  let holdUntil = 0; // no fetch before this (a refused or failed batch's backoff, or the gateway's Retry-After)
  let dropped = 0;

  /** The queue cut to MAX_QUEUE: the oldest heartbeats dropped first, then the oldest page views, then the
   * oldest of the rest (checkouts and payments: a payment failure is the seller's alert). Order is kept. */
  function bound(q, max = MAX_QUEUE) {
    let over = q.length - Math.max(0, max);
    if (over <= 0) return q;
    if (!dropped && win.console) {
      win.console.warn(`livemetrics: the gateway has not taken events for a while; more than ${MAX_QUEUE} are waiting, the oldest are dropped`);
    }
    dropped += over;
    for (const rank of [0, 1, 2]) {
      if (over <= 0) break;
      q = q.filter((ev) => {
        if (over <= 0 || dropRank(ev) !== rank) return true;
        over -= 1;
        return false;
      });
    }
    return q;
  }

  const tab = Math.random().toString(36).slice(2, 10) + now().toString(36); // this page's entries' name
  let keeps = 0;

  /** This prefix's entries: one per keep, and the single `keptName` item of older versions. */
  function keptNames() {
    const out = [];
    for (let i = 0; i < win.localStorage.length; i++) {
      const n = win.localStorage.key(i);
      if (n === keptName || (n && n.startsWith(`${keptName}.`))) out.push(n);
    }
    return out;
  }

  /** Keeps `batch` in an entry of its own for a later page; false where storage is blocked. */
  function keep(batch) {
    if (!keptName) return false;
    try {
      let room = KEPT_CHARS; // what the key's other entries leave
      for (const n of keptNames()) room -= (win.localStorage.getItem(n) || "").length;
      let q = bound(batch);
      let s = JSON.stringify(q);
      while (q.length && s.length > room) {
        q = bound(q, Math.floor((q.length * Math.max(room, 0)) / s.length) - 1);
        s = JSON.stringify(q);
      }
      if (q.length) win.localStorage.setItem(`${keptName}.${tab}.${++keeps}`, s);
      return true;
    } catch (e) {
      return false;
    }
  }

  /** Every kept entry's events, each entry taken out of storage before they are sent, in time order. */
  function unkeep() {
    if (!keptName) return [];
    try {
      const t = now();
      let all = 0;
      const out = [];
      for (const n of keptNames()) {
        const raw = win.localStorage.getItem(n);
        if (raw == null) continue; // another page took it first
        win.localStorage.removeItem(n);
        let q;
        try {
          q = JSON.parse(raw);
        } catch (e) {
          q = null;
        }
        if (!Array.isArray(q)) continue;
        all += q.length;
        for (const ev of q) if (ev && typeof ev.ts === "number" && t - ev.ts < KEPT_MS) out.push(ev);
      }
      dropped += all - out.length;
      return out.sort((a, b) => a.ts - b.ts);
    } catch (e) {
      return [];
    }
  }

  function schedule(ms) {
    if (!timer) timer = win.setTimeout(() => flush(), ms);
  }

  function requeue(batch, waitMs = 0) {
    queue = bound(batch.concat(queue));
    const ms = Math.max(RETRY_MS, waitMs);
    holdUntil = Math.max(holdUntil, now() + ms);
    schedule(ms);
  }

  /** Sends what is queued; with `beacon`, by navigator.sendBeacon (it outlives the page), else fetch. */
  function flush(beacon) {
    if (timer) {
      win.clearTimeout(timer);
      timer = null;
    }
    const wait = holdUntil - now();
    if (!beacon && wait > 0) return queue.length ? schedule(wait) : undefined;
    if (!beacon) {
      const k = unkeep(); // what an earlier page kept
      if (k.length) queue = bound(k.concat(queue));
    }
    if (!queue.length) return;
    let batch = queue.splice(0, MAX_QUEUE);
    let body = JSON.stringify({ events: batch });
    const nav = win.navigator;
    if (beacon && nav && nav.sendBeacon) {
      // Browsers refuse a beacon over 64 KiB: the batch goes in pieces under BEACON_BYTES, in order, while
      // they are taken; the rest by fetch below. (One beacon of a long refusal's 500 events, ~150 KB, was
      // refused and its fetch, too large for keepalive, died with the page: every event lost.)
      const Blob_ = win.Blob || globalThis.Blob;
      const parts = pieces(batch);
      let i = 0;
      while (i < parts.length && nav.sendBeacon(url, new Blob_([JSON.stringify({ events: parts[i] })], { type: "text/plain" }))) i++;
      if (i === parts.length) return;
      batch = [].concat(...parts.slice(i));
      // What the browser would not take is kept for a later page, not fetched (a fetch of it died with the
      // page); fetched as before only where storage is blocked.
      if (keep(batch)) return;
      body = JSON.stringify({ events: batch });
    }
    // A long refusal's 500 events can be over the gateway's 1 MiB, which it refuses whole (413, not retried:
    // every event lost): the first of them that fit go now, the rest back at the queue's head for the next flush.
    const [fit] = pieces(batch, BODY_BYTES);
    if (fit.length < batch.length) {
      queue = batch.slice(fit.length).concat(queue);
      batch = fit;
      body = JSON.stringify({ events: batch });
      if (!beacon) schedule(FLUSH_MS);
    }
    try {
      win
        .fetch(url, { method: "POST", body, keepalive: body.length < 60000, headers: { "Content-Type": "text/plain" } })
        .then((r) => {
          if (r.status === 429 || r.status >= 500) requeue(batch, retryAfterMs(r, now()));
        })
        .catch(() => requeue(batch));
    } catch (e) {
      requeue(batch);
    }
  }

  function push(ev) {
    queue.push(ev);
    if (queue.length > MAX_QUEUE) queue = bound(queue);
    if (queue.length >= MAX_BATCH) flush();
    else schedule(FLUSH_MS);
  }

  if (keptName) schedule(FLUSH_MS); // what an earlier page kept goes with the first batch, or on its own
  return { push, flush, pending: () => queue.length, dropped: () => dropped, stop: () => timer && win.clearTimeout(timer) };
}
