// Talking to the API: the token lives in this tab's sessionStorage and goes in the Authorization header.
const KEY = "livemetrics.auth";

export function loadAuth() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
}
export function saveAuth(auth) { sessionStorage.setItem(KEY, JSON.stringify(auth)); }
export function clearAuth() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { token, method = "GET", body } = {}) {
  const auth = loadAuth();
  const headers = { Authorization: `Bearer ${token || auth?.token || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "The API cannot be reached");
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const detail = data?.detail ?? data?.error ?? text;
    throw new ApiError(res.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

export function sellerPath(seller, rest = "") { return `/v1/sellers/${encodeURIComponent(seller)}${rest}`; }
