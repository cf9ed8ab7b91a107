// React bindings: <MetricsProvider tracker={...}>, the hook useMetrics({pageType, category, offer}) and the
// higher-order components withPageTracking(Component, page) and withHomePageTracking(Component).
//
// A component that names its page sends one page view when it mounts, and another when its page or the
// URL it renders changes (a route that stays mounted for /p/1 -> /p/2). The URL is read while rendering, so
// a page view follows the render of the route, never a history event the app has not rendered yet.
// The tracker must be created with `pageViews: "manual"`: automatic page views would count pages twice.
import { createContext, createElement, useContext, useEffect } from "react";

const TrackerContext = createContext(null);

/** Makes `tracker` (from createTracker) available to useMetrics and the HOCs below it. */
export function MetricsProvider({ tracker, children }) {
  if (!tracker || typeof tracker.pageView !== "function") {
    throw new TypeError("livemetrics: <MetricsProvider> needs `tracker`, made by createTracker({..., pageViews: \"manual\"})");
  }
  return createElement(TrackerContext.Provider, { value: tracker }, children);
}

function currentPath() {
  const loc = typeof window !== "undefined" ? window.location : null;
  return loc ? loc.pathname + loc.search : "";
}

/**
 * The tracker (checkoutStarted, paymentSucceeded, ...), and with `pageType` a page view of this page.
 * `category` is required on category pages, `offer` on offer pages.
 */
export function useMetrics(page = {}) {
  const tracker = useContext(TrackerContext);
  if (!tracker) throw new Error("livemetrics: useMetrics is used outside <MetricsProvider tracker={...}>");
  const { pageType, category, offer } = page;
  if (pageType && tracker.pageViews !== "manual") {
    throw new Error("livemetrics: useMetrics({pageType}) names the page, but this tracker also sends automatic page " +
      "views (each page would count twice): create it with createTracker({..., pageViews: \"manual\"})");
  }
  const path = currentPath();
  useEffect(() => {
    if (pageType) tracker.pageView({ type: pageType, category, offer });
  }, [tracker, pageType, category, offer, path]);
  return tracker;
}

const nameOf = (C) => C.displayName || C.name || "Component";

/** `Component`, sending a page view of `page` ({pageType, category, offer}, or a function of the props). */
export function withPageTracking(Component, page) {
  if (!page || (typeof page !== "function" && !page.pageType)) {
    throw new TypeError(`livemetrics: withPageTracking(${nameOf(Component)}, page) needs page.pageType (or a function of the props returning it)`);
  }
  function WithPageTracking(props) {
    useMetrics(typeof page === "function" ? page(props) : page);
    return createElement(Component, props);
  }
  WithPageTracking.displayName = `withPageTracking(${nameOf(Component)})`;
  return WithPageTracking;
}

/** The seed's name for withPageTracking(Component, {pageType: "home"}). */
export function withHomePageTracking(Component) {
  return withPageTracking(Component, { pageType: "home" });
}
