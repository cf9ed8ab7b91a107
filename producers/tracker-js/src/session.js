// Session ids, exactly t.js's rules: random, kept in localStorage (a cookie `lm_sid` where storage is
// blocked) as "<id>|<last event ms>", and a new one after 30 minutes without an event. A page that runs
// both t.js and this package therefore has one session, not two.

import { decoded } from "./pages.js";

export const SESSION_MS = 30 * 60 * 1000;
const NAME = "lm_sid";

export function uuid(win) {
  const c = win.crypto;
  if (c && c.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && c.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function read(win) {
  try {
    return win.localStorage.getItem(NAME);
  } catch (e) {
    const m = win.document.cookie.match(new RegExp(`(?:^|; )${NAME}=([^;]*)`));
    return m ? decoded(m[1]) : null;
  }
}

function write(win, value) {
  try {
    win.localStorage.setItem(NAME, value);
  } catch (e) {
    win.document.cookie = `${NAME}=${encodeURIComponent(value)}; path=/; max-age=1800; SameSite=Lax`;
  }
}

/** The current session id; every call is an event, so it also extends the session. */
export function sessionId(win, now) {
  const t = now();
  const raw = read(win);
  const parts = raw ? raw.split("|") : [];
  const sid = parts.length === 2 && t - Number(parts[1]) < SESSION_MS ? parts[0] : `s-${uuid(win).replace(/-/g, "")}`;
  write(win, `${sid}|${t}`);
  return sid;
}
