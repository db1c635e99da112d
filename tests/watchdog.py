"""A watchdog for tests that must not hang: a hang becomes a failure, not a stuck suite.

``SIGALRM`` interrupts the main thread even inside a busy loop that never yields to the event
loop (the way the pacer once spun), which ``asyncio.wait_for`` cannot do.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class HangError(AssertionError):
    """The code under test did not finish within its watchdog's limit."""


@contextmanager
def watchdog(seconds: float, what: str = "the code under test") -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        msg = f"{what} did not finish within {seconds} s (hang)"
        raise HangError(msg)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
