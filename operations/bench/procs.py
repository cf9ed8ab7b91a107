"""What several benchmarks start the same way: a throw-away broker on free ports (unless ``--kafka`` names
one) and livemetrics processes as operators run them (``python -m livemetrics ...``), each ended with
the benchmark however it ends (``lifeline``) and stopped by the benchmark's ``ExitStack``."""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from livemetrics.settings import Settings
from operations.command import livemetrics_argv
from operations.kafka_throwaway import throwaway_kafka


def own_broker(stack: ExitStack, tmp: Path, kafka: str | None) -> str:
    """``kafka`` when given, else the bootstrap of a throw-away local broker (stopped by ``stack``)."""
    if kafka:
        return kafka
    return stack.enter_context(throwaway_kafka(tmp / "kafka")).settings.kafka_bootstrap


def start_processes(
    stack: ExitStack, settings: Settings, commands: list[list[str]], logs: IO[bytes], stop_s: float = 30.0
) -> list[subprocess.Popen]:
    """Each command as its own process with the settings' environment, output into ``logs``."""
    from livemetrics import lifeline

    env = {**settings.child_env(), "LIVEMETRICS_ORPHAN_EXIT_S": str(lifeline.CHILD_ORPHAN_EXIT_S)}  # as under up
    procs = []
    for cmd in commands:
        p = subprocess.Popen(
            livemetrics_argv(*cmd),
            env=env,
            stdout=logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lifeline.preexec(),  # ends with this process, however it ends
        )
        procs.append(p)
        stack.callback(lambda p=p: (p.terminate(), p.wait(stop_s)))
    return procs
