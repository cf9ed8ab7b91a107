"""The session fold: keeps ``session_sums`` equal to every session's contribution to the session reports
(categories, offers, funnel) as of a watermark, so that a report reads small exact sums plus the few
sessions changed since, instead of merging every session of the seller (docs/clickhouse.md, "Reports").

``session_updates`` is a log of per-session partial rows labelled with the 10 s bucket of their insert
(migration 005; the server's clock when the view computes a block, so never before the insert began). A step from watermark ``lo`` to ``hi`` takes the log rows of ``[lo, hi)``, computes the
sessions they change (``session_changes.sql``, into the scratch table ``session_fold_changes``), then
1. writes the new ``session_state`` entry of every session they change (its merged state as of ``hi``,
   and the state as of ``lo`` it started from: a step that fails after this is simply run again);
2. writes the same entries to ``session_folded`` (migration 011: the reports read the folded states
   there, sorted for the seller, instead of looking each one up in ``session_state``);
3. writes them to ``session_folded_join`` too (migration 014, settings.session_states_in_memory: the same
   states in memory, where the reports look the live sessions up), then its marker row (key 0, 0) with
   ``version`` = ``hi`` and the count of sessions the table holds: the table holds every entry up to the
   marker's version (``sync_states_join`` rebuilds it from ``session_folded`` when it is behind the
   watermark, e.g. empty, or holds fewer sessions than the marker counted: a lost file, MARKER);
4. inserts, in one block (one part: readers see all of it or none of it), each changed session's new
   contribution minus its old one, and the row carrying the new watermark ``hi``.
``hi`` stays ``session_fold_grace_s`` behind the server's clock, and behind the start of this process's
oldest insert still running (``inserts_in_flight``), so no row labelled before ``hi`` can still be on its way. The second insert's dedup token is ``lo``: a step retried after it committed is dropped.

One process per database folds: the sink's (with chdb the only one that can open the data directory),
on its own thread every ``session_fold_interval_s``. Steps never overlap within the process.

``session_state`` would otherwise keep an entry for every session ever seen (~100 bytes each): once a
day, between steps, the fold deletes the entries of sessions that started more than ``event_ttl_days``
ago (``purge_states``), whose counts ``session_sums``' TTL drops at the same age, after their rows in
``session_folded``, and rebuilds ``session_folded_join`` (which frees the older copies of rewritten
sessions its hash table keeps).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from clickhouse import query, traffic_fold
from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.event_keys import purge_event_keys
from clickhouse.inserts_in_flight import IN_FLIGHT
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.session_fold")

_F = TypeVar("_F", bound=Callable[..., Any])
# What this process is writing to the tables the session reports read (session_sums, session_state,
# session_folded, session_folded_join), per (ClickHouse URL, database): [writes under way, writes begun and
# ended]. With chdb (one process per directory) nothing else writes them, so a report that saw no write
# under way and the same count before and after its query read one fold state throughout and needs no
# check query after it (clickhouse/session_reports.py).
_writes: dict[tuple[str, str], list[int]] = {}
_writes_lock = threading.Lock()


def writes(settings: Settings) -> tuple[int, int]:
    """This process's writes to the tables the session reports read: (under way, begun + ended so far)."""
    with _writes_lock:
        under_way, count = _writes.get((settings.clickhouse_url, settings.clickhouse_database), (0, 0))
    return under_way, count


