"""Gauges agent: per seller, the latest sums row reported by each source partition; their total is the
seller's live numbers, and their per-minute counts are set into the per-minute windowed table
(``streams/minute_rates.py``). Both are published as a snapshot on ``live-metrics`` as soon as a report
changes them, at most one per seller every ``snapshot_interval_ms`` (changes in between are coalesced
into the next one: ``streams/push_pacing.py``), plus error-spike alerts on ``payment-alerts``. Expiry
needs no timer here: the sessions agent's ticks change the sums rows, whose reports come here like any.

A report this worker sends for a seller whose ``live-deltas`` partition it owns itself is counted in the
seller's snapshots at once (``report_ahead``), before it comes back through the broker: that trip waits for
the worker's own fetches, behind the raw events of a backlog, and took seconds whenever the worker was
behind (BENCHMARKS.md, fourteenth session). Such a row is kept in memory only (``agent.ahead``) until the
report itself arrives; the tables are written from the reports only, as before.

Only the worker that actively owns a seller's ``live-deltas`` partition (and so its gauges row)
publishes for it: a worker that just lost the partition must not put an old or ``recovering`` snapshot
after the new owner's. After every assignment, each owned seller gets a snapshot with
``recovering: false`` once the tables have caught up (and ``recovering: true`` ones while they replay).

The gauges table holds one row per (seller, source partition), ``seller \0 partition``, so that no
row grows with the number of partitions; the seller's total is capped again (``streams/caps.py``)
before it is published. A message too large for the broker is never sent (``streams/produce_guard.py``).
What the agent keeps besides its tables is one ``GaugesAgentState``, ``agent``."""

from __future__ import annotations

import msgspec
from aiokafka.partitioner import murmur2

from livemetrics.snapshot import build_snapshot
from streams import minute_rates, produce_guard, rates, spikes, worker_metrics
from streams.app import app, settings
from streams.caps import Caps, cap_gauges, cap_minute
from streams.clock import now_ms
from streams.push_pacing import PushLoop
from streams.session_batch import WINDOWS
from streams.tables import gauges
from streams.topics import live_deltas, live_metrics, payment_alerts

SPIKE_RULE = spikes.SpikeRule.from_settings(settings)
CAPS = Caps.from_settings(settings)
produce_guard.configure(CAPS, settings)  # the caps must fit the broker's limit: else a clear error at start
worker_metrics.serve(settings)
DELTAS_TOPIC = settings.topic("live-deltas")

_json = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(dict)


class GaugesAgentState:
    """The gauges agent's memory besides its tables: which partitions it owns, the sellers to publish and
    when each was last published, the spike cool-downs, and the recovery phase it last published in."""

    def __init__(self, min_gap_s: float):
        self.snapshots: PushLoop[str] = PushLoop(min_gap_s, publish)  # sellers whose numbers changed
        self.spiked_at: dict[str, int] = {}  # last error-spike alert per seller (cool-down)
        self.owned: set[int] = set()  # live-deltas partitions this worker actively owns
        self.partition_of: dict[str, int] = {}  # seller -> live-deltas partition, as seen on its reports
        self.recovering = False  # the phase the last snapshots were published in
        self.resync = False  # an assignment happened: every owned seller gets a snapshot once recovered
        self.parts_seen = 0  # source partitions reported so far (the raw topics may have more than the setting)
        # seller -> source partition -> a row this worker reported and has not read back from live-deltas yet
        self.ahead: dict[str, dict[str, dict]] = {}


def partition_of(seller: str) -> int:
    """The live-deltas partition of a seller's reports (the producer's default murmur2 partitioner)."""
    p = agent.partition_of.get(seller)
    if p is None:
        p = agent.partition_of[seller] = (murmur2(seller.encode()) & 0x7FFFFFFF) % settings.partitions
    return p


def part_key(seller: str, partition: int | str) -> bytes:
    """The gauges table's key of a seller's row from one source partition."""
    return f"{seller}\0{partition}".encode()


def seller_of(key: bytes) -> str | None:
    """The seller of a gauges key (None for a key of the older one-row-per-seller layout: docs/live-semantics.md)."""
    seller, sep, _ = key.decode().rpartition("\0")
    return seller if sep else None


