/* Demo storefront behaviour: a localStorage cart and the checkout/payment calls to the tracker. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var cart = function () { try { return JSON.parse(localStorage.getItem("demo_cart") || "[]"); } catch (e) { return []; } };
  var saveCart = function (c) { localStorage.setItem("demo_cart", JSON.stringify(c)); };
  var total = function (c) { return Math.round(c.reduce(function (s, i) { return s + i.qty * i.unit_price; }, 0) * 100) / 100; };
  var customer = function () {
    try { return JSON.parse(localStorage.getItem("demo_customer") || "null") || undefined; } catch (e) { return undefined; }
  };
  var lm = window.livemetrics;
  var go = function (path) { lm.flush(); window.location.href = path; };
  function addToCart() {
    var box = document.querySelector(".buy");
    if (!box) return;
    var c = cart(), sku = box.dataset.sku, line = c.filter(function (i) { return i.sku === sku; })[0];
    if (line) line.qty += 1; else c.push({ sku: sku, name: box.dataset.name, qty: 1, unit_price: +box.dataset.price });
    saveCart(c);
    render();
  }
  function render() {
    var c = cart();
    if ($("cart-count")) $("cart-count").textContent = c.reduce(function (s, i) { return s + i.qty; }, 0);
    if ($("cart-items")) $("cart-items").innerHTML = c.map(function (i) { return "<li>" + i.qty + " x " + i.name + "</li>"; }).join("");
    if ($("pay-total")) $("pay-total").textContent = total(c).toFixed(2);
    if ($("lm-session") && lm) $("lm-session").textContent = lm.sessionId();
    if ($("error-code")) $("error-code").textContent = localStorage.getItem("demo_error") || "";
    if ($("order-id")) $("order-id").textContent = localStorage.getItem("demo_order") || "";
  }
  function payment(ok) {
    var c = cart(), order = "ord-" + Math.random().toString(36).slice(2, 10);
    var p = { method: $("pay-method").value, amount: total(c), currency: "EUR", orderId: order, items: c, customer: customer() };
    lm.paymentStarted(p);
    if (ok) {
      lm.paymentSucceeded(p);
      localStorage.setItem("demo_order", order);
      saveCart([]);
      go("/demo/thanks");
    } else {
      p.errorCode = "card_declined"; p.errorMessage = "The card was declined by the issuer";
      p.details = { psp: "demo-psp", attempt: 1, decline_code: "insufficient_funds" };
      lm.paymentFailed(p);
      localStorage.setItem("demo_error", p.errorCode);
      go("/demo/payment/error");
    }
  }
  document.addEventListener("click", function (e) {
    var id = e.target && e.target.id;
    if (id === "add-to-cart") { addToCart(); }
    else if (id === "go-checkout") { if (!cart().length) addToCart(); go("/demo/checkout"); }
    else if (id === "pay-ok" || id === "pay-fail") { e.preventDefault(); payment(id === "pay-ok"); }
    else if (id === "retry-payment") { go("/demo/payment"); }
  });
  var form = $("checkout-form");
  if (form) form.addEventListener("submit", function (e) {
    e.preventDefault();
    var cust = { email: $("email").value, phone: $("phone").value, name: $("name").value };
    localStorage.setItem("demo_customer", JSON.stringify(cust));
    var c = cart();
    lm.checkoutStarted({ items: c, total: total(c), currency: "EUR", customer: cust });
    go("/demo/payment");
  });
  render();
})();
