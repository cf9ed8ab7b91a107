"""The traffic fold: keeps ``traffic_hours`` (migration 016) holding, for every closed hour of
``rollup_traffic_hourly``, the count of its merged ``uniq`` session state and the page views it was
counted at, so that the hourly report adds up counts instead of reading ~720 states a month back into hash
sets (docs/clickhouse.md, "Reports").

Nothing here has to be in step with anything: the report checks each hour itself (the rollup's page views
of the hour against the row's; a session only ever enters the rollup with a page view) and merges the
states of any cell where a count is missing, outdated or could differ from the merge
(``clickhouse/queries/hourly.sql``). So an hour that gets late events is simply folded again at the next
round (``traffic_pending_hours.sql`` finds it), and a fold that fails is run again from scratch.

Hours from the current one on are not folded: their page views change all the time. An hour is folded
once it has ended, and folded again after late events only once no live event can reach it any more
(``max_clock_skew_s`` + SETTLE_MARGIN_S behind the gateway's clock; backfilled events at any time): each
refold compares the hour with ~70 others, so a day of hours that trickle in late events is not refolded
every round; their cells merge states meanwhile. Runs with the session
fold (``session_fold.fold``: the sink's fold thread every ``session_fold_interval_s``, and the benchmarks);
after an upgrade its first round folds every hour already in the rollup, a day's hours a step.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from clickhouse import query
from clickhouse.client import INSERT_SETTINGS, get_client
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.traffic_fold")

# A step folds at most about this many (seller, hour) rows (whole hours: one hour of many sellers may be
# more): each is compared with its ~70 neighbours a week or more away, which the step merges in memory.
STEP_ROWS = 5_000
# A round looks for hours to fold among the last RECENT_S only (live events are at most a day off the
# gateway's clock), except the first round of a process and one every FULL_EVERY_S, which look at every hour
# (an upgrade's whole rollup; backfilled events): the search reads the rollup's sums, all sellers.
RECENT_S = 3 * 86_400
# How far past max_clock_skew_s an hour may still get live events: the sink's lag (not a matter of
# exactness: an hour refolded too early is refolded again when it changes next)
SETTLE_MARGIN_S = 2 * 3600
FULL_EVERY_S = 86_400
_full_at: dict[tuple[str, str], float] = {}
_full_lock = threading.Lock()


def _pending() -> dict[str, str]:
    """Which hours are not folded as the rollup holds them now: one query (traffic_pending_hours.sql), which
    both the search for them (traffic_pending.sql) and the fold (traffic_fold.sql) read, each over its range."""
    return {"traffic_pending_hours": query.sql("traffic_pending_hours")}


def fold_hours(settings: Settings, until: int | None = None, since: int | None = None) -> int:
    """Fold every hour in [``since``, ``until``) (epoch s; default the start of the server's current hour,
    and RECENT_S before it, or 0 for the process's first round and once every FULL_EVERY_S) whose
    traffic_hours row is missing or outdated; returns the (seller, hour) rows written."""
    c = get_client(settings)
    if until is None:
        ((until,),) = c.query("SELECT toUInt32(toStartOfHour(now()))").result_rows
    if since is None:
        key = (settings.clickhouse_url, settings.clickhouse_database)
        with _full_lock:
            full = time.monotonic() - _full_at.get(key, -math.inf) >= FULL_EVERY_S
            if full:
                _full_at[key] = time.monotonic()
        since = 0 if full else max(0, int(until) - RECENT_S)
    settled = max(0, int(until) - settings.max_clock_skew_s - SETTLE_MARGIN_S)
    pending = c.query(
        query.text(settings, "traffic_pending", _pending()),
        parameters={"fold_lo": since, "fold_hi": int(until), "settled": settled},
    ).result_rows
    written, i = 0, 0
    while i < len(pending):
        lo, rows = int(pending[i][0]), 0
        while i < len(pending) and (rows == 0 or rows + int(pending[i][1]) <= STEP_ROWS):
            rows += int(pending[i][1])
            i += 1
        hi = int(pending[i][0]) if i < len(pending) else int(until)
        c.command(
            f"INSERT INTO {settings.clickhouse_database}.traffic_hours "
            "(seller_id, hour, page_views, sessions, shared, version) "
            + query.text(settings, "traffic_fold", _pending()),
            parameters={"fold_lo": lo, "fold_hi": hi, "settled": settled},
            settings=INSERT_SETTINGS,
        )
        written += rows
    if written:
        log.info("folded %d seller-hours of rollup_traffic_hourly", written)
    return written
