"""Audit what the provisioning service did: its logs per link, filtered on the server.

``GET /auditLogs/provisioning`` sits in Graph's *reports* quota (5 requests per 10 s per app and
tenant, 122 per 10 s per app), so ctsync narrows on the server first (job id, time window,
status, action), reads 500 entries a page, follows ``@odata.nextLink`` and lets the shared pacer
keep each tenant under that quota. ``incremental`` keeps a watermark per link beside the config
so a daily audit reads only what is new.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.graph.apps import odata_string
from ctsync.ops.knowledge import advice_for, refine_reason
from ctsync.ops.locate import LinkJob, locate_all

__all__ = [
    "LogEntry",
    "LogReport",
    "Watermarks",
    "read_logs",
]

PAGE = 500
STATUSES = ("success", "failure", "skipped", "warning")
ACTIONS = ("create", "update", "delete", "disable", "stagedDelete", "other")


@dataclass(frozen=True)
class LogEntry:
    """One provisioning log row, flattened for people and spreadsheets."""

    link: str
    id: str
    time: str
    action: str
    status: str
    reason: str | None
    source_user: str | None
    source_id: str | None
    target_id: str | None
    cycle_id: str | None
    change_id: str | None
    message: str | None
    #: ``User`` or ``Group`` (``source_user`` then holds the group's name).
    object_type: str = "User"

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "id": self.id,
            "time": self.time,
            "action": self.action,
            "status": self.status,
            "reason": self.reason,
            "source_user": self.source_user,
            "source_id": self.source_id,
            "target_id": self.target_id,
            "cycle_id": self.cycle_id,
            "change_id": self.change_id,
            "message": self.message,
            "object_type": self.object_type,
        }


@dataclass
class LogReport:
    entries: list[LogEntry] = field(default_factory=list)
    #: Requests spent per link (each page is one request of the reports quota).
    pages: dict[str, int] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Counts by action, status and reason, each reason with its meaning and fix."""
        counts = Counter((e.action, e.status, e.reason) for e in self.entries)
        rows = []
        for (action, status, reason), n in sorted(counts.items(), key=lambda kv: -kv[1]):
            advice = advice_for(reason)
            rows.append(
                {
                    "action": action,
                    "status": status,
                    "reason": reason,
                    "count": n,
                    "meaning": advice.meaning if advice else None,
                    "fix": advice.fix if advice else None,
                }
            )
        return rows


