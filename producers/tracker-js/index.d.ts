// Types of @livemetrics/tracker (src/index.js). Wire format and rules: producers/tracker-js/README.md.

export type PageType = "home" | "category" | "offer" | "product" | "cart" | "checkout" | "payment" | "other";
export declare const PAGE_TYPES: readonly PageType[];

/** A page the app names itself; category pages need `category`, offer pages `offer` (or `offer_id`). */
export type Page =
  | { type: "category"; category: string; offer?: string; offer_id?: string }
  | { type: "offer"; offer: string; category?: string }
  | { type: "offer"; offer_id: string; category?: string }
  | { type: Exclude<PageType, "category" | "offer">; category?: string; offer?: string; offer_id?: string };

export interface UrlPattern {
  type: PageType;
  /** Matched against the path after `base`; capture group 1 is the category slug or offer id. */
  re: string | RegExp;
}

export interface TrackerOptions {
  /** A browser key, lm_pk_... (a server key is refused: it is secret). */
  key: string;
  /** The gateway's URL, e.g. "https://gateway.example". */
  endpoint: string;
  /** "auto" (default): a page view now and on every route change, typed from the URL; "manual": the app sends them. */
  pageViews?: "auto" | "manual";
  /** Follow history.pushState/replaceState/popstate in "auto" mode (default true). */
  spa?: boolean;
  /** A path prefix stripped before matching patterns, e.g. "/shop". */
  base?: string;
  /** Tried before the default patterns. */
  patterns?: UrlPattern[];
  /** Seconds between heartbeats while the tab is visible (default 15, at least 5). */
  heartbeatSeconds?: number;
  /** The window to track (default: the global one). */
  window?: Window;
  /** The clock, in milliseconds (default Date.now). */
  now?: () => number;
}

export interface Item {
  sku: string;
  name: string;
  qty: number;
  unit_price: number | string;
}

export interface Customer {
  email?: string;
  phone?: string;
  name?: string;
  [field: string]: unknown;
}

export interface CheckoutInput {
  items?: Item[];
  total: number | string;
  currency: string;
  customer?: Customer;
}

export interface PaymentInput {
  method?: "card" | "paypal" | "bank_transfer" | "wallet" | (string & {});
  amount: number | string;
  currency: string;
  orderId?: string | number;
  order_id?: string | number;
  items?: Item[];
  customer?: Customer;
}

export interface PaymentFailedInput extends PaymentInput {
  errorCode?: string;
  error_code?: string;
  errorMessage?: string;
  error_message?: string;
  details?: Record<string, unknown>;
}

/** Each event method returns the event's id. */
export interface Tracker {
  readonly pageViews: "auto" | "manual";
  /** A page view now: of `page`, or of the type detected from the URL. */
  pageView(page?: Page): string;
  checkoutStarted(checkout: CheckoutInput): string;
  paymentStarted(payment: PaymentInput): string;
  paymentSucceeded(payment: PaymentInput): string;
  paymentFailed(payment: PaymentFailedInput): string;
  /** Sends the queued events now. */
  flush(): void;
  /** How many events were dropped, unsent, while the gateway refused them (at most 500 wait). */
  dropped(): number;
  sessionId(): string;
  /** Sends what is queued (by beacon), stops the timers and listeners, gives history back. */
  destroy(): void;
}

export declare function createTracker(options: TrackerOptions): Tracker;
