"""What the sessions agent keeps in memory besides the table: rebuilt from the table after every
rebalance (``rebuild``), dropped at revocation (``forget``).

``generation`` counts the revocations: a batch records it when it is folded and is written only under
the same one (``session_batch.PartitionBatch.write``). A batch folded before a revocation and written
after it would put its partition back into ``deadlines`` without a ``rebuild``, and the next batch would
sum that partition's gauges from zero (docs/operations.md, "Lost session: analysis", weak point 1)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict

import msgspec

from streams import state as sm
from streams.deadlines import Deadlines
from streams.state_cache import StateCache
from streams.table_keys import parse_sums_key

ALERTED_MAX = 100_000

_row_dec = msgspec.json.Decoder(dict)

deadlines: dict[int, Deadlines] = {}  # per partition: when each session next needs a look
rated: dict[int, set[str]] = {}  # per partition: sellers with rates in the last hour
resync: dict[int, dict[str, dict[str, int]]] = {}  # per partition: gauges recounted from the sessions
# Per partition, per seller: the sum of its sessions' contributions, uncapped. The sums row keeps it
# capped (``streams/caps.py``); this is what lets a value folded into "~other" come back out of it when
# a value before it by name leaves. Rebuilt from the sessions after every assignment (``rebuild``).
uncapped: dict[int, dict[str, dict[str, int]]] = {}
# Per partition, per seller: the session keys the table holds (``streams/caps.py::HeldSessions``, the live
# sessions cap). Rebuilt from the table after every assignment (``rebuild``), updated once a batch is written.
held: dict[int, dict[str, int]] = {}
generation = 0  # revocations so far (``forget``)
tick_minute: dict[int, int] = {}  # per partition: the minute of its last tick
# Recent (seller, event id) pairs alerted, against re-sends by retrying clients. Per seller: a sender
# chooses its event ids, so one seller's id must never silence another seller's alert.
_alerted: OrderedDict[tuple[str, str], None] = OrderedDict()
# The stored bytes of recent sessions in front of the store (streams/state_cache.py); its capacity is set from the
# settings by the sessions batch. Replaced, not cleared, at revocation: a batch in flight keeps the old one.
state_cache = StateCache(0)


class UnreportedRows:
    """The sums rows written since the last report to the gauges agent: the latest row of each (seller,
    partition), since a report carries the whole row. The sessions batch marks each row it writes
    (``streams/session_batch.py``); the reporter takes them all at once (``streams/agents/session_timers.py``)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], bytes] = {}

    def mark(self, seller: str, partition: int, row: bytes) -> None:
        self._rows[(seller, partition)] = row

    def take(self) -> list[tuple[str, int, bytes]]:
        """Every (seller, partition, row) marked since the last ``take``; none is kept."""
        rows, self._rows = self._rows, {}
        return [(seller, partition, row) for (seller, partition), row in rows.items()]

    def __len__(self) -> int:
        return len(self._rows)


unreported_rows = UnreportedRows()


def first_alert(seller_id: str, event_id: str) -> bool:
    """True the first time this seller's ``event_id`` is seen (among the last ``ALERTED_MAX``); remembers it."""
    key = (seller_id, event_id)
    if key in _alerted:
        return False
    _alerted[key] = None
    if len(_alerted) > ALERTED_MAX:
        _alerted.popitem(last=False)
    return True


def rebuild(items, now: int, windows: sm.Windows) -> None:
    """One pass over the sessions table's ``items``: every partition's deadlines, its sellers with
    rates, and each (seller, partition)'s gauges recounted from its sessions' recorded contributions.
    Partitions already tracked (since the last assignment) are left as they are: their state in memory
    is current, while the table does not yet hold a batch being folded."""
    heaps: dict[int, Deadlines] = defaultdict(Deadlines)
    rated_now: dict[int, set[str]] = defaultdict(set)
    recount: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
    sessions_held: dict[int, dict[str, int]] = defaultdict(dict)
    for key, raw in items:
        if raw is None:
            continue
        sums = parse_sums_key(key)
        if sums is not None:
            seller, part = sums
            recount[part].setdefault(seller, {})
            if _row_dec.decode(raw).get("r"):
                rated_now[part].add(seller)
            continue
        st = sm.loads(raw)
        per_seller = sessions_held[st.partition]
        per_seller[st.seller] = per_seller.get(st.seller, 0) + 1
        if st.emitted:
            sm.add_into(recount[st.partition].setdefault(st.seller, {}), st.emitted)
        heaps[st.partition].push(sm.next_change(st, now, windows) or now, key)
    for part in set(heaps) | set(recount):
        if part in deadlines:
            continue
        deadlines[part] = heaps[part]
        rated[part] = rated_now[part]
        resync[part] = recount[part]
        uncapped[part] = {seller: dict(v) for seller, v in recount[part].items()}
        held[part] = sessions_held[part]


class StaleBatch(RuntimeError):
    """A batch folded before a revocation reached its write after it: it is not written (nor
    acknowledged); whoever owns its partitions now processes its messages again."""


def check_generation(folded_under: int) -> None:
    """Raise ``StaleBatch`` unless no revocation came since a batch was folded under ``folded_under``."""
    if folded_under != generation:
        raise StaleBatch(
            f"a batch folded under assignment generation {folded_under} reached its write in "
            f"generation {generation} (a revocation came in between); it is processed again"
        )


def forget() -> None:
    """At revocation: rebuilt for whatever partitions this worker owns next."""
    global generation, state_cache
    generation += 1
    state_cache = StateCache(state_cache.capacity)
    deadlines.clear()
    rated.clear()
    resync.clear()
    uncapped.clear()
    held.clear()
