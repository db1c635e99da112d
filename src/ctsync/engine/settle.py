"""Read your own writes across runs: a plan made right after an apply waits for it to show.

Entra replicates asynchronously, so for a while after an apply a read can miss what it wrote
and a plan would offer to make those changes again (harmless, since every step is idempotent,
but a CI job that runs ``plan --detailed-exitcode`` after ``apply`` would see changes that are
already made). The executor notes what the last apply completed (step fingerprints and time,
in the journal); :func:`read_settled` reads again, backing off, while the plan would repeat one
of those exact changes and the replication window since that apply is still open.
"""

from __future__ import annotations

from datetime import datetime

from ctsync.config import DesiredState
from ctsync.engine.desired import Wants
from ctsync.engine.live import LiveState, read_live
from ctsync.engine.plan import plan_changes
from ctsync.engine.session import Session

__all__ = ["read_settled"]

#: The longest single wait between two reads (seconds).
MAX_BACKOFF = 8.0
#: The longest a plan waits for the last apply's writes, whatever ``replication_wait`` says:
#: Entra shows most writes within seconds, and a change that never shows (a value Graph
#: stores differently from how it was sent) must not hold every plan for minutes.
SETTLE_CAP = 30.0


def _parse(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None


async def read_settled(
    session: Session,
    desired: DesiredState,
    wanted: Wants,
    *,
    stages: dict[str, int] | None = None,
) -> LiveState:
    """:func:`read_live`, read again while it misses what the last apply wrote.

    A read that began after the window closed (``replication_wait`` since that apply ended, at
    most :data:`SETTLE_CAP`) is trusted as it is: whatever it still lacks is really missing.
    The window is judged by when a read *began*, since a slow read (throttled for seconds)
    still returns what it saw at its start.
    """
    recent = session.journal.last_applied() if session.journal is not None else None
    applied = _parse(recent[1]) if recent is not None else None
    wait = 1.0
    while True:
        began = session.clock.wall()
        live = await read_live(session, wanted)
        if recent is None or applied is None:
            return live
        probe = plan_changes(desired, live, wanted, stages=stages)
        if not any(step.fingerprint() in recent[0] for step in probe.steps):
            return live
        window = min(session.replication_wait, SETTLE_CAP)
        if (began - applied).total_seconds() >= window:
            return live  # read after the window closed: what still shows is real
        now_left = window - (session.clock.wall() - applied).total_seconds()
        await session.clock.sleep(max(0.0, min(wait, now_left)))
        wait = min(wait * 2, MAX_BACKOFF)
