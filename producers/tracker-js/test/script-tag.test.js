// The script-tag build (build.mjs -> an IIFE) against producers/tracker/t.js: run each in a fake window
// as a browser would (the page's global), do the same things, and compare what reaches the gateway.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import vm from "node:vm";
import { buildScriptTag } from "../build.mjs";
import { fakeWindow, REFUSAL_TIMES, refuse } from "./fake-window.js";

const T_JS = new URL("../../tracker/t.js", import.meta.url);
const built = buildScriptTag(join(mkdtempSync(join(tmpdir(), "lm-tracker-")), "t.js"));

function page(source, attrs, { url = "https://shop.example/", config, before } = {}) {
  const win = fakeWindow({ url });
  if (before) before(win);
  win.document.currentScript = { src: "https://gw.example/t.js", getAttribute: (n) => attrs[n] ?? null };
  win.document.querySelector = () => null;
  win.console = console;
  if (config) win.livemetricsConfig = config;
  win.livemetricsQueue = [["checkoutStarted", { items: [], total: 12, currency: "EUR" }]];
  vm.createContext(win);
  vm.runInContext("Date.now = function () { return window.now(); };", win);
  vm.runInContext(source, win);
  return win;
}

async function walk(win) {
  win.history.pushState({}, "", "/shop/c/lamps");
  await win.advance(0);
  win.history.pushState({}, "", "/shop/deal/x-1");
  await win.advance(0);
  win.history.pushState({}, "", "/shop/blog/hello");
  await win.advance(0);
  win.livemetrics.paymentFailed({ method: "card", amount: 9.5, currency: "EUR", orderId: "o-1", errorCode: "declined", customer: { email: "a@b.c" } });
  win.livemetrics.page();
  await win.advance(15_000); // a heartbeat, still queued when the page hides
  win.document.hide();
  await win.advance(0);
  return { sid: win.livemetrics.sessionId(), sent: win.sent.map((s) => [s.via, s.url]), events: await win.events() };
}

const comparable = (events, sid) => events.map((e) => {
  assert.equal(e.session_id, sid);
  assert.match(e.event_id, /^[0-9a-f-]{36}$/);
  return { ...e, event_id: "-", session_id: "-" };
});

test("the script-tag build sends what t.js sends, attribute for attribute", async () => {
  const attrs = { "data-key": "lm_pk_k1_s", "data-base": "/shop", "data-heartbeat": "15" };
  const opts = { url: "https://shop.example/shop/", config: { patterns: [{ type: "offer", re: "^/blog/([^/]+)" }] } };
  const old = await walk(page(readFileSync(T_JS, "utf8"), attrs, opts));
  const now = await walk(page(readFileSync(await built, "utf8"), attrs, opts));
  assert.deepEqual(now.sent, old.sent);
  assert.deepEqual(comparable(now.events, now.sid), comparable(old.events, old.sid));
  assert.deepEqual(now.events.map((e) => [e.type, e.page?.type, e.page?.category ?? e.page?.offer_id]), [
    ["page_view", "home", undefined], ["checkout_started", undefined, undefined], ["page_view", "category", "lamps"],
    ["page_view", "offer", "x-1"], ["page_view", "offer", "hello"], ["payment_failed", undefined, undefined],
    ["page_view", "offer", "hello"], ["heartbeat", "offer", "hello"]]);
  assert.deepEqual(now.sent.map((s) => s[0]), ["fetch", "fetch", "fetch", "beacon"]);
  assert.equal(new Set(now.events.map((e) => e.event_id)).size, now.events.length);
});

test("t.js and the script-tag build wait a 429's or a 503's Retry-After (at least 5 s, at most 60 s)", async () => {
  const attrs = { "data-key": "lm_pk_k1_s", "data-heartbeat": "3600" };
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const win = page(source, attrs, { before: refuse }); // the queued checkout goes at once, with the page view
    await win.advance(0);
    win.livemetrics.page(); // would go out a second later, but the gateway asked for 30 s
    await win.advance(150_000);
    assert.deepEqual(win.sent.map((s) => s.at - win.sent[0].at), REFUSAL_TIMES);
    assert.deepEqual(win.sent.map((s) => s.body.events.length), [2, 3, 3, 3, 3, 3]);
  }
});

