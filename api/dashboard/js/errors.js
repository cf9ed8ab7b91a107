// The payment-error table: newest first, filters, "older" paging by cursor, and a stored follow-up mark.
import { $, h, fmtMoney, fmtTime } from "./dom.js";
import { api, sellerPath } from "./api.js";

let seller = null, cursor = null;

function query(form) {
  const q = new URLSearchParams({ limit: "50" });
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    if (k === "from") q.set("from", `${v}T00:00:00`);
    else if (k === "to") q.set("to", `${v}T23:59:59`);
    else q.set(k, v);
  }
  if (cursor) q.set("cursor", cursor);
  return q;
}

function statusCell(item) {
  const status = item.status || "open";
  const pill = h("span", { class: `pill ${status}` }, status);
  const sel = h("select", { "aria-label": `Follow-up for order ${item.order?.order_id || item.alert_id}` },
    ...["open", "contacted", "resolved"].map((s) => h("option", { value: s, selected: s === status }, s)));
  const note = h("input", { type: "text", placeholder: "note", "aria-label": "Note", value: item.note || "" });
  const msg = h("span", { class: "muted", role: "status" });
  const save = h("button", { type: "button", onclick: async () => {
    save.disabled = true;
    try {
      await api(sellerPath(seller, `/payment-errors/${encodeURIComponent(item.alert_id)}/status`),
        { method: "POST", body: { status: sel.value, note: note.value } });
      pill.className = `pill ${sel.value}`; pill.textContent = sel.value; msg.textContent = "saved";
    } catch (e) { msg.textContent = e.message; } finally { save.disabled = false; }
  } }, "Save");
  return h("td", {}, h("div", { class: "status" }, pill, sel, note, save, msg));
}

function row(item) {
  const c = item.customer || {}, o = item.order || {}, p = item.payment || {}, cl = item.client || {};
  return h("tr", { "data-alert-id": item.alert_id },
    h("td", {}, fmtTime(item.at)),
    h("td", {}, c.name || "", c.name ? h("br") : "",
      c.email ? h("a", { href: `mailto:${c.email}` }, c.email) : "", h("br"),
      c.phone ? h("a", { href: `tel:${c.phone}` }, c.phone) : ""),
    h("td", {}, o.order_id || "", h("br"), fmtMoney(o.amount, o.currency)),
    h("td", {}, h("strong", {}, p.error_code || ""), h("br"), p.error_message || "", h("br"), h("span", { class: "muted" }, p.method || "")),
    h("td", {}, h("details", {}, h("summary", {}, "Timeline and client"),
      h("pre", {}, JSON.stringify({ details: p.details, client: cl, context: item.context, session_id: item.session_id }, null, 2)))),
    statusCell(item));
}

export async function loadErrors(sellerId, { more = false } = {}) {
  seller = sellerId;
  if (!more) cursor = null;
  const msg = $("#errors-msg"), body = $("#errors-table tbody");
  msg.textContent = "Loading…";
  try {
    const data = await api(`${sellerPath(seller, "/payment-errors")}?${query($("#error-filters"))}`);
    if (!more) body.replaceChildren();
    body.append(...(data.items || []).map(row));
    cursor = data.next_cursor || null;
    $("#errors-more").hidden = !cursor;
    msg.textContent = body.children.length ? `${body.children.length} failed payments shown` : "No failed payments match.";
  } catch (e) {
    msg.textContent = e.status === 404 ? "Payment errors are not available on this API yet." : `Could not load payment errors: ${e.message}`;
  }
}

export function wireErrors(sellerId) {
  $("#error-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadErrors(sellerId); });
  $("#errors-more").addEventListener("click", () => loadErrors(sellerId, { more: true }));
}
