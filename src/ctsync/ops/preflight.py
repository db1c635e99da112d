"""Preflight: will cross-tenant sync work for each link once ``apply`` has run? Writes nothing.

Findings are judged on the state the plan will produce: in a managed tenant the values the plan
writes, in a tenant the config only reads (``managed: false``) its live values. Each finding has
a severity (``error`` blocks ``apply``; ``warning``; ``info``), a stable code (see
:data:`FINDING_CODES`), the link and tenant it concerns, the reason and the fix.

What is read, per link (reads a tenant shares between links are made once; the tenant pair's
reads go out beside the live read, in its round):

- the tenant pair (``_preflight_pair``): the plan (``wants`` → ``read_live`` →
  ``plan_changes``), both tenants' default cross-tenant access settings, the target's
  ``authorizationPolicy``;
- Conditional Access, licences and quota (``_preflight_access``): the target's policies, the
  organizations' ``assignedPlans``;
- the users in scope (``_preflight_users``): assigned groups' direct members, their details in
  ``id in (…)`` filters sent through ``$batch``, the registration report filtered server-side
  (never one call per user), and the phone methods of SMS sign-in candidates only;
- permissions (``_preflight_permissions``): the roles of each tenant's access token, seen
  through :class:`TokenRoles` (the session's ``on_token``), against what the planned steps and
  preflight's own reads need.

The only write is :func:`disable_sms_sign_in`, which a caller runs after approval, inside the
audit trail.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ctsync.audit import audit_step
from ctsync.config import DesiredState, LinkSpec
from ctsync.engine import Session, select_links
from ctsync.engine.desired import Wants, wants
from ctsync.engine.live import LiveLink, LiveState, LiveTenant
from ctsync.engine.model import Plan
from ctsync.engine.plan import plan_changes
from ctsync.engine.settle import read_settled
from ctsync.errors import AuthenticationError, ConfigError, GraphError
from ctsync.graph import BatchRequest

from ._preflight_access import conditional_access_checks, licence_checks, quota_checks
from ._preflight_base import (
    FINDING_CODES,
    MOBILE_PHONE_METHOD,
    RANK,
    SEVERITIES,
    Finding,
    LinkCheck,
    Reads,
    Severity,
)
from ._preflight_pair import pair_checks, pair_reads
from ._preflight_permissions import Grant, TokenRoles, permission_checks
from ._preflight_users import user_checks

__all__ = [
    "FINDING_CODES",
    "SEVERITIES",
    "Finding",
    "Grant",
    "PreflightReport",
    "Severity",
    "SmsSignInFix",
    "TokenRoles",
    "disable_sms_sign_in",
    "preflight",
]


@dataclass
class PreflightReport:
    """Every finding of one preflight run, errors first within each link."""

    links: list[str]
    findings: list[Finding] = field(default_factory=list)
    blocking_only: bool = False
    """True when only the checks that can block ``apply`` ran (what ``apply`` does)."""
    requests: int = 0
    plan: Plan | None = field(default=None, repr=False)
    """The plan the findings were judged against (None when live state was unreadable)."""

    def of(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self.of("error")

    @property
    def ok(self) -> bool:
        """No error: ``apply`` may run (warnings alone do not block)."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in SEVERITIES}

    def sms_sign_in_users(self) -> list[Finding]:
        """The ``user.sms-sign-in`` findings, one per user (the first link that has it)."""
        seen: set[tuple[str, str]] = set()
        out: list[Finding] = []
        for finding in self.findings:
            if finding.code != "user.sms-sign-in":
                continue
            key = (finding.tenant, str(finding.data.get("user_id")))
            if key not in seen:
                seen.add(key)
                out.append(finding)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blocking_only": self.blocking_only,
            "links": list(self.links),
            "counts": self.counts(),
            "requests": self.requests,
            "findings": [f.to_dict() for f in self.findings],
        }


async def preflight(
    session: Session,
    links: Sequence[str] | None = None,
    *,
    roles: TokenRoles | None = None,
    blocking_only: bool = False,
) -> PreflightReport:
    """Check the chosen links (``SOURCE:TARGET``; default all) and return every finding.

    ``roles`` must be the session's ``on_token`` for the permission check to run (otherwise it
    reports ``permission.unknown``). ``blocking_only`` runs only the checks that can find an
    error — the tenant pair and permissions — which is what ``apply`` runs first.
    """
    desired = session.desired
    chosen = select_links(desired, links)
    # As make_plan: the organization comes with the whole config, not with --link.
    wanted = wants(desired, links=chosen, organization=not links)
    before = session.requests
    report = PreflightReport(links=[link.key for link in chosen], blocking_only=blocking_only)
    reads = Reads(session)
    try:
        per_link = await _read_and_check(
            session,
            reads,
            report,
            links=(chosen, tuple(links or ())),
            wanted=wanted,
            roles=roles,
            blocking_only=blocking_only,
        )
    finally:
        # Every read begun ends here, a prefetched one no check took included.
        await reads.drain()
    for found in per_link:
        report.findings.extend(found)
    order = {key: i for i, key in enumerate(report.links)}
    report.findings.sort(
        key=lambda f: (order.get(f.link, 0), RANK[f.severity], f.code, f.subject or "")
    )
    report.requests = session.requests - before
    return report


