"""What the emulator remembers, per tenant. Plain data; services hold the behaviour.

Objects are kept in Graph's wire shape (camelCase dicts) so a response is a copy of the stored
object, and every object records when it was created, for the replication-lag fault.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctsync.emulator.engine.cycles import CycleRun

__all__ = [
    "CLOUD_ENDPOINTS",
    "AuthorizationCode",
    "ClientApp",
    "CrossTenantAccessState",
    "DeviceCodeGrant",
    "MultiTenantOrgState",
    "ProvisioningLog",
    "QueuedSignIn",
    "RefreshTokenGrant",
    "ServicePrincipalSync",
    "SignInState",
    "SyncJobRecord",
    "Tenant",
    "default_authorization_policy",
    "key_slot",
]

JsonObject = dict[str, Any]

#: A tenant's Microsoft cloud → the value other tenants put in their cross-tenant access
#: policy's ``allowedCloudEndpoints`` to collaborate with it.
CLOUD_ENDPOINTS: Mapping[str, str] = {
    "global": "microsoftonline.com",
    "usgov": "microsoftonline.us",
    "usgovdod": "microsoftonline.us",
    "china": "partner.microsoftonline.cn",
}

#: Numbers jobs in the order they are made (the engine's queue orders simultaneous events by it).
_job_ordinals = itertools.count()


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
    #: Certificates it may sign client assertions with: ``keyCredential`` wire objects whose
    #: ``key`` holds the base64 DER certificate (``ctsync emulator serve`` registers one).
    key_credentials: list[JsonObject] = field(default_factory=list)
    #: ``federatedIdentityCredential`` wire objects: external tokens it may present instead.
    federated_credentials: list[JsonObject] = field(default_factory=list)


@dataclass
class CrossTenantAccessState:
    #: The tenant's default settings once patched; ``None`` means the service default.
    default: JsonObject | None = None
    #: Partner configurations keyed by the partner tenant id in lower case.
    partners: dict[str, JsonObject] = field(default_factory=dict)
    #: identitySynchronization objects keyed like ``partners``.
    identity_sync: dict[str, JsonObject] = field(default_factory=dict)
    #: The policy's ``allowedCloudEndpoints``: the other Microsoft clouds it collaborates with.
    allowed_cloud_endpoints: list[str] = field(default_factory=list)


@dataclass
class MultiTenantOrgState:
    """A tenant's side of a multitenant organization (``services/multitenant_org.py``)."""

    #: The multitenant organization this tenant created (wire shape, ``state`` active), or
    #: ``None``. Its members live here too: the creator's state is the organization's home.
    organization: JsonObject | None = None
    #: ``multiTenantOrganizationMember`` objects by tenant id (lower case), wire shape.
    members: dict[str, JsonObject] = field(default_factory=dict)
    #: Removals in progress: member tenant id -> (when asked, when processed).
    removals: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    #: This tenant's ``joinRequest`` (wire shape); ``None``: it never asked to join.
    join_request: JsonObject | None = None
    #: A join in progress: (when asked, when processed).
    join_window: tuple[datetime, datetime] | None = None
    #: The MTO policy templates once patched (wire shape); ``None``: the default.
    partner_template: JsonObject | None = None
    identity_sync_template: JsonObject | None = None


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
    #: Group provisioning's own map (``engine/groups.py``): source group id -> target group
    #: id of the security groups this job created or matched. ``ConnectorDataStore`` (or
    #: ``Full``) empties it with the users' cache; later cycles match groups again by their
    #: stamp (``Tenant.group_alternative_security_ids``).
    group_store: dict[str, str] = field(default_factory=dict)
    #: Per source group, a fingerprint of what the last cycle saw (the group, its direct
    #: members and which of them this job provisioned, its assignment), as ``seen`` for users.
    seen_groups: dict[str, str] = field(default_factory=dict)
    #: Groups whose export failed, by source group id (retried next cycle; counted with
    #: ``escrows`` in the job's status).
    group_escrows: dict[str, JsonObject] = field(default_factory=dict)
    #: A restart asked for ``ForceDeletes``: the next cycle may delete past the accidental
    #: deletion threshold instead of quarantining.
    force_deletes: bool = False
    #: Cycles completed since the job was created (0: the first cycle has not run).
    completed_cycles: int = 0
    #: When the next cycle is due (emulator clock); ``None`` while the job is not scheduled.
    #: ``start``/``restart`` set it to "now", each cycle to its next start (engine/cycles.py).
    next_cycle_at: datetime | None = None
    #: The cycle in progress, if any (``engine.cycles.CycleRun``).
    running_cycle: CycleRun | None = None
    #: Per source user, a fingerprint of what the last cycle saw (attributes, assignment,
    #: SMS sign-in): an incremental cycle re-evaluates the users whose fingerprint changed.
    seen: dict[str, str] = field(default_factory=dict)
    #: Summary of the last completed cycle (for ``GET /_emulator/state``).
    last_cycle: JsonObject | None = None
    #: What the last cycle left for the next one to compare: the writes that could change a
    #: source user when it began (``Emulator.unattributed_changes``, the source tenant's
    #: ``Emulator.tenant_writes``), and the users whose fingerprint it did not settle.
    scan: tuple[tuple[int, int], frozenset[str]] | None = field(
        default=None, compare=False, repr=False
    )
    #: Where the job lives: its tenant and service principal (``new_job_record`` sets them).
    tenant_id: str = ""
    sp_id: str = ""
    #: Creation order across the process (``engine/queue.py``).
    ordinal: int = field(default_factory=lambda: next(_job_ordinals), compare=False, repr=False)
    #: Counts the schemas saved (``PUT schema``); with the schema object it keys ``compiled``.
    schema_version: int = 0
    #: The engine's compiled form of ``schema`` (``engine/compiled.py``), rebuilt when the
    #: schema changes.
    compiled: Any = field(default=None, compare=False, repr=False)

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
class ProvisioningLog:
    """A tenant's ``provisioningObjectSummary`` records, oldest first: mappings in the wire
    shape (the engine's are compact ``engine.logs.LogEntry`` objects that build it when read).

    ``first_seq`` numbers ``entries[0]``: records dropped by retention keep the numbering of
    the rest stable, which the paging of ``/auditLogs/provisioning`` relies on.
    """

    entries: list[Mapping[str, Any]] = field(default_factory=list)
    first_seq: int = 0


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
class DeviceCodeGrant:
    """A device authorization request (``/devicecode``) until its code is redeemed."""

    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scope: str
    created: datetime
    expires: datetime
    #: Seconds a poll must wait after the previous one; each ``slow_down`` adds five.
    interval: int
    #: ``pending`` until the user approves (``approved``) or declines (``declined``), or a
    #: queued sign-in could not approve it (``refused``, with Entra's code and message).
    state: str = "pending"
    refusal: tuple[int, str] | None = None
    #: The signed-in user (object id) once approved.
    user_id: str | None = None
    last_poll: datetime | None = None
    polls: int = 0
    #: The emulator origin the request came to (a scope may name it as its resource).
    origin: str = ""


