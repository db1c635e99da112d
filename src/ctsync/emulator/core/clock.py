"""Time for the emulator: every lifecycle advances by this clock, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["DEFAULT_EPOCH", "Clock", "FrozenClock", "OffsetClock"]

#: Where a frozen clock starts unless told otherwise: a fixed instant makes ids, tokens and
#: log timestamps reproducible across runs.
DEFAULT_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current emulator time, timezone-aware UTC."""
        ...

    def advance(self, seconds: float) -> None:
        """Move emulator time forward."""
        ...


class FrozenClock:
    """Stands still until advanced: the clock for tests and deterministic runs."""

    def __init__(self, start: datetime = DEFAULT_EPOCH) -> None:
        if start.tzinfo is None:
            msg = "FrozenClock needs a timezone-aware start time"
            raise ValueError(msg)
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            msg = "the emulator clock only moves forward"
            raise ValueError(msg)
        self._now += timedelta(seconds=seconds)


class OffsetClock:
    """Real time plus whatever has been advanced: the clock of a served emulator."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            msg = "the emulator clock only moves forward"
            raise ValueError(msg)
        self._offset += timedelta(seconds=seconds)
