"""Which sellers a notifier owns (api/notify/ownership.py): a seller's partition is the one the worker's
producer (aiokafka, Kafka's default partitioner) puts its alerts in."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from api.notify.ownership import Ownership, partition_of


def test_a_sellers_partition_is_the_worker_producers():
    parts = list(range(6))
    for i in range(200):
        seller = f"seller-{i}"
        assert partition_of(seller, 6) == DefaultPartitioner()(seller.encode(), parts, parts)


def test_owned_follows_assignments_and_revocations():
    own = Ownership()
    assert not own.owns("shop-a")  # nothing assigned yet: nothing is sent
    mine = partition_of("shop-a", 3)
    own.assign([mine], 3)
    assert own.owns("shop-a") and own.partitions == {mine}
    others = [f"s-{i}" for i in range(50) if partition_of(f"s-{i}", 3) != mine]
    assert others and not any(own.owns(s) for s in others)
    own.revoke([mine])
    assert not own.owns("shop-a")
    own.assign(range(3), 3)
    assert all(own.owns(s) for s in ["shop-a", *others])
