"""A throw-away single-node broker for one benchmark run or one test session: the local launcher
(``kafka_local.py``) on free ports, in its own data directory, ended with the process that started it
however that ends, and stopped without waiting out a long controlled shutdown (its data goes anyway)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from livemetrics.settings import Settings
from operations.kafka_local import LocalKafka
from operations.ports import free_port

STOP_WAIT_S = 5.0


@contextmanager
def throwaway_kafka(data_dir: Path, wait_s: float = 120.0, heap: str | None = None) -> Iterator[LocalKafka]:
    """A broker answering on ``lk.settings.kafka_bootstrap`` inside the block, stopped after it.
    ``heap``: the JVM heap (``kafka_heap``) when not the settings' default."""
    settings = Settings(
        data_dir=data_dir,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        **({"kafka_heap": heap} if heap else {}),
    )
    lk = LocalKafka(settings)
    lk.start(wait_s=wait_s, quiet=True, die_with_parent=True)  # not left running if this process is killed
    try:
        yield lk
    finally:
        lk.stop(wait_s=STOP_WAIT_S)
