// The payment-error table: newest first, filters, "older" paging by cursor, and a stored follow-up mark.
import { $, h, fmtMoney, fmtTime } from "./dom.js";
import { api, sellerPath } from "./api.js";
import { localMidnight } from "./history.js";
import { trust } from "./alerts.js";

let seller = null, cursor = null;
const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function query(form) {
  const q = new URLSearchParams({ limit: "50" });
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    // Whole days in the browser's own zone (the table shows times in it too); `to` is exclusive.
    if (k === "from") q.set("from", localMidnight(v, zone()));
    else if (k === "to") q.set("to", localMidnight(new Date(Date.parse(`${v}T00:00:00Z`) + 86400000).toISOString().slice(0, 10), zone()));
    else q.set(k, v);
  }
  if (cursor) q.set("cursor", cursor);
  return q;
}

function statusCell(item) {
  const status = item.status || "open", what = `order ${item.order?.order_id || item.alert_id}`;
  const pill = h("span", { class: `pill ${status}` }, status);
  const sel = h("select", { class: "status-select", "aria-label": `Follow-up status for ${what}` },
    ...["open", "contacted", "resolved"].map((s) => h("option", { value: s, selected: s === status }, s)));
  const note = h("input", { type: "text", class: "status-note", placeholder: "note", maxlength: "2000",
    "aria-label": `Note for ${what}`, value: item.note || "" });
  const when = h("span", { class: "muted status-at" }, item.status_at ? `since ${fmtTime(item.status_at)}` : "");
  const msg = h("span", { class: "muted", role: "status" });
  const save = h("button", { type: "button", "aria-label": `Save follow-up for ${what}`, onclick: async () => {
    save.disabled = true;
    msg.textContent = "saving…";
    try {
      const r = await api(sellerPath(seller, `/payment-errors/${encodeURIComponent(item.alert_id)}/status`),
        { method: "POST", body: { status: sel.value, note: note.value } });
      pill.className = `pill ${r.status}`; pill.textContent = r.status;
      when.textContent = r.status_at ? `since ${fmtTime(r.status_at)}` : "";
      msg.textContent = "saved";
    } catch (e) { msg.textContent = `not saved: ${e.message}`; } finally { save.disabled = false; }
  } }, "Save");
  return h("td", { "data-label": "Follow-up" }, h("div", { class: "status" }, pill, when, sel, note, save, msg));
}

// Masked contacts (a token without personal-data permission) are shown as text, never as links.
// The address is the link's only part: anyone with the shop's public browser key can send a "customer"
// whose email ends in `?bcc=...&body=...`, which a bare mailto: would turn into hidden recipients and a
// drafted text in the seller's mail client (its contract pattern only says: one @, no spaces).
const mailto = (email) => `mailto:${email.split("@").map(encodeURIComponent).join("@")}`;
function contactCell(c, masked) {
  const link = (href, text) => (masked ? h("span", {}, text) : h("a", { href }, text));
  return h("td", { class: "customer", "data-label": "Customer" }, h("div", {}, c.name ? h("div", {}, c.name) : "",
    c.email ? h("div", {}, link(mailto(c.email), c.email)) : "",
    c.phone ? h("div", {}, link(`tel:${c.phone.replace(/[^+\d]/g, "")}`, c.phone)) : "",
    masked ? h("div", { class: "muted" }, "contact hidden (no permission)") : "",
    !c.name && !c.email && !c.phone ? h("span", { class: "muted" }, "none given") : ""));
}

function row(item) {
  const c = item.customer || {}, o = item.order || {}, p = item.payment || {}, cl = item.client || {};
  const spike = item.kind === "error_spike";
  return h("tr", { "data-alert-id": item.alert_id, class: spike ? "spike" : "" },
    h("td", { "data-label": "When" }, h("div", {}, h("time", { datetime: item.at }, fmtTime(item.at)), spike ? h("div", { class: "pill open" }, "error spike") : "",
      h("div", { class: "muted trust" }, trust(item)))),
    contactCell(c, !!item.pii_masked),
    h("td", { "data-label": "Order" }, h("div", {}, o.order_id || "", h("br"), fmtMoney(o.amount, o.currency))),
    h("td", { "data-label": "Error" }, h("div", {}, h("strong", {}, p.error_code || ""), h("br"), p.error_message || "", h("br"), h("span", { class: "muted method" }, p.method || ""))),
    h("td", { "data-label": "Diagnostics" }, h("details", {}, h("summary", {}, "Timeline and client"),
      h("pre", {}, JSON.stringify({ details: p.details, client: cl, context: item.context, session_id: item.session_id }, null, 2)))),
    statusCell(item));
}

// As in history.js: only the latest load may paint, so a slow earlier answer cannot replace the rows
// of the filters the user applied after it.
let latestLoad = 0;

export async function loadErrors(sellerId, { more = false } = {}) {
  const mine = ++latestLoad;
  seller = sellerId;
  if (!more) cursor = null;
  const msg = $("#errors-msg"), body = $("#errors-table tbody");
  msg.textContent = "Loading…";
  try {
    const data = await api(`${sellerPath(seller, "/payment-errors")}?${query($("#error-filters"))}`);
    if (mine !== latestLoad) return;
    if (!more) body.replaceChildren();
    body.append(...(data.items || []).map(row));
    cursor = data.next_cursor || null;
    $("#errors-more").hidden = !cursor;
    msg.textContent = body.children.length ? `${body.children.length} failed payments shown` : "No failed payments match.";
  } catch (e) {
    if (mine !== latestLoad) return;
    msg.textContent = e.status === 404 ? "Payment errors are not available on this API yet." : `Could not load payment errors: ${e.message}`;
  }
}

export function wireErrors(sellerId) {
  $("#error-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadErrors(sellerId); });
  $("#errors-more").addEventListener("click", () => loadErrors(sellerId, { more: true }));
}