def _writing(fn: _F) -> _F:
    """``fn(settings, ...)`` writes what the session reports read: counted in ``writes`` before and after."""

    @functools.wraps(fn)
    def counted(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        key = (settings.clickhouse_url, settings.clickhouse_database)
        with _writes_lock:
            w = _writes.setdefault(key, [0, 0])
            w[0] += 1
            w[1] += 1
        try:
            return fn(settings, *args, **kwargs)
        finally:
            with _writes_lock:
                w[0] -= 1
                w[1] += 1

    return counted  # type: ignore[return-value]


# A step takes at most about this many session_updates rows, so that catching up after a long pause
# stays within memory. Buckets are not split: the first fold after upgrading (every old session_facts
# row carries the same bucket) is one step.
STEP_ROWS = 4_000_000
_one_step = threading.Lock()
# How often the fold thread purges expired session_state entries (a full scan of the key-value table).
PURGE_EVERY_S = 86_400
# One block, hence one part: one insert thread, and every block of the SELECT squashed into one.
_ONE_PART = {"max_insert_threads": 1, "min_insert_block_size_rows": 1 << 62, "min_insert_block_size_bytes": 1 << 62}
# session_folded's columns, in the order of fold_states.sql's after its key (migration 011)
FOLDED_COLUMNS = (
    "seller_hash, session, version, start_hour, furthest, categories, offers, "
    "had_before, before_start_hour, before_furthest, before_categories, before_offers"
)


def fold_until(settings: Settings, idle: bool = False) -> int:
    """The newest watermark a fold may reach now: the start of the 10 s bucket the server's clock minus
    the grace period is in (two processes folding at about the same time aim at the same watermark), or
    further back while an insert of this process that started longer ago is still running
    (``inserts_in_flight``); with ``idle`` (nothing else is being inserted: tests, benchmarks) no grace."""
    ((server_now,),) = get_client(settings).query("SELECT toUInt32(now())").result_rows
    # the age is read after the server read its clock, so server_now - age is no later than the server's
    # clock when the oldest running insert began (and labelled its rows)
    held = max(0 if idle else settings.session_fold_grace_s, math.ceil(IN_FLIGHT.oldest_age_s()))
    return (int(server_now) - held) // 10 * 10


def fold_step(settings: Settings, until: int, step_rows: int = STEP_ROWS) -> bool:
    """One step from the current watermark towards ``until`` (epoch s); False when nothing was left.

    ``until`` must be a time no row labelled before it can still be inserted after (``fold_until``)."""
    with _one_step:
        return _step(settings, until, step_rows)


def _step(settings: Settings, until: int, step_rows: int) -> bool:
    c = get_client(settings)
    lo = query.folded_to(settings)
    if until <= lo:
        return False
    buckets = c.query(query.text(settings, "fold_pending"), parameters={"fold_lo": lo, "fold_hi": until}).result_rows
    if not buckets:
        return False
    hi, taken = until, 0
    for bucket, rows in buckets:
        if taken and taken + rows > step_rows:
            hi = int(bucket)
            break
        taken += rows
    join_id = sync_states_join(settings, lo)
    compute_changes(settings, lo, hi)
    write_states(settings, lo, hi)
    write_folded(settings, lo, hi)
    if join_id:
        write_join(settings, lo, hi, join_id)
    write_sums(settings, lo, hi)
    log.info("folded %d session rows inserted in [%d, %d)", taken, lo, hi)
    return True


def compute_changes(settings: Settings, lo: int, hi: int) -> None:
    """The sessions the log rows of [lo, hi) change, into session_fold_changes: computed once (the
    session_state lookups are the costly part) for both inserts of the step."""
    c, db = get_client(settings), settings.clickhouse_database
    c.command(f"TRUNCATE TABLE {db}.session_fold_changes")
    c.command(
        f"INSERT INTO {db}.session_fold_changes " + query.text(settings, "session_changes", {"scope": "1"}),
        parameters={"fold_lo": lo, "fold_hi": hi},
        settings=INSERT_SETTINGS,
    )


@_writing
def write_states(settings: Settings, lo: int, hi: int) -> None:
    """First insert: the changed sessions' new session_state entries (with the state before)."""
    get_client(settings).command(
        f"INSERT INTO {settings.clickhouse_database}.session_state "
        + query.text(settings, "fold_states", _from_changes(settings)),
        parameters={"fold_lo": lo, "fold_hi": hi},
        settings=INSERT_SETTINGS,
    )


@_writing
def write_folded(settings: Settings, lo: int, hi: int) -> None:
    """The same entries into session_folded, which the reports read: after session_state and before the
    watermark, so that the newest row of every session there is its entry (a step run again after a
    failure writes them again: harmless, the newest version is the same)."""
    get_client(settings).command(
        f"INSERT INTO {settings.clickhouse_database}.session_folded ({FOLDED_COLUMNS}) "
        f"SELECT toUInt64(bitShiftRight(key, 64)), toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)), * EXCEPT (key) "
        f"FROM ({query.text(settings, 'fold_states', _from_changes(settings))})",
        parameters={"fold_lo": lo, "fold_hi": hi},
        settings=INSERT_SETTINGS,
    )


@_writing
def write_join(settings: Settings, lo: int, hi: int, join_id: str) -> None:
    """The same entries into session_folded_join, then its marker moved on to ``hi`` (a second insert: the
    marker never comes before the entries, and a step that fails between is run again from ``lo``, which
    the marker is still at or past). Entries newer than the watermark are read as the state they started
    from, as in session_folded, so the marker may run one step ahead of the watermark."""
    c, db = get_client(settings), settings.clickhouse_database
    c.command(
        f"INSERT INTO {db}.{JOIN_TABLE} ({FOLDED_COLUMNS}) "
        f"SELECT toUInt64(bitShiftRight(key, 64)), toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)), * EXCEPT (key) "
        f"FROM ({query.text(settings, 'fold_states', _from_changes(settings))})",
        parameters={"fold_lo": lo, "fold_hi": hi},
        settings=INSERT_SETTINGS,
    )
    _write_join_marker(settings, hi, join_id, join_bytes(settings)[1])


# The in-memory copy of session_folded's newest rows (migration 014) and its marker's key
JOIN_TABLE = "session_folded_join"
# A Join table keeps every row inserted in memory, the key pointing at the newest: each fold step adds a copy
# of every session it rewrites (a busy system's ~150k live sessions: ~25 MB a 30-s step, gigabytes a day
# before the daily rebuild). So a step rebuilds it once it holds more than twice what it held right after
# its last rebuild plus this: its memory stays under ~2x its entries' plus this, for a rebuild each time the
# rewritten copies reach that (2 M sessions: 0.7-2.2 s; BENCHMARKS.md, 2026-12-06, seventh round).
JOIN_SLACK_BYTES = 64 * 2**20


def join_marker(settings: Settings) -> tuple[int, str]:
    """session_folded_join's marker: the watermark up to which it holds every entry, and the id of the
    rebuild that filled it ('' when it has no marker: empty, or emptied; or when the table does not hold
    as many sessions as the marker counted, MARKER_CHECKED: an entries file lost with the marker's kept)."""
    ((to, join_id),) = (
        get_client(settings)
        .query(
            f"SELECT {MARKER.format(db=settings.clickhouse_database)}", parameters={"db": settings.clickhouse_database}
        )
        .result_rows
    )
    return int(to), str(join_id)


# The marker (its version, and its id if the table holds the count of sessions the marker vouches for, in its
# before_categories, besides itself: else ''), read by join_marker and by the session reports' start
# (session_reports._start). A Join table's total_rows counts its distinct keys, as held in memory: the
# files it was loaded from. An entries file lost (a machine crash: ClickHouse does not fsync a Join table's
# files) with the marker's kept leaves fewer; the reports then read session_folded and the fold rebuilds.
# Not seen by the count: a lost file whose sessions all have older entries in earlier files.
MARKER = (
    "toUInt32(joinGet('{db}.session_folded_join', 'version', toUInt64(0), toUInt64(0))) AS join_to, "
    "if(ifNull((SELECT any(total_rows) FROM system.tables WHERE database = {{db:String}} "
    "AND name = 'session_folded_join'), 0) = 1 + toUInt64OrZero(arrayStringConcat(joinGet("
    "'{db}.session_folded_join', 'before_categories', toUInt64(0), toUInt64(0)))), "
    "arrayStringConcat(joinGet('{db}.session_folded_join', 'categories', toUInt64(0), toUInt64(0))), '') AS join_id"
)


def join_bytes(settings: Settings) -> tuple[int, int]:
    """session_folded_join's memory now, and right after its last rebuild (kept in its marker's ``offers``;
    0 without a marker)."""
    db = settings.clickhouse_database
    ((held, base),) = (
        get_client(settings)
        .query(
            "SELECT (SELECT sum(total_bytes) FROM system.tables WHERE database = {db:String} AND name = {t:String}), "
            f"toUInt64OrZero(arrayStringConcat(joinGet('{db}.{JOIN_TABLE}', 'offers', toUInt64(0), toUInt64(0))))",
            parameters={"db": db, "t": JOIN_TABLE},
        )
        .result_rows
    )
    return int(held or 0), int(base)


def _write_join_marker(settings: Settings, to: int, join_id: str, base_bytes: int) -> None:
    """The marker: up to ``to`` the table holds every entry, as many sessions as it holds now (the marker's
    own key aside: MARKER checks the count)."""
    c, db = get_client(settings), settings.clickhouse_database
    ((sessions,),) = c.query(
        "SELECT ifNull((SELECT any(total_rows) FROM system.tables WHERE database = {db:String} AND name = {t:String}), 0)"
        f" - notEmpty(joinGet('{db}.{JOIN_TABLE}', 'categories', toUInt64(0), toUInt64(0)))",  # a marker's id
        parameters={"db": db, "t": JOIN_TABLE},
    ).result_rows
    c.command(
        f"INSERT INTO {db}.{JOIN_TABLE} (seller_hash, session, version, categories, offers, before_categories) "
        "VALUES (0, 0, toDateTime({to:UInt32}, 'UTC'), [{join_id:String}], [{base:String}], [{sessions:String}])",
        parameters={"to": to, "join_id": join_id, "base": str(base_bytes), "sessions": str(sessions)},
        settings=INSERT_SETTINGS,
    )


@_writing
def rebuild_states_join(settings: Settings, lo: int) -> str:
    """Fill session_folded_join anew from session_folded (each session's newest row: its entry) and mark
    it complete up to the watermark ``lo``; returns the new marker's id. Emptied first, so a report in the
    meantime finds no marker and reads session_folded; a report that started from the old marker sees the
    id change in its check and runs again. Called between fold steps only (``_one_step``)."""
    c, db = get_client(settings), settings.clickhouse_database
    t0 = time.perf_counter()
    c.command(f"TRUNCATE TABLE {db}.{JOIN_TABLE}")
    c.command(
        f"INSERT INTO {db}.{JOIN_TABLE} ({FOLDED_COLUMNS}) SELECT {FOLDED_COLUMNS} FROM {db}.session_folded FINAL",
        settings=INSERT_SETTINGS,
    )
    join_id = uuid.uuid4().hex
    _write_join_marker(settings, lo, join_id, join_bytes(settings)[0])
    log.info("rebuilt %s up to %d in %.1f s", JOIN_TABLE, lo, time.perf_counter() - t0)
    return join_id


def sync_states_join(settings: Settings, lo: int) -> str:
    """Before a fold step from ``lo``: the id of session_folded_join's marker once it holds every entry up
    to ``lo`` (rebuilt when it is behind: empty, or steps were folded without it; or when the copies of the
    sessions rewritten since its last rebuild have grown past JOIN_SLACK_BYTES), or '' when
    settings.session_states_in_memory is off (then it is emptied, freeing its memory)."""
    if not settings.session_states_in_memory:
        c, db = get_client(settings), settings.clickhouse_database
        rows = c.query(
            "SELECT total_rows FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": db, "t": JOIN_TABLE},
        ).result_rows
        if rows and rows[0][0]:
            _empty_join(settings)
        return ""
    to, join_id = join_marker(settings)
    held, base = join_bytes(settings)
    if join_id and to >= lo and held <= 2 * base + JOIN_SLACK_BYTES:
        return join_id
    return rebuild_states_join(settings, lo)


