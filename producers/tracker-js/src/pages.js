// Which page a URL is: t.js's rules (body data attributes, then configured patterns, then the defaults),
// and the checks of a page the app declares itself (the React hook), so that a wrong one fails here with
// a clear message instead of as a 422 from the gateway that nobody sees.

export const PAGE_TYPES = ["home", "category", "offer", "product", "cart", "checkout", "payment", "other"];

export const DEFAULT_PATTERNS = [
  { type: "home", re: "^/?$" },
  { type: "category", re: "^/(?:c|category|categories)/([^/?#]+)" },
  { type: "offer", re: "^/(?:o|offer|offers|deal|deals)/([^/?#]+)" },
  { type: "product", re: "^/(?:p|product|products|item)/" },
  { type: "cart", re: "^/(?:cart|basket|bag)(?:/|$)" },
  { type: "checkout", re: "^/checkout(?:/|$)" },
  { type: "payment", re: "^/(?:payment|pay)(?:/|$)" },
];

export function compilePatterns(custom = []) {
  return custom.concat(DEFAULT_PATTERNS).map((p) => {
    if (!PAGE_TYPES.includes(p.type)) throw new TypeError(`livemetrics: pattern type ${JSON.stringify(p.type)} is not one of ${PAGE_TYPES.join(", ")}`);
    return { type: p.type, re: p.re instanceof RegExp ? p.re : new RegExp(p.re) };
  });
}

/** decodeURIComponent, or the text as written when it holds a malformed escape (a link anyone can make,
 * /c/%E0%A4%A, or a cookie set from a sibling subdomain): its URIError threw at the app, from createTracker. */
export function decoded(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

/** The page type, category and offer of the window's URL, as t.js detects them. */
export function detectPage(win, base, patterns) {
  let path = win.location.pathname;
  if (base && path.indexOf(base) === 0) path = path.slice(base.length) || "/";
  const page = { type: "other" };
  const ds = (win.document.body && win.document.body.dataset) || {};
  if (ds.lmPage) {
    page.type = ds.lmPage;
    if (ds.lmCategory) page.category = ds.lmCategory;
    if (ds.lmOffer) page.offer_id = ds.lmOffer;
    return page;
  }
  for (const p of patterns) {
    const m = p.re.exec(path);
    if (!m) continue;
    page.type = p.type;
    if (page.type === "category") page.category = decoded(m[1]);
    if (page.type === "offer") page.offer_id = decoded(m[1]);
    break;
  }
  return page;
}

/** A page the app names: `{type, category, offer}` (or `offer_id`); throws naming what is wrong. */
export function declaredPage(p) {
  if (!p || !PAGE_TYPES.includes(p.type)) {
    throw new TypeError(`livemetrics: page type ${JSON.stringify(p && p.type)} is not one of ${PAGE_TYPES.join(", ")}`);
  }
  const page = { type: p.type };
  const offer = p.offer_id != null ? p.offer_id : p.offer;
  if (p.category != null) page.category = String(p.category);
  if (offer != null) page.offer_id = String(offer);
  if (page.type === "category" && !page.category) throw new TypeError("livemetrics: a category page needs `category` (its slug)");
  if (page.type === "offer" && !page.offer_id) throw new TypeError("livemetrics: an offer page needs `offer` (its id)");
  return page;
}

/** What every page view carries besides its type: the path, title and referrer, as t.js sends them. */
export function pageContext(win, page) {
  const d = win.document;
  const out = { type: page.type };
  if (page.category) out.category = page.category;
  if (page.offer_id) out.offer_id = page.offer_id;
  out.path = win.location.pathname + win.location.search;
  if (d.title) out.title = cut(d.title, 200);
  if (d.referrer) out.referrer = cut(d.referrer, 2048);
  return out;
}

/** The first n UTF-16 units of s, never half of a surrogate pair (an emoji): JSON.stringify writes a lone
 * half as "\ud83d", which the gateway refuses. */
function cut(s, n) {
  s = s.slice(0, n);
  const c = s.charCodeAt(s.length - 1);
  return c >= 0xd800 && c <= 0xdbff ? s.slice(0, -1) : s;
}
