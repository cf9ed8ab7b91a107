"""The testcontainers branch of the test fixtures: a KRaft broker from the Apache image that advertises the
host port it is bound to (starting one needs a Docker daemon, which this machine does not have)."""

from tests.support.services import kafka_container_env


def test_the_container_broker_is_single_node_kraft_advertising_its_bound_host_port():
    env = kafka_container_env(49152)
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://127.0.0.1:49152"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voters.startswith(env["KAFKA_NODE_ID"] + "@") and voters.endswith(":9093")
    assert (
        "CONTROLLER://0.0.0.0:9093" in env["KAFKA_LISTENERS"] and env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    )
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from settings, as with the launcher
