"""A small hash table in memory shared by the processes of one service (the gateway's worker processes:
rate-limit buckets and signatures seen, ``producers/gateway/auth.py``).

The memory is a ``memfd`` made by the supervisor and handed to each process it spawns (pickled as a file
descriptor, as ``multiprocessing``'s own shared arrays are; each process opens it again, for a lock of its
own). A process changes it only under an exclusive ``flock`` on that file: the kernel drops a process's
lock when it exits, however it ends (SIGKILL, its loop watchdog's exit), so a process dying inside its
few microseconds under the lock never stops the others.

Each slot is a 16-byte key digest and a few doubles, the first of which is the time from which the slot
is free for another key (a rate-limit bucket refilled, a signature past its window). The digest is keyed
by a random secret of the supervisor: a client cannot choose keys (IP addresses, signatures it grinds)
that crowd one part of the table. Open addressing with linear probing over at most ``PROBES`` slots; a
slot once used is never emptied, only reused by another key once free, so a key is always found before
the first never-used slot of its probe sequence. When no slot of a key's probes is free, ``claim``
returns None and the caller falls back to what it did without the table (its process's own state).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import threading
from multiprocessing import reduction
from typing import Any

PROBES = 32
_EMPTY = bytes(16)


def _rebuild(slots: int, values: int, secret: bytes, fd: Any) -> SharedTable:
    inherited = fd.detach() if hasattr(fd, "detach") else fd
    # A new open file description of the same memory: flock locks are per description, and the inherited
    # descriptor shares the supervisor's (and so every sibling's).
    own = os.open(f"/proc/self/fd/{inherited}", os.O_RDWR | os.O_CLOEXEC)
    os.close(inherited)
    return SharedTable(slots, values, secret, fd=own)


class SharedTable:
    """``slots`` slots of a 16-byte digest and ``values`` doubles each (the first: free from that time on)."""

    def __init__(self, slots: int, values: int, secret: bytes | None = None, fd: int | None = None):
        self.slots, self.values = slots, values
        self.secret = secret if secret is not None else secrets.token_bytes(16)
        self.slot = struct.Struct(f"<16s{values}d")
        self.size = self.slot.size
        if fd is None:
            fd = os.memfd_create("livemetrics-shared-table", os.MFD_CLOEXEC)
            os.ftruncate(fd, slots * self.size)
        self.fd = fd
        self.memory = mmap.mmap(fd, slots * self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._thread_lock = threading.Lock()  # flock excludes processes, not the threads of one

    def __reduce__(self) -> tuple[Any, ...]:
        # only while spawning a process (multiprocessing passes the descriptor on, as for its shared arrays)
        return _rebuild, (self.slots, self.values, self.secret, reduction.DupFd(self.fd))

    def digest(self, key: bytes) -> bytes:
        d = hashlib.blake2b(key, key=self.secret, digest_size=16).digest()
        return d if d != _EMPTY else b"\x01" + d[1:]

    def lock(self) -> None:
        """Exclusive use of the table until ``unlock`` (callers: ``try``/``finally``; a few microseconds)."""
        self._thread_lock.acquire()
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def unlock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def find(self, digest: bytes) -> tuple[float, ...] | None:
        """The values of ``digest``'s slot, or None (read without the lock: a hint, never a decision)."""
        memory, unpack, size, slots = self.memory, self.slot.unpack_from, self.size, self.slots
        start = int.from_bytes(digest[:8], "little") % slots
        for p in range(PROBES):
            got = unpack(memory, ((start + p) % slots) * size)
            if got[0] == digest:
                return got[1:]
            if got[0] == _EMPTY:
                return None
        return None

    def claim(self, digest: bytes, now: float) -> tuple[int, tuple[float, ...] | None] | None:
        """Under ``lock``: (the offset of ``digest``'s slot, its values), or (the offset of a slot free
        for it, None); None when every slot of its probes holds another key not free yet."""
        memory, unpack, size, slots = self.memory, self.slot.unpack_from, self.size, self.slots
        start = int.from_bytes(digest[:8], "little") % slots
        free = None
        for p in range(PROBES):
            offset = ((start + p) % slots) * size
            got = unpack(memory, offset)
            if got[0] == digest:
                return offset, got[1:]
            if got[0] == _EMPTY:
                return (offset if free is None else free), None
            if free is None and got[1] <= now:
                free = offset
        return None if free is None else (free, None)

    def put(self, offset: int, digest: bytes, *values: float) -> None:
        """Under ``lock``: ``digest``'s slot at ``offset`` holds ``values``."""
        self.slot.pack_into(self.memory, offset, digest, *values)
