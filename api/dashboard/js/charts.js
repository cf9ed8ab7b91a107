// Small hand-written SVG charts (no library): sparklines and bar charts with a text alternative.
const NS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function sparkline(values, label) {
  const w = 120, hgt = 28, svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", role: "img" });
  const vals = (values || []).map(Number).filter((v) => Number.isFinite(v));
  svg.setAttribute("aria-label", vals.length ? `${label}: per minute, ${vals.length} minutes, latest ${vals[vals.length - 1]}, peak ${Math.max(...vals)}` : `${label}: no per-minute data yet`);
  if (vals.length < 2) return svg;
  const max = Math.max(1, ...vals), step = w / (vals.length - 1);
  const pts = vals.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
  svg.append(s("polyline", { points: `0,${hgt} ${pts.join(" ")} ${w},${hgt}`, fill: "#e3ecf9", stroke: "none" }));
  svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: "#1f5fbf", "stroke-width": "1.5", "vector-effect": "non-scaling-stroke" }));
  return svg;
}

// Horizontal bars in HTML (readable at any width: text does not shrink with the chart), one per label,
// value at the end. The data table next to it carries the numbers for screen readers.
export function barChart(labels, values, title, unit = "") {
  const max = Math.max(1, ...values.map(Number).filter(Number.isFinite));
  const top = labels.map((l, i) => `${l} ${values[i]}${unit}`).slice(0, 5).join(", ");
  const list = document.createElement("div"); // not a list: role=img makes its children presentational
  list.className = "bars chart-bars";
  list.setAttribute("role", "img");
  list.setAttribute("aria-label", `${title}. ${top}${labels.length > 5 ? ", …" : ""}`);
  labels.forEach((label, i) => {
    const li = document.createElement("div");
    const name = document.createElement("span"); name.className = "label"; name.title = String(label); name.textContent = String(label);
    const bar = document.createElement("span"); bar.className = "bar";
    const fill = document.createElement("span"); fill.style.width = `${(Number(values[i]) || 0) / max * 100}%`; bar.append(fill);
    const n = document.createElement("span"); n.className = "n"; n.textContent = `${values[i]}${unit}`;
    li.append(name, bar, n);
    list.append(li);
  });
  return list;
}

// Vertical bars for a series over time (hourly pattern, error trend).
export function columnChart(labels, values, title) {
  const w = 480, hgt = 190, pad = { l: 40, r: 6, t: 10, b: 30 };
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": title });
  const max = Math.max(1, ...values.map(Number).filter(Number.isFinite));
  const n = Math.max(values.length, 1), bw = (w - pad.l - pad.r) / n;
  [0, 0.5, 1].forEach((f) => {
    const y = pad.t + (1 - f) * (hgt - pad.t - pad.b);
    svg.append(s("line", { x1: pad.l, x2: w - pad.r, y1: y, y2: y, stroke: "#d9e2ec" }));
    const t = s("text", { x: pad.l - 4, y: y + 3, "text-anchor": "end", class: "chart-axis" });
    t.textContent = Math.round(max * f * 100) / 100;
    svg.append(t);
  });
  const every = Math.ceil(n / 6);
  values.forEach((v, i) => {
    const bh = (Number(v) || 0) / max * (hgt - pad.t - pad.b);
    const cw = Math.min(Math.max(bw - 2, 1), 36); // a few columns stay columns, not walls
    const rect = s("rect", { x: pad.l + i * bw + (bw - cw) / 2, y: hgt - pad.b - bh, width: cw, height: bh, fill: "#1f5fbf" });
    const tip = s("title"); tip.textContent = `${labels[i]}: ${v}`; rect.append(tip);
    svg.append(rect);
    if (i % every === 0) {
      const t = s("text", { x: pad.l + i * bw + bw / 2, y: hgt - pad.b + 18, "text-anchor": "middle", class: "chart-axis" });
      t.textContent = String(labels[i]).slice(0, 10);
      svg.append(t);
    }
  });
  return svg;
}
