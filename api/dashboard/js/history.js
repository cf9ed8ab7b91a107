// Historical reports (ClickHouse): a date range in a chosen time zone, one chart and one data table per
// report. Row fields: docs/clickhouse.md. The table is the chart's text alternative and holds every row.
import { $, h, fmtMoney, fmtNum } from "./dom.js";
import { api, sellerPath } from "./api.js";
import { barChart, columnChart } from "./charts.js";

const WEEKDAYS = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const pct = (x) => `${(Math.round(Number(x || 0) * 1000) / 10).toFixed(1)} %`;
const hh = (x) => `${String(x).padStart(2, "0")}:00`;
const money = (o) => Object.entries(o || {}).map(([cur, v]) => fmtMoney(v, cur)).join(", ") || "—";
// A report names at most 20 methods (error codes: per day) and sums the rest as "~other" (docs/clickhouse.md).
const named = (v, what) => (v === "~other" ? `Other ${what}` : v);
const sumBy = (rows, key, val) => {
  const m = new Map();
  for (const r of rows) m.set(r[key], (m.get(r[key]) || 0) + Number(r[val] || 0));
  return m;
};

// Each report: the chart (kind, labels, values) and the table columns [header, cell(row)].
const REPORTS = [
  { id: "hourly", title: "Activity by hour of day", what: "page views per hour of day, all weekdays added up",
    chart: (rows) => { const m = sumBy(rows, "hour", "page_views"), hrs = [...Array(24).keys()];
      return ["columns", hrs.map(hh), hrs.map((x) => m.get(x) || 0)]; },
    cols: [["Weekday", (r) => WEEKDAYS[r.weekday] || r.weekday], ["Hour", (r) => hh(r.hour)], ["Page views", (r) => fmtNum(r.page_views)],
      ["Sessions", (r) => fmtNum(r.sessions)], ["Checkouts", (r) => fmtNum(r.checkouts)], ["Purchases", (r) => fmtNum(r.purchases)]] },
  { id: "categories", title: "Popular categories", what: "page views by category (sessions that started in the range)",
    chart: (rows) => ["bars", rows.slice(0, 12).map((r) => r.category), rows.slice(0, 12).map((r) => r.views)],
    cols: [["Category", (r) => r.category], ["Views", (r) => fmtNum(r.views)], ["Sessions", (r) => fmtNum(r.sessions)],
      ["Started checkout", (r) => fmtNum(r.checkout_sessions)], ["Conversion", (r) => pct(r.conversion)]] },
  { id: "offers", title: "Popular offers", what: "page views by offer (sessions that started in the range)",
    chart: (rows) => ["bars", rows.slice(0, 12).map((r) => r.offer_id), rows.slice(0, 12).map((r) => r.views)],
    cols: [["Offer", (r) => r.offer_id], ["Views", (r) => fmtNum(r.views)], ["Sessions", (r) => fmtNum(r.sessions)],
      ["Started checkout", (r) => fmtNum(r.checkout_sessions)], ["Conversion", (r) => pct(r.conversion)]] },
  { id: "funnel", title: "Checkout funnel and abandonment", what: "sessions reaching each step",
    chart: (rows) => ["bars", rows.map((r) => r.step), rows.map((r) => r.sessions)],
    cols: [["Step", (r) => r.step], ["Sessions", (r) => fmtNum(r.sessions)], ["From previous", (r) => pct(r.conversion_from_previous)],
      ["From start", (r) => pct(r.conversion_from_start)], ["Abandoned here", (r) => fmtNum(r.abandoned)]] },
  { id: "payment-methods", title: "Payment-method success rate", what: "succeeded / (succeeded + failed), per method",
    chart: (rows) => ["bars", rows.map((r) => named(r.method, "methods")), rows.map((r) => Math.round((r.success_rate || 0) * 1000) / 10), "%"],
    cols: [["Method", (r) => named(r.method, "methods")], ["Started", (r) => fmtNum(r.started)], ["Succeeded", (r) => fmtNum(r.succeeded)],
      ["Failed", (r) => fmtNum(r.failed)], ["Success rate", (r) => pct(r.success_rate)], ["Share", (r) => pct(r.share)],
      ["Revenue", (r) => money(r.revenue)]] },
  { id: "error-trends", title: "Payment errors over time", what: "failed payments per day, all error codes",
    chart: (rows, days) => { const m = sumBy(rows, "day", "failures"); return ["columns", days, days.map((d) => m.get(d) || 0)]; },
    cols: [["Day", (r) => r.day], ["Error code", (r) => named(r.error_code, "codes")], ["Failures", (r) => fmtNum(r.failures)]] },
];

