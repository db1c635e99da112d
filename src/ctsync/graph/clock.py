"""Time for the Graph client: retries, pacing and token expiry all read this clock.

Nothing in ``ctsync.graph`` calls :func:`time.monotonic`, :func:`datetime.now` or
:func:`asyncio.sleep` directly, so tests and benchmarks can run hours of back-off and
throttling in milliseconds with :class:`VirtualClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """What the client needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for budgets, buckets and gates)."""
        ...

    def wall(self) -> datetime:
        """The current time, timezone-aware UTC (for HTTP-date ``Retry-After`` and token expiry)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


class VirtualClock:
    """Simulated time for tests and benchmarks: sleeping costs no real time.

    A sleeper registers its wake-up time and parks. Once the event loop has had a few idle
    rounds (every ready task got to run until it parked again), time jumps to the earliest
    wake-up and that sleeper resumes. Concurrent sleepers therefore overlap exactly as they
    would in real time: two tasks that each sleep 10 s finish at t=10, not t=20.
    """

    def __init__(
        self,
        *,
        start: datetime = _EPOCH,
        idle_rounds: int = 50,
        on_advance: Callable[[float], None] | None = None,
    ) -> None:
        if start.tzinfo is None:
            msg = "VirtualClock needs a timezone-aware start time"
            raise ValueError(msg)
        self._start = start.astimezone(UTC)
        self._now = 0.0
        self._idle_rounds = idle_rounds
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driving: asyncio.AbstractEventLoop | None = None
        #: Called with the seconds time moved, before sleepers wake: lets an emulator's clock
        #: (or any other simulated world) keep step with the client's.
        self.on_advance = on_advance
        #: Every non-zero sleep requested, in order (handy for asserting back-off).
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (sleepers whose time has come wake up)."""
        if seconds < 0:
            msg = "time only moves forward"
            raise ValueError(msg)
        self._move_to(self._now + seconds)
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self.sleeps.append(seconds)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # A sleep always moves time, even when `seconds` is below the float resolution of now.
        deadline = max(self._now + seconds, math.nextafter(self._now, math.inf))
        heapq.heappush(self._waiters, (deadline, next(self._seq), future))
        if self._driving is not loop:
            # A new event loop (say, another asyncio.run) must not wait on a dead one's driver.
            self._waiters = [w for w in self._waiters if w[2].get_loop() is loop]
            heapq.heapify(self._waiters)
            self._driving = loop
            loop.call_soon(self._drive, loop, self._idle_rounds)
        await future

    def _drive(self, loop: asyncio.AbstractEventLoop, rounds_left: int) -> None:
        # Let every runnable task reach its next await before time moves on.
        if rounds_left > 0:
            loop.call_soon(self._drive, loop, rounds_left - 1)
            return
        self._drop_cancelled()
        if not self._waiters:
            self._driving = None
            return
        self._move_to(max(self._now, self._waiters[0][0]))
        self._wake_due()
        loop.call_soon(self._drive, loop, self._idle_rounds)

    def _move_to(self, now: float) -> None:
        step, self._now = now - self._now, now
        if step > 0 and self.on_advance is not None:
            self.on_advance(step)

    def _drop_cancelled(self) -> None:
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)

    def _wake_due(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