@_writing
def _empty_join(settings: Settings) -> None:
    get_client(settings).command(f"TRUNCATE TABLE {settings.clickhouse_database}.{JOIN_TABLE}")


@_writing
def write_sums(settings: Settings, lo: int, hi: int) -> None:
    """Second insert, one part: the changes of session_sums and the new watermark; dropped as a
    duplicate if this step (from ``lo``) already committed."""
    get_client(settings).command(
        f"INSERT INTO {settings.clickhouse_database}.session_sums "
        + query.text(settings, "fold", _from_changes(settings)),
        parameters={"fold_lo": lo, "fold_hi": hi},
        settings={**INSERT_SETTINGS, **_ONE_PART, "insert_deduplication_token": f"session-fold-from-{lo}"},
    )


def _from_changes(settings: Settings) -> dict[str, str]:
    return {
        "session_deltas": query.sql("session_deltas"),
        "session_changes": f"SELECT * FROM {settings.clickhouse_database}.session_fold_changes",
    }


def fold(settings: Settings, until: int | None = None) -> int:
    """Fold everything inserted before ``until`` (default ``fold_until``), then the closed hours of the
    hourly rollup (``traffic_fold``); returns the session fold's steps taken."""
    until = fold_until(settings) if until is None else until
    with _one_step:  # an idle system's table too (after a restart with it emptied, or a migration)
        sync_states_join(settings, query.folded_to(settings))
    steps = 0
    while fold_step(settings, until):
        steps += 1
    # the hourly report's counts (migration 016): in step with nothing, so after the sessions' steps
    traffic_fold.fold_hours(settings)
    return steps


