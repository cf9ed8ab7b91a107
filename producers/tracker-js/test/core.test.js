// The ES module core against a fake window: wire format, batching, sessions, delivery, route changes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createTracker } from "../src/index.js";
import { fakeWindow, REFUSAL_TIMES, refuse } from "./fake-window.js";

const KEY = "lm_pk_k1_secret";
const make = (win, extra = {}) => createTracker({ key: KEY, endpoint: "https://gw.example/", window: win, now: win.now, ...extra });

test("the first page view goes out a second later in t.js's wire format", async () => {
  const win = fakeWindow({ url: "https://shop.example/c/lamps?x=1" });
  win.document.title = "Lamps";
  win.document.referrer = "https://search.example/";
  make(win);
  await win.advance(999);
  assert.equal(win.sent.length, 0);
  await win.advance(1);
  const [req] = win.sent;
  assert.equal(req.via, "fetch");
  assert.equal(req.url, "https://gw.example/v1/events?key=lm_pk_k1_secret");
  assert.deepEqual(req.headers, { "Content-Type": "text/plain" }); // a simple request: no CORS preflight
  assert.equal(req.keepalive, true);
  const [ev] = req.body.events;
  assert.match(ev.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(ev.session_id, /^s-[0-9a-f]{32}$/);
  assert.deepEqual({ ...ev, event_id: 0, session_id: 0 }, {
    event_id: 0, session_id: 0, type: "page_view", ts: 1_767_225_600_000,
    page: { type: "category", category: "lamps", path: "/c/lamps?x=1", title: "Lamps", referrer: "https://search.example/" },
  });
});

test("events within a second share one batch; the twentieth sends the batch at once", async () => {
  const win = fakeWindow();
  const t = make(win, { pageViews: "manual" });
  for (let i = 0; i < 5; i++) t.pageView({ type: "product" });
  await win.advance(1000);
  assert.deepEqual(win.sent.map((s) => s.body.events.length), [5]);
  for (let i = 0; i < 20; i++) t.pageView({ type: "cart" });
  await win.advance(0);
  assert.deepEqual(win.sent.map((s) => s.body.events.length), [5, 20]);
});

test("a session lasts while events come less than 30 minutes apart, then a new one starts", async () => {
  const win = fakeWindow();
  win.document.visibilityState = "hidden"; // a background tab: no heartbeats keep the session going
  const t = make(win, { pageViews: "manual", spa: false });
  const first = t.sessionId();
  await win.advance(29 * 60_000);
  assert.equal(t.sessionId(), first); // rolling: this call extends it again
  await win.advance(29 * 60_000);
  t.pageView({ type: "home" });
  await win.advance(30 * 60_000);
  const second = t.sessionId();
  assert.notEqual(second, first);
  const events = await win.events();
  assert.equal(events.filter((e) => e.type === "page_view")[0].session_id, first);
  win.document.visibilityState = "visible"; // heartbeats are events: a visible tab keeps its session
  await win.advance(120 * 60_000);
  assert.equal(t.sessionId(), second);
});

test("a session shared through localStorage with t.js, and a cookie when storage is blocked", () => {
  const win = fakeWindow();
  win.localStorage.setItem("lm_sid", `s-from-t-js|${win.now() - 60_000}`);
  assert.equal(make(win, { pageViews: "manual" }).sessionId(), "s-from-t-js");
  const blocked = fakeWindow({ storage: false });
  const t = make(blocked, { pageViews: "manual" });
  const sid = t.sessionId();
  assert.match(blocked.document.cookie, new RegExp(`^lm_sid=${sid}%7C\\d+$`));
  assert.equal(t.sessionId(), sid);
});

test("hiding the page sends what is queued by sendBeacon, and so does pagehide", async () => {
  const win = fakeWindow();
  const t = make(win);
  win.document.hide();
  assert.deepEqual(win.sent.map((s) => s.via), ["beacon"]);
  assert.equal(win.sent[0].url, "https://gw.example/v1/events?key=lm_pk_k1_secret");
  assert.equal(win.sent[0].blob.type, "text/plain");
  assert.deepEqual((await win.events()).map((e) => e.type), ["page_view"]);
  t.checkoutStarted({ items: [], total: 5, currency: "EUR" }); // sent by fetch at once
  t.pageView({ type: "payment" });
  win.dispatchEvent({ type: "pagehide" });
  assert.deepEqual(win.sent.map((s) => s.via), ["beacon", "fetch", "beacon"]);
  assert.deepEqual((await win.events()).map((e) => e.type), ["page_view", "checkout_started", "page_view"]);
});

test("without sendBeacon, or when it refuses, the last batch goes by keepalive fetch", async () => {
  const win = fakeWindow({ beacon: false });
  make(win);
  win.dispatchEvent({ type: "pagehide" });
  assert.deepEqual(win.sent.map((s) => [s.via, s.keepalive]), [["fetch", true]]);
  const blocked = fakeWindow({ storage: false });
  blocked.navigator.sendBeacon = () => false; // over the browser's beacon quota, and no storage to keep it in
  make(blocked);
  blocked.document.hide();
  assert.deepEqual(blocked.sent.map((s) => s.via), ["fetch"]);
});

/** The kept entries' names of KEY in a window's storage. */
function keptNames(win) {
  const out = [];
  for (let i = 0; i < win.localStorage.length; i++) {
    const n = win.localStorage.key(i);
    if (n === `lm_q_${KEY}` || n.startsWith(`lm_q_${KEY}.`)) out.push(n);
  }
  return out;
}

/** Copies the kept entries of one window's storage into another's (the same site's storage). */
function copyKept(from, to) {
  for (const n of keptNames(from)) to.localStorage.setItem(n, from.localStorage.getItem(n));
}

test("two tabs keep in entries of their own; the next page sends every entry, the old single one too", async () => {
  const a = fakeWindow();
  const b = fakeWindow();
  b.localStorage = a.localStorage; // one site's storage
  const ids = [];
  for (const win of [a, b]) {
    win.navigator.sendBeacon = () => false; // over the browser's beacon quota
    const t = make(win, { heartbeatSeconds: 3600 });
    win.fetchStatus = 503;
    await win.advance(0);
    ids.push(t.pageView());
  }
  // an entry an earlier version of the tracker kept (one lm_q_<key> for the site)
  const old = { event_id: "old-1", type: "page_view", ts: a.clock, page: { type: "home", path: "/" } };
  a.localStorage.setItem(`lm_q_${KEY}`, JSON.stringify([old]));
  a.document.hide();
  b.document.hide();
  assert.equal(keptNames(a).length, 3); // a's, b's and the old one: none written over another
  const next = fakeWindow({ start: a.clock });
  copyKept(a, next);
  make(next, { heartbeatSeconds: 3600 });
  await next.advance(1000);
  const sent = (await next.events()).map((e) => e.event_id);
  assert.ok([...ids, "old-1"].every((id) => sent.includes(id)));
  assert.equal(sent.length, new Set(sent).size);
  assert.deepEqual(keptNames(next), []);
});

test("what the browser's beacons would not take is kept for the next page, sent once, the kept ones first", async () => {
  const win = fakeWindow();
  win.navigator.sendBeacon = () => false; // over the browser's ~64 KiB in flight (a fetch of it was refused too)
  const t = make(win);
  win.fetchStatus = 503;
  const ids = [t.paymentFailed({ amount: 5, currency: "EUR", errorCode: "card_declined" })];
  await win.advance(0);
  ids.push(t.pageView());
  win.document.hide();
  const fetched = win.sent.length;
  assert.equal(fetched, 1); // the first batch's fetch, refused; nothing more was fetched for the page leaving
  const names = keptNames(win);
  assert.equal(names.length, 1); // an entry of this page's own, lm_q_<key>.<tab>.<n>
  const kept = JSON.parse(win.localStorage.getItem(names[0]));
  assert.equal(kept.length, 3); // the first page view, the failure, the page view
  // the next page of the site (the same storage): its first batch carries the kept events, then its own
  const next = fakeWindow({ start: win.clock });
  copyKept(win, next);
  make(next, { heartbeatSeconds: 3600 });
  await next.advance(1000);
  const events = await next.events();
  assert.deepEqual(events.map((e) => e.event_id).slice(0, 3), kept.map((e) => e.event_id));
  assert.ok(ids.every((id) => events.some((e) => e.event_id === id)));
  assert.equal(events.length, 4);
  assert.deepEqual(keptNames(next), []);
  await next.advance(60_000);
  assert.equal((await next.events()).length, 4); // sent once
  // kept events older than the gateway takes (a day off its clock) are dropped, counted
  const late = fakeWindow({ start: win.clock + 24 * 3600 * 1000 });
  copyKept(win, late);
  const t3 = make(late);
  await late.advance(1000);
  assert.equal((await late.events()).length, 1);
  assert.equal(t3.dropped(), 3);
});

test("route changes: pushState and popstate send a page view of the new URL, same-URL replaceState does not", async () => {
  const win = fakeWindow({ url: "https://shop.example/" });
  make(win);
  win.history.pushState({}, "", "/o/summer-sale");
  win.history.replaceState({}, "", "/o/summer-sale");
  await win.advance(0);
  win.history.pushState({}, "", "/checkout");
  await win.advance(0);
  win.history.back();
  await win.advance(1000);
  const views = (await win.events()).map((e) => [e.page.type, e.page.offer_id, e.page.path]);
  assert.deepEqual(views, [["home", undefined, "/"], ["offer", "summer-sale", "/o/summer-sale"],
    ["checkout", undefined, "/checkout"], ["offer", "summer-sale", "/o/summer-sale"]]);
});

test("manual page views: nothing on its own, route changes included; the app names each page", async () => {
  const win = fakeWindow({ url: "https://shop.example/whatever" });
  const t = make(win, { pageViews: "manual" });
  win.history.pushState({}, "", "/c/chairs");
  await win.advance(1000);
  assert.equal(win.sent.length, 0);
  t.pageView({ type: "offer", offer: "bundle-42" });
  await win.advance(1000);
  assert.deepEqual((await win.events()).map((e) => e.page), [{ type: "offer", offer_id: "bundle-42", path: "/c/chairs", title: "Shop" }]);
});

test("a 503, a 429 or a network error sends the batch again with the same event ids; a 422 does not", async () => {
  const win = fakeWindow();
  win.fetchStatus = (n) => [503, "network", 429, 202][n - 1] ?? 202;
  make(win, { heartbeatSeconds: 3600 });
  await win.advance(1000);
  for (let i = 0; i < 3; i++) await win.advance(5000);
  const ids = win.sent.map((s) => s.body.events.map((e) => e.event_id).join());
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 1);
  const rejected = fakeWindow();
  rejected.fetchStatus = 422;
  make(rejected, { heartbeatSeconds: 3600 });
  await rejected.advance(20_000);
  assert.equal(rejected.sent.length, 1);
});

