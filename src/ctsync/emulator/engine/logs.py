"""Provisioning-log records (``provisioningObjectSummary``) and the per-tenant store.

Shapes follow reference §3.10 and cts-defaults §3: lowercase enums, CTS system names, the
"Azure AD Provisioning Service" initiator, ``tenantId`` the *target* tenant (as in Microsoft's
CTS example), steps ``EntryImport…`` → ``EntrySynchronizationScoping`` → ``EntrySynchronization…``
→ ``EntryExport…``. The records live in the source tenant (``Tenant.provisioning_log``), oldest
first; records older than the retention are dropped when the store is touched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import Tenant

__all__ = [
    "INITIATOR_NAME",
    "FixedSteps",
    "LogEntry",
    "Modified",
    "PackedModified",
    "RowContext",
    "SourceIdentity",
    "Step",
    "StepSource",
    "append",
    "iso",
    "pack_modified",
    "parse_iso",
    "prune",
    "source_identity",
    "step",
]

INITIATOR_NAME = "Azure AD Provisioning Service"

JsonObject = dict[str, Any]


def iso(when: datetime, *, fraction: bool = True) -> str:
    """Graph's timestamp form: seven fractional digits when there is a fraction (as Graph
    writes them), none otherwise or when ``fraction`` is false."""
    return _iso(when, fraction and bool(when.microsecond))


@functools.lru_cache(maxsize=64)
def _iso(when: datetime, fraction: bool) -> str:
    # The engine writes several stamps of one instant (progress, records, the new user): one
    # string for all.
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{when.microsecond:06d}0Z" if fraction else text + "Z"


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


class StepSource(Protocol):
    """What a record keeps instead of its steps: enough to build them when it is read."""

    def build(self) -> list[Step]: ...


@dataclass(frozen=True, slots=True)
class FixedSteps:
    steps: tuple[Step, ...]

    def build(self) -> list[Step]:
        return list(self.steps)


#: The source object's id, display name and UPN (``None`` for a group) when a record was
#: written.
SourceIdentity = tuple[Any, Any, Any]
#: A modified property: (name, old value, new value).
Modified = tuple[str, str | None, str | None]
#: A record's modified properties as it keeps them: the names (one tuple shared by every
#: record listing the same names), the old values (``None``: all null, as on a create), the
#: new values.
PackedModified = tuple[tuple[str, ...], tuple[str | None, ...] | None, tuple[str | None, ...]]


def pack_modified(items: Iterable[Modified]) -> PackedModified:
    """Modified properties as a record keeps them (:data:`PackedModified`)."""
    listed = tuple(items)
    names = tuple(name for name, _, _ in listed)
    names = _NAMES.setdefault(names, names)
    if len(_NAMES) > _NAMES_KEPT:
        _NAMES.clear()
    old = tuple(value for _, value, _ in listed)
    return names, (old if any(v is not None for v in old) else None), tuple(v for *_, v in listed)


#: Lists of modified property names seen lately (a cycle's records mostly share a few).
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}
_NAMES_KEPT = 256


@dataclass(frozen=True)
class RowContext:
    """What every record of one job (and one cycle or on-demand call) shares. The service
    principal and initiator are read when the rows are made: records show them as they were."""

    source: Tenant
    target_tenant_id: str
    job_id: str
    cycle_id: str
    service_principal: JsonObject
    source_directory_id: str | None
    target_directory_id: str | None
    #: ``initiatedBy``: the provisioning service for cycles, the calling app on demand.
    initiator: JsonObject
    #: ``servicePrincipal`` (id, display name, app id) and ``initiatedBy`` as made.
    sp: tuple[str, str | None, str | None] = field(init=False, repr=False, compare=False)
    initiated_by: tuple[tuple[str, Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sp = self.service_principal
        object.__setattr__(self, "sp", (str(sp["id"]), sp.get("displayName"), sp.get("appId")))
        object.__setattr__(self, "initiated_by", tuple(self.initiator.items()))

    def entry(
        self,
        *,
        record_id: str,
        change_id: str,
        at: datetime | str,
        duration_ms: int,
        action: str,
        status: str,
        error: JsonObject | None,
        source: SourceIdentity,
        target_id: str,
        target_name: str,
        steps: StepSource,
        modified: PackedModified,
        kind: str = "User",
    ) -> LogEntry:
        """One record, kept compactly (:class:`LogEntry`); ``at`` a time or its :func:`iso`
        text (whole seconds); ``kind`` the object type (``User``, ``Group``)."""
        return LogEntry(
            _rows=self,
            _id=record_id,
            _activity=at if isinstance(at, str) else iso(at, fraction=False),
            _change_id=change_id,
            _action=action,
            _duration_ms=duration_ms,
            _status=status,
            _error=error,
            _source=source,
            _target_id=target_id,
            _target_name=target_name,
            _steps=steps,
            _modified=modified,
            _kind=kind,
        )

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
        modified: list[Modified],
    ) -> JsonObject:
        """One record as a plain dict in the v1.0 shape (what :meth:`entry` keeps, expanded)."""
        return dict(
            self.entry(
                record_id=record_id,
                change_id=change_id,
                at=at,
                duration_ms=duration_ms,
                action=action,
                status=status,
                error=error,
                source=source_identity(source_user),
                target_id=target_id,
                target_name=target_name,
                steps=FixedSteps(tuple(steps)),
                modified=pack_modified(modified),
            )
        )


def source_identity(user: JsonObject) -> SourceIdentity:
    """What a record shows of its source user (as the user is when the record is written);
    of a group, its id and display name (a group has no user principal name)."""
    return user.get("id"), user.get("displayName"), user.get("userPrincipalName")


@dataclass(slots=True, eq=False)
class LogEntry(Mapping[str, Any]):
    """A ``provisioningObjectSummary`` as the store keeps it: what differs between records,
    the shared parts by reference, the steps as what builds them (never changed once made).
    Reading a member builds its wire value afresh (the v1.0 shape, the same as a plain dict
    record would hold), so the store cannot be changed through what a reader gets;
    ``dict(entry)`` is the whole record.
    """

    _rows: RowContext
    _id: str
    _activity: str
    _change_id: str
    _action: str
    _duration_ms: int
    _status: str
    _error: JsonObject | None
    _source: SourceIdentity
    _target_id: str
    _target_name: str
    _steps: StepSource
    _modified: PackedModified
    #: The object type of both identities: ``User``, or ``Group`` (group provisioning).
    _kind: str = "User"

    def __getitem__(self, key: str) -> Any:
        member = _MEMBERS.get(key)
        if member is None:
            raise KeyError(key)
        return member(self)

    def __contains__(self, key: object) -> bool:
        return key in _MEMBERS

    def __iter__(self) -> Iterator[str]:
        return iter(_MEMBERS)

    def __len__(self) -> int:
        return len(_MEMBERS)

    def __repr__(self) -> str:
        return f"LogEntry({self._id!r}, {self._activity!r}, {self._action!r})"

    def steps(self) -> list[Step]:
        return self._steps.build()

    def _service_principal(self) -> JsonObject:
        sp_id, name, _ = self._rows.sp
        return {"id": sp_id, "displayName": name}

    def _source_system(self) -> JsonObject:
        return {
            "id": self._rows.source_directory_id,
            "displayName": a2a.SOURCE_DIRECTORY,
            "details": {},
        }

    def _target_system(self) -> JsonObject:
        sp_id, name, app_id = self._rows.sp
        return {
            "id": self._rows.target_directory_id,
            "displayName": a2a.TARGET_DIRECTORY,
            "details": {
                "ApplicationId": app_id,
                "ServicePrincipalId": sp_id,
                "ServicePrincipalDisplayName": name,
            },
        }

    def _source_identity(self) -> JsonObject:
        object_id, name, upn = self._source
        kind = self._kind
        details: JsonObject = {"id": object_id, "odatatype": kind, "DisplayName": name}
        if kind == "User":
            details["UserPrincipalName"] = upn
        return {
            "id": object_id,
            "displayName": name or "",
            "identityType": kind,
            "details": details,
        }

    def _target_identity(self) -> JsonObject:
        return {
            "id": self._target_id,
            "displayName": self._target_name,
            "identityType": self._kind,
            "details": {},
        }

    def _modified_properties(self) -> list[JsonObject]:
        names, olds, news = self._modified
        return [
            {"displayName": name, "oldValue": None if olds is None else olds[i], "newValue": new}
            for i, (name, new) in enumerate(zip(names, news, strict=True))
        ]

    def _status_info(self) -> JsonObject:
        error = self._error
        return {"status": self._status, "errorInformation": None if error is None else dict(error)}


_MEMBERS: dict[str, Callable[[LogEntry], Any]] = {
    "id": lambda e: e._id,
    "activityDateTime": lambda e: e._activity,
    "tenantId": lambda e: e._rows.target_tenant_id,
    "jobId": lambda e: e._rows.job_id,
    "cycleId": lambda e: e._rows.cycle_id,
    "changeId": lambda e: e._change_id,
    "provisioningAction": lambda e: e._action,
    "durationInMilliseconds": lambda e: e._duration_ms,
    "initiatedBy": lambda e: dict(e._rows.initiated_by),
    "servicePrincipal": LogEntry._service_principal,
    "sourceSystem": LogEntry._source_system,
    "targetSystem": LogEntry._target_system,
    "sourceIdentity": LogEntry._source_identity,
    "targetIdentity": LogEntry._target_identity,
    "modifiedProperties": LogEntry._modified_properties,
    "provisioningStatusInfo": LogEntry._status_info,
    "provisioningSteps": lambda e: [s.wire() for s in e.steps()],
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


def append(tenant: Tenant, records: Sequence[Mapping[str, Any]]) -> None:
    """Add records to the tenant's store: the engine's compact entries or plain dicts."""
    tenant.provisioning_log.entries.extend(records)
