// The alert feed and toasts: a toast the moment a payment fails (contact, order, error); error spikes
// stand out. Alerts are de-duplicated by id (a reconnect replays the recent ones without toasts).
import { $, h, fmtMoney, fmtTime } from "./dom.js";

const seen = new Set();
const TOAST_MS = 15000;
// Toasts shown at once, per kind (single failures; shop-wide alerts): anyone with the shop's public browser
// key can send failures by the hundred, and a toast each covered the whole page. Older toasts go (their
// alerts stay in the feed and the payment-error table).
const MAX_TOASTS = 3;
const SEEN_MAX = 10000; // alert ids remembered for de-duplication: a tab open for days under a flood stays small

function contact(c = {}) {
  return [c.name, c.email, c.phone].filter(Boolean).join(" · ") || "no contact given";
}

// The trust label: anything sent with a browser key (public, on the storefront's pages) may come from
// anyone, contact data included; only a signature says it is the seller's own server or their payment
// provider (a webhook verified with its signing secret, docs/providers.md).
const SIGNED = { server: "signed by the seller's server", stripe: "from Stripe, signed" };
export function trust(a) {
  return SIGNED[a.source] || "reported by the browser";
}

// Alerts about the shop as a whole (not one customer's payment): they stand out and stay until dismissed.
const SHOP_WIDE = new Set(["error_spike", "traffic_dropped"]);

export function describe(a) {
  if (a.kind === "traffic_dropped") {
    const ctx = a.context || {}, silent = a.silent_s ?? ctx.silent_s, base = a.baseline_per_minute ?? ctx.baseline_per_minute;
    return {
      title: "Traffic stopped",
      lines: [`No page views for ${silent ? Math.round(silent / 60) : "many"} min${base !== undefined ? ` (usually ${base} a minute)` : ""}: is tracking broken or the shop down?`],
    };
  }
  if (a.kind === "error_spike") {
    const ctx = a.context || {}, p = a.payment || {};
    const what = [p.error_code || ctx.error_code, p.method || ctx.method].filter(Boolean).join(" / ");
    const count = ctx.failures ?? ctx.count ?? ctx.observed;
    const win = ctx.window_s ? ` in ${Math.round(ctx.window_s / 60)} min` : "";
    const base = ctx.baseline ?? ctx.expected;
    return {
      title: "Payment error spike",
      lines: [`${count ?? "Many"} failed payments${win}${what ? ` (${what})` : ""}${base !== undefined ? `, usually ${base}` : ""}`,
        a.message || ctx.message || ""].filter(Boolean),
    };
  }
  const o = a.order || {}, p = a.payment || {};
  return {
    title: "Payment failed",
    lines: [
      contact(a.customer),
      `Order ${o.order_id || "?"} · ${fmtMoney(o.amount, o.currency)} · ${p.method || ""}`,
      `${p.error_code || "error"}: ${p.error_message || ""}`,
    ],
  };
}

function feedItem(a) {
  const d = describe(a);
  return h("li", { class: SHOP_WIDE.has(a.kind) ? "spike" : "", "data-alert-id": a.alert_id || "" },
    h("time", {}, fmtTime(a.at)), " ", h("strong", {}, d.title), " ", h("span", { class: "muted trust" }, trust(a)),
    h("br"), d.lines.join(" — "));
}

export function toast(a) {
  const d = describe(a);
  const el = h("div", { class: `toast${SHOP_WIDE.has(a.kind) ? " spike" : ""}`, "data-alert-id": a.alert_id || "" },
    h("button", { class: "close", type: "button", "aria-label": "Dismiss alert", onclick: () => el.remove() }, "×"),
    h("strong", {}, d.title), h("div", { class: "muted trust" }, trust(a)), ...d.lines.map((l) => h("div", {}, l)));
  const box = $("#toasts"), wide = SHOP_WIDE.has(a.kind);
  box.prepend(el);
  const same = [...box.children].filter((t) => t.classList.contains("spike") === wide);
  for (const old of same.slice(MAX_TOASTS)) old.remove();
  // Spikes stay until dismissed; single failures fade after a while (they stay in the feed and table).
  if (!SHOP_WIDE.has(a.kind)) setTimeout(() => el.remove(), TOAST_MS);
}

export function onAlert(a, replay) {
  const id = a.alert_id || JSON.stringify(a);
  if (seen.has(id)) return;
  seen.add(id);
  if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value); // the oldest: a replay is recent
  const feed = $("#alert-feed");
  $(".empty", feed)?.remove();
  feed.prepend(feedItem(a));
  while (feed.children.length > 100) feed.lastElementChild.remove();
  if (!replay) toast(a);
}
