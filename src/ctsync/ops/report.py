"""Everything the other commands know about each link, gathered for one report. Writes nothing.

Per link: what the config asks, the job and its last cycle (``statuses``), the preflight
findings (the full check), the drift (the plan's steps for the link), the provisioning logs of a
time window, and the audit trail's recent writes. Each link gets one *health* — the worst thing
found, from ``quarantined`` down to ``healthy`` — with the sentences that explain it.

Preflight plans once (``wants`` → ``read_live`` → ``plan_changes``, what ``make_plan`` does)
and keeps that plan: the report takes it rather than reading every tenant a second time, and
asks :func:`~ctsync.engine.make_plan` only when preflight could not plan. A part that cannot be
read (logs without ``AuditLog.Read.All``, say) is named in :attr:`Report.unavailable`; the rest
of the report still stands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from ctsync.audit import AuditRecord, AuditTrail
from ctsync.config import DesiredState, LinkSpec, ScopeGroup
from ctsync.engine import Session, make_plan, select_links
from ctsync.engine.live import MTO
from ctsync.engine.model import Plan, Problem, Step
from ctsync.errors import CtsyncError
from ctsync.ops.logs import LogReport, read_logs
from ctsync.ops.preflight import Finding, PreflightReport, TokenRoles, preflight
from ctsync.ops.status import LinkStatus, statuses

__all__ = [
    "ACTIVITY",
    "HEALTHS",
    "AuditWrite",
    "DayActivity",
    "Health",
    "LinkReport",
    "OrganizationReport",
    "Report",
    "TenantInfo",
    "activity_of",
    "asks_of",
    "gather_report",
    "judge",
]

Health = Literal["quarantined", "failing", "not-set-up", "drift", "paused", "warning", "healthy"]
#: Worst first: a link's health is the first of these that holds.
HEALTHS: Final[tuple[Health, ...]] = (
    "quarantined",
    "failing",
    "not-set-up",
    "drift",
    "paused",
    "warning",
    "healthy",
)
#: What a provisioning log entry counts as, per day and per link.
ACTIVITY: Final = ("created", "updated", "skipped", "failed", "other")
#: The audit trail's most recent writes a report lists.
AUDIT_LIMIT: Final = 200
#: Per-day buckets up to this many days; a longer window is counted per week.
MAX_DAILY_BUCKETS: Final = 92

T = TypeVar("T")


@dataclass(frozen=True)
class TenantInfo:
    name: str
    tenant_id: str
    managed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LinkReport:
    """One link: what is asked, what is there, what is wrong, and how it is judged."""

    key: str
    source: str
    target: str
    asks: dict[str, Any]
    status: LinkStatus | None = None
    findings: list[Finding] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    activity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIVITY, 0))
    health: Health = "healthy"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.key,
            "source": self.source,
            "target": self.target,
            "health": self.health,
            "reasons": list(self.reasons),
            "asks": self.asks,
            "status": self.status.to_dict() if self.status is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "drift": [s.to_dict() for s in self.steps],
            "problems": [p.to_dict() for p in self.problems],
            "activity": dict(self.activity),
        }


@dataclass(frozen=True)
class DayActivity:
    """Log entries of one day (or week, for long windows) by what they did."""

    day: str
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, **self.counts}


@dataclass(frozen=True)
class AuditWrite:
    """One write of the audit trail, as a report lists it (the body stays in the trail)."""

    seq: int
    time: str
    tenant: str
    method: str
    path: str
    status: int | None
    error_code: str | None
    link: str | None
    step: str | None
    request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, record: AuditRecord, names: dict[str, str]) -> AuditWrite:
        """A record of the trail, its tenant named as the config names it."""
        stored = record.to_dict()
        kept = {f.name: stored[f.name] for f in fields(cls) if f.name != "tenant"}
        return cls(tenant=names.get(record.actor_tenant, record.actor_tenant), **kept)


@dataclass
class OrganizationReport:
    """The config's multitenant organization: each of its tenants' role and state as the
    owner lists them (``not added`` when the owner does not), tenants of the organization
    the config lacks, and the plan's steps for it (ctsync's, and its read-only admins')."""

    name: str
    owner: str
    #: The MTO's state in the owner (``active``, ``inactive``), None: not read.
    state: str | None
    #: Per config tenant of the organization: tenant, tenant_id, role, state.
    tenants: list[dict[str, Any]] = field(default_factory=list)
    #: Tenants in the organization that the config does not have: name (as listed) and id.
    others: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    handoff: list[Step] = field(default_factory=list)

    @property
    def health(self) -> Health:
        if self.state != "active":
            return "not-set-up"
        if self.steps or self.handoff:
            return "drift"
        if any(t["state"] != "active" for t in self.tenants):
            return "warning"
        return "healthy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "state": self.state,
            "health": self.health,
            "tenants": self.tenants,
            "others": self.others,
            "steps": [s.to_dict() for s in self.steps],
            "handoff": [s.to_dict() for s in self.handoff],
        }