def parts_of(seller: str) -> dict[str, dict]:
    """The latest row reported by each of the seller's source partitions, by partition."""
    out = {}
    for p in range(max(settings.partitions, agent.parts_seen)):
        raw = gauges.get(part_key(seller, p))
        if raw:
            out[str(p)] = _dec.decode(raw)
    return out


def apply_report(report: dict) -> bool:
    """Keep the report if it is newer than what we have from its partition, and bring the seller's
    per-minute windows up to date with the rows kept; True if kept. A report already counted ahead
    (``report_ahead``) marks no snapshot: the seller's numbers as shown do not change."""
    seller = report["seller"]
    agent.parts_seen = max(agent.parts_seen, report["p"] + 1)
    parts = parts_of(seller)
    p = str(report["p"])
    prev = parts.get(p)
    r = report.get("r", {})
    shown = _read_back(seller, p, report["seq"])
    if prev is not None and prev["seq"] >= report["seq"]:
        # A redelivered or older report changes no gauges. Its minutes are still checked against the
        # windows: before a crash the gauges row may have been written and its windows not.
        kept, minutes = False, set(r)
    else:
        parts[p] = {"seq": report["seq"], "v": report["v"], "r": r}
        gauges[part_key(seller, p)] = _json.encode(parts[p])
        if not shown:
            agent.snapshots.mark(seller)
        old = prev.get("r", {}) if prev else {}
        kept, minutes = True, {m for m in r.keys() | old.keys() if r.get(m) != old.get(m)}
    lo = rates.first_bucket(now_ms())
    totals = {int(m): minute_total(parts, m) for m in minutes if int(m) >= lo}
    if totals and minute_rates.record(seller, totals) and not shown:
        agent.snapshots.mark(seller)
    return kept


def report_ahead(seller: str, partition: int, row: dict) -> None:
    """A sums row (``seq``, ``v``, ``r``) this worker has just reported on ``live-deltas``: if it owns the
    seller's live-deltas partition, the seller's snapshots count it from now on, until the report comes
    back (``apply_report``), or a newer row replaces it. Memory only: what is stored comes from the
    reports, so a row counted ahead and then lost with this worker is what a new owner rebuilds and
    reports again (``session_memory.rebuild``)."""
    if partition_of(seller) not in agent.owned:
        return
    agent.parts_seen = max(agent.parts_seen, partition + 1)
    ahead = agent.ahead.setdefault(seller, {})
    p = str(partition)
    if p not in ahead or ahead[p]["seq"] < row["seq"]:
        ahead[p] = row
        agent.snapshots.mark(seller)


def _read_back(seller: str, p: str, seq: int) -> bool:
    """The report ``seq`` of the seller's partition ``p`` has come back: forget the row counted ahead up
    to it. True if what the snapshots count for that partition stays as it was (a row at least as new
    was counted ahead)."""
    ahead = agent.ahead.get(seller)
    row = ahead.get(p) if ahead else None
    if row is None or row["seq"] < seq:
        return False
    if row["seq"] == seq:
        del ahead[p]  # type: ignore[union-attr]
        if not ahead:
            del agent.ahead[seller]
    return True


def shown_parts(seller: str, stored: dict[str, dict]) -> dict[str, dict]:
    """The rows a snapshot counts: the gauges table's (``stored``), each replaced by a newer row counted
    ahead."""
    parts = dict(stored)
    for p, row in agent.ahead.get(seller, {}).items():
        if p not in parts or parts[p]["seq"] < row["seq"]:
            parts[p] = row
    return parts


def minute_total(parts: dict, minute: str) -> dict[str, int]:
    """The seller's counts in one minute: the sum over its partitions' latest rows (payment methods
    capped again over the sum)."""
    out: dict[str, int] = {}
    for part in parts.values():
        for m, n in part.get("r", {}).get(minute, {}).items():
            out[m] = out.get(m, 0) + n
    return cap_minute(out, CAPS.payment_method)


def totals_for(seller: str, parts: dict[str, dict] | None = None) -> dict[str, int]:
    """The seller's gauges: the sum over its partitions' latest rows, capped again over the sum."""
    totals: dict[str, int] = {}
    for part in (parts_of(seller) if parts is None else parts).values():
        for k, v in part["v"].items():
            totals[k] = totals.get(k, 0) + v
    return cap_gauges({k: v for k, v in totals.items() if v}, CAPS)


