"""What ``up`` checks before it starts anything, so a second stack on the same directory or ports is
refused in words (livemetrics/holders.py names the holder) instead of failing half-way."""

from __future__ import annotations

from livemetrics.holders import InUse, check_port, claim_dir, holder_of_dir
from livemetrics.in_use import chdb_dir
from livemetrics.settings import Settings
from operations.kafka_local import LocalKafka


def check_stack(s: Settings, own_broker: bool) -> None:
    """What ``up`` needs before it starts anything: the data directory (held by ``up`` for its whole
    life through ``<data_dir>/up.lock``), the chdb directory and the ports."""
    claim_dir(s.data_dir, "the data directory", lock=s.data_dir / "up.lock")
    d = chdb_dir(s)
    holder = holder_of_dir(d) if d is not None else None
    if holder:
        raise InUse(f"the ClickHouse data directory {d.resolve()} is in use by {holder}")
    check_port(s.host, s.gateway_port, "the gateway")
    check_port(s.host, s.api_port, "the API")
    if s.worker_metrics_port:
        check_port(s.host, s.worker_metrics_port, "the worker's /metrics")
    if s.sink_ops_port and not s.clickhouse_embedded:  # the standalone sink runs only with a server
        check_port(s.host, s.sink_ops_port, "the sink's /metrics")
    if own_broker:
        lk = LocalKafka(s)
        if not (lk.pid() and lk.answering()):  # a broker of `kafka start` on this data dir is reused
            host, port = lk.host_port
            check_port(host, port, "the Kafka")
            check_port(host, s.kafka_controller_port, "the Kafka controller")