@dataclass
class Report:
    """The whole report: plain data for the HTML, Markdown and JSON renderers."""

    generated: str
    config_path: str
    config_hash: str
    since: str
    tenants: list[TenantInfo]
    links: list[LinkReport]
    #: Plan steps that serve no link (a tenant's default policy).
    tenant_steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    days: list[DayActivity] = field(default_factory=list)
    #: The window's ``LogReport.summary()`` rows: action, status, reason, count, meaning, fix.
    log_summary: list[dict[str, Any]] = field(default_factory=list)
    log_entries: int = 0
    audit_path: str | None = None
    #: False: no trail yet (nothing applied with this config), which is not an error.
    audit_present: bool = False
    audit_writes: list[AuditWrite] = field(default_factory=list)
    #: Parts that could not be read, and why.
    unavailable: dict[str, str] = field(default_factory=dict)
    organization: OrganizationReport | None = None

    def health_counts(self) -> dict[str, int]:
        counts = Counter(link.health for link in self.links)
        return {health: counts.get(health, 0) for health in HEALTHS}

    def finding_counts(self) -> dict[str, int]:
        """Preflight's findings by severity, over every link of the report."""
        counts = Counter(f.severity for link in self.links for f in link.findings)
        return {severity: counts.get(severity, 0) for severity in ("error", "warning", "info")}

    def top_reasons(self, limit: int = 10) -> list[dict[str, Any]]:
        """The reasons entries failed or were skipped, most frequent first, with their fix."""
        merged: dict[str, dict[str, Any]] = {}
        for row in self.log_summary:
            if row["status"] not in ("failure", "skipped") or not row["reason"]:
                continue
            into = merged.setdefault(
                row["reason"],
                {
                    "reason": row["reason"],
                    "count": 0,
                    "statuses": [],
                    "meaning": row["meaning"],
                    "fix": row["fix"],
                },
            )
            into["count"] += row["count"]
            if row["status"] not in into["statuses"]:
                into["statuses"].append(row["status"])
        return sorted(merged.values(), key=lambda r: (-r["count"], r["reason"]))[:limit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "config_path": self.config_path,
            "config_hash": self.config_hash,
            "since": self.since,
            "health": self.health_counts(),
            "tenants": [t.to_dict() for t in self.tenants],
            "links": [link.to_dict() for link in self.links],
            "tenant_wide_drift": [s.to_dict() for s in self.tenant_steps],
            "notes": list(self.notes),
            "preflight": self.finding_counts(),
            "logs": {
                "entries": self.log_entries,
                "days": [d.to_dict() for d in self.days],
                "summary": self.log_summary,
                "top_reasons": self.top_reasons(),
            },
            "audit": {
                "path": self.audit_path,
                "present": self.audit_present,
                "writes": [w.to_dict() for w in self.audit_writes],
            },
            "unavailable": dict(self.unavailable),
            "organization": self.organization.to_dict() if self.organization else None,
        }


def asks_of(link: LinkSpec) -> dict[str, Any]:
    """What the config asks of a link, in words a reader of the config recognises."""
    sync = link.sync
    scope: list[str] = []
    if sync.rollout is not None:
        scope.append(f"staged rollout of {sync.rollout.stages} stage(s)")
    if sync.all_members:
        scope.append("all members")
    scope += [f"{p.kind} {p.ref}" for p in sync.assigned]
    scope += [f"filter {_clauses(g)}" for g in sync.scope]
    trust = link.access.inbound_trust
    trusted = [] if trust is None else [k for k, v in vars(trust).items() if v]
    return {
        "template": link.template,
        "user_type": sync.user_type,
        "scope": scope,
        "actions": sorted(sync.actions),
        "start": sync.start,
        "automatic_redemption": link.access.automatic_redemption,
        "inbound_trust": trusted,
        "deletion_threshold": sync.deletion_threshold,
        "adopt": link.adopt,
        "groups": (
            "security groups in scope"
            + "".join(f" · filter {_clauses(g)}" for g in sync.group_scope)
            if sync.groups
            else None
        ),
    }


