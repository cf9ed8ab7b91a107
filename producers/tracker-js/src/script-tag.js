// The script-tag build's entry (build.mjs bundles it into dist/t.js, an IIFE): the same attributes,
// window.livemetrics API and queued calls as producers/tracker/t.js, on top of the ES module, so that it
// can replace t.js later. <script src=".../t.js" data-key="lm_pk_..." async></script>
import { createTracker } from "./index.js";

(function (w, d) {
  if (w.livemetrics && w.livemetrics._loaded) return;
  const script = d.currentScript || d.querySelector("script[data-key][src*='t.js']") || {};
  const attr = (n, dflt) => {
    const v = script.getAttribute && script.getAttribute(`data-${n}`);
    return v == null ? dflt : v;
  };
  const key = attr("key", "");
  if (!key) {
    w.console && w.console.error("livemetrics: the tracker's script tag needs data-key=\"lm_pk_...\" (a browser key); nothing is sent");
    return;
  }
  const endpoint = attr("endpoint", "") || (script.src ? new URL(script.src, w.location.href).origin : w.location.origin);
  const cfg = w.livemetricsConfig || {};
  const t = createTracker({
    key,
    endpoint,
    base: attr("base", ""),
    heartbeatSeconds: +attr("heartbeat", 15),
    spa: attr("spa", "true") !== "false",
    patterns: cfg.patterns || [],
    window: w,
  });
  const api = {
    _loaded: true,
    page: () => t.pageView(),
    flush: () => t.flush(),
    dropped: () => t.dropped(),
    sessionId: () => t.sessionId(),
    checkoutStarted: t.checkoutStarted,
    paymentStarted: t.paymentStarted,
    paymentSucceeded: t.paymentSucceeded,
    paymentFailed: t.paymentFailed,
  };
  const pending = w.livemetricsQueue || [];
  w.livemetrics = api;
  pending.forEach((call) => api[call[0]] && api[call[0]](call[1]));
})(window, document);
