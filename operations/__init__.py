"""Operations: the command line, ``up`` and its process runners, the local Kafka launcher and the
benchmarks. The top layer: it may import the services and the core; nothing imports it
(tests/unit/test_layers.py)."""
