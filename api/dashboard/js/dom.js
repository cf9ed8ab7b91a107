// Tiny DOM helpers. Everything from the API goes in as text, never as HTML (customer data is untrusted).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") Object.assign(el.style, v); // CSSOM, allowed by the page's CSP (no inline styles)
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
export const $ = (sel, root = document) => root.querySelector(sel);
export function fmtNum(n) { return Number(n || 0).toLocaleString(); }
export function fmtWindow(s) {
  if (!s) return "";
  if (s % 3600 === 0) return `last ${s / 3600} h`;
  if (s % 60 === 0) return `last ${s / 60} min`;
  return `last ${s} s`;
}
export function fmtTime(ms) {
  if (ms === undefined || ms === null) return "";
  const d = typeof ms === "number" ? new Date(ms) : new Date(String(ms));
  return isNaN(d) ? String(ms) : d.toLocaleString();
}
export function fmtMoney(amount, currency) {
  if (amount === undefined || amount === null || amount === "") return "";
  try { return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR" }).format(amount); }
  catch { return `${amount} ${currency || ""}`.trim(); }
}