def _clauses(group: ScopeGroup) -> str:
    return " AND ".join(
        f"{c.attribute} {c.operator} {', '.join(c.values)}".strip() for c in group.clauses
    )


def activity_of(action: str, status: str) -> str:
    """Which :data:`ACTIVITY` bucket a log entry falls in."""
    if status == "failure":
        return "failed"
    if status == "skipped":
        return "skipped"
    if action == "create":
        return "created"
    if action == "update":
        return "updated"
    return "other"


def judge(link: LinkReport) -> None:
    """Set ``link.health`` (the worst that holds) and ``link.reasons`` (everything that does)."""
    found: list[tuple[Health, str]] = []
    status = link.status
    if status is not None and status.quarantine:
        q = status.quarantine
        found.append(("quarantined", f"quarantined ({q.get('reason')}): {q.get('meaning')}"))
    if status is not None and not status.set_up:
        found.append(("not-set-up", "no sync job yet: `ctsync apply` creates it"))
    elif status is not None and not status.quarantine:
        found += [("failing", problem) for problem in status.problems]
    errors = [f for f in link.findings if f.severity == "error"]
    if errors:
        found.append(("failing", f"{len(errors)} preflight error(s): {errors[0].message}"))
    found += [("failing", p.message) for p in link.problems if p.severity == "error"]
    if link.steps:
        found.append(("drift", f"{len(link.steps)} planned change(s) (`ctsync apply` makes them)"))
    if status is not None and status.set_up and status.schedule not in (None, "Active"):
        found.append(("paused", f"the job's schedule is {status.schedule}"))
    warnings = [f for f in link.findings if f.severity == "warning"]
    if warnings:
        found.append(("warning", f"{len(warnings)} preflight warning(s): {warnings[0].message}"))
    found += [("warning", p.message) for p in link.problems if p.severity != "error"]
    if status is not None and status.escrowed:
        found.append(("warning", f"{status.escrowed} escrowed change(s) in the last cycle"))
    if link.activity.get("failed"):
        found.append(("warning", f"{link.activity['failed']} failed log entries in the window"))
    rank = {health: i for i, health in enumerate(HEALTHS)}
    link.health = min((h for h, _ in found), key=rank.__getitem__, default="healthy")
    link.reasons = [reason for _, reason in found]