// The offset of a time zone at a given instant, as "+02:00" (Intl has no direct API for it).
export function tzOffset(tz, date) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(date).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const mins = Math.round((asUtc - date.getTime()) / 60000);
  const sign = mins < 0 ? "-" : "+", a = Math.abs(mins);
  return `${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}
// When `day` starts in `tz`, as ISO 8601 with the offset in force then. The day's noon offset alone put the
// start an hour off on the days the clocks change (twice a year in Europe and the US); where they change at
// midnight (Chile, Cuba...) midnight may not exist (the day starts at the jump, with the offset before it)
// or come twice (the day starts at the first). tests/unit/api/test_dashboard_local_midnight.py
export function localMidnight(day, tz) {
  const at = (o) => new Date(`${day}T00:00:00${o}`);
  const before = tzOffset(tz, new Date(Date.parse(`${day}T12:00:00Z`) - 86400000)); // the day before's noon
  const offsets = [before, tzOffset(tz, new Date(`${day}T12:00:00Z`))];
  const valid = offsets.filter((o) => tzOffset(tz, at(o)) === o).sort((a, b) => at(a) - at(b));
  return `${day}T00:00:00${valid.length ? valid[0] : before}`;
}
const nextDay = (day) => new Date(Date.parse(`${day}T00:00:00Z`) + 86400000).toISOString().slice(0, 10);

function dataTable(rep, rows) {
  return h("details", { class: "data" }, h("summary", {}, `Data table (${rows.length} rows)`),
    h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": `${rep.title}: data` }, h("table", {}, h("caption", { class: "sr-only" }, rep.title),
      h("thead", {}, h("tr", {}, ...rep.cols.map(([name]) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...rep.cols.map(([, cell]) => h("td", {}, String(cell(r) ?? "")))))))));
}

// Every day from `from` to `to` (YYYY-MM-DD), so that a trend shows the quiet days too.
function daysOf(from, to) {
  const out = [];
  for (let d = from; d <= to && out.length < 400; d = nextDay(d)) out.push(d);
  return out;
}

function renderReport(rep, data, tz, days) {
  const rows = data.rows || [];
  const box = h("section", { class: "panel report", id: `report-${rep.id}`, "aria-labelledby": `report-${rep.id}-t` },
    h("h2", { id: `report-${rep.id}-t` }, rep.title));
  if (!rows.length) { box.append(h("p", { class: "muted" }, "No data in this range.")); return box; }
  const [kind, labels, values, unit = ""] = rep.chart(rows, days);
  const label = `${rep.title}: ${rep.what} (${tz})`;
  box.append(h("p", { class: "window" }, `${rep.what} (${tz})`),
    kind === "bars" ? barChart(labels, values, label, unit) : columnChart(labels, values, label));
  if (rep.id === "error-trends" && data.top_causes?.length) {
    box.append(h("h3", {}, "Top causes"), h("ol", { class: "causes" }, ...data.top_causes.map((c) =>
      h("li", {}, h("strong", {}, c.error_code), ` — ${fmtNum(c.failures)} (${pct(c.share)})`, c.message ? `: ${c.message}` : ""))));
  }
  box.append(dataTable(rep, rows));
  return box;
}

// How far behind the reports are (GET /v1/history/lag: the age of the oldest event not stored yet).
export function lagText(lag) {
  const s = lag?.behind_seconds;
  if (s === null || s === undefined) return "";
  if (s < 60 && !lag.stalled) return "History is up to date.";
  const mins = Math.round(s / 60), span = s < 60 ? "less than a minute" : mins < 90 ? `${mins} min` : `${Math.round(mins / 60)} h`;
  return `History is ${span} behind${lag.stalled ? " (storing has stalled)" : ""}.`;
}

export async function loadLag() {
  try {
    $("#history-lag").textContent = lagText(await api("/v1/history/lag"));
  } catch {
    $("#history-lag").textContent = "";
  }
}

// Each load takes a number; a slower earlier load (the tab's first default range) must not paint over
// the answer to the range the user asked for after it.
let latestLoad = 0;

export async function loadHistory(seller) {
  const mine = ++latestLoad;
  loadLag();
  const form = $("#history-form"), f = new FormData(form), tz = f.get("tz") || "UTC";
  const q = new URLSearchParams({ from: localMidnight(f.get("from"), tz), to: localMidnight(nextDay(f.get("to")), tz), tz });
  const msg = $("#history-msg");
  msg.textContent = "Loading…";
  $("#reports").setAttribute("aria-busy", "true");
  const boxes = await Promise.all(REPORTS.map(async (rep) => {
    try {
      return renderReport(rep, await api(`${sellerPath(seller, `/reports/${rep.id}`)}?${q}`), tz, daysOf(f.get("from"), f.get("to")));
    } catch (e) {
      return h("section", { class: "panel report", id: `report-${rep.id}` }, h("h2", {}, rep.title),
        h("p", { class: "error" }, e.status === 404 ? "Not available on this API yet." : `Could not load: ${e.message}`));
    }
  }));
  if (mine !== latestLoad) return;
  $("#reports").replaceChildren(...boxes);
  $("#reports").removeAttribute("aria-busy");
  msg.textContent = `${f.get("from")} to ${f.get("to")} (whole days), ${tz}`;
}

export function wireHistory(seller) {
  setInterval(() => { if (!$("#tab-history").hidden) loadLag(); }, 30000);
  const tzSel = $("#tz"), mine = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [mine];
  if (!zones.includes("UTC")) zones.unshift("UTC");
  if (!zones.includes(mine)) zones.unshift(mine);
  tzSel.replaceChildren(...zones.map((z) => h("option", { value: z, selected: z === mine }, z)));
  const day = (d) => d.toISOString().slice(0, 10);
  const form = $("#history-form");
  form.elements.from.value = day(new Date(Date.now() - 6 * 86400000));
  form.elements.to.value = day(new Date());
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!form.elements.from.value || !form.elements.to.value) { $("#history-msg").textContent = "Pick both days."; return; }
    if (form.elements.from.value > form.elements.to.value) { $("#history-msg").textContent = "“From” must not be after “To”."; return; }
    loadHistory(seller);
  });
}