@dataclass
class AuthorizationCode:
    """An authorization code the ``/authorize`` endpoint issued, redeemable once."""

    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    expires: datetime
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    redeemed: bool = False


@dataclass
class RefreshTokenGrant:
    """A refresh token: bound to a user and a client, not to a resource."""

    client_id: str
    user_id: str
    issued: datetime
    expires: datetime
    #: The sign-in session it belongs to (a token's ``sid``).
    session_id: str
    #: Issued to a confidential client: redeeming it takes the client's credential again.
    confidential: bool = False


@dataclass
class QueuedSignIn:
    """Who signs in at the next ``/authorize`` that asks (control ``POST signin/next``)."""

    user_id: str
    decline: bool = False
    #: ``self``, ``organization`` or ``none``: what the user answers a consent prompt.
    consent: str = "self"


@dataclass
class SignInState:
    """A tenant's delegated sign-ins: device codes, authorization codes, refresh tokens."""

    #: Device authorization requests by device code.
    device_codes: dict[str, DeviceCodeGrant] = field(default_factory=dict)
    #: Authorization codes by code.
    authorization_codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    #: Refresh tokens by a SHA-256 of the token (the token itself is never kept).
    refresh_tokens: dict[str, RefreshTokenGrant] = field(default_factory=dict)
    #: Interactive sign-ins queued through the control API, oldest first.
    queued: list[QueuedSignIn] = field(default_factory=list)
    #: Refresh tokens issued before this instant are revoked, by user id.
    revoked_before: dict[str, datetime] = field(default_factory=dict)


