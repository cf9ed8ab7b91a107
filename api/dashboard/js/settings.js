// Settings: the seller's notification channels (webhooks, email addresses) and the webhook deliveries,
// with each failure's reason and a Redeliver button (docs/notifications.md).
import { $, h, fmtTime } from "./dom.js";
import { api, sellerPath } from "./api.js";

let seller = null;
const path = (rest) => sellerPath(seller, `/notifications${rest}`);

function say(sel, text, bad = false) {
  const el = $(sel);
  el.textContent = text;
  el.classList.toggle("error", bad);
}

const KINDS = { payment_failed: "Payment failures", error_spike: "Error spikes", traffic_dropped: "Traffic drops" };
const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// Which alerts go to the channel and when (PUT .../rules): kinds, a minimum amount, quiet hours.
function rulesEditor(ch, what) {
  const r = ch.rules || {}, id = (n) => `${ch.channel_id}-${n}`;
  const kinds = Object.entries(KINDS).map(([k, label]) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "kinds", value: k, checked: !r.kinds?.length || r.kinds.includes(k) }), ` ${label}`));
  const field = (name, label, attrs) => h("div", { class: "field" }, h("label", { for: id(name) }, label),
    h("input", { id: id(name), name, ...attrs }));
  const msg = h("p", { class: "muted", role: "status" });
  const form = h("form", { class: "filters", "aria-label": `Rules for ${what}`, onsubmit: async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const picked = data.getAll("kinds");
    const body = { kinds: picked.length === Object.keys(KINDS).length ? [] : picked,
      min_amount: data.get("min_amount").trim(), quiet_start: data.get("quiet_start"), quiet_end: data.get("quiet_end"),
      tz: data.get("tz").trim() || "UTC" };
    try {
      await api(path(`/channels/${encodeURIComponent(ch.channel_id)}/rules`), { method: "PUT", body });
      msg.textContent = "Rules saved."; msg.classList.remove("error");
    } catch (e) { msg.textContent = `Rules not saved: ${e.message}`; msg.classList.add("error"); }
  } },
    h("fieldset", {}, h("legend", {}, "Alerts sent"), ...kinds),
    field("min_amount", "Minimum amount (payment failures)", { type: "text", inputmode: "decimal", value: r.min_amount || "", placeholder: "any" }),
    field("quiet_start", "Quiet from", { type: "time", value: r.quiet_start || "" }),
    field("quiet_end", "Quiet until", { type: "time", value: r.quiet_end || "" }),
    field("tz", "Quiet hours time zone", { type: "text", value: r.tz && r.tz !== "UTC" ? r.tz : zone() }),
    h("button", { type: "submit" }, "Save rules"), msg);
  return h("details", { class: "rules" }, h("summary", {}, `Rules for ${what}`), form);
}

function channelRow(ch) {
  const what = ch.kind === "webhook" ? `webhook ${ch.target}` : `email ${ch.target}`;
  const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${what}`, onclick: async () => {
    remove.disabled = true;
    try {
      await api(path(`/channels/${encodeURIComponent(ch.channel_id)}`), { method: "DELETE" });
      say("#settings-msg", `Removed ${what}.`);
      await loadSettings(seller);
    } catch (e) { remove.disabled = false; say("#settings-msg", `Could not remove ${what}: ${e.message}`, true); }
  } }, "Remove");
  return h("li", { class: "channel" }, h("span", { class: "pill" }, ch.kind), " ", h("code", {}, ch.target),
    ch.can_read_pii ? "" : h("span", { class: "muted" }, " (masked: added by a token without personal data)"), " ", remove,
    // Stored before card numbers were refused in targets: nothing is sent to it until it is added again.
    ch.blocked ? h("p", { class: "error blocked" }, `Blocked: ${ch.blocked}`) : "",
    rulesEditor(ch, what));
}

function deliveryRow(d) {
  const cells = [fmtTime(d.created_at), d.alert_kind, d.alert_id, d.target];
  const status = h("span", { class: `pill ${d.status}` }, d.status);
  const redo = d.status === "pending" ? "" : h("button", { type: "button", "aria-label": `Redeliver alert ${d.alert_id}`,
    onclick: async () => {
      redo.disabled = true;
      try {
        await api(path(`/deliveries/${encodeURIComponent(d.delivery_id)}/redeliver`), { method: "POST" });
        say("#deliveries-msg", `Alert ${d.alert_id} is being delivered again.`);
        setTimeout(() => loadDeliveries(), 1000);
      } catch (e) { redo.disabled = false; say("#deliveries-msg", `Could not redeliver: ${e.message}`, true); }
    } }, "Redeliver");
  return h("tr", { "data-status": d.status }, ...cells.map((c) => h("td", {}, c)), h("td", {}, status),
    h("td", {}, String(d.attempts)), h("td", { class: "delivery-error" }, d.last_error || ""), h("td", {}, redo));
}

async function loadDeliveries() {
  try {
    const { items } = await api(path("/deliveries?limit=50"));
    $("#deliveries-table tbody").replaceChildren(...items.map(deliveryRow));
    // A failing channel is said at the top, with its reason: the seller must not have to read the table.
    const bad = items.filter((d) => d.status !== "delivered" && d.last_error);
    say("#deliveries-msg", items.length ? "" : "No webhook deliveries yet.");
    const banner = $("#channel-trouble");
    banner.hidden = !bad.length;
    banner.textContent = bad.length ? `${bad.length} deliver${bad.length === 1 ? "y is" : "ies are"} failing `
      + `(${bad[0].target}): ${bad[0].last_error}` : "";
  } catch (e) { say("#deliveries-msg", `Could not load deliveries: ${e.message}`, true); }
}

export async function loadSettings(s) {
  seller = s;
  try {
    const { channels } = await api(path("/channels"));
    $("#channel-list").replaceChildren(...(channels.length ? channels.map(channelRow)
      : [h("li", { class: "empty" }, "No channels yet: alerts reach you only while this dashboard is open.")]));
  } catch (e) { say("#settings-msg", `Could not load channels: ${e.message}`, true); }
  await loadDeliveries();
}

async function add(form, kind, field) {
  const input = form.elements[field];
  const value = input.value.trim();
  if (!value) { say("#settings-msg", `Enter ${kind === "webhooks" ? "a URL" : "an address"}.`, true); input.focus(); return; }
  try {
    const r = await api(path(`/${kind}`), { method: "POST", body: { [field]: value } });
    input.value = "";
    $("#webhook-secret").hidden = !r.signing_secret;
    if (r.signing_secret) $("#webhook-secret-value").textContent = r.signing_secret;
    say("#settings-msg", r.signing_secret ? "Webhook added. Copy its signing secret now: it is not shown again."
      : `Added ${r.target}.`);
    await loadSettings(seller);
  } catch (e) { say("#settings-msg", `Not added: ${e.message}`, true); input.focus(); }
}

export function wireSettings(s) {
  seller = s;
  $("#webhook-form").addEventListener("submit", (ev) => { ev.preventDefault(); add(ev.target, "webhooks", "url"); });
  $("#email-form").addEventListener("submit", (ev) => { ev.preventDefault(); add(ev.target, "emails", "address"); });
  $("#deliveries-refresh").addEventListener("click", () => loadDeliveries());
}
