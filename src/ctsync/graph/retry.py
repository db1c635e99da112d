"""When to retry a Graph call, and how long to wait first.

Rules (graph-limits §1.5, graph-cts-api §7):

- 429, 503 and 504 honour ``Retry-After`` (seconds or an HTTP-date); without it, back off
  exponentially. 500 and 502 back off exponentially.
- A POST creates things, so it is retried only on 429 (Graph refused it before doing anything),
  never on 5xx and never after a read timeout: it may have happened.
- A connection that was never made (connect error or timeout, pool timeout) is retried for any
  method: nothing reached Graph.
- Everything is bounded by ``max_attempts`` and ``max_elapsed``. When a ``Retry-After`` would
  end past the time budget, the client stops at once and raises with ``retry_after`` set, rather
  than sleeping only to fail.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]

_RETRY_AFTER_STATUSES = frozenset({429, 503, 504})
_BACKOFF_STATUSES = frozenset({500, 502})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and back-off for retries. Pass ``seed`` (or ``rng``) for reproducible jitter."""

    max_attempts: int = 8
    """Attempts per logical request, the first one included."""
    max_elapsed: float = 600.0
    """Seconds from the first attempt after which no new attempt starts."""
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    jitter: float = 0.2
    """Fraction of a back-off delay drawn at random, downward only (the cap is a hard cap)."""
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = "RetryPolicy.max_attempts must be at least 1"
            raise ValueError(msg)
        if not 0.0 <= self.jitter < 1.0:
            msg = "RetryPolicy.jitter is a fraction in [0, 1)"
            raise ValueError(msg)
        if self.seed is not None:
            self.rng.seed(self.seed)

    def backoff(self, attempt: int) -> float:
        """Delay before the retry that follows failed attempt number ``attempt`` (1-based).

        ``min(cap, base * 2**(attempt-1))``, then shortened by up to ``jitter`` of itself so a
        fleet of clients does not retry in lock-step.
        """
        nominal = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return nominal * (1.0 - self.jitter * self.rng.random())

    def retryable_status(self, method: str, status: int) -> bool:
        """Whether an HTTP answer with ``status`` to ``method`` may be tried again."""
        if status == 429:
            return True
        if method.upper() == "POST":
            return False
        return status in _RETRY_AFTER_STATUSES or status in _BACKOFF_STATUSES

    def honours_retry_after(self, status: int) -> bool:
        """Whether Graph's ``Retry-After`` decides the wait for this status."""
        return status in _RETRY_AFTER_STATUSES

    def retryable_failure(self, method: str, *, sent: bool) -> bool:
        """Whether a request that got no HTTP answer may be tried again."""
        return not sent or method.upper() != "POST"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date, RFC 7231).

    Returns ``None`` when the header is absent or unreadable; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
