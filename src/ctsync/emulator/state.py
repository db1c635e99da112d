"""What the emulator remembers, per tenant. Plain data; services hold the behaviour.

Objects are kept in Graph's wire shape (camelCase dicts) so a response is a copy of the stored
object, and every object records when it was created, for the replication-lag fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ClientApp",
    "CrossTenantAccessState",
    "ServicePrincipalSync",
    "SyncJobRecord",
    "Tenant",
]

JsonObject = dict[str, Any]


@dataclass
class ClientApp:
    """An app registration that can get app-only tokens in its tenant."""

    client_id: str
    client_secret: str
    display_name: str
    #: Application permissions granted with admin consent; they become the token's ``roles``.
    permissions: list[str]
    #: Object id of the app's service principal in the tenant (the token's ``oid``).
    object_id: str


@dataclass
class CrossTenantAccessState:
    #: The tenant's default settings once patched; ``None`` means the service default.
    default: JsonObject | None = None
    #: Partner configurations keyed by the partner tenant id in lower case.
    partners: dict[str, JsonObject] = field(default_factory=dict)
    #: identitySynchronization objects keyed like ``partners``.
    identity_sync: dict[str, JsonObject] = field(default_factory=dict)


@dataclass
class SyncJobRecord:
    """One synchronization job: its wire object, its schema, and the provisioning service's
    own bookkeeping, which Graph never shows but which the simulated engine runs on.
    """

    #: The ``synchronizationJob`` as Graph shows it (no ``@odata.context``).
    job: JsonObject
    #: The job's ``synchronizationSchema`` as Graph shows it; ``id`` is the job id.
    schema: JsonObject
    #: Delta token of the last import; ``None`` makes the next cycle read everything.
    watermark: str | None = None
    #: Objects whose export failed and waits for a retry, by source object id. What an entry
    #: holds is the engine's business (error, attempts, next attempt).
    escrows: dict[str, JsonObject] = field(default_factory=dict)
    #: The next cycle must be an initial (full) one: a new job, a restart, a changed schema.
    full_sync_due: bool = True
    #: Why a full cycle is due, oldest first (``created``, ``restart``, ``schema``); the
    #: engine clears it with ``full_sync_due`` when a full cycle completes.
    full_sync_reasons: list[str] = field(default_factory=lambda: ["created"])
    #: The provisioning cache ("connector data store"): source object id -> target object id
    #: of the objects this job has matched or created. Restart with ``ConnectorDataStore``
    #: (or ``Full``) empties it, so the next cycle matches again.
    connector_data_store: dict[str, str] = field(default_factory=dict)
    #: A restart asked for ``ForceDeletes``: the next cycle may delete past the accidental
    #: deletion threshold instead of quarantining.
    force_deletes: bool = False
    #: Cycles completed since the job was created (0: the first cycle has not run).
    completed_cycles: int = 0

    @property
    def id(self) -> str:
        job_id: str = self.job["id"]
        return job_id

    @property
    def status_code(self) -> str:
        code: str = self.job["status"]["code"]
        return code

    @property
    def quarantine(self) -> JsonObject | None:
        """The job's ``synchronizationQuarantine`` (``None`` when not quarantined).

        It lives in the wire status only, so the two views cannot disagree: the engine sets
        ``job["status"]["quarantine"]`` (and ``code`` ``Quarantine``); ``start`` and a restart
        with ``QuarantineState`` clear it.
        """
        quarantine: JsonObject | None = self.job["status"].get("quarantine")
        return quarantine

    def mark_full_sync(self, reason: str) -> None:
        self.full_sync_due = True
        self.full_sync_reasons.append(reason)


@dataclass
class ServicePrincipalSync:
    """The ``synchronization`` of one service principal: its secrets and its jobs."""

    #: ``synchronizationSecretKeyStringValuePair`` objects as last ``PUT`` (wire shape).
    secrets: list[JsonObject] = field(default_factory=list)
    #: Jobs by id (Graph job ids are case-sensitive strings; lookups here ignore case).
    jobs: dict[str, SyncJobRecord] = field(default_factory=dict)

    def secret(self, key: str) -> str | None:
        """The saved value of one secret key, or ``None``."""
        for pair in self.secrets:
            if pair.get("key") == key:
                value: str | None = pair.get("value")
                return value
        return None

    def job(self, job_id: str) -> SyncJobRecord | None:
        wanted = job_id.lower()
        return next((r for k, r in self.jobs.items() if k.lower() == wanted), None)


@dataclass
class Tenant:
    id: str
    name: str
    display_name: str
    #: The initial ``<name>.onmicrosoft.com`` domain.
    domain: str
    #: Custom domains verified in the tenant; users' UPNs and mail use the first one.
    verified_domains: list[str] = field(default_factory=list)
    clients: dict[str, ClientApp] = field(default_factory=dict)
    users: dict[str, JsonObject] = field(default_factory=dict)
    groups: dict[str, JsonObject] = field(default_factory=dict)
    #: Direct members of each group, by group id.
    group_members: dict[str, list[str]] = field(default_factory=dict)
    #: Authentication methods of each user, by user id (wire shape with ``@odata.type``).
    auth_methods: dict[str, list[JsonObject]] = field(default_factory=dict)
    access_policy: CrossTenantAccessState = field(default_factory=CrossTenantAccessState)
    #: Application objects by object id (wire shape).
    applications: dict[str, JsonObject] = field(default_factory=dict)
    #: Service principals by object id (wire shape).
    service_principals: dict[str, JsonObject] = field(default_factory=dict)
    #: ``appRoleAssignment`` objects granted *on* each service principal (its
    #: ``appRoleAssignedTo``), by resource service principal id, then assignment id.
    app_role_assignments: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    #: Synchronization (secrets, jobs, schema) by service principal id.
    synchronization: dict[str, ServicePrincipalSync] = field(default_factory=dict)
    #: Owners of applications and service principals: object id -> owner object ids (for an
    #: app-only caller, its service principal's object id, the token's ``oid``).
    owners: dict[str, list[str]] = field(default_factory=dict)
    #: Creation time of every object created through the API, by object key.
    created_at: dict[str, datetime] = field(default_factory=dict)
    #: Directory-object quota (Entra's default is 50,000 for tenants without a verified domain).
    object_quota: int = 50_000

    @property
    def size_class(self) -> str:
        """S, M or L by user count: picks the identity quota (graph-limits §1.2)."""
        n = len(self.users)
        if n < 50:
            return "S"
        if n <= 500:
            return "M"
        return "L"
