// Batching and delivery, t.js's wire format: POST <endpoint>/v1/events?key=<browser key> with
// {"events": [...]} as text/plain (a "simple" request: no CORS preflight, and sendBeacon accepts it).
// At least once: a batch whose fetch fails, or is answered 429/5xx, is queued again with the same event
// ids (the gateway and the pipeline de-duplicate by event_id).

export const FLUSH_MS = 1000;
export const MAX_BATCH = 20; // a batch is sent at once when this many events wait
export const MAX_QUEUE = 500; // the gateway's batch limit; older events beyond it are dropped
export const RETRY_MS = 5000;

export function createSender(win, url) {
  let queue = [];
  let timer = null;

  function schedule(ms) {
    if (!timer) timer = win.setTimeout(() => flush(), ms);
  }

  function requeue(batch) {
    queue = batch.concat(queue).slice(0, MAX_QUEUE);
    schedule(RETRY_MS);
  }

  /** Sends what is queued; with `beacon`, by navigator.sendBeacon (it outlives the page), else fetch. */
  function flush(beacon) {
    if (timer) {
      win.clearTimeout(timer);
      timer = null;
    }
    if (!queue.length) return;
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
          if (r.status === 429 || r.status >= 500) requeue(batch);
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