def buckets(
    entries: Sequence[tuple[str, str, str]], since: datetime, now: datetime
) -> list[DayActivity]:
    """``(time, action, status)`` entries counted per day of the window (per week, starting on
    Monday, when the window is longer than :data:`MAX_DAILY_BUCKETS` days); every bucket of the
    window is there, an empty one too."""
    first, last = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    weekly = (last - first).days + 1 > MAX_DAILY_BUCKETS

    def key(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    step = timedelta(days=7 if weekly else 1)
    days: dict[date, dict[str, int]] = {}
    cursor = key(first)
    while cursor <= last:
        days[cursor] = dict.fromkeys(ACTIVITY, 0)
        cursor += step
    for time, action, status in entries:
        day = key(datetime.fromisoformat(time.replace("Z", "+00:00")).astimezone(UTC).date())
        days.setdefault(day, dict.fromkeys(ACTIVITY, 0))[activity_of(action, status)] += 1
    return [DayActivity(day.isoformat(), counts) for day, counts in sorted(days.items())]


async def gather_report(
    session: Session,
    links: Sequence[str] | None = None,
    *,
    since: datetime,
    audit_path: Path | None,
    roles: TokenRoles | None = None,
    now: datetime | None = None,
) -> Report:
    """Read everything the report shows for ``links`` (``SOURCE:TARGET``; default all).

    ``roles`` should be the session's ``on_token`` (preflight's permission check needs it);
    ``audit_path`` is the trail to list writes from — a missing file means no writes yet.
    """
    desired = session.desired
    chosen = select_links(desired, links)
    moment = now or datetime.now(UTC)
    unavailable: dict[str, str] = {}

    async def part(name: str, work: Awaitable[T]) -> T | None:
        try:
            return await work
        except CtsyncError as exc:
            unavailable[name] = str(exc)
            return None

    checked: PreflightReport | None = await part(
        "preflight", preflight(session, links or None, roles=roles)
    )
    plan = checked.plan if checked is not None else None
    if plan is None:
        plan = await part("plan", make_plan(desired, session, links=tuple(links or ())))
    found: list[LinkStatus] | None = await part("status", statuses(session, chosen))
    status_of = {s.link: s for s in found or []}
    set_up = [link for link in chosen if link.key in status_of and status_of[link.key].set_up]
    logs: LogReport | None = LogReport()
    if set_up:
        logs = await part("logs", read_logs(session, set_up, since=since))

    report = Report(
        generated=_iso(moment),
        config_path=str(desired.path),
        config_hash=desired.config_hash,
        since=_iso(since),
        tenants=[TenantInfo(t.name, t.tenant_id, t.managed) for t in _tenants_of(desired, chosen)],
        links=[
            LinkReport(
                key=link.key,
                source=link.source,
                target=link.target,
                asks=asks_of(link),
                status=status_of.get(link.key),
            )
            for link in chosen
        ],
        unavailable=unavailable,
    )
    if desired.organization is not None:
        report.organization = await part("organization", _organization(session))
    _attach(report, checked, plan, logs, since=since, now=moment)
    _read_trail(report, desired, audit_path, since=since)
    return report


async def _organization(session: Session) -> OrganizationReport:
    """The organization as its owner lists it (read-only: two GETs in the owner)."""
    org = session.desired.organization
    assert org is not None
    client = session.client(org.owner)
    mto = (await client.get(MTO)).json_object()
    listed: dict[str, dict[str, Any]] = {}
    if mto.get("state") == "active":
        listed = {
            str(m.get("tenantId")).lower(): m for m in await client.list_all(f"{MTO}/tenants")
        }
    out = OrganizationReport(name=org.name, owner=org.owner, state=mto.get("state"))
    mine = set()
    for name in org.tenants:
        spec = session.desired.tenants[name]
        mine.add(spec.tenant_id)
        member = listed.get(spec.tenant_id) or {}
        out.tenants.append(
            {
                "tenant": name,
                "tenant_id": spec.tenant_id,
                "role": member.get("role") or ("owner" if name == org.owner else "member"),
                "state": member.get("state") or "not added",
            }
        )
    out.others = [
        {"name": m.get("displayName") or tenant_id, "tenant_id": tenant_id}
        for tenant_id, m in listed.items()
        if tenant_id not in mine and m.get("state") in ("active", "pending")
    ]
    return out


def _tenants_of(desired: DesiredState, links: Sequence[LinkSpec]) -> list[Any]:
    named = {name for link in links for name in (link.source, link.target)}
    return [t for name, t in desired.tenants.items() if name in named]


def _attach(
    report: Report,
    checked: PreflightReport | None,
    plan: Plan | None,
    logs: LogReport | None,
    *,
    since: datetime,
    now: datetime,
) -> None:
    by_key = {link.key: link for link in report.links}
    if checked is not None:
        for finding in checked.findings:
            if finding.link in by_key:
                by_key[finding.link].findings.append(finding)
    if plan is not None:
        report.notes = list(plan.notes)
        org = report.organization
        if org is not None:
            org.handoff = list(plan.handoff)
        for step in plan.steps:
            mine = [by_key[key] for key in step.links if key in by_key]
            if org is not None and step.resource.startswith("multiTenantOrganization"):
                org.steps.append(step)
            elif not step.links:
                report.tenant_steps.append(step)
            for link in mine:
                link.steps.append(step)
        for problem in plan.problems:
            if problem.link in by_key:
                by_key[problem.link].problems.append(problem)
    if logs is not None:
        report.log_entries = len(logs.entries)
        report.log_summary = logs.summary()
        for entry in logs.entries:
            if entry.link in by_key:
                by_key[entry.link].activity[activity_of(entry.action, entry.status)] += 1
        report.days = buckets([(e.time, e.action, e.status) for e in logs.entries], since, now)
    else:
        report.days = buckets([], since, now)
    for link in report.links:
        judge(link)


def _read_trail(
    report: Report, desired: DesiredState, path: Path | None, *, since: datetime
) -> None:
    report.audit_path = str(path) if path is not None else None
    if path is None or not path.exists():
        return
    names = {t.tenant_id: t.name for t in desired.tenants.values()}
    try:
        with AuditTrail(path) as trail:
            records = trail.records(since=since, limit=AUDIT_LIMIT, writes=True)
    except CtsyncError as exc:
        report.unavailable["audit"] = str(exc)
        return
    report.audit_present = True
    report.audit_writes = [AuditWrite.of(r, names) for r in reversed(records)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