def default_authorization_policy() -> JsonObject:
    """The ``authorizationPolicy`` of a new tenant: anyone may invite guests (``everyone``),
    guests get the Guest User role, as Microsoft documents the defaults."""
    return {
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "everyone",
        "allowedToSignUpEmailBasedSubscriptions": True,
        "allowedToUseSSPR": True,
        "allowEmailVerifiedUsersToJoinOrganization": True,
        "allowUserConsentForRiskyApps": False,
        "blockMsolPowerShell": False,
        "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "defaultUserRolePermissions": {
            "allowedToCreateApps": True,
            "allowedToCreateSecurityGroups": True,
            "allowedToCreateTenants": True,
            "allowedToReadBitlockerKeysForOwnedDevice": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": [
                "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
            ],
        },
    }


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
    #: The Microsoft cloud the tenant lives in: a key of :data:`CLOUD_ENDPOINTS`.
    cloud: str = "global"
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
    #: Soft-deleted users (the recycle bin), by id, ``deletedDateTime`` set; hidden from
    #: ``/users``. Hard-deleted 30 days after deletion.
    deleted_users: dict[str, JsonObject] = field(default_factory=dict)
    #: The cross-tenant identifier a sync engine stamped on B2B users it created here
    #: (target user id -> the source user's alternativeSecurityId): what later cycles match on.
    alternative_security_ids: dict[str, str] = field(default_factory=dict)
    #: The same for the security groups a sync engine created here (target group id -> the
    #: source group's alternativeSecurityId).
    group_alternative_security_ids: dict[str, str] = field(default_factory=dict)
    #: What ``/auditLogs/provisioning`` lists (written by the provisioning engine).
    provisioning_log: ProvisioningLog = field(default_factory=ProvisioningLog)
    #: When each user's authentication methods last changed (user id -> time); a user not
    #: listed keeps the methods it was created with.
    auth_methods_changed: dict[str, datetime] = field(default_factory=dict)
    #: Conditional Access policies by id (wire shape, ``conditionalAccessPolicy``).
    conditional_access_policies: dict[str, JsonObject] = field(default_factory=dict)
    #: The tenant's ``authorizationPolicy`` singleton (wire shape); ``allowInvitesFrom`` says
    #: who may invite guests.
    authorization_policy: JsonObject = field(default_factory=default_authorization_policy)
    #: The organization's ``assignedPlans`` (wire shape ``assignedPlan``): what licence checks
    #: read, e.g. Entra ID P1 (``servicePlanId`` ``41781fb2-…``, ``capabilityStatus``).
    assigned_plans: list[JsonObject] = field(default_factory=list)
    #: Plaintext of the applications' password credentials, by ``keyId`` (lower case): what the
    #: token endpoint compares a client secret with. Graph shows it once, from ``addPassword``.
    credential_secrets: dict[str, str] = field(default_factory=dict)
    #: Certificates of the applications' key credentials (base64 DER), by :func:`key_slot`
    #: (application object id and ``keyId``: a keyId one client chose for two applications
    #: never mixes their certificates); the stored ``keyCredential`` objects keep ``key`` null,
    #: as Graph shows them.
    credential_keys: dict[str, str] = field(default_factory=dict)
    #: ``federatedIdentityCredential`` objects by application object id, then credential id.
    federated_credentials: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    #: Service principals of Microsoft's own apps in the tenant (Microsoft Graph), by object
    #: id: read and listed like the others, kept apart so the tenant's own objects count as
    #: before (``core/first_party.py`` adds them on first use).
    microsoft_service_principals: dict[str, JsonObject] = field(default_factory=dict)
    #: Directory role assignments: user id -> role template ids (``core/directory_roles.py``).
    directory_roles: dict[str, list[str]] = field(default_factory=dict)
    #: ``oAuth2PermissionGrant`` objects (delegated consent) by id (wire shape).
    oauth2_permission_grants: dict[str, JsonObject] = field(default_factory=dict)
    #: Delegated sign-ins in progress and refresh tokens (``core/delegated.py``).
    sign_in: SignInState = field(default_factory=SignInState)
    #: The multitenant organization this tenant owns or joins, and its MTO policy templates.
    multi_tenant_org: MultiTenantOrgState = field(default_factory=MultiTenantOrgState)

    @property
    def size_class(self) -> str:
        """S, M or L by user count: picks the identity quota (graph-limits §1.2)."""
        n = len(self.users)
        if n < 50:
            return "S"
        if n <= 500:
            return "M"
        return "L"


def key_slot(app: Mapping[str, Any], key_id: Any) -> str:
    """Where ``Tenant.credential_keys`` keeps the certificate of ``app``'s key ``key_id``."""
    return f"{str(app.get('id', '')).lower()}/{str(key_id or '').lower()}"