test("a 429 or a 503 waits its Retry-After (at least 5 s, at most 60 s); events queued meanwhile wait too", async () => {
  const win = fakeWindow();
  refuse(win);
  const t = make(win, { heartbeatSeconds: 3600, pageViews: "manual" });
  t.pageView({ type: "home" });
  await win.advance(1000);
  t.pageView({ type: "cart" }); // would go out a second later, but the gateway asked for 30 s
  t.paymentStarted({ amount: 1, currency: "EUR" }); // sent at once otherwise
  await win.advance(150_000);
  const first = win.sent[0].at;
  assert.deepEqual(win.sent.map((s) => s.at - first), REFUSAL_TIMES);
  assert.deepEqual(win.sent.map((s) => s.body.events.length), [1, 3, 3, 3, 3, 3]);
  assert.equal(new Set(win.sent.slice(1).map((s) => s.body.events.map((e) => e.event_id).join())).size, 1);
  win.fetchStatus = 429; // refused again: a minute to wait, but a beacon goes anyway (the page is going away)
  win.retryAfter = "60";
  t.pageView({ type: "home" });
  t.flush();
  await win.advance(1000);
  t.pageView({ type: "cart" });
  t.flush();
  await win.advance(1000);
  win.document.hide();
  await win.advance(0);
  const last = win.sent.slice(6).map((s) => [s.via, s.at - first]);
  assert.deepEqual(last, [["fetch", 150_000], ["beacon", 152_000]]);
  assert.equal((await win.events()).slice(-3).map((e) => e.page.type).join(), "home,home,cart");
});

