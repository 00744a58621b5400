"""The lock that serialises syncs of one code graph across processes and machines.

A Redis key ``codegraph:lock:<graph>`` in the FalkorDB server itself, taken with
``SET NX PX`` (a token ``host|pid|uuid``) and refreshed while a sync works. A second sync
waits for it; a crashed holder's lock expires after ``LOCK_TTL_MS``, and one whose holder
is a dead process on this host (or this process after losing its connection) is taken over
at once. Release deletes the key only if it still holds this sync's token.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

from caramba.engine.errors import CarambaError

LOCK_TTL_MS = 120_000  # a crashed sync blocks others for at most this long
LOCK_WAIT_S = 600.0

_DEL_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_HELD: set[str] = set()  # lock tokens held by this process right now


def _stale(token: str) -> bool:
    """A lock is stale when its holder, on this host, is a dead process, or is this process
    but no longer holds it (a sync whose server connection died mid-way)."""
    host, pid, _ = (token.split("|", 2) + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the TTL can tell
    if int(pid) == os.getpid():
        return token not in _HELD
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SyncLock:
    """``codegraph:lock:<graph>`` in the server itself, so syncs from any process serialise."""

    def __init__(self, db: Any, graph: str, wait_s: float) -> None:
        self.r, self.key, self.wait_s = db.connection, f"codegraph:lock:{graph}", wait_s
        self.token = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}"

    def __enter__(self) -> "SyncLock":
        deadline = time.monotonic() + self.wait_s
        while not self.r.set(self.key, self.token, nx=True, px=LOCK_TTL_MS):
            holder = self.r.get(self.key)
            if holder and _stale(holder):
                self.r.eval(_DEL_IF, 1, self.key, holder)
                continue
            if time.monotonic() > deadline:
                raise CarambaError(f"another sync of this graph has held {self.key} for {self.wait_s:.0f} s",
                                   fix=f"wait for it, or if it crashed wait {LOCK_TTL_MS // 1000} s for the lock to expire")
            time.sleep(0.05)
        _HELD.add(self.token)
        return self

    def refresh(self) -> None:
        if self.r.get(self.key) != self.token:
            raise CarambaError(f"lost the sync lock {self.key} (a step took longer than {LOCK_TTL_MS // 1000} s)",
                               fix="re-run the sync")
        self.r.pexpire(self.key, LOCK_TTL_MS)

    def __exit__(self, *exc: object) -> None:
        _HELD.discard(self.token)
        self.r.eval(_DEL_IF, 1, self.key, self.token)