def minutes_for(seller: str, now: int, stored: dict[str, dict], parts: dict[str, dict]) -> dict[str, dict[str, int]]:
    """The seller's minutes of the hour shown: the windowed table's, with each minute where a row counted
    ahead differs from the ``stored`` row it replaces summed over ``parts`` as ``apply_report`` will set it
    (only those: a row holds the whole hour's minutes, and the others are the table's already)."""
    buckets = minute_rates.last_hour(seller, now)
    ahead = agent.ahead.get(seller)
    if ahead:
        lo = rates.first_bucket(now)
        changed = set()  # minutes where a row counted ahead differs from the stored row it replaces
        for p, row in ahead.items():
            r, old = row["r"], stored.get(p, {}).get("r", {})
            changed.update(m for m in r.keys() | old.keys() if r.get(m) != old.get(m))
        for m in changed:
            if int(m) >= lo:
                counts = minute_total(parts, m)
                if counts:
                    buckets[m] = counts
                else:
                    buckets.pop(m, None)
    return buckets


def snapshot_for(seller: str, now: int, recovering: bool = False) -> tuple[dict, dict]:
    """The seller's snapshot: gauges from the gauges table, ``rates_per_minute`` from the windowed table,
    both with the rows counted ahead (``report_ahead``)."""
    stored = parts_of(seller)
    parts = shown_parts(seller, stored)
    per_minute = rates.series(minutes_for(seller, now, stored, parts), now, CAPS.payment_method)
    totals = totals_for(seller, parts)
    return (
        build_snapshot(seller, totals, WINDOWS, recovering=recovering, as_of_ms=now, rates=per_minute),
        per_minute,
    )


@app.agent(live_deltas)
async def keep_gauges(stream):
    async for event in stream.events():
        report = _dec.decode(event.value)
        agent.partition_of[report["seller"]] = event.message.partition
        apply_report(report)


@app.on_partitions_revoked.connect
async def _stop_publishing(app_, revoked, **kwargs) -> None:
    agent.owned.clear()
    agent.ahead.clear()  # the reports come back to whoever owns their partitions next
    await app.producer.flush()  # snapshots already handed to the producer go out before the new owner's


@app.on_partitions_assigned.connect
async def _start_publishing(app_, assigned, **kwargs) -> None:
    agent.owned.clear()
    agent.ahead.clear()
    agent.owned.update(tp.partition for tp in assigned if tp.topic == DELTAS_TOPIC)
    agent.resync = True  # watch_recovery publishes once it knows whether the tables replay


def tables_recovering() -> bool:
    return bool(getattr(app, "in_recovery", False))  # set by Faust while tables replay their changelogs


def owned_sellers() -> set[str]:
    """The sellers whose live-deltas partition this worker owns (it publishes their snapshots and alerts)."""
    sellers = {seller_of(k) for k in list(gauges.keys())}
    sellers.discard(None)
    return {seller for seller in sellers if partition_of(seller) in agent.owned}


@app.timer(interval=0.25)
async def watch_recovery() -> None:
    """Tables replaying after a restart or rebalance change no sums rows of this worker's, so no report
    says when the phase changes: every owned seller gets a snapshot when it starts (``recovering: true``)
    and when it ends (the recovered numbers), and after any assignment once not recovering."""
    recovering = tables_recovering()
    if recovering != agent.recovering or (agent.resync and not recovering):
        agent.recovering = recovering
        agent.resync = agent.resync and recovering
        agent.snapshots.mark(*owned_sellers())


@app.task
async def _push_snapshots() -> None:
    await agent.snapshots.run()


async def publish(sellers: list[str]) -> None:
    """A snapshot for each of ``sellers`` this worker owns, then its error-spike check."""
    now, recovering = now_ms(), tables_recovering()
    for seller in sellers:
        if partition_of(seller) not in agent.owned:
            continue
        snap, per_minute = snapshot_for(seller, now, recovering)
        await produce_guard.send(live_metrics, seller.encode(), _json.encode(snap), "snapshot")
        if recovering:
            continue
        alert = spikes.check(seller, per_minute, now, SPIKE_RULE, agent.spiked_at.get(seller))
        if alert is not None:
            agent.spiked_at[seller] = now
            await produce_guard.send(payment_alerts, seller.encode(), _json.encode(alert), "error-spike alert")


agent = GaugesAgentState(settings.snapshot_interval_ms / 1000)