test("payments and checkouts are sent at once, with t.js's fields", async () => {
  const win = fakeWindow();
  const t = make(win, { pageViews: "manual" });
  const id = t.paymentFailed({ method: "paypal", amount: "39.90", currency: "EUR", orderId: 17, errorCode: "declined",
    errorMessage: "no", details: { a: 1 }, customer: { email: "a@b.c" } });
  await win.advance(0);
  const [ev] = win.sent[0].body.events;
  assert.equal(ev.event_id, id);
  assert.deepEqual(ev.payment, { method: "paypal", amount: 39.9, currency: "EUR", order_id: "17", error_code: "declined", error_message: "no", details: { a: 1 } });
  assert.deepEqual(ev.customer, { email: "a@b.c" });
  t.paymentSucceeded({ amount: 5, currency: "EUR", order_id: "o-2" });
  await win.advance(0);
  assert.deepEqual(win.sent[1].body.events[0].payment, { method: "card", amount: 5, currency: "EUR", order_id: "o-2" });
});

test("heartbeats every 15 s (or as configured, at least 5 s) while the tab is visible", async () => {
  const win = fakeWindow();
  make(win, { heartbeatSeconds: 1 });
  await win.advance(10_000);
  win.document.visibilityState = "hidden";
  await win.advance(10_000);
  const types = (await win.events()).map((e) => e.type);
  assert.deepEqual(types, ["page_view", "heartbeat", "heartbeat"]);
});