async def _read_and_check(
    session: Session,
    reads: Reads,
    report: PreflightReport,
    *,
    links: tuple[Sequence[LinkSpec], tuple[str, ...]],
    wanted: Wants,
    roles: TokenRoles | None,
    blocking_only: bool,
) -> list[list[Finding]]:
    """The live read (the tenant pair's reads sent beside it) and each link's checks
    (``links``: the chosen links, and the keys asked for)."""
    desired = session.desired
    chosen, asked = links
    for link in chosen:
        # One round for everything the tenant pair needs: these reads do not wait for the plan.
        pair_reads(reads, desired.tenants[link.source], desired.tenants[link.target])
    try:
        live: LiveState | None = await read_settled(session, desired, wanted)
    except (GraphError, ConfigError, AuthenticationError) as exc:
        live = None
        report.findings.extend(_unreadable(desired, chosen, exc))
    judged = live or _nothing_live(wanted)
    plan = plan_changes(desired, judged, wanted, links=asked, ledger=session.ledger)
    report.plan = plan if live is not None else None
    report.findings.extend(
        Finding(
            severity="error",
            code=f"coexist.{problem.code}",
            link=problem.link,
            tenant=problem.tenant,
            subject=", ".join(problem.objects) or None,
            message=problem.message,
            fix=problem.remedy,
        )
        for problem in plan.blockers
        if f"coexist.{problem.code}" in FINDING_CODES
    )
    per_link = await asyncio.gather(
        *(
            _check_link(
                reads,
                LinkCheck(
                    spec=link,
                    source=desired.tenants[link.source],
                    target=desired.tenants[link.target],
                    inbound=wanted.partners[(link.target, link.source)],
                    outbound=wanted.partners[(link.source, link.target)],
                    live=judged,
                ),
                plan,
                roles,
                live_known=live is not None,
                blocking_only=blocking_only,
            )
            for link in chosen
        )
    )
    return list(per_link)


def _nothing_live(wanted: Wants) -> LiveState:
    tenants = {w.tenant for w in wanted.partners.values()}
    tenants |= {w.source.name for w in wanted.links.values()}
    return LiveState(
        tenants={name: LiveTenant(name) for name in tenants},
        links={key: LiveLink(key) for key in wanted.links},
    )


def _unreadable(desired: DesiredState, links: Iterable[LinkSpec], exc: Exception) -> list[Finding]:
    where = getattr(exc, "tenant", None)
    names = {t.tenant_id: t.name for t in desired.tenants.values()}
    out = []
    for link in links:
        tenant = names.get(str(where), link.source) if where else link.source
        out.append(
            Finding(
                severity="error",
                code="live.unreadable",
                link=link.key,
                tenant=tenant,
                message=f"the live state could not be read, so the link was not judged: {exc}",
                fix="fix the cause (the permission findings below name missing grants), "
                "then run preflight again",
            )
        )
    return out


async def _check_link(
    reads: Reads,
    link: LinkCheck,
    plan: Plan,
    roles: TokenRoles | None,
    *,
    live_known: bool,
    blocking_only: bool,
) -> list[Finding]:
    found: list[Finding] = []
    sms_users = 0
    if live_known:
        found += await pair_checks(reads, link)
        if not blocking_only:
            found += await conditional_access_checks(reads, link)
            found += await licence_checks(reads, link)
            found += quota_checks(link)
            users = await user_checks(reads, link)
            found += users
            sms_users = sum(1 for f in users if f.code == "user.sms-sign-in")
    found += permission_checks(
        link, plan, roles, live_known=live_known, blocking_only=blocking_only, sms=sms_users
    )
    return found


@dataclass
class SmsSignInFix:
    """The outcome of disabling SMS sign-in for one user."""

    link: str
    tenant: str
    user: str
    user_id: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "tenant": self.tenant,
            "user": self.user,
            "user_id": self.user_id,
            "ok": self.ok,
            "error": self.error,
        }


async def disable_sms_sign_in(session: Session, findings: Sequence[Finding]) -> list[SmsSignInFix]:
    """``disableSmsSignIn`` for the users of the ``user.sms-sign-in`` findings, once each.

    Each write is recorded by the session's observers under ``audit_step(link=…,
    step="preflight.fix.sms-sign-in")``; one ``$batch`` round per link and tenant. The caller
    asks for approval first. Failures are returned, not raised.
    """
    todo: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for finding in findings:
        user_id = str(finding.data.get("user_id") or "")
        if finding.code != "user.sms-sign-in" or not user_id:
            continue
        if (finding.tenant, user_id) in seen:
            continue
        seen.add((finding.tenant, user_id))
        todo[(finding.link, finding.tenant)].append(finding)
    out: list[SmsSignInFix] = []
    for (link, tenant), group in todo.items():
        requests = [
            BatchRequest(
                id=str(n),
                method="POST",
                url=f"/users/{quote(str(f.data['user_id']))}/authentication/phoneMethods/"
                f"{MOBILE_PHONE_METHOD}/disableSmsSignIn",
            )
            for n, f in enumerate(group)
        ]
        with audit_step(link=link, step="preflight.fix.sms-sign-in"):
            results = await session.client(tenant).batch(requests, concurrency=1)
        for n, finding in enumerate(group):
            result = results[str(n)]
            error = None
            if not result.ok:
                body = result.body if isinstance(result.body, dict) else {}
                message = (body.get("error") or {}).get("message") or ""
                error = f"{result.status} {result.error_code}: {message}".strip()
            out.append(
                SmsSignInFix(
                    link=link,
                    tenant=tenant,
                    user=finding.subject or str(finding.data["user_id"]),
                    user_id=str(finding.data["user_id"]),
                    ok=result.ok,
                    error=error,
                )
            )
    return out
