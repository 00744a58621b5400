"""Graceful stop: SIGTERM/SIGINT ask the loop to stop after the current step.

Inside ``with StopSignals() as stop:`` the first SIGTERM or SIGINT sets ``stop()`` to
true (the trainer checkpoints and the run ends ``cancelled``); a second one raises
``KeyboardInterrupt`` for an immediate stop. Handlers are installed only in the main
thread (Python's rule) and restored on exit.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class StopSignals:
    def __init__(self) -> None:
        self.requested: int | None = None
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
