"""Report data objects built by hand: a pair with everything in it, and a 100-tenant mesh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ctsync.engine.model import FieldChange, Problem, Step
from ctsync.ops import Finding, LinkStatus
from ctsync.ops.report import (
    AuditWrite,
    LinkReport,
    Report,
    TenantInfo,
    buckets,
    judge,
)

__all__ = ["HOSTILE", "TAG", "build_report", "mesh", "pair"]

NOW = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)
#: A tenant name that would run as a script if it were not escaped.
HOSTILE = "<script>alert(1)</script>"
#: A tag that rich (and GitHub) would turn into an emoji if read as markup.
TAG = "ctsync:link:x"

ASKS = {
    "template": "member-sync",
    "user_type": "Member",
    "scope": ["group CTS-Pilot"],
    "actions": ["create", "update"],
    "start": True,
    "automatic_redemption": True,
    "inbound_trust": ["mfa"],
    "deletion_threshold": 500,
    "adopt": None,
}


def _status(link: str) -> LinkStatus:
    return LinkStatus(
        link=link,
        set_up=True,
        job_id="Azure2Azure.abc.123",
        schedule="Active",
        code="Active",
        last_cycle={
            "state": "Succeeded",
            "began": "2026-05-08T11:00:00Z",
            "ended": "2026-05-08T11:00:42Z",
            "seconds": 42.0,
            "imported": 9,
            "exported": 4,
            "escrowed": 0,
            "entitled": 9,
            "error": None,
        },
        synchronized=4,
    )


def build_report(tenants: list[str], links: list[LinkReport]) -> Report:
    """A report of these tenants and links, each link judged as gathering would."""
    for link in links:
        judge(link)
    since = NOW - timedelta(days=7)
    return Report(
        generated="2026-05-08T12:00:00Z",
        config_path="ctsync.yaml",
        config_hash="0123456789abcdef" * 4,
        since="2026-05-01T12:00:00Z",
        tenants=[
            TenantInfo(name, f"00000000-0000-0000-0000-{i:012d}", True)
            for i, name in enumerate(tenants)
        ],
        links=links,
        days=buckets([], since, NOW),
    )


def pair() -> Report:
    """Two tenants, one of them hostile, and one link with a bit of everything."""
    key = f"contoso:{HOSTILE}"
    status = _status(key)
    status.quarantine = {
        "reason": "EncounteredQuarantineException",
        "since": "2026-05-08T10:00:00Z",
        "next_attempt": "2026-05-08T14:00:00Z",
        "series_count": 2,
        "error": "AzureDirectoryB2BManagementPolicyCheckFailure",
        "message": "policy [bold]check[/bold] failed",
        "meaning": "the cross-tenant access policy does not allow the sync",
        "remedy": "run `ctsync apply` for the link",
    }
    link = LinkReport(
        key=key,
        source="contoso",
        target=HOSTILE,
        asks=ASKS,
        status=status,
        findings=[
            Finding(
                severity="warning",
                code="user.sms-sign-in",
                link=key,
                tenant="contoso",
                subject="isaiah@contoso.com",
                message=f"tagged {TAG}; a name [bold]x[/bold]",
                fix="disable SMS sign-in",
            )
        ],
        steps=[
            Step(
                id=f"{key}/tags",
                tenant="contoso",
                resource="servicePrincipal",
                action="update",
                summary=f"tag the service principal {HOSTILE}",
                links=(key,),
                changes=(FieldChange("tags", None, [TAG]),),
            )
        ],
        problems=[
            Problem(
                link=key,
                tenant="contoso",
                code="duplicate-apps",
                message="two apps carry the tag",
                remedy="ctsync destroy --duplicates",
            )
        ],
    )
    report = build_report(["contoso", HOSTILE], [link])
    report.audit_present = True
    report.audit_path = ".ctsync/audit.sqlite"
    report.audit_writes = [
        AuditWrite(
            seq=1,
            time="2026-05-08T11:59:00Z",
            tenant=HOSTILE,
            method="PATCH",
            path="/servicePrincipals/1",
            status=204,
            error_code=None,
            link=key,
            step=f"{key}/tags",
            request_id="r-1",
        )
    ]
    return report


def mesh(count: int = 100) -> Report:
    """``count`` tenants, each linked to every other: ``count * (count - 1)`` links, a few of
    them unwell so every colour shows."""
    names = [f"tenant-{i:03d}" for i in range(count)]
    links = []
    for source in names:
        for target in names:
            if source == target:
                continue
            key = f"{source}:{target}"
            link = LinkReport(key=key, source=source, target=target, asks=ASKS, status=_status(key))
            links.append(link)
    links[1].status = LinkStatus(link=links[1].key, set_up=False, problems=["not set up"])
    links[2].status.schedule = "Paused"  # type: ignore[union-attr]
    links[3].activity["failed"] = 3
    return build_report(names, links)
