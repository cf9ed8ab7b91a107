"""A local 3-broker KRaft cluster (docs/operations.md, "A real cluster"): `livemetrics kafka start --brokers 3`, and
a failover under load. The gateway (real producer, acks=all) posts steadily; the node leading the most
raw partitions is SIGKILLed, the load goes on ``OUTAGE_S`` seconds, the node comes back; then two of
the three nodes are killed at once, and one of them comes back. Checked: only 202 and 503 were answered, every 202 is in the raw
topics, no event posted once is there twice, with two nodes gone nothing is acknowledged, and the
worker's live numbers equal a recount of the 202s, and ClickHouse holds every 202 exactly once. Figures are printed as one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from clickhouse.client import get_client
from livemetrics.contract import TOPIC_FOR_TYPE
from livemetrics.kafka_config import admin_config
from livemetrics.settings import RAW_TOPICS, Settings
from operations.command import livemetrics_argv
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.outage_load import recount, view
from tests.support.servers import wait_until
from tests.support.services import free_port, free_stepped_ports, local_cluster
from tests.support.sink_progress import sink_caught_up
from tests.support.stack import Stack, module_settings, new_seller
from tests.support.timed_load import TimedStorefront

pytestmark = pytest.mark.integration

# The issue says 30 s; 20 s keeps the test bounded on a 2-core machine and still spans the failover (writes
# stall ~10 s: the controller fences a silent node after broker.session.timeout.ms, 9 s) and 10 s of steady
# load on two nodes. LIVEMETRICS_TEST_CLUSTER_OUTAGE_S=30 runs the length.
OUTAGE_S = float(os.environ.get("LIVEMETRICS_TEST_CLUSTER_OUTAGE_S", "20"))
SELLERS = ("shop-a", "shop-b")


def isr_complete(s: Settings, topics: list[str], replicas: int) -> bool:
    md = AdminClient(admin_config(s)).list_topics(timeout=10)
    return all(len(p.isrs) == replicas and p.leader >= 0 for t in topics for p in md.topics[t].partitions.values())


def clickhouse_rows(s: Settings) -> Counter:
    """The shops' rows in ClickHouse's events, per event_id."""
    rows = (
        get_client(s)
        .query(
            f"SELECT toString(event_id), count() FROM {s.clickhouse_database}.events "
            "WHERE seller_id IN {shops:Array(String)} GROUP BY event_id",
            parameters={"shops": list(SELLERS)},
        )
        .result_rows
    )
    return Counter(dict(rows))


def attempt(fn):
    """``fn()``, or None when Kafka could not store it yet."""
    try:
        return fn()
    except RuntimeError:
        return None


def test_cli_starts_a_three_broker_cluster_with_replicated_topics_and_stops_it(tmp_path):
    ports = [free_port() for _ in range(3)]
    env = {
        **os.environ,
        "LIVEMETRICS_DATA_DIR": str(tmp_path),
        "LIVEMETRICS_TOPIC_PREFIX": "cli.",
        "LIVEMETRICS_KAFKA_BOOTSTRAP": ",".join(f"127.0.0.1:{p}" for p in ports),
        "LIVEMETRICS_KAFKA_CONTROLLER_PORT": str(free_stepped_ports(3)),
    }  # controllers: that port + 2i
    env.pop("LIVEMETRICS_REPLICATION_FACTOR", None)

    def cli(*args: str) -> str:
        r = subprocess.run(
            livemetrics_argv("kafka", *args),
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    try:
        out = cli("start", "--brokers", "3")
        assert "cluster of 3 running" in out and "3 replicas, min.insync.replicas=2" in out, out
        assert cli("status").count("running (pid") == 3
        s = Settings(kafka_bootstrap=env["LIVEMETRICS_KAFKA_BOOTSTRAP"], topic_prefix="cli.")
        admin = AdminClient(admin_config(s))
        # The broker that answers may learn of the topics a moment after the controller created them.
        md = wait_until(
            lambda: (m := admin.list_topics(timeout=10)) and s.topic("page-events") in m.topics and m,
            30,
            interval=0.2,
            what="the topics in the cluster's metadata",
        )
        assert len(md.brokers) == 3
        assert all(len(p.replicas) == 3 for p in md.topics[s.topic("page-events")].partitions.values())
        res = ConfigResource(ConfigResource.Type.TOPIC, s.topic("payment-events"))
        conf = admin.describe_configs([res])[res].result(timeout=10)
        assert conf["min.insync.replicas"].value == "2" and conf["unclean.leader.election.enable"].value == "false"
    finally:
        out = cli("stop")
    assert "cluster stopped" in out
    assert cli("status").count(": stopped") == 3


@pytest.mark.long  # make test-long (~2 min with the cluster's start); make test keeps a broker SIGKILLed under
# load losing nothing acknowledged (test_broker_outage.py, test_chaos.py) and this cluster's start and topics
def test_failover_under_load_loses_nothing_acknowledged(tmp_path, clickhouse_dsn):
    t0 = time.monotonic()
    marks: dict[str, float] = {}  # seconds since the start of each phase, to see where a slow run spends its time
    mark = lambda name: marks.__setitem__(name, round(time.monotonic() - t0, 1))  # noqa: E731
    with local_cluster(tmp_path / "cluster") as cluster:
        mark("cluster_up")
        base = cluster.client_settings()
        s = module_settings(
            base.kafka_bootstrap,
            clickhouse_dsn,
            tmp_path,
            replication_factor=3,
            min_insync_replicas=2,
            broker_outage_tolerance_s=120,
        )
        raw = [s.topic(t) for t in RAW_TOPICS]
        # A fresh cluster's first idempotent producers wait for a block of producer ids from the controller
        # (seconds on a busy machine: "Coordinator load in progress"); the scenario starts once writes go through.
        sellers = wait_until(
            lambda: attempt(lambda: {name: new_seller(s, name) for name in ("warmup", *SELLERS)}),
            60,
            what="keys stored in the new cluster",
        )
        stack = Stack(s, tmp_path, sellers)
        # Enough sessions that the load cannot run dry before the last phase (a session ends after ~16 events,
        # and of 400, 99 % were done when two nodes went down: a slower run sent nothing then), few enough that
        # sessions get through checkout and payment (~4 events each by then).
        fronts = [
            TimedStorefront(
                f"{stack.gateway.url}/v1/events", sellers[x][0], x, sessions=1500, seed=i, batch=40, pause=0.05
            )
            for i, x in enumerate(SELLERS)
        ]
        try:
            stack.wait_keys(sellers["warmup"][1])
            wait_until(
                lambda: stack.post(sellers["warmup"][0], f.page_view()).status_code == 202, 60, what="a first 202"
            )
            stack.warm_up()
            mark("stack_warm")
            for front in fronts:
                front.start()
            acked = lambda: sum(len(fr.acked_events()) for fr in fronts)  # noqa: E731
            wait_until(lambda: acked() >= 1000, 60, what="load before the kill", alive=stack.worker.alive)

            # One node down: the one leading the most raw partitions.
            leaders = cluster.leaders(raw)
            victim = max((n for n in leaders if n > 0), key=lambda n: leaders[n])
            cluster.kill_node(victim)
            killed = time.monotonic()
            mark("one_killed")
            while time.monotonic() < killed + OUTAGE_S:
                assert stack.worker.alive(), f"worker exited during the outage\n{stack.worker.log_tail()}"
                time.sleep(0.5)  # the outage lasts its set length: a wall-time scenario, no signal
            answers = [a for fr in fronts for a in fr.answers()]
            after_kill = [a for a in answers if a[0] >= killed]
            acked_on_two = [a[1] for a in after_kill if a[2] == 202]
            assert acked_on_two, f"no 202 in the {OUTAGE_S:.0f} s on two nodes: {Counter(a[2] for a in after_kill)}"
            first_202 = min(acked_on_two) - killed
            refused = sum(1 for a in after_kill if a[2] == 503)
            starting = time.monotonic()
            cluster.restart_node(victim, die_with_parent=True)
            restarted = time.monotonic()
            mark("one_restarted")
            wait_until(lambda: isr_complete(s, raw, 3), 60, interval=0.2, what="the restarted node back in every ISR")
            in_sync_s = time.monotonic() - restarted

            # Two nodes down: no write can reach min.insync.replicas=2 (nor a controller quorum): only 503s.
            two = [n.node_id for n in cluster.nodes if n.node_id != victim][:2]
            for node_id in two:
                cluster.kill_node(node_id)
            both_killed = time.monotonic()
            mark("two_killed")
            # The outage lasts until every storefront had two requests sent after it began answered.
            sent_after = lambda fr: [a for a in fr.answers() if a[0] >= both_killed]  # noqa: E731
            wait_until(
                lambda: all(len(sent_after(fr)) >= 2 for fr in fronts),
                60,
                interval=0.1,
                what="requests answered while two nodes are down",
            )
            two_down_s = time.monotonic() - both_killed
            during = [a for fr in fronts for a in sent_after(fr)]
            assert during and {a[2] for a in during} == {503}, Counter(a[2] for a in during)
            # One of them back is enough: a controller quorum and min.insync.replicas again (one node stays down).
            cluster.restart_node(two[0], die_with_parent=True)
            back = time.monotonic()
            mark("one_of_two_back")
            before = acked()
            wait_until(lambda: acked() > before, 60, interval=0.05, what="a 202 after a second node came back")
            first_202_two = time.monotonic() - back

            for front in fronts:  # every refused batch is retried until acknowledged, then the load stops
                front.stop()
            for front in fronts:
                front.join(60)
                assert not front.is_alive() and front.gave_up == 0, f"{front.name} did not get its batches acknowledged"
            mark("load_stopped")
            statuses = sum((fr.statuses for fr in fronts), start=Counter())
            assert set(statuses) <= {202, 503}, statuses

            events = [e for fr in fronts for e in fr.acked_events()]
            retried = set().union(*(fr.retried for fr in fronts))
            in_kafka: Counter = Counter()
            for t in RAW_TOPICS:
                expect = sum(1 for e in events if TOPIC_FOR_TYPE[e["type"]] == t)
                in_kafka.update(
                    json.loads(m.value())["event_id"] for m in read_topic(s, t, expect, timeout=60, settle=1)
                )
            missing = {e["event_id"] for e in events} - set(in_kafka)
            assert not missing, f"{len(missing)} acknowledged events not in Kafka, e.g. {sorted(missing)[:3]}"
            twice = {i for i, n in in_kafka.items() if n > 1}
            # A refused request may still have landed before its retry: only a retried event may be there twice.
            assert twice <= retried, f"{len(twice - retried)} events posted once are in Kafka twice"

            mark("kafka_read")
            by_seller = {x: [e for fr in fronts if fr.seller == x for e in fr.acked_events()] for x in SELLERS}
            wait_until(
                lambda: all(view(stack.live(x, sellers[x][1])) == recount(by_seller[x]) for x in SELLERS),
                30,
                interval=0.2,
                what="live = recount",
                alive=stack.worker.alive,
            )
            mark("live_equals_recount")
            # History: the API's sink has handled every message (copies included) and ClickHouse holds each
            # acknowledged event exactly once (a 503'd request that landed and its retry are one row).
            wait_until(
                lambda: sink_caught_up(s, [s.topic(t) for t in RAW_TOPICS]),
                120,
                interval=0.5,
                what="the sink at the end of the raw topics",
            )
            stored = clickhouse_rows(s)
            assert set(stored) == {e["event_id"] for e in events}
            assert max(stored.values()) == 1, f"{sum(n - 1 for n in stored.values())} rows over one per event"
            mark("clickhouse_once")
            print(
                json.dumps(
                    {
                        "victim_led_partitions": leaders[victim],
                        "outage_s": round(starting - killed, 1),
                        "first_202_after_kill_s": round(first_202, 2),
                        "requests_503_one_down": refused,
                        "restart_s": round(restarted - starting, 1),
                        "back_in_isr_s": round(in_sync_s, 1),
                        "requests_503_two_down": len(during),
                        "two_down_s": round(two_down_s, 1),
                        "first_202_after_second_back_s": round(first_202_two, 2),
                        "acked_events": len(events),
                        "retried_events": len(retried),
                        "in_kafka_twice": len(twice),
                        "statuses": {str(k): v for k, v in statuses.items()},
                        "phases_s": marks,
                    }
                )
            )
            assert stack.worker.alive(), stack.worker.log_tail()
        finally:
            for front in fronts:
                front.stop()
            stack.close()