test("destroy sends what is queued, stops the timers and gives history back", async () => {
  const win = fakeWindow();
  const push = win.history.pushState;
  const t = make(win);
  assert.notEqual(win.history.pushState, push);
  t.destroy();
  assert.equal(win.history.pushState, push);
  assert.deepEqual(win.sent.map((s) => s.via), ["beacon"]);
  await win.advance(60_000);
  assert.equal(win.sent.length, 1);
  assert.throws(() => t.pageView(), /destroyed/);
});

test("bad options and pages fail at once, naming what is wrong", () => {
  const win = fakeWindow();
  assert.throws(() => createTracker({ endpoint: "https://gw", window: win }), /needs `key`/);
  assert.throws(() => createTracker({ key: "lm_sk_k_s", endpoint: "https://gw", window: win }), /server key/);
  assert.throws(() => createTracker({ key: KEY, window: win }), /needs `endpoint`/);
  assert.throws(() => createTracker({ key: KEY, endpoint: "gw.example", window: win }), /needs `endpoint`/);
  assert.throws(() => createTracker({ key: KEY, endpoint: "https://gw", pageViews: "some" }), /"auto" or "manual"/);
  assert.throws(() => createTracker({ key: KEY, endpoint: "https://gw" }), /runs in a browser/);
  assert.throws(() => make(win, { patterns: [{ type: "blog", re: "^/blog" }] }), /"blog" is not one of home/);
  const t = make(win, { pageViews: "manual" });
  assert.throws(() => t.pageView({ type: "landing" }), /"landing" is not one of/);
  assert.throws(() => t.pageView({ type: "category" }), /category page needs `category`/);
  assert.throws(() => t.pageView({ type: "offer" }), /offer page needs `offer`/);
});

test("refused for an hour: at most 500 wait; heartbeats go first, then the oldest page views; payments and the newest are kept", async () => {
  const win = fakeWindow();
  win.fetchStatus = 503;
  win.retryAfter = "60";
  const warned = [];
  win.console = { warn: (m) => warned.push(m) };
  const t = make(win, { heartbeatSeconds: 10, pageViews: "manual" });
  const failure = t.paymentFailed({ amount: 5, currency: "EUR", errorCode: "card_declined" });
  await win.advance(0);
  const products = [];
  for (let i = 0; i < 300; i++) products.push(t.pageView({ type: "product" }));
  for (let i = 0; i < 60; i++) await win.advance(60_000); // 360 heartbeats, every batch refused
  const carts = [];
  for (let i = 0; i < 200; i++) carts.push(t.pageView({ type: "cart" }));
  assert.equal(t.dropped(), 1 + 300 + 360 + 200 - 500);
  win.fetchStatus = 202;
  const before = win.sent.length;
  await win.advance(60_000);
  const [batch] = win.sent.slice(before).map((s) => s.body.events);
  assert.equal(batch.length, 500);
  assert.equal(batch.filter((e) => e.type === "heartbeat").length, 0);
  assert.deepEqual(batch.map((e) => e.event_id), [failure, ...products.slice(1), ...carts]);
  assert.equal(warned.length, 1); // the page's console says so, once
});
