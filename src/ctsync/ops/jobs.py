"""Start, pause and restart the synchronization jobs of links."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ctsync.audit import audit_step
from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.errors import ConfigError
from ctsync.graph.sync import SynchronizationApi
from ctsync.ops.locate import locate_all

__all__ = ["RESETS", "JobChange", "control_jobs", "reset_scope"]

#: ``--reset`` words → ``synchronizationJobRestartScope`` flags. ``full`` resets everything
#: *except* ``ConnectorDataStore``: clearing the provisioning cache makes the service forget
#: which target user matches which source user, and ctsync never asks for that.
RESETS = {
    "escrows": ("Escrows",),
    "watermark": ("Watermark",),
    "quarantine": ("QuarantineState",),
    "full": ("Watermark", "Escrows", "QuarantineState"),
}

Action = Literal["start", "pause", "restart"]


def reset_scope(words: Sequence[str]) -> str:
    """``["escrows", "quarantine"]`` → ``"Escrows, QuarantineState"``."""
    flags: list[str] = []
    for word in words:
        key = word.strip().lower()
        if key not in RESETS:
            msg = f"--reset takes {', '.join(RESETS)} (comma-separated), not {word!r}"
            raise ConfigError(msg)
        flags.extend(f for f in RESETS[key] if f not in flags)
    order = ["Watermark", "Escrows", "QuarantineState"]
    return ", ".join(sorted(flags, key=order.index)) or ", ".join(order)


@dataclass
class JobChange:
    link: str
    action: str
    job_id: str
    before: dict[str, Any]
    after: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "action": self.action,
            "job_id": self.job_id,
            "before": self.before,
            "after": self.after,
        }


def _state(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "schedule": (job.get("schedule") or {}).get("state"),
        "status": (job.get("status") or {}).get("code"),
    }


async def control_jobs(
    session: Session,
    links: Sequence[LinkSpec],
    action: Action,
    *,
    reset: Sequence[str] = (),
) -> list[JobChange]:
    """Apply ``action`` to every link's job; ``reset`` (restart only) names what to clear."""
    scope = reset_scope(reset) if action == "restart" else None

    located = {where.key: where for where in await locate_all(session, links)}

    async def one(link: LinkSpec) -> JobChange:
        where = located[link.key]
        sync = SynchronizationApi(session.client(link.source))
        with audit_step(link=link.key, step=f"{link.key}/job/{action}"):
            if action == "start":
                await sync.start(where.sp_id, where.job_id)
            elif action == "pause":
                await sync.pause(where.sp_id, where.job_id)
            else:
                assert scope is not None
                await sync.restart(where.sp_id, where.job_id, reset_scope=scope)
        after = await sync.get_job(where.sp_id, where.job_id)
        label = f"restart ({scope})" if scope else action
        return JobChange(link.key, label, where.job_id, _state(where.job), _state(after))

    return list(await asyncio.gather(*(one(link) for link in links)))
