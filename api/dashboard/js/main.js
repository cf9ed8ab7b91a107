// Entry point: sign-in (token in sessionStorage), tabs, and wiring of the live, errors and history views.
import { $ } from "./dom.js";
import { api, loadAuth, saveAuth, clearAuth } from "./api.js";
import { LiveConnection, buildCards } from "./live.js";
import { onAlert } from "./alerts.js";
import { loadErrors, wireErrors } from "./errors.js";
import { loadHistory, wireHistory } from "./history.js";

let conn = null;
const loaded = new Set();

function showLogin(message = "") {
  conn?.stop();
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#login-token").focus();
}

function selectTab(name, seller) {
  for (const t of document.querySelectorAll(".tab")) {
    const on = t.dataset.tab === name;
    t.setAttribute("aria-selected", String(on));
    $(`#tab-${t.dataset.tab}`).hidden = !on;
  }
  if (!loaded.has(name)) {
    loaded.add(name);
    if (name === "errors") loadErrors(seller);
    if (name === "history") loadHistory(seller);
  }
}

function openDashboard(auth) {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#seller-name").textContent = auth.seller;
  document.title = `${auth.seller}: livemetrics`;
  buildCards();
  wireErrors(auth.seller);
  wireHistory(auth.seller);
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => selectTab(t.dataset.tab, auth.seller));
  conn = new LiveConnection({ seller: auth.seller, token: auth.token, onAlert,
    onFatal: (msg) => { clearAuth(); showLogin(msg); } });
  conn.start();
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $("#login-token").value.trim();
  if (!token) { $("#login-error").textContent = "Enter your read token."; return; }
  try {
    const me = await api("/v1/me", { token });
    let seller = me.seller_id;
    if (!seller) {
      $("#login-seller-row").hidden = false;
      seller = $("#login-seller").value.trim();
      if (!seller) { $("#login-error").textContent = "Admin token: enter the seller id to watch."; $("#login-seller").focus(); return; }
    }
    const auth = { token, seller, can_read_pii: me.can_read_pii };
    saveAuth(auth);
    openDashboard(auth);
  } catch (e) {
    $("#login-error").textContent = e.status === 401 ? "This token is unknown, expired or revoked." : e.message;
  }
}

$("#login-form").addEventListener("submit", signIn);
$("#logout").addEventListener("click", () => { clearAuth(); location.reload(); });
const auth = loadAuth();
if (auth?.token && auth?.seller) openDashboard(auth); else showLogin();
