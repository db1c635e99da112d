"""Provisioning-log records (``provisioningObjectSummary``) and the per-tenant store.

Shapes follow reference §3.10 and cts-defaults §3: lowercase enums, CTS system names, the
"Azure AD Provisioning Service" initiator, ``tenantId`` the *target* tenant (as in Microsoft's
CTS example), steps ``EntryImport…`` → ``EntrySynchronizationScoping`` → ``EntrySynchronization…``
→ ``EntryExport…``. The records live in the source tenant (``Tenant.provisioning_log``), oldest
first; records older than the retention are dropped when the store is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import Tenant

__all__ = [
    "INITIATOR_NAME",
    "RowContext",
    "Step",
    "append",
    "iso",
    "parse_iso",
    "prune",
    "step",
]

INITIATOR_NAME = "Azure AD Provisioning Service"

JsonObject = dict[str, Any]


def iso(when: datetime, *, fraction: bool = True) -> str:
    """Graph's timestamp form: seven fractional digits when there is a fraction (as Graph
    writes them), none otherwise or when ``fraction`` is false."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction and when.microsecond:
        text += f".{when.microsecond:06d}0"
    return text + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # provisioningStepType: import, scoping, matching, processing, export
    status: str  # provisioningResult: success, failure, skipped, warning
    description: str
    details: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> JsonObject:
        return {
            "name": self.name,
            "provisioningStepType": self.kind,
            "status": self.status,
            "description": self.description,
            "details": dict(self.details),
        }


def step(
    name: str, kind: str, status: str, description: str, details: dict[str, Any] | None = None
) -> Step:
    return Step(name, kind, status, description, details or {})


@dataclass(frozen=True)
class RowContext:
    """What every record of one job (and one cycle or on-demand call) shares."""

    source: Tenant
    target_tenant_id: str
    job_id: str
    cycle_id: str
    service_principal: JsonObject
    source_directory_id: str | None
    target_directory_id: str | None
    #: ``initiatedBy``: the provisioning service for cycles, the calling app on demand.
    initiator: JsonObject

    def record(
        self,
        *,
        record_id: str,
        change_id: str,
        at: datetime,
        duration_ms: int,
        action: str,
        status: str,
        error: JsonObject | None,
        source_user: JsonObject,
        target_id: str,
        target_name: str,
        steps: list[Step],
        modified: list[tuple[str, str | None, str | None]],
    ) -> JsonObject:
        sp = self.service_principal
        upn = source_user.get("userPrincipalName")
        return {
            "id": record_id,
            "activityDateTime": iso(at, fraction=False),
            "tenantId": self.target_tenant_id,
            "jobId": self.job_id,
            "cycleId": self.cycle_id,
            "changeId": change_id,
            "provisioningAction": action,
            "durationInMilliseconds": duration_ms,
            "initiatedBy": dict(self.initiator),
            "servicePrincipal": {"id": sp["id"], "displayName": sp.get("displayName")},
            "sourceSystem": {
                "id": self.source_directory_id,
                "displayName": a2a.SOURCE_DIRECTORY,
                "details": {},
            },
            "targetSystem": {
                "id": self.target_directory_id,
                "displayName": a2a.TARGET_DIRECTORY,
                "details": {
                    "ApplicationId": sp.get("appId"),
                    "ServicePrincipalId": sp["id"],
                    "ServicePrincipalDisplayName": sp.get("displayName"),
                },
            },
            "sourceIdentity": {
                "id": source_user.get("id"),
                "displayName": source_user.get("displayName") or "",
                "identityType": "User",
                "details": {
                    "id": source_user.get("id"),
                    "odatatype": "User",
                    "DisplayName": source_user.get("displayName"),
                    "UserPrincipalName": upn,
                },
            },
            "targetIdentity": {
                "id": target_id,
                "displayName": target_name,
                "identityType": "User",
                "details": {},
            },
            "modifiedProperties": [
                {"displayName": name, "oldValue": old, "newValue": new}
                for name, old, new in modified
            ],
            "provisioningStatusInfo": {"status": status, "errorInformation": error},
            "provisioningSteps": [s.wire() for s in steps],
        }


def system_initiator() -> JsonObject:
    return {"id": "", "displayName": INITIATOR_NAME, "initiatorType": "system"}


def prune(tenant: Tenant, now: datetime, retention_seconds: float) -> None:
    """Drop records older than the retention (the store is oldest first)."""
    log = tenant.provisioning_log
    cutoff = now - timedelta(seconds=retention_seconds)
    drop = 0
    for entry in log.entries:
        if parse_iso(entry["activityDateTime"]) >= cutoff:
            break
        drop += 1
    if drop:
        del log.entries[:drop]
        log.first_seq += drop


def append(tenant: Tenant, records: list[JsonObject]) -> None:
    tenant.provisioning_log.entries.extend(records)
