// A small React shop for tests/browser/test_tracker_react.py (bundled there by esbuild): a hand-written
// router over history.pushState/popstate, pages that name themselves with useMetrics or the HOCs.
// index.html sets window.LM_CONFIG = {key, endpoint} before this runs.
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { createTracker } from "@livemetrics/tracker";
import { MetricsProvider, useMetrics, withHomePageTracking, withPageTracking } from "@livemetrics/tracker/react";

const tracker = createTracker({ ...window.LM_CONFIG, pageViews: "manual" });
window.lmTracker = tracker;
window.lmViews = []; // what the pages asked for, so that the test knows when the last one is queued
const pageView = tracker.pageView;
tracker.pageView = (page) => {
  window.lmViews.push(page.type);
  return pageView(page);
};

let navigate = () => {};
const Link = ({ id, to }) => <button id={id} onClick={() => navigate(to)}>{to}</button>;

const Home = withHomePageTracking(() => (
  <main><h1>Home</h1><Link id="cat-lamps" to="/c/lamps" /></main>
));

function Category({ slug }) {
  useMetrics({ pageType: "category", category: slug });
  return <main><h1>{slug}</h1><Link id="cat-chairs" to="/c/chairs" /><Link id="offer-summer-sale" to="/o/summer-sale" /></main>;
}

const Offer = withPageTracking(({ id }) => (
  <main><h1>{id}</h1><Link id="product-1" to="/p/SKU-1" /></main>
), (props) => ({ pageType: "offer", offer: props.id }));

function Product({ sku }) {
  useMetrics({ pageType: "product" }); // the same props for every product: the URL tells them apart
  return <main><h1>{sku}</h1><Link id="next-product" to="/p/SKU-2" /><Link id="go-checkout" to="/checkout" /></main>;
}

function Checkout() {
  const lm = useMetrics({ pageType: "checkout" });
  return (
    <main>
      <h1>Checkout</h1>
      <button id="start-checkout" onClick={() => lm.checkoutStarted({ items: [{ sku: "SKU-1", name: "Lamp", qty: 1, unit_price: "39.00" }], total: 39, currency: "EUR" })}>pay</button>
      <Link id="cart" to="/cart" />
    </main>
  );
}

function Cart() {
  useMetrics({ pageType: "cart" });
  return <main><h1 id="cart-page">Cart</h1></main>;
}

function route(path) {
  let m;
  if (path === "/") return <Home />;
  if ((m = path.match(/^\/c\/([^/]+)$/))) return <Category slug={m[1]} />;
  if ((m = path.match(/^\/o\/([^/]+)$/))) return <Offer id={m[1]} />;
  if ((m = path.match(/^\/p\/([^/]+)$/))) return <Product sku={m[1]} />;
  if (path === "/checkout") return <Checkout />;
  if (path === "/cart") return <Cart />;
  return <h1>Not found</h1>;
}

function App() {
  const [path, setPath] = useState(window.location.pathname);
  navigate = (to) => {
    window.history.pushState({}, "", to);
    setPath(to);
  };
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  return <MetricsProvider tracker={tracker}>{route(path)}</MetricsProvider>;
}

createRoot(document.getElementById("root")).render(<App />);