class Watermarks:
    """Where each link's last incremental audit stopped, in ``.ctsync/logs-watermark.json``.

    Log times have whole seconds and the filter only knows ``gt``, so the next read starts one
    second before the mark and drops the entries it already saw in that second (their ids are
    kept with the mark): an entry written in the same second, after the read, is not lost.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except ValueError:
                loaded = {}
            if isinstance(loaded, dict):
                for link, stored in loaded.items():
                    # The first format kept a bare time.
                    mark = {"time": stored, "seen": []} if isinstance(stored, str) else stored
                    if isinstance(mark, dict) and isinstance(mark.get("time"), str):
                        self.marks[str(link)] = {
                            "time": mark["time"],
                            "seen": [str(i) for i in mark.get("seen") or []],
                        }

    def get(self, link: str) -> str | None:
        mark = self.marks.get(link)
        return str(mark["time"]) if mark else None

    def seen(self, link: str) -> set[str]:
        mark = self.marks.get(link)
        return set(mark["seen"]) if mark else set()

    def advance(self, link: str, entries: list[LogEntry]) -> None:
        if not entries:
            return
        newest = max(entries, key=lambda e: _moment(e.time))
        at = _moment(newest.time)
        current = self.marks.get(link)
        if current and _moment(current["time"]) > at:
            return
        same_second = at.replace(microsecond=0)
        seen = {e.id for e in entries if _moment(e.time).replace(microsecond=0) == same_second}
        if current and _moment(current["time"]).replace(microsecond=0) == same_second:
            seen |= set(current["seen"])
        self.marks[link] = {"time": newest.time, "seen": sorted(seen)}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.marks, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _reason(row: dict[str, Any]) -> str | None:
    info = (row.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
    code = info.get("errorCode")
    if code:
        return refine_reason(str(code), info.get("reason"))
    for step in row.get("provisioningSteps") or []:
        details = step.get("details") or {}
        if details.get("SkipReason"):
            return str(details["SkipReason"])
        if (step.get("provisioningStepType") or "").lower() == "scoping" and (
            step.get("status") or ""
        ).lower() in {"skipped", "failure"}:
            text = json.dumps(details)
            if "Filter external users" in text:
                return "ExternalUser"
            if '"Assigned to the application": "False"' in text:
                return "NotEffectivelyEntitled"
            return "OutOfScope"
    return None


def _message(row: dict[str, Any]) -> str | None:
    info = (row.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
    if info.get("reason"):
        return str(info["reason"])
    steps = row.get("provisioningSteps") or []
    return str(steps[-1].get("description")) if steps else None


def entry(link: str, row: dict[str, Any]) -> LogEntry:
    source = row.get("sourceIdentity") or {}
    details = source.get("details") or {}
    return LogEntry(
        link=link,
        id=str(row.get("id")),
        time=str(row.get("activityDateTime")),
        action=str(row.get("provisioningAction") or "other"),
        status=str((row.get("provisioningStatusInfo") or {}).get("status") or "unknown"),
        reason=_reason(row),
        source_user=details.get("UserPrincipalName") or source.get("displayName"),
        source_id=source.get("id"),
        target_id=(row.get("targetIdentity") or {}).get("id") or None,
        cycle_id=row.get("cycleId"),
        change_id=row.get("changeId"),
        message=_message(row),
        object_type=_object_type(source),
    )


def _object_type(identity: dict[str, Any]) -> str:
    """``Group`` for a group's record (``identityType``, else ``details.odatatype``)."""
    kind = identity.get("identityType") or (identity.get("details") or {}).get("odatatype")
    return "Group" if str(kind).lower() == "group" else "User"


def _filter(
    where: LinkJob, *, since: datetime | None, status: str | None, action: str | None
) -> str:
    clauses = [f"jobId eq {odata_string(where.job_id)}"]
    if since is not None:
        clauses.append(f"activityDateTime gt {_stamp(since)}")
    if status:
        clauses.append(f"provisioningStatusInfo/status eq {odata_string(status)}")
    if action:
        clauses.append(f"provisioningAction eq {odata_string(action)}")
    return " and ".join(clauses)


async def read_logs(
    session: Session,
    links: Sequence[LinkSpec],
    *,
    since: datetime | None = None,
    status: str | None = None,
    action: str | None = None,
    watermarks: Watermarks | None = None,
    page_size: int = PAGE,
) -> LogReport:
    """Every log row of ``links`` matching the filters; with ``watermarks``, only rows newer
    than the last read (and the watermarks move forward)."""
    report = LogReport()
    located = await locate_all(session, links)

    async def one(where: LinkJob) -> list[LogEntry]:
        link = where.link
        start: datetime | None = since
        mark = watermarks.get(link.key) if watermarks is not None else None
        already: set[str] = set()
        if mark and watermarks is not None:
            # One second back: the mark's own second may have gained entries since.
            resume = _moment(mark).replace(microsecond=0) - timedelta(seconds=1)
            start = resume if since is None or resume > since else since
            already = watermarks.seen(link.key)
        client = session.client(link.source)
        params = {
            "$filter": _filter(where, since=start, status=status, action=action),
            "$top": page_size,
            "$orderby": "activityDateTime desc",
        }
        rows: list[LogEntry] = []
        pages = 0
        async for page in client.iter_pages("/auditLogs/provisioning", params=params):
            pages += 1
            rows.extend(entry(link.key, r) for r in page)
        report.pages[link.key] = pages
        if mark:
            cutoff = _moment(mark)
            rows = [r for r in rows if _moment(r.time) > cutoff or r.id not in already]
            rows = [r for r in rows if not (_moment(r.time) < cutoff.replace(microsecond=0))]
        if watermarks is not None:
            watermarks.advance(link.key, rows)
        return rows

    for rows in await asyncio.gather(*(one(where) for where in located)):
        report.entries.extend(rows)
    report.entries.sort(key=lambda e: e.time, reverse=True)
    return report


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
