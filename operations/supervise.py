"""When ``livemetrics up`` restarts a child that died, and when it gives up (pure logic).

A death is followed by a restart after an exponential backoff (1 s, 2 s, 4 s ... at most 30 s), so a
child killed once is back within a second and one that keeps failing does not spin. Deaths older than
``WINDOW_S`` are forgotten (a crash a day is not a crash loop). The ``MAX_DEATHS``-th death of one
child within ``WINDOW_S`` means restarting does not help (a port taken, a broken setting, a disk
full): ``up`` then stops everything and says why. Documented in docs/operations.md (Supervision).
"""

from __future__ import annotations

import signal
from collections import deque
from dataclasses import dataclass, field

from livemetrics.loop_watch import EXIT_LOOP_STUCK

MAX_DEATHS = 5  # of one child within WINDOW_S: give up
WINDOW_S = 300.0
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


@dataclass
class RestartPolicy:
    max_deaths: int = MAX_DEATHS
    window_s: float = WINDOW_S
    first_backoff_s: float = FIRST_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    deaths: deque = field(default_factory=deque)  # monotonic times of the deaths within the window

    def died(self, now: float) -> float | None:
        """Record a death at ``now`` (monotonic seconds): the delay before the restart, or None when
        this death is the ``max_deaths``-th within ``window_s`` (give up)."""
        self.deaths.append(now)
        while self.deaths and self.deaths[0] <= now - self.window_s:
            self.deaths.popleft()
        recent = len(self.deaths)
        if recent >= self.max_deaths:
            return None
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** (recent - 1))

    def summary(self) -> str:
        return f"{len(self.deaths)} deaths within {self.window_s / 60:g} minutes"


def exit_reason(returncode: int | None) -> str:
    """``exit code 1`` / ``killed by SIGKILL`` for a Popen return code."""
    if returncode is None:
        return "exited (code unknown)"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == EXIT_LOOP_STUCK:
        return f"exited with code {returncode} (its event loop or sink thread was stuck: its watchdog ended it)"
    return f"exited with code {returncode}"
