// Historical reports (ClickHouse): a date range in a chosen time zone, one chart and one table per report.
import { $, h } from "./dom.js";
import { api, sellerPath } from "./api.js";
import { columnChart } from "./charts.js";

// Row fields: docs/clickhouse.md. `series` turns rows into (labels, values) for the chart.
const byKey = (rows, key, val) => {
  const m = new Map();
  for (const r of rows) m.set(r[key], (m.get(r[key]) || 0) + Number(r[val] || 0));
  return m;
};
const REPORTS = [
  { id: "hourly", title: "Activity by hour of day", what: "sessions per hour of day (all weekdays added up)",
    series: (rows) => { const m = byKey(rows, "hour", "sessions"); const hrs = [...Array(24).keys()]; return [hrs.map((x) => `${x}h`), hrs.map((x) => m.get(x) || 0)]; } },
  { id: "categories", title: "Popular categories", what: "page views by category",
    series: (rows) => [rows.slice(0, 15).map((r) => r.category), rows.slice(0, 15).map((r) => r.views)] },
  { id: "offers", title: "Popular offers", what: "page views by offer",
    series: (rows) => [rows.slice(0, 15).map((r) => r.offer_id), rows.slice(0, 15).map((r) => r.views)] },
  { id: "funnel", title: "Checkout funnel and abandonment", what: "sessions reaching each step",
    series: (rows) => [rows.map((r) => r.step), rows.map((r) => r.sessions)] },
  { id: "payment-methods", title: "Payment-method success rate", what: "success rate (%) by payment method",
    series: (rows) => [rows.map((r) => r.method), rows.map((r) => Math.round((r.success_rate || 0) * 1000) / 10)] },
  { id: "error-trends", title: "Payment errors over time", what: "failed payments per day (all error codes)",
    series: (rows) => { const m = byKey(rows, "day", "failures"); return [[...m.keys()], [...m.values()]]; } },
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
const localIso = (day, time, tz) => `${day}T${time}${tzOffset(tz, new Date(`${day}T12:00:00Z`))}`;

function renderReport(rep, rows) {
  const box = h("section", { class: "panel", id: `report-${rep.id}`, "aria-labelledby": `report-${rep.id}-t` },
    h("h2", { id: `report-${rep.id}-t` }, rep.title));
  if (!rows.length) { box.append(h("p", { class: "muted" }, "No data in this range.")); return box; }
  const [labels, values] = rep.series(rows);
  box.append(h("p", { class: "window" }, rep.what), columnChart(labels, values, `${rep.title}: ${rep.what}`));
  const keys = Object.keys(rows[0]);
  box.append(h("details", {}, h("summary", {}, "Table"),
    h("table", {}, h("thead", {}, h("tr", {}, ...keys.map((k) => h("th", { scope: "col" }, k)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...keys.map((k) => h("td", {},
        typeof r[k] === "object" && r[k] !== null ? JSON.stringify(r[k]) : String(r[k] ?? "")))))))));
  return box;
}

export async function loadHistory(seller) {
  const form = $("#history-form"), f = new FormData(form), tz = f.get("tz") || "UTC";
  const q = new URLSearchParams({ from: localIso(f.get("from"), "00:00:00", tz), to: localIso(f.get("to"), "23:59:59", tz), tz });
  $("#history-msg").textContent = "Loading…";
  const boxes = await Promise.all(REPORTS.map(async (rep) => {
    try {
      const data = await api(`${sellerPath(seller, `/reports/${rep.id}`)}?${q}`);
      return renderReport(rep, data.rows || []);
    } catch (e) {
      return h("section", { class: "panel", id: `report-${rep.id}` }, h("h2", {}, rep.title),
        h("p", { class: "muted" }, e.status === 404 ? "Not available on this API yet." : `Could not load: ${e.message}`));
    }
  }));
  $("#reports").replaceChildren(...boxes);
  $("#history-msg").textContent = `${f.get("from")} to ${f.get("to")}, ${tz}`;
}

export function wireHistory(seller) {
  const tzSel = $("#tz"), mine = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [mine];
  if (!zones.includes("UTC")) zones.unshift("UTC");
  tzSel.replaceChildren(...zones.map((z) => h("option", { value: z, selected: z === mine }, z)));
  const today = new Date(), weekAgo = new Date(Date.now() - 6 * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  const form = $("#history-form");
  form.elements.from.value = day(weekAgo);
  form.elements.to.value = day(today);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (form.elements.from.value > form.elements.to.value) { $("#history-msg").textContent = "“From” must be before “To”."; return; }
    loadHistory(seller);
  });
}
