// Entry point: sign-in (token in sessionStorage), tabs (keyboard and #hash), the admin's seller switch,
// and wiring of the live, errors and history views.
import { $, h } from "./dom.js";
import { api, loadAuth, saveAuth, clearAuth } from "./api.js";
import { LiveConnection, buildCards } from "./live.js";
import { onAlert } from "./alerts.js";
import { loadErrors, wireErrors } from "./errors.js";
import { loadHistory, wireHistory } from "./history.js";
import { loadSettings, wireSettings } from "./settings.js";
import { notifyIfHidden, wireBrowserNotifications } from "./browser_notify.js";

const TABS = ["live", "errors", "history", "settings"];
let conn = null;
const loaded = new Set();

function showLogin(message = "") {
  conn?.stop();
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#login-token").focus();
}

function selectTab(name, seller, { focus = false } = {}) {
  if (!TABS.includes(name)) name = "live";
  for (const t of document.querySelectorAll(".tab")) {
    const on = t.dataset.tab === name;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1; // roving tabindex: Tab reaches the selected tab, arrows move between tabs
    if (on && focus) t.focus();
    $(`#tab-${t.dataset.tab}`).hidden = !on;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (!loaded.has(name)) {
    loaded.add(name);
    if (name === "errors") loadErrors(seller);
    if (name === "history") loadHistory(seller);
    if (name === "settings") loadSettings(seller);
  }
}

function wireTabs(seller) {
  for (const t of document.querySelectorAll(".tab")) {
    t.addEventListener("click", () => selectTab(t.dataset.tab, seller));
    t.addEventListener("keydown", (ev) => {
      const i = TABS.indexOf(t.dataset.tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[ev.key];
      if (next === undefined) return;
      ev.preventDefault();
      selectTab(TABS[(next + TABS.length) % TABS.length], seller, { focus: true });
    });
  }
  selectTab(location.hash.slice(1) || "live", seller);
}

function fillSellers(select, sellers, current) {
  select.replaceChildren(...sellers.map((s) => h("option", { value: s, selected: s === current }, s)));
}

// Admin tokens read every seller: a switch in the header re-opens the dashboard on another seller.
async function wireSellerSwitch(auth) {
  if (!auth.admin) return;
  const pick = $("#seller-pick");
  let sellers = [auth.seller];
  try { sellers = (await api("/v1/sellers")).sellers; } catch { /* keep the current one */ }
  if (!sellers.includes(auth.seller)) sellers.unshift(auth.seller);
  fillSellers(pick, sellers, auth.seller);
  $("#seller-name").hidden = true;
  $("#seller-switch").hidden = false;
  pick.addEventListener("change", () => {
    saveAuth({ ...auth, seller: pick.value });
    location.reload(); // a clean page for the other seller: socket, feed, tables and charts start afresh
  });
}

function openDashboard(auth) {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#seller-name").textContent = auth.seller;
  document.title = `${auth.seller}: livemetrics`;
  buildCards();
  wireErrors(auth.seller);
  wireHistory(auth.seller);
  wireSettings(auth.seller);
  wireBrowserNotifications();
  wireTabs(auth.seller);
  wireSellerSwitch(auth);
  conn = new LiveConnection({ seller: auth.seller, token: auth.token,
    onAlert: (a, replay) => { onAlert(a, replay); notifyIfHidden(a, replay); },
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
    if (me.admin) {
      const row = $("#login-seller-row"), pick = $("#login-seller");
      if (row.hidden) { // first submit: list the sellers, let the admin choose, submit again
        const { sellers } = await api("/v1/sellers", { token });
        if (!sellers.length) { $("#login-error").textContent = "No sellers have keys yet."; return; }
        fillSellers(pick, sellers, sellers[0]);
        row.hidden = false;
        $("#login-error").textContent = "Admin token: choose the seller to watch, then open the dashboard.";
        pick.focus();
        return;
      }
      seller = pick.value;
    }
    const auth = { token, seller, admin: !!me.admin, can_read_pii: me.can_read_pii };
    saveAuth(auth);
    openDashboard(auth);
  } catch (e) {
    $("#login-error").textContent = e.status === 401 ? "This token is unknown, expired or revoked." : e.message;
  }
}

$("#login-form").addEventListener("submit", signIn);
$("#logout").addEventListener("click", () => { clearAuth(); location.hash = ""; location.reload(); });
const auth = loadAuth();
if (auth?.token && auth?.seller) openDashboard(auth); else showLogin();
