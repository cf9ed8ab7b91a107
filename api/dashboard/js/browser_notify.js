// Browser notifications (Notifications API): after the seller opts in (a button in Settings, the browser
// asks for permission), an alert that arrives while this tab is in the background shows a system
// notification; clicking it brings the tab back on Payment errors. Replays (a reconnect) never notify.
// The text leaves out customer contact: a notification can show on a locked screen.
import { $ } from "./dom.js";

const KEY = "livemetrics.browserNotifications";
const supported = () => "Notification" in window;
const optedIn = () => localStorage.getItem(KEY) === "on";

function text(a) {
  const o = a.order || {}, p = a.payment || {};
  if (a.kind === "error_spike") return { title: "Payment error spike", body: [p.error_code, p.method].filter(Boolean).join(" / ") || "Many payments are failing" };
  if (a.kind === "traffic_dropped") return { title: "Traffic dropped", body: "No traffic from your shop for a while" };
  const amount = o.amount ? `${o.amount} ${o.currency || ""}`.trim() : "";
  return { title: `Payment failed${amount ? `: ${amount}` : ""}`,
    body: [o.order_id && `order ${o.order_id}`, p.method, p.error_code].filter(Boolean).join(" · ") || "A payment failed" };
}

export function notifyIfHidden(a, replay) {
  if (replay || !supported() || !optedIn() || Notification.permission !== "granted") return;
  if (document.visibilityState !== "hidden") return; // the toast already shows it
  const { title, body } = text(a);
  // One notification per seller and kind, replaced by the newest (silently): a flood of failures sent
  // with the shop's public browser key would otherwise stack a system notification for each.
  const n = new Notification(title, { body, tag: `${a.seller_id}:${a.kind || "payment_failed"}` });
  n.onclick = () => { window.focus(); location.hash = "#errors"; n.close(); };
}

function render() {
  const status = $("#browser-notify-status"), button = $("#browser-notify");
  if (!supported()) { status.textContent = "This browser has no notifications."; button.hidden = true; return; }
  const perm = Notification.permission;
  button.textContent = optedIn() && perm === "granted" ? "Stop browser notifications" : "Notify me in this browser";
  status.textContent = perm === "denied"
    ? "Notifications are blocked for this site: allow them in the browser's site settings, then try again."
    : optedIn() && perm === "granted" ? "On: alerts show as notifications while this tab is in the background." : "Off.";
  status.classList.toggle("error", perm === "denied");
}

export function wireBrowserNotifications() {
  $("#browser-notify").addEventListener("click", async () => {
    if (optedIn() && Notification.permission === "granted") localStorage.removeItem(KEY);
    else if ((await Notification.requestPermission()) === "granted") localStorage.setItem(KEY, "on");
    render();
  });
  render();
}