test("t.js and the script-tag build refused for an hour: 500 wait, heartbeats dropped first, the payment kept", async () => {
  const attrs = { "data-key": "lm_pk_k1_s", "data-heartbeat": "10" };
  const kept = [];
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const warned = [];
    const win = page(source, attrs, { before: (w) => { w.fetchStatus = 503; w.retryAfter = "60"; } });
    win.console = { warn: (m) => warned.push(m) };
    win.livemetrics.paymentFailed({ amount: 5, currency: "EUR", errorCode: "declined" });
    for (let i = 0; i < 300; i++) win.livemetrics.page();
    for (let i = 0; i < 60; i++) await win.advance(60_000); // 360 heartbeats, every batch refused
    for (let i = 0; i < 200; i++) win.livemetrics.page();
    assert.equal(win.livemetrics.dropped(), 2 + 1 + 300 + 360 + 200 - 500); // 2: the queued checkout and first view
    win.fetchStatus = 202;
    const before = win.sent.length;
    await win.advance(60_000);
    const batch = win.sent[before].body.events;
    kept.push(batch.map((e) => [e.type, e.page?.type]));
    assert.equal(batch.length, 500);
    assert.deepEqual(batch.filter((e) => e.type !== "page_view").map((e) => e.type).sort(), ["checkout_started", "payment_failed"]);
    assert.equal(warned.length, 1);
  }
  assert.deepEqual(kept[1], kept[0]);
});

test("t.js and the script-tag build: a page leaving after a long refusal sends its 500 events in beacons under 64 KiB", async () => {
  const attrs = { "data-key": "lm_pk_k1_s", "data-heartbeat": "3600" };
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const win = page(source, attrs, { before: (w) => { w.fetchStatus = 503; w.retryAfter = "60"; } });
    win.console = { warn() {} };
    for (let i = 0; i < 600; i++) win.livemetrics.page(); // ~190 bytes each: ~95 KB waiting
    await win.advance(1000);
    const before = win.sent.length;
    win.document.hide(); // the visitor leaves: one beacon of it all was refused, and so every event lost
    await win.advance(0);
    const gone = win.sent.slice(before);
    assert.ok(gone.length >= 2 && gone.every((s) => s.via === "beacon" && s.blob.size <= 60_000), gone.map((s) => [s.via, s.blob?.size]));
    const events = [];
    for (const s of gone) events.push(...JSON.parse(await s.blob.text()).events);
    assert.equal(events.length, 500);
    assert.equal(new Set(events.map((e) => e.event_id)).size, 500);
  }
});

test("t.js and the script-tag build: after a long refusal, large events go by fetch in bodies the gateway takes", async () => {
  // 500 page views of a ~2 KB URL wait (~1.1 MB): one body of them all was over the gateway's 1 MiB, refused
  // whole with 413, and a 413 is not retried: every event lost. Now each fetch's body is at most 1,000,000 bytes.
  const attrs = { "data-key": "lm_pk_k1_s", "data-heartbeat": "3600" };
  const url = "https://shop.example/shop/p/lamp?q=" + "x".repeat(1900);
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const win = page(source, attrs, { url, before: (w) => { w.fetchStatus = 503; w.retryAfter = "60"; } });
    win.console = { warn() {} };
    for (let i = 0; i < 600; i++) win.livemetrics.page();
    await win.advance(1000);
    win.fetchStatus = 202;
    const before = win.sent.length;
    await win.advance(120_000);
    const sent = win.sent.slice(before);
    assert.ok(sent.every((s) => s.via === "fetch" && s.bytes <= 1_000_000 && s.status === 202), sent.map((s) => [s.bytes, s.status]));
    const ids = new Set(sent.flatMap((s) => s.body.events.map((e) => e.event_id)));
    assert.equal(ids.size, 500);
  }
});

