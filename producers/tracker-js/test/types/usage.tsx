// Typed usage of the package as an app would write it; `tsc -p test/types` must accept it, and each line
// marked ts-expect-error is a mistake the declarations must catch (tsc fails if one is accepted).
import { createTracker, type Tracker } from "@livemetrics/tracker";
import { MetricsProvider, useMetrics, withHomePageTracking, withPageTracking } from "@livemetrics/tracker/react";

const tracker: Tracker = createTracker({ key: "lm_pk_x_y", endpoint: "https://gw.example", pageViews: "manual" });
const id: string = tracker.pageView({ type: "category", category: "lamps" });
tracker.pageView();
tracker.checkoutStarted({ items: [{ sku: "S", name: "n", qty: 1, unit_price: "9.90" }], total: 9.9, currency: "EUR" });
tracker.paymentFailed({ method: "card", amount: 9.9, currency: "EUR", orderId: 1, errorCode: "declined" });
// @ts-expect-error a category page names its category
tracker.pageView({ type: "category" });
// @ts-expect-error not a page type
tracker.pageView({ type: "blog" });
// @ts-expect-error the key is required
createTracker({ endpoint: "https://gw.example" });
// @ts-expect-error "auto" or "manual"
createTracker({ key: "k", endpoint: "e", pageViews: "sometimes" });

function Home({ title }: { title: string }) {
  return <h1>{title}</h1>;
}
const TrackedHome = withHomePageTracking(Home);
const Offer = withPageTracking(({ offer }: { offer: string }) => <p>{offer}</p>, (p) => ({ pageType: "offer", offer: p.offer }));
// @ts-expect-error an offer page names its offer
withPageTracking(Home, { pageType: "offer" });

function Checkout() {
  const lm = useMetrics({ pageType: "checkout" });
  return <button onClick={() => lm.checkoutStarted({ total: 1, currency: "EUR" })}>pay</button>;
}
function Lamps() {
  useMetrics({ pageType: "category", category: "lamps" });
  // @ts-expect-error a category page names its category
  useMetrics({ pageType: "category" });
  return null;
}

export const app = (
  <MetricsProvider tracker={tracker}>
    <TrackedHome title="hi" />
    {/* @ts-expect-error title is required */}
    <TrackedHome />
    <Offer offer="summer-sale" />
    <Checkout />
    <Lamps />
  </MetricsProvider>
);
export { id };
