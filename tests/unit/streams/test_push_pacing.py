"""Push on change, coalesced, at most once per key per gap (streams/push_pacing.py)."""

from __future__ import annotations

import asyncio
import time

from streams.push_pacing import Pacer, PushLoop


def test_a_change_goes_out_at_once_then_at_most_once_per_gap_per_key():
    p: Pacer[str] = Pacer(0.25)
    p.mark(["a"])
    assert p.take(10.0) == ["a"]
    p.mark(["a", "b"])  # a again within its gap; b never pushed
    assert p.take(10.0625) == ["b"]
    assert p.next_due() == 10.25
    p.mark(["a"])  # a third change of a within the gap: coalesced into the one due push
    assert p.take(10.125) == []
    assert p.take(10.25) == ["a"]
    assert p.take(10.75) == [] and p.next_due() is None
    p.mark(["a"])  # a gap after its last push: at once again
    assert p.take(10.75) == ["a"]


def test_the_pacer_forgets_keys_whose_gap_has_passed():
    p: Pacer[int] = Pacer(0.1)
    p.mark(range(1000))
    assert len(p.take(1.0)) == 1000
    p.mark([1])
    assert p.take(2.0) == [1] and p.last == {1: 2.0}


def test_the_loop_pushes_each_change_and_bounds_the_rate_per_key():
    pushes: list[tuple[float, list[str]]] = []

    async def main():
        done = asyncio.Event()

        async def push(keys: list[str]) -> None:
            pushes.append((time.monotonic(), sorted(keys)))
            if len(pushes) == 3:
                done.set()

        loop: PushLoop[str] = PushLoop(0.2, push)
        task = asyncio.create_task(loop.run())
        loop.mark("s1")
        await asyncio.sleep(0)  # the loop takes s1 right away
        for _ in range(5):  # five more changes of s1 within its gap, one of s2
            loop.mark("s1")
            await asyncio.sleep(0)
        loop.mark("s2")
        await asyncio.wait_for(done.wait(), 5)
        task.cancel()

    asyncio.run(main())
    (t1, first), (_, second), (t3, third) = pushes
    assert first == ["s1"] and second == ["s2"] and third == ["s1"]  # s1's five changes: one push
    assert t3 - t1 >= 0.2
