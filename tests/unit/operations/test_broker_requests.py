"""``bench e2e --broker-clients``: the broker's request log read per request type, process and client."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from operations.bench import broker_requests


def _line(api_key: int, name: str | None, client: str, port: int, response: dict | None = None) -> str:
    header = {"requestApiKey": api_key, "requestApiVersion": 9, "correlationId": 7, "clientId": client}
    if name:
        header["requestApiKeyName"] = name
    desc: dict = {"isForwarded": False, "requestHeader": header, "connection": f"127.0.0.1:9092-127.0.0.1:{port}-0-3"}
    if response is not None:
        desc["response"] = response
    return f"[data-plane-kafka-request-handler-0] DEBUG kafka.request.logger - Completed request:{json.dumps(desc)}"


def _fetch_answer(*sizes: int) -> dict:
    return {
        "responses": [
            {"topic": "t", "partitions": [{"partitionIndex": i, "recordsSizeInBytes": n} for i, n in enumerate(sizes)]}
        ]
    }


def test_every_request_type_is_counted_per_process_and_client_id_and_empty_fetches_apart():
    text = "\n".join(
        [
            "[main] INFO kafka.server.KafkaRaftServer - started",
            _line(12, "HEARTBEAT", "faust-0.11", 40001),
            _line(12, None, "faust-0.11", 40001),  # no name: from the key
            _line(8, "OFFSET_COMMIT", "faust-0.11", 40001),
            _line(1, "FETCH", "rdkafka", 40002, _fetch_answer(0, 0)),
            _line(1, "FETCH", "rdkafka", 40002, _fetch_answer(0, 120)),
            _line(18, "API_VERSIONS", "rdkafka", 40003),
            _line(3, "METADATA", "rdkafka", 40009),  # a port no sample saw
            '[x] DEBUG kafka.request.logger - Completed request:{"requestHeader": {"requestApi',  # cut at the read's end
        ]
    )
    logged = broker_requests.parse_request_log(text)
    assert len(logged) == 7
    counts = broker_requests.by_client(logged, {40001: "worker", 40002: "api", 40003: "gateway"})
    assert counts["requests"] == {
        ("worker", "faust-0.11", "Heartbeat"): 2,
        ("worker", "faust-0.11", "OffsetCommit"): 1,
        ("api", "rdkafka", "Fetch"): 2,
        ("gateway", "rdkafka", "ApiVersions"): 1,
        ("unknown", "rdkafka", "Metadata"): 1,
    }
    assert counts["empty_fetches"] == {("api", "rdkafka", "Fetch"): 1}


def test_the_request_log_is_read_from_where_the_last_read_ended_whole_lines_only(tmp_path: Path):
    path = tmp_path / "broker.log"
    path.write_text(_line(12, "HEARTBEAT", "a", 1) + "\n")
    log = broker_requests.RequestLog(path)  # what was there before is not this step's
    with open(path, "a") as f:
        f.write(_line(3, "METADATA", "b", 2) + "\n" + _line(1, "FETCH", "c", 3)[:40])
    assert [r.api for r in log.read()] == ["Metadata"]
    with open(path, "a") as f:
        f.write(_line(1, "FETCH", "c", 3)[40:] + "\n")
    assert [(r.api, r.client_id) for r in log.read()] == [("Fetch", "c")]


def test_port_owners_put_a_connection_to_the_process_holding_its_local_port():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    try:
        owners = broker_requests.PortOwners({"bench": os.getpid()}, port, every_s=0.05).start()
        owners.stop()
        assert owners.owners == {client.getsockname()[1]: "bench"}
    finally:
        for s in (client, accepted, server):
            s.close()
    assert not any(t.name == "port-owners" for t in threading.enumerate())
