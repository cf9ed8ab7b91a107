"""Shares of a limited thing per holder: at most ``per`` held at once by one seller (a notifier's send slots,
its DNS threads) or one token (the API's requests under way). ``acquire`` waits for one of the holder's,
``release`` gives it back; a holder's entry lives while anything of it waits or holds, so the memory is
bounded by those waiting or holding, not by every holder ever seen."""

from __future__ import annotations

import asyncio


class Shares:
    def __init__(self, per: int):
        self.per = per
        self._by: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # its slots, [waiting or holding]

    async def acquire(self, holder: str) -> None:
        entry = self._by.get(holder)
        if entry is None:
            entry = self._by[holder] = (asyncio.Semaphore(self.per), [0])
        entry[1][0] += 1
        try:
            await entry[0].acquire()
        except BaseException:  # given up (a timeout, cancelled): nothing held
            self._leave(holder, entry)
            raise

    def release(self, holder: str) -> None:
        entry = self._by[holder]
        entry[0].release()
        self._leave(holder, entry)

    def _leave(self, holder: str, entry: tuple[asyncio.Semaphore, list[int]]) -> None:
        entry[1][0] -= 1
        if not entry[1][0] and self._by.get(holder) is entry:
            del self._by[holder]

    def __len__(self) -> int:
        """Holders with anything waiting or held (entries are not kept past their use)."""
        return len(self._by)