@_writing
def purge_states(settings: Settings, older_than_days: int | None = None) -> int:
    """Delete the session_state entries of sessions that started over ``older_than_days`` (default
    ``event_ttl_days``) ago, after their rows in session_folded; returns how many entries went. Their
    session_sums rows expire at that age too, and a later event of such a session (its events have
    expired as well) counts it as a new session."""
    days = settings.event_ttl_days if older_than_days is None else older_than_days
    c, db = get_client(settings), settings.clickhouse_database
    ((cutoff,),) = c.query(
        "SELECT toUInt32(now() - toIntervalDay({days:UInt32}))", parameters={"days": days}
    ).result_rows
    where = "start_hour < toDateTime({cutoff:UInt32}, 'UTC')"
    p = {"cutoff": int(cutoff)}
    with _one_step:  # between fold steps: a step re-run after a failure finds the entries it wrote
        ((expired,),) = c.query(f"SELECT count() FROM {db}.session_state WHERE {where}", parameters=p).result_rows
        if expired:
            # every row of those sessions, by key: a session's older rows (not merged away yet) can
            # have a later start_hour than its entry. The rows go first: a report meanwhile counts such
            # a session as new, as the fold will once its entry is gone
            c.command(
                f"DELETE FROM {db}.session_folded WHERE (seller_hash, session) IN ("
                "SELECT toUInt64(bitShiftRight(key, 64)), toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)) "
                f"FROM {db}.session_state WHERE {where})",
                parameters=p,
            )
        if settings.session_states_in_memory:
            # like session_folded, without those sessions; and without the older copies of the sessions
            # rewritten since the last rebuild (a Join table keeps them in memory: ~a day's rewrites)
            rebuild_states_join(settings, query.folded_to(settings))
        if expired:
            c.command(f"DELETE FROM {db}.session_state WHERE {where}", parameters=p)
    if expired:
        log.info("purged %d session_state entries of sessions started over %d days ago", expired, days)
    return int(expired)


