"""How many categories and offers one session counts for in the session reports (docs/clickhouse.md,
"Reports": "A session's items are bounded").

A browser key is public, so one session can carry any number of distinct offer ids; unbounded, every
fold step rewrote each such session's whole arrays (its ``session_state`` entry, a ``session_folded``
row and a -1/+1 ``session_sums`` delta per item), on the fold's one thread for every seller: 10
sessions of 50,000 offers took a step of 2,000 other sessions from ~0.13 s to 1.1-1.4 s (BENCHMARKS.md).

The rule: a session counts for at most ``SESSION_MAX_ITEMS`` categories and as many offers, the first
ones by name (byte order, ClickHouse's ``arraySort``). It depends on the set of values only, never on
arrival order, so a replay or a re-fold gives the same result, and it composes: the first K of a union
are the first K of the union of each part's first K. So the materialized view caps each partial row,
the fold caps the merged state, and the reports' live part caps the same way, and the fold's deltas
(new capped contribution minus the old one as stored) stay exact. Page views (``views``) are not
capped: they come from the hourly rollups.

Why 100: the live side keeps 500 offers and 200 categories per seller, and the bench's sessions view
~2-3; a shopper looking at 100 different offers in one session is far past any real one. A session's
arrays are then at most ~10 KB each (slugs are at most 100 characters).
"""

from __future__ import annotations

SESSION_MAX_ITEMS = 100
