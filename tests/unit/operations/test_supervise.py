"""The restart policy of ``livemetrics up`` (operations/supervise.py): backoff, forgetting, giving up."""

from __future__ import annotations

import signal

from hypothesis import given
from hypothesis import strategies as st

from operations.supervise import RestartPolicy, exit_reason

gaps = st.lists(st.floats(min_value=0.0, max_value=1000.0, allow_nan=False), min_size=1, max_size=40)


def test_backoff_doubles_from_one_second_and_gives_up_at_the_fifth_death_in_five_minutes():
    p = RestartPolicy()
    assert [p.died(t) for t in (0, 1, 3, 7, 15)] == [1, 2, 4, 8, None]


def test_deaths_older_than_the_window_are_forgotten():
    p = RestartPolicy(max_deaths=3, window_s=60)
    assert p.died(0) == 1 and p.died(10) == 2
    assert p.died(69) == 2  # the death at 0 is out of the window, the one at 10 is not
    assert p.died(131) == 1  # both earlier ones are out
    assert p.died(132) == 2 and p.died(133) is None


@given(gaps)
def test_gives_up_exactly_when_max_deaths_fall_within_the_window(gap_list):
    p = RestartPolicy(max_deaths=4, window_s=100, first_backoff_s=1, max_backoff_s=8)
    now, times = 0.0, []
    for gap in gap_list:
        now += gap
        times.append(now)
        delay = p.died(now)
        recent = [t for t in times if t > now - 100]
        if len(recent) >= 4:
            assert delay is None
            return
        assert delay == min(8, 2 ** (len(recent) - 1))


@given(st.integers(min_value=1, max_value=200))
def test_deaths_spaced_wider_than_the_window_never_give_up(n):
    p = RestartPolicy(max_deaths=2, window_s=10)
    assert all(p.died(i * 10.5) == p.first_backoff_s for i in range(n))


def test_exit_reasons_name_the_code_or_the_signal():
    assert exit_reason(1) == "exited with code 1"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(-200) == "killed by signal 200"