def refill_after_fold(settings: Settings) -> threading.Thread | None:
    """After each fold round of the fold thread: the shared live part's refill (its fills are of the
    watermark before the round; clickhouse/session_reports.py), started on a thread of its own and returned
    (None: the last round's still runs), so that the round is not held up by it."""
    # imported here: session_reports imports this module (through query), and a registration made at its
    # import ran on a partly initialized module whenever this one was imported first (the sink: it died at
    # start, CI at aba0cdc)
    from clickhouse import session_reports

    return session_reports.refill_after_fold(settings)


class SessionFolder:
    """Runs ``fold`` at start and every ``session_fold_interval_s`` on a daemon thread (not at all when
    it is 0), and ``purge_states`` and ``event_keys.purge_event_keys`` at start and every ``PURGE_EVERY_S``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the last round's refill (refill_after_fold): stop() waits for it too, as it waited for the round
        # when the refill ran in it (its queries must not outlive the process's ClickHouse client)
        self._refill: threading.Thread | None = None

    def start(self) -> SessionFolder:
        if self.settings.session_fold_interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="session-fold", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        purged_at = None
        while True:  # a first round at once: after an upgrade, the old rows wait to be folded
            try:
                fold(self.settings)
            except Exception:  # noqa: BLE001 - the next round starts again from the committed watermark
                log.exception("session fold failed; retrying next round")
            try:
                self._refill = refill_after_fold(self.settings) or self._refill
            except Exception:  # noqa: BLE001 - reports make what is missing themselves
                log.exception("the shared live part's refill after the fold failed")
            if purged_at is None or time.monotonic() - purged_at >= PURGE_EVERY_S:
                # housekeeping: a failed purge (it scans the whole table) is tried again at the next
                # interval, not on every fold round
                purged_at = time.monotonic()
                for purge in (purge_states, purge_event_keys):  # event_keys: migration 007
                    try:
                        purge(self.settings)
                    except Exception:  # noqa: BLE001
                        log.exception("%s failed; trying again in %d s", purge.__name__, PURGE_EVERY_S)
            if self._stop.wait(self.settings.session_fold_interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(60)
        if self._refill:
            self._refill.join(60)
