"""Per link: is the sync job running, how did its last cycle go, is it quarantined?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.ops.knowledge import quarantine_advice
from ctsync.ops.locate import LinkNotSetUpError, locate_many

__all__ = ["CYCLE_INTERVAL", "LinkStatus", "link_status", "statuses", "summarize"]

#: CTS runs a cycle every 40 minutes; the interval cannot be changed (reference §1.3).
CYCLE_INTERVAL = timedelta(minutes=40)


@dataclass
class LinkStatus:
    link: str
    set_up: bool
    job_id: str | None = None
    schedule: str | None = None
    code: str | None = None
    last_cycle: dict[str, Any] | None = None
    steady_state_first: str | None = None
    steady_state_last: str | None = None
    escrowed: int = 0
    successive_failures: int = 0
    quarantine: dict[str, Any] | None = None
    next_cycle: str | None = None
    synchronized: int | None = None
    #: Security groups the job keeps in the target (``Group to Group``); None: it syncs none.
    synchronized_groups: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """False when the link is quarantined or failing: what `ctsync status` exits 1 on."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "set_up": self.set_up,
            "healthy": self.healthy,
            "job_id": self.job_id,
            "schedule": self.schedule,
            "code": self.code,
            "last_cycle": self.last_cycle,
            "steady_state_first": self.steady_state_first,
            "steady_state_last": self.steady_state_last,
            "escrowed": self.escrowed,
            "successive_failures": self.successive_failures,
            "synchronized_users": self.synchronized,
            "synchronized_groups": self.synchronized_groups,
            "quarantine": self.quarantine,
            "next_cycle": self.next_cycle,
            "problems": self.problems,
        }


def _time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def summarize(link: str, job: dict[str, Any]) -> LinkStatus:
    """A job object (``GET …/jobs/{id}``) read for people and CI."""
    status = job.get("status") or {}
    schedule = (job.get("schedule") or {}).get("state")
    out = LinkStatus(link=link, set_up=True, job_id=job.get("id"), schedule=schedule)
    out.code = status.get("code")
    last = status.get("lastExecution") or None
    began, ended = _time((last or {}).get("timeBegan")), _time((last or {}).get("timeEnded"))
    error = (last or {}).get("error") or {}
    if last and began:
        out.last_cycle = {
            "state": last.get("state"),
            "began": _iso(began),
            "ended": _iso(ended),
            "seconds": (ended - began).total_seconds() if ended else None,
            "imported": last.get("countImported"),
            "exported": last.get("countExported"),
            "escrowed": last.get("countEscrowed"),
            "entitled": last.get("countEntitled"),
            "error": error.get("code") if error.get("code") not in (None, "None") else None,
        }
    out.escrowed = int((last or {}).get("countEscrowed") or 0)
    out.successive_failures = int(status.get("countSuccessiveCompleteFailures") or 0)
    out.steady_state_first = _iso(_time(status.get("steadyStateFirstAchievedTime")))
    out.steady_state_last = _iso(_time(status.get("steadyStateLastAchievedTime")))
    counts = {
        str(c.get("key")): int(c.get("value") or 0)
        for c in status.get("synchronizedEntryCountByType") or []
        if isinstance(c, dict)
    }
    groups = counts.pop("Group to Group", None)
    out.synchronized = sum(counts.values()) if counts else None
    out.synchronized_groups = groups
    quarantine = status.get("quarantine")
    if quarantine:
        advice = quarantine_advice(quarantine.get("reason"))
        q_error = quarantine.get("error") or {}
        out.quarantine = {
            "reason": quarantine.get("reason"),
            "since": quarantine.get("currentBegan") or quarantine.get("seriesBegan"),
            "next_attempt": quarantine.get("nextAttempt"),
            "series_count": quarantine.get("seriesCount"),
            "error": q_error.get("code"),
            "message": q_error.get("message"),
            "meaning": advice.meaning,
            "remedy": advice.fix,
        }
        out.problems.append(
            f"quarantined ({quarantine.get('reason')}): {advice.meaning}; fix: {advice.fix}"
        )
    elif out.last_cycle and out.last_cycle["state"] == "Failed" and out.last_cycle["error"]:
        out.problems.append(f"the last cycle failed: {out.last_cycle['error']}")
    if out.successive_failures and not out.quarantine:
        out.problems.append(f"{out.successive_failures} complete cycle failure(s) in a row")
    if schedule == "Active":
        base = began if began else None
        if quarantine and quarantine.get("nextAttempt"):
            out.next_cycle = quarantine.get("nextAttempt")
        elif base:
            out.next_cycle = _iso(base + CYCLE_INTERVAL)
    return out


async def link_status(session: Session, link: LinkSpec) -> LinkStatus:
    return (await statuses(session, [link]))[0]


async def statuses(session: Session, links: Sequence[LinkSpec]) -> list[LinkStatus]:
    found = await locate_many(session, links)
    out = []
    for link in links:
        where = found[link.key]
        if isinstance(where, LinkNotSetUpError):
            out.append(LinkStatus(link=link.key, set_up=False, problems=[str(where)]))
        else:
            out.append(summarize(link.key, where.job))
    return out
