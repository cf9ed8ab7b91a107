// The React bindings' contract checks, rendered on the server (react-dom/server runs no effects, so
// nothing is sent; the effects themselves run in Chromium: tests/browser/test_tracker_react.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { createTracker } from "../src/index.js";
import { MetricsProvider, useMetrics, withHomePageTracking, withPageTracking } from "../src/react.js";
import { fakeWindow } from "./fake-window.js";

const tracker = (pageViews) => createTracker({ key: "lm_pk_k_s", endpoint: "https://gw.example", window: fakeWindow(), pageViews });

function Home({ name }) {
  return h("h1", null, `hello ${name}`);
}

test("the HOCs render the component with its props, named after it, and send nothing while rendering", () => {
  const t = tracker("manual");
  const Tracked = withHomePageTracking(Home);
  assert.equal(Tracked.displayName, "withPageTracking(Home)");
  assert.equal(renderToString(h(MetricsProvider, { tracker: t }, h(Tracked, { name: "Ada" }))), "<h1>hello Ada</h1>");
  const Offer = withPageTracking(Home, (p) => ({ pageType: "offer", offer: p.name }));
  assert.equal(renderToString(h(MetricsProvider, { tracker: t }, h(Offer, { name: "x" }))), "<h1>hello x</h1>");
});

test("useMetrics outside a provider, or with an automatic tracker, fails naming the fix", () => {
  function Page() {
    useMetrics({ pageType: "cart" });
    return null;
  }
  assert.throws(() => renderToString(h(Page)), /outside <MetricsProvider/);
  assert.throws(() => renderToString(h(MetricsProvider, { tracker: tracker("auto") }, h(Page))), /pageViews: "manual"/);
  function Button() {
    return h("b", null, typeof useMetrics().checkoutStarted); // no pageType: any tracker will do
  }
  assert.equal(renderToString(h(MetricsProvider, { tracker: tracker("auto") }, h(Button))), "<b>function</b>");
});

test("a provider without a tracker, or a HOC without a page type, fails at once", () => {
  assert.throws(() => renderToString(h(MetricsProvider, {})), /needs `tracker`/);
  assert.throws(() => withPageTracking(Home, {}), /withPageTracking\(Home, page\) needs page.pageType/);
});
