// Batching and delivery, t.js's wire format: POST <endpoint>/v1/events?key=<browser key> with
// {"events": [...]} as text/plain (a "simple" request: no CORS preflight, and sendBeacon accepts it).
// At least once: a batch whose fetch fails, or is answered 429/5xx, is queued again with the same event
// ids (the gateway and the pipeline de-duplicate by event_id), and nothing is fetched for RETRY_MS, or for
// the answer's Retry-After when longer (up to MAX_RETRY_AFTER_MS; the gateway exposes it to other origins):
// events queued meanwhile wait with it. A beacon (the page going away) is sent anyway.

export const FLUSH_MS = 1000;
export const MAX_BATCH = 20; // a batch is sent at once when this many events wait
export const MAX_QUEUE = 500; // the gateway's batch limit; older events beyond it are dropped
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

export function createSender(win, url, now = Date.now) {
  let queue = [];
  let timer = null;
  let holdUntil = 0; // no fetch before this (a refused or failed batch's backoff, or the gateway's Retry-After)

  function schedule(ms) {
    if (!timer) timer = win.setTimeout(() => flush(), ms);
  }

  function requeue(batch, waitMs = 0) {
    queue = batch.concat(queue).slice(0, MAX_QUEUE);
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
    if (!queue.length) return;
    const wait = holdUntil - now();
    if (!beacon && wait > 0) return schedule(wait);
    const batch = queue.splice(0, MAX_QUEUE);
    const body = JSON.stringify({ events: batch });
    const nav = win.navigator;
    if (beacon && nav && nav.sendBeacon) {
      const Blob_ = win.Blob || globalThis.Blob;
      if (nav.sendBeacon(url, new Blob_([body], { type: "text/plain" }))) return;
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
    if (queue.length >= MAX_BATCH) flush();
    else schedule(FLUSH_MS);
  }

  return { push, flush, pending: () => queue.length, stop: () => timer && win.clearTimeout(timer) };
}