test("t.js and the script-tag build: a URL or cookie with a malformed escape neither stops the tracker nor throws at the page", async () => {
  // A link anyone can make (/c/%E0%A4%A) threw URIError from decodeURIComponent in the first page view: the
  // script stopped before replaying livemetricsQueue and wiring heartbeats, route changes and page hide (and
  // the npm package's createTracker threw at the app). A session cookie tossed from a sibling subdomain
  // threw in every call, the shop's paymentFailed(...) included. Now the text is kept as written.
  const attrs = { "data-key": "lm_pk_k1_s", "data-heartbeat": "5" };
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const win = page(source, attrs, {
      url: "https://shop.example/c/%E0%A4%A",
      before: (w) => {
        w.localStorage.getItem = () => { throw new Error("blocked"); };
        w.localStorage.setItem = w.localStorage.getItem;
        w.document.cookie = "lm_sid=%E0%A4%A";
      },
    });
    win.livemetrics.paymentFailed({ amount: 5, currency: "EUR", errorCode: "declined" });
    await win.advance(6000);
    const events = await win.events();
    assert.deepEqual([...new Set(events.map((e) => e.type))].sort(), ["checkout_started", "heartbeat", "page_view", "payment_failed"]);
    const view = events.find((e) => e.type === "page_view");
    assert.equal(view.page.type, "category");
    assert.equal(view.page.category, "%E0%A4%A"); // as written: the gateway names it if it refuses it
    assert.equal(new Set(events.map((e) => e.session_id)).size, 1);
    assert.match(win.document.cookie, /lm_sid=s-/); // the session went through the cookie (storage blocked)
  }
});

test("t.js and the script-tag build: a title or referrer cut at its limit never splits an emoji in half", async () => {
  // title.slice(0, 200) cut an emoji across UTF-16 unit 200 in half; JSON.stringify wrote the lone half as
  // "\\ud83d", which no JSON decoder of the gateway takes: the gateway refused the whole batch (now that
  // event alone). Now the cut leaves the whole emoji out.
  const attrs = { "data-key": "lm_pk_k1_s" };
  const ref = "https://search.example/?q=";
  for (const source of [readFileSync(T_JS, "utf8"), readFileSync(await built, "utf8")]) {
    const win = page(source, attrs, {
      before: (w) => {
        w.document.title = "Lampe " + "x".repeat(193) + "\u{1F4A1} de luxe"; // the emoji at units 199-200
        w.document.referrer = ref + "y".repeat(2047 - ref.length) + "\u{1F4A1}"; // at units 2047-2048
      },
    });
    await win.advance(1000);
    const view = (await win.events()).find((e) => e.type === "page_view");
    assert.equal(view.page.title, "Lampe " + "x".repeat(193));
    assert.equal(view.page.referrer, ref + "y".repeat(2047 - ref.length));
    assert.ok(view.page.title.isWellFormed() && view.page.referrer.isWellFormed());
  }
});

test("the script-tag build without data-key says so and sends nothing", async () => {
  const errors = [];
  const win = fakeWindow();
  win.document.currentScript = { src: "https://gw.example/t.js", getAttribute: () => null };
  win.console = { error: (m) => errors.push(m) };
  vm.createContext(win);
  vm.runInContext(readFileSync(await built, "utf8"), win);
  await win.advance(5000);
  assert.equal(win.sent.length, 0);
  assert.equal(win.livemetrics, undefined);
  assert.match(errors[0], /needs data-key/);
});

// A seeded generator (mulberry32): the same paths on every run.
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("page detection agrees with t.js on 400 generated URLs (bases, patterns, queries, encoded slugs)", async () => {
  const rnd = random(16);
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const parts = ["", "c", "category", "categories", "o", "offer", "deals", "p", "product", "item", "cart", "basket",
    "bag", "checkout", "pay", "payment", "blog", "shop", "lamps", "SKU-1", "a%20b", "%C3%A9t%C3%A9", "x.y", "C"];
  const paths = Array.from({ length: 400 }, () => {
    const segs = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(parts));
    const path = `${pick(["", "/shop"])}/${segs.join("/")}${pick(["", "/", "?q=1", "#top"])}`;
    return path.replace(/\/{2,}/g, "/"); // "//x" would be another host
  });
  const attrs = { "data-key": "lm_pk_k1_s", "data-base": "/shop", "data-heartbeat": "3600" };
  const opts = { config: { patterns: [{ type: "offer", re: "^/blog/([^/]+)" }, { type: "cart", re: "^/C$" }] } };
  const run = async (source) => {
    const win = page(source, attrs, opts);
    for (const p of paths) {
      win.history.pushState({}, "", p);
      await win.advance(0);
    }
    await win.advance(1000);
    return (await win.events()).filter((e) => e.type === "page_view").map((e) => e.page);
  };
  const old = await run(readFileSync(T_JS, "utf8"));
  const now = await run(readFileSync(await built, "utf8"));
  assert.ok(old.length > 300); // pushes to the same URL are no route change
  assert.deepEqual(now, old);
  assert.deepEqual(new Set(now.map((p) => p.type)), new Set(["home", "category", "offer", "product", "cart", "checkout", "payment", "other"]));
});
