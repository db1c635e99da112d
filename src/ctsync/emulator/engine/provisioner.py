"""What the provisioning service does with one source user: import, scope, match, export.

:func:`plan` is pure: it reads the source user, evaluates the job's scope and attribute
mappings and matches the target user, and decides an action (create, update, disable, delete,
restore, or a skip with its reason). :func:`apply` carries the decision out in the target
tenant — or fails it with the documented CTS error codes (reference §9) — and builds the
provisioning-log records. Cycles (:mod:`.cycles`) and provisionOnDemand share both.

Target users are B2B users (cts-defaults §4): UPN ``<source UPN, @ as _>#EXT#@<target initial
domain>``, ``creationType`` ``Invitation``, ``externalUserState`` ``Accepted``, identities
``ExternalAzureAD``; the source's alternative security id is stamped on them
(``Tenant.alternative_security_ids``) so later cycles match them even after the job's
provisioning cache (``connector_data_store``) is reset. Internal target users are never
matched: one with the same mail or UPN is a conflict.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ctsync.emulator.engine import logs
from ctsync.emulator.engine.compiled import (
    AttributeMapping,
    CompiledSchema,
    compiled_schema,
)
from ctsync.emulator.engine.expressions import ExpressionError, Value
from ctsync.emulator.engine.policy_check import (
    LEGACY_CODE,
    PolicyCheck,
    b2b_inbound_blocked,
    invitations_blocked,
)
from ctsync.emulator.engine.scoping import (
    GroupsResult,
    is_external,
    sms_sign_in_number,
    source_view,
)
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import ServicePrincipalSync, SyncJobRecord, Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = [
    "Decision",
    "ExportError",
    "JobContext",
    "Outcome",
    "TargetIndex",
    "apply",
    "connection_error",
    "fingerprint",
    "job_context",
    "object_count",
    "plan",
]

JsonObject = dict[str, Any]

SOURCE = a2a.SOURCE_DIRECTORY
TARGET = a2a.TARGET_DIRECTORY

#: Attributes the create record lists (cts-defaults §3.1: the on-demand create shows these;
#: the record of the follow-up update in the same second lists the rest).
_CREATE_ATTRIBUTES = (
    "IsSoftDeleted",
    "accountEnabled",
    "displayName",
    "mailNickname",
    "alternativeSecurityIds",
    "showInAddressList",
    "userType",
    "preferredLanguage",
)
#: How a restore's record shows the user coming back.
_UNDELETED: logs.Modified = ("IsSoftDeleted", "True", "False")
#: Source attributes the import step of a log record shows.
DETAIL_KEYS = (
    "objectId",
    "accountEnabled",
    "department",
    "displayName",
    "mailNickname",
    "userPrincipalName",
    "netId",
    "showInAddressList",
    "alternativeSecurityIds",
    "IsSoftDeleted",
    "appRoleAssignments",
)
REDUNDANT_EXPORT = "The state of the user in both the source and target systems already match."
FORBIDDEN_REASON = (
    "Guest invitations not allowed for your company. Contact your company administrator for "
    "more details."
)


# -- per-pass context ------------------------------------------------------------------------


@dataclass
class TargetIndex:
    """Lookups into a target tenant that stay valid while one engine pass writes to it."""

    #: alternative security id -> target user id (active or soft-deleted).
    by_stamp: dict[str, str]
    #: lower-cased mail / UPN / proxy address -> ids of *internal* users holding it.
    internal: dict[str, list[str]]
    #: Exports the engine made into the target since the index was built.
    writes: int = 0

    @classmethod
    def build(cls, target: Tenant) -> TargetIndex:
        internal: dict[str, list[str]] = {}
        for uid, user in target.users.items():
            if is_external(user):
                continue
            for key in _address_keys(user):
                internal.setdefault(key, []).append(uid)
        by_stamp = {stamp: uid for uid, stamp in target.alternative_security_ids.items()}
        return cls(by_stamp, internal)


def _address_keys(user: Mapping[str, Any]) -> set[str]:
    keys = {str(user.get("mail") or "").lower(), str(user.get("userPrincipalName") or "").lower()}
    for proxy in user.get("proxyAddresses") or []:
        keys.add(str(proxy).split(":", 1)[-1].lower())
    keys.update(str(m).lower() for m in user.get("otherMails") or [])
    keys.discard("")
    return keys


@dataclass
class JobContext:
    """Everything one engine pass needs about one job, computed once per pass."""

    emulator: Emulator
    source: Tenant
    sp: JsonObject
    sync: ServicePrincipalSync
    record: SyncJobRecord
    #: ``CompanyId``; the target tenant when the emulator holds it.
    target_tenant_id: str
    target: Tenant | None
    policy: PolicyCheck | None
    #: The job's schema, compiled (``engine/compiled.py``).
    compiled: CompiledSchema
    sync_all: bool
    #: Users in scope by assignment: assigned directly or direct members of an assigned group.
    entitled: set[str]
    #: Direct groups of each user (for group-targeted B2B collaboration settings).
    groups_of: dict[str, list[str]]
    target_index: TargetIndex | None
    delete_threshold: int | None
    source_directory_id: str | None = None
    target_directory_id: str | None = None
    #: What expressions read besides attributes (``tenantId``, ``defaultDomain``).
    expression_context: dict[str, str] = field(default_factory=dict)
    #: Groups assigned to the configuration app (group provisioning's scope without
    #: ``SyncAll``).
    assigned_groups: set[str] = field(default_factory=set)

    @property
    def mapping(self) -> JsonObject | None:
        return self.compiled.mapping

    @property
    def flow_types(self) -> frozenset[str]:
        return self.compiled.flow_types


def _entitlements(source: Tenant, sp_id: str) -> tuple[set[str], dict[str, list[str]], set[str]]:
    """Users in scope by assignment, each user's direct groups, the groups assigned."""
    groups_of: dict[str, list[str]] = {}
    for gid, members in source.group_members.items():
        for member in members:
            groups_of.setdefault(member, []).append(gid)
    entitled: set[str] = set()
    assigned_groups: set[str] = set()
    for assignment in source.app_role_assignments.get(sp_id, {}).values():
        principal = str(assignment.get("principalId") or "")
        if assignment.get("principalType") == "Group" or principal in source.groups:
            assigned_groups.add(principal)
            # Direct members only: a nested group's members are not in scope.
            entitled.update(m for m in source.group_members.get(principal, []) if m in source.users)
        else:
            entitled.add(principal)
    return entitled, groups_of, assigned_groups


def _delete_threshold(sync: ServicePrincipalSync, default: int) -> int | None:
    """The accidental-deletion threshold from ``SyncNotificationSettings`` (None: off)."""
    raw = sync.secret("SyncNotificationSettings")
    if raw is None:
        return default
    try:
        settings = json.loads(raw)
    except ValueError:
        return default
    if not isinstance(settings, dict):
        return default
    if settings.get("DeleteThresholdEnabled") is not True:
        return None
    value = settings.get("DeleteThresholdValue", default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def job_context(
    emulator: Emulator,
    *,
    source: Tenant,
    sp_id: str,
    sync: ServicePrincipalSync,
    record: SyncJobRecord,
    indexes: dict[str, TargetIndex],
) -> JobContext:
    """Build a job's context; ``indexes`` caches one :class:`TargetIndex` per target tenant."""
    from ctsync.emulator.engine.policy_check import check_cross_tenant_sync

    company = str(sync.secret("CompanyId") or "").lower()
    target = emulator.tenants.get(company) if company and company != source.id else None
    policy = check_cross_tenant_sync(emulator, source, company) if company else None
    index = None
    if target is not None:
        index = indexes.get(target.id)
        if index is None:
            index = indexes[target.id] = TargetIndex.build(target)
    entitled, groups_of, assigned_groups = _entitlements(source, sp_id)
    directories = record.schema.get("directories") or []
    return JobContext(
        emulator=emulator,
        source=source,
        sp=source.service_principals.get(sp_id) or {"id": sp_id},
        sync=sync,
        record=record,
        target_tenant_id=company,
        target=target,
        policy=policy,
        compiled=compiled_schema(emulator, record),
        sync_all=str(sync.secret("SyncAll") or "").lower() == "true",
        entitled=entitled,
        groups_of=groups_of,
        target_index=index,
        delete_threshold=_delete_threshold(sync, emulator.provisioning.delete_threshold),
        source_directory_id=(directories[0] or {}).get("id") if directories else None,
        target_directory_id=(directories[1] or {}).get("id") if len(directories) > 1 else None,
        expression_context={"tenantId": source.id, "defaultDomain": _default_domain(source)},
        assigned_groups=assigned_groups,
    )


def fingerprint(ctx: JobContext, user_id: str) -> str | None:
    """What a delta query would notice about a source user; ``None`` when it is gone."""
    user = ctx.source.users.get(user_id)
    if user is None:
        return None
    ctx.emulator.engine_stats["users_fingerprinted"] += 1
    parts = [
        _FINGERPRINT.encode(user),
        str(sms_sign_in_number(ctx.source, user_id)),
        str(ctx.sync_all or user_id in ctx.entitled),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


#: What ``json.dumps(user, sort_keys=True, default=str)`` does, made once.
_FINGERPRINT = json.JSONEncoder(sort_keys=True, default=str)


# -- decisions -------------------------------------------------------------------------------


@dataclass(slots=True)
class Change:
    """One exported attribute: its schema name, the Graph property/value, old/new text."""

    attribute: str
    prop: str | None
    value: Any
    old: str | None
    new: str


@dataclass(slots=True)
class Decision:
    source_id: str
    #: The source user (or its last known state when deleted in the source).
    user: JsonObject
    view: dict[str, Any]
    deleted_in_source: bool
    assigned: bool
    input_filter: GroupsResult
    scope_filter: GroupsResult
    in_scope: bool
    target_id: str | None
    target_user: JsonObject | None
    target_soft_deleted: bool
    #: create, update, disable, delete, restore, skip
    action: str
    skip_code: str | None = None
    skip_reason: str | None = None
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The alternative security id the target user carries (create, re-match).
    stamp: str | None = None
    #: True when the target user was found by its stamp rather than the cache.
    rematched: bool = False

    @property
    def upn(self) -> str:
        return str(self.user.get("userPrincipalName") or self.source_id)

    def slim(self) -> Decision:
        """The decision keeping of its source view only what its log records show."""
        self.view = {k: self.view.get(k) for k in DETAIL_KEYS}
        return self

    @property
    def exports(self) -> bool:
        return self.action in {"create", "update", "disable", "delete", "restore"}

    @property
    def deprovisions(self) -> bool:
        """Counts toward the accidental-deletion threshold (deletes and disables)."""
        return self.action in {"delete", "disable"}


def _find_target(ctx: JobContext, source_id: str, stamp: str | None) -> tuple[str | None, bool]:
    target = ctx.target
    if target is None:
        return None, False
    linked = ctx.record.connector_data_store.get(source_id)
    if linked and (linked in target.users or linked in target.deleted_users):
        return linked, False
    if stamp and ctx.target_index is not None:
        found = ctx.target_index.by_stamp.get(stamp)
        if found and (found in target.users or found in target.deleted_users):
            return found, True
    return None, False


def _export(
    mapping: AttributeMapping,
    prop: str,
    value: str,
    target: Tenant | None,
    target_user: JsonObject | None,
    *,
    creating: bool,
) -> Change | None:
    """The change one exported mapping asks for (``None``: the target holds it already)."""
    attribute = mapping.attribute
    kind = mapping.value_kind
    shown = value
    graph_value: Any = value
    if kind == "boolean":
        flag = value.strip().lower() == "true"
        graph_value, shown = flag, ("True" if flag else "False")
    elif kind == "list":
        graph_value = [value]
    upn = attribute == "userPrincipalName"
    if upn and target is not None:
        graph_value = _ext_upn(value, target)
    if creating or target_user is None:
        return Change(attribute, prop, graph_value, None, shown)
    old = _current_text(target_user, prop)
    new = graph_value if upn else shown
    if (mapping.add_only and old) or old == new:
        return None
    return Change(attribute, prop, graph_value, old, new)


def _current_text(target_user: Mapping[str, Any], prop: str) -> str | None:
    if prop.startswith("onPremisesExtensionAttributes."):
        value = (target_user.get("onPremisesExtensionAttributes") or {}).get(prop.split(".", 1)[1])
    else:
        value = target_user.get(prop)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _ext_upn(upn: str, target: Tenant) -> str:
    return f"{upn.replace('@', '_')}#EXT#@{target.domain}"


def _evaluate_mappings(
    ctx: JobContext,
    view: dict[str, Any],
    *,
    creating: bool,
    target_user: JsonObject | None,
    stamp: tuple[Value, str | None],
) -> tuple[list[Change], list[str], str | None]:
    """Changes the mappings ask for; warnings for mappings skipped; the stamp. ``stamp`` is the
    matching mapping's value (or its error), evaluated once by :func:`plan`."""
    changes: list[Change] = []
    warnings: list[str] = []
    found_stamp: str | None = None
    context = ctx.expression_context
    matching = ctx.compiled.stamp
    target = ctx.target
    for mapping in ctx.compiled.attributes:
        attribute = mapping.attribute
        error: str | None = None
        if mapping is matching:
            raw, error = stamp
        elif mapping.evaluate is None:
            raw, error = None, mapping.error
        else:
            try:
                raw = mapping.evaluate(view, context)
            except ExpressionError as exc:
                raw, error = None, str(exc)
        if error is not None:
            warnings.append(f"Attribute mapping for '{attribute}' skipped: {error}")
            continue
        if raw is None:
            raw = mapping.default
        value = (raw[0] if raw else None) if isinstance(raw, list) else raw
        role = mapping.role
        if role == "matching":
            found_stamp = value
            if creating and value is not None:
                changes.append(Change(attribute, None, None, None, "(1 values)"))
            continue
        if role == "internal":
            if attribute == "IsSoftDeleted" and creating and value is not None:
                changes.append(Change(attribute, None, None, None, value))
            continue
        if value is None:
            # Null values are never provisioned (and never clear a target value).
            continue
        if not creating and mapping.object_add_only:
            continue
        if mapping.prop is None:
            warnings.append(
                f"Attribute mapping for '{attribute}' skipped: the target has no attribute "
                f"'{attribute}' (SchemaAttributeNotFound)."
            )
            continue
        change = _export(mapping, mapping.prop, value, target, target_user, creating=creating)
        if change is not None:
            changes.append(change)
    return changes, warnings, found_stamp


def _default_domain(tenant: Tenant) -> str:
    return tenant.verified_domains[0] if tenant.verified_domains else tenant.domain


def plan(ctx: JobContext, source_id: str) -> Decision | None:
    """Decide what to do with one source user; ``None`` when there is nothing to evaluate
    (a user gone from the source that this job never provisioned)."""
    user = ctx.source.users.get(source_id)
    deleted = user is None or user.get("deletedDateTime") is not None
    if user is None:
        user = ctx.source.deleted_users.get(source_id)
    if user is None:
        linked = ctx.record.connector_data_store.get(source_id)
        if linked is None:
            return None
        user = {"id": source_id, "displayName": None, "userPrincipalName": None}
    ctx.emulator.engine_stats["users_planned"] += 1
    assigned = not deleted and (ctx.sync_all or source_id in ctx.entitled)
    view = source_view(ctx.source, user, deleted=deleted, assigned=assigned)
    compiled = ctx.compiled
    input_filter = compiled.input_filter.evaluate(view)
    scope_filter = compiled.scope_filter.evaluate(view)
    stamp_value = _stamp_value(ctx, view)
    stamp_preview = _stamp_preview(stamp_value)
    target_id, rematched = _find_target(ctx, source_id, stamp_preview)
    target_user: JsonObject | None = None
    soft_deleted = False
    if target_id is not None and ctx.target is not None:
        target_user = ctx.target.users.get(target_id)
        if target_user is None:
            target_user = ctx.target.deleted_users.get(target_id)
            soft_deleted = True
    in_scope = assigned and input_filter.passed and scope_filter.passed and not deleted
    decision = Decision(
        source_id=source_id,
        user=user,
        view=view,
        deleted_in_source=deleted,
        assigned=assigned,
        input_filter=input_filter,
        scope_filter=scope_filter,
        in_scope=in_scope,
        target_id=target_id,
        target_user=target_user,
        target_soft_deleted=soft_deleted,
        action="skip",
        stamp=stamp_preview,
        rematched=rematched,
    )
    flows = compiled.flow_types
    if compiled.mapping is None or not compiled.enabled:
        return _skip(
            decision,
            "EntrySynchronizationSkipped",
            "The user object mapping is disabled: no user is provisioned.",
        )
    if not deleted and not input_filter.passed:
        # The built-in input filter: skipped, never deprovisioned.
        reason = _input_filter_reason(ctx, user, input_filter)
        return _skip(decision, "EntrySynchronizationSkipped", reason)
    if not in_scope:
        return _leave_scope(ctx, decision, flows)
    if target_user is None:
        if user.get("accountEnabled") is False:
            return _skip(
                decision,
                "EntrySynchronizationSkipped",
                f"The User '{decision.upn}' is disabled in {SOURCE} and has no counterpart in "
                f"{TARGET}: a disabled user is not created.",
            )
        if "Add" not in flows:
            return _skip(
                decision, "EntrySynchronizationSkipped", "Creating users is disabled (flowTypes)."
            )
        changes, warnings, stamp = _evaluate_mappings(
            ctx, view, creating=True, target_user=None, stamp=stamp_value
        )
        decision.action, decision.changes, decision.warnings = "create", changes, warnings
        decision.stamp = stamp
        return decision
    changes, warnings, _ = _evaluate_mappings(
        ctx, view, creating=False, target_user=target_user, stamp=stamp_value
    )
    decision.changes, decision.warnings = changes, warnings
    if soft_deleted:
        decision.action = "restore"
        return decision
    if "Update" not in flows:
        return _skip(decision, "EntrySynchronizationSkipped", "Updates are disabled (flowTypes).")
    if not changes:
        return _skip(decision, "RedundantExport", REDUNDANT_EXPORT)
    disabling = any(c.attribute == "accountEnabled" and c.value is False for c in changes)
    decision.action = "disable" if disabling else "update"
    return decision


def _stamp_value(ctx: JobContext, view: dict[str, Any]) -> tuple[Value, str | None]:
    """The matching mapping's value, or the error evaluating it gave (its text)."""
    matching = ctx.compiled.stamp
    if matching is None:
        return None, None
    try:
        return matching.value(view, ctx.expression_context), None
    except ExpressionError as exc:
        return None, str(exc)


def _stamp_preview(stamp: tuple[Value, str | None]) -> str | None:
    """The alternative security id to match on (``None`` without one)."""
    value, error = stamp
    if error is not None:
        return None
    if isinstance(value, list):
        return value[0] if value else None
    return value or None


def _skip(decision: Decision, code: str, reason: str) -> Decision:
    decision.action = "skip"
    decision.skip_code = code
    decision.skip_reason = reason
    return decision


def _input_filter_reason(
    ctx: JobContext, user: Mapping[str, Any], input_filter: GroupsResult
) -> str:
    upn = user.get("userPrincipalName")
    failed = ", ".join(f'"{c.label}"' for c in input_filter.failed)
    if is_external(user):
        why = (
            "the user is an external user (userType Guest or an invited B2B user); only internal "
            "members of the source tenant can be synchronized"
        )
    elif sms_sign_in_number(ctx.source, str(user.get("id"))) is not None:
        why = (
            "SMS sign-in is enabled for the user's phone; disable SMS sign-in for the user, then "
            "retry"
        )
    else:
        why = "the user does not pass the built-in input filter"
    return f"The User '{upn}' will be skipped: {failed} is false ({why})."


def _leave_scope(ctx: JobContext, decision: Decision, flows: frozenset[str]) -> Decision:
    """An out-of-scope user: skip it, or deprovision what this job provisioned."""
    if decision.deleted_in_source:
        why = f"The User '{decision.upn}' was deleted in {SOURCE}."
        code = "EntrySynchronizationSkipped"
    elif not decision.assigned:
        why = (
            f"The User '{decision.upn}' will be skipped due to the following reasons: 1) This "
            "object is not assigned to the application. If you did not expect the object to be "
            "skipped, update provisioning scope to 'Sync all users and groups' or assign the "
            "object to the application with entitlement of provisioning category. 2) This "
            "object does not have required entitlement for provisioning. If you did not expect "
            "the object to be skipped, please update the provisioning scope to 'Sync all users "
            "and groups' or assign the object to the application."
        )
        code = "NotEffectivelyEntitled"
    else:
        failed = ", ".join(f'"{c.label}"' for c in decision.scope_filter.failed)
        why = (
            f"The User '{decision.upn}' is out of scope: the scoping filter evaluation failed "
            f"({failed} is false)."
        )
        code = "EntrySynchronizationSkipped"
    target_user = decision.target_user
    if target_user is None or decision.target_soft_deleted:
        return _skip(decision, code, why)
    if decision.user.get("accountEnabled") is False and target_user.get("accountEnabled") is False:
        return _skip(
            decision,
            "EntrySynchronizationSkipped",
            why + " The user is disabled in both systems, so it is not deleted.",
        )
    if "Delete" not in flows:
        return _skip(
            decision,
            "EntrySynchronizationSkipped",
            why + f" The User was not deleted in {TARGET} because deletes are disabled.",
        )
    decision.action = "delete"
    decision.skip_reason = why
    decision.changes = [Change("IsSoftDeleted", None, None, "False", "True")]
    return decision


# -- exports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportError:
    code: str
    reason: str
    category: str = "nonServiceFailure"
    recommended: str | None = None


def object_count(tenant: Tenant) -> int:
    """The directory objects that count against the tenant's quota."""
    return (
        len(tenant.users)
        + len(tenant.deleted_users)
        + len(tenant.groups)
        + len(tenant.applications)
        + len(tenant.service_principals)
    )


def connection_error(ctx: JobContext) -> ExportError | None:
    """Why no export of the job can reach its target (the connection test), if it cannot."""
    policy = ctx.policy
    if ctx.target is None or policy is None:
        return ExportError(
            LEGACY_CODE,
            f"The target tenant '{ctx.target_tenant_id or '(no CompanyId)'}' could not be "
            "reached with the saved credentials.",
        )
    if not policy.ok:
        return ExportError(
            LEGACY_CODE,
            policy.message + " " + " ".join(f.message for f in policy.failures),
            recommended=(
                "Allow automatic redemption on both tenants and inbound user synchronization in "
                "the target tenant."
            ),
        )
    return None


def _export_error(ctx: JobContext, decision: Decision) -> ExportError | None:
    error = connection_error(ctx)
    if error is not None or decision.action != "create":
        return error
    target = ctx.target
    assert target is not None
    if invitations_blocked(target) or b2b_inbound_blocked(
        target, ctx.source.id, decision.source_id, ctx.groups_of.get(decision.source_id, [])
    ):
        return ExportError(
            "AzureActiveDirectoryForbidden",
            FORBIDDEN_REASON,
            recommended="Allow invitations in the target tenant's external collaboration settings.",
        )
    addresses = {str(decision.user.get("mail") or "").lower(), decision.upn.lower()} - {""}
    index = ctx.target_index
    clash = sorted({uid for a in addresses for uid in (index.internal.get(a, []) if index else [])})
    if clash:
        return ExportError(
            "InvitationCreationFailureAmbiguousUser",
            f"The invited user has a proxy address that matches an internal user in the target "
            f"tenant ({', '.join(clash)}). The proxy address must be unique.",
            recommended="Delete the internal user in the target tenant or remove this user "
            "from the scope of sync.",
        )
    if object_count(target) >= target.object_quota:
        return ExportError(
            "AzureActiveDirectoryQuotaLimitExceeded",
            f"The number of objects in the target tenant exceeds its directory quota "
            f"({target.object_quota}).",
            recommended="Increase the directory quota of the target tenant.",
        )
    user_type = next((c.value for c in decision.changes if c.attribute == "userType"), "Member")
    if user_type not in {"Member", "Guest"}:
        return ExportError(
            "InvitationCreationFailureInvalidPropertyValue",
            f"userType '{user_type}' is neither Guest nor Member.",
        )
    return None


def _create(ctx: JobContext, decision: Decision, at: datetime) -> str:
    target = ctx.target
    assert target is not None
    ids = ctx.emulator.ids
    uid = ids.guid()
    when = logs.iso(at, fraction=False)
    user: JsonObject = {
        "id": uid,
        "accountEnabled": True,
        "userType": "Member",
        "creationType": "Invitation",
        "externalUserState": "Accepted",
        "externalUserStateChangeDateTime": when,
        "createdDateTime": when,
        "deletedDateTime": None,
        "showInAddressList": None,
        "businessPhones": [],
        "otherMails": [],
        "proxyAddresses": [],
        "identities": [],
        "onPremisesSyncEnabled": None,
    }
    for change in decision.changes:
        _set(user, change)
    upn = user.get("userPrincipalName") or _ext_upn(decision.upn, target)
    user["userPrincipalName"] = upn
    if user.get("mail"):
        user["otherMails"] = [user["mail"]]
    user["identities"] = [
        {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None},
        {"signInType": "userPrincipalName", "issuer": target.domain, "issuerAssignedId": upn},
    ]
    target.users[uid] = user
    target.created_at[f"user:{uid}"] = at
    if decision.stamp:
        target.alternative_security_ids[uid] = decision.stamp
        if ctx.target_index is not None:
            ctx.target_index.by_stamp[decision.stamp] = uid
    return uid


def _set(user: JsonObject, change: Change) -> None:
    prop = change.prop
    if prop is None:
        return
    value = change.value
    if prop.startswith("onPremisesExtensionAttributes."):
        extensions = dict(user.get("onPremisesExtensionAttributes") or {})
        extensions[prop.split(".", 1)[1]] = value
        user["onPremisesExtensionAttributes"] = extensions
        return
    user[prop] = value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)
    if prop == "userPrincipalName":
        for identity in user.get("identities") or []:
            if identity.get("signInType") == "userPrincipalName":
                identity["issuerAssignedId"] = value
    elif prop == "mail":
        user["otherMails"] = [value]


#: Values :func:`_set` stores as they are (anything else is copied).
_IMMUTABLE = (str, bool, type(None))


def _execute(ctx: JobContext, decision: Decision, at: datetime) -> str | None:
    """Carry out an export in the target; the target user id."""
    target = ctx.target
    assert target is not None
    if decision.action == "create":
        return _create(ctx, decision, at)
    target_id = decision.target_id
    assert target_id is not None
    if decision.action == "delete":
        user = target.users.pop(target_id)
        user["deletedDateTime"] = logs.iso(at, fraction=False)
        target.deleted_users[target_id] = user
        return target_id
    if decision.action == "restore":
        user = target.deleted_users.pop(target_id)
        user["deletedDateTime"] = None
        target.users[target_id] = user
    user = target.users[target_id]
    for change in decision.changes:
        _set(user, change)
    return target_id


class _Scoped(Protocol):
    """What a record's shared steps read (a user's or a group's step recipe, read-only)."""

    @property
    def deleted_in_source(self) -> bool: ...
    @property
    def assigned(self) -> bool: ...
    @property
    def input_filter(self) -> GroupsResult: ...
    @property
    def scope_filter(self) -> GroupsResult: ...
    @property
    def sync_all(self) -> bool: ...
    @property
    def on_demand(self) -> bool: ...
    @property
    def matched(self) -> bool: ...
    @property
    def target_id(self) -> str | None: ...
    @property
    def skip_code(self) -> str | None: ...
    @property
    def skip_reason(self) -> str | None: ...


def scope_details(recipe: _Scoped, *, extra: Mapping[str, str]) -> dict[str, Any]:
    """The scoping step's details: in the source, assigned, ``extra``, the filters' verdict."""
    details: dict[str, Any] = {
        "Active in the source system": "False" if recipe.deleted_in_source else "True",
        "Assigned to the application": "True" if recipe.assigned else "False",
        **extra,
        "Scoping filter evaluation passed": (
            "True" if recipe.input_filter.passed and recipe.scope_filter.passed else "False"
        ),
        "ScopeEvaluationResult": json.dumps(
            {**recipe.input_filter.scope_evaluation(), **recipe.scope_filter.scope_evaluation()}
        ),
    }
    if recipe.sync_all:
        details["Scope sync all"] = "True"
    return details


def opening_steps(
    *,
    noun: str,
    name: str,
    kind: str,
    on_demand: bool,
    details: dict[str, Any],
    scope: dict[str, Any],
    skipped: bool,
    warnings: Iterable[str],
) -> list[logs.Step]:
    """What every record of a ``noun`` (User, Group) starts with: the import, the scoping
    (``skipped``: out of scope and nothing else happens), the warnings."""
    if on_demand:
        text = f"Retrieved {noun} '{name}' from {SOURCE}"
        steps = [logs.step("EntryImport", "import", "success", text, details)]
    else:
        text = f"Received {noun} '{name}' change of type ({kind}) from {SOURCE}"
        steps = [logs.step(f"EntryImport{kind}", "import", "success", text, details)]
    steps.append(
        logs.step(
            "EntrySynchronizationScoping",
            "scoping",
            "skipped" if skipped else "success",
            f"Determine if {noun} in scope by evaluating against each scoping filter",
            scope,
        )
    )
    steps.extend(
        logs.step("EntrySynchronizationWarning", "processing", "warning", warning, {})
        for warning in warnings
    )
    return steps


def skip_steps(recipe: _Scoped, *, noun: str, name: str) -> list[logs.Step]:
    """A skipped ``noun``'s last steps: what matching found, and why nothing was exported."""
    description = recipe.skip_reason or ""
    if recipe.skip_code == "RedundantExport":
        description += f" No change to the {noun} '{name}' currently needs to be made."
    return [
        logs.step(
            "EntryImport" if recipe.on_demand else "EntrySynchronizationUpdate",
            "matching",
            "success",
            f"Retrieved '{name}' from {TARGET}"
            if recipe.matched
            else f"No {noun} found in {TARGET}",
            {"objectId": recipe.target_id or ""},
        ),
        logs.step(
            "EntrySynchronizationSkip",
            "export",
            "skipped",
            description,
            {"SkipReason": recipe.skip_code or ""},
        ),
    ]


@dataclass(slots=True)
class StepRecipe:
    """What a record keeps instead of its ``provisioningSteps``: everything they say, built
    into steps only when the record is read (``logs.LogEntry``); never changed once made."""

    on_demand: bool
    #: The import's change type: Add (initial cycle), Update, Delete.
    kind: str
    upn: str
    #: The import step's details: the source view's :data:`DETAIL_KEYS`, null as "".
    details: tuple[Any, ...]
    deleted_in_source: bool
    assigned: bool
    input_filter: GroupsResult
    scope_filter: GroupsResult
    sync_all: bool
    warnings: tuple[str, ...]
    in_scope: bool
    #: The record's provisioningAction: other (a skip), stagedDelete, or the export's.
    action: str
    matched: bool
    target_id: str | None
    skip_code: str | None
    skip_reason: str | None
    #: The decision's action (create, update, restore, disable, delete, skip).
    op: str
    failed: bool
    staged: bool

    @classmethod
    def of(
        cls,
        ctx: JobContext,
        decision: Decision,
        *,
        on_demand: bool,
        initial: bool,
        action: str,
        error: ExportError | None,
        staged: bool,
    ) -> StepRecipe:
        view = decision.view
        return cls(
            on_demand=on_demand,
            kind="Delete" if decision.deleted_in_source else ("Add" if initial else "Update"),
            upn=decision.upn,
            details=tuple("" if view.get(k) is None else view.get(k) for k in DETAIL_KEYS),
            deleted_in_source=decision.deleted_in_source,
            assigned=decision.assigned,
            input_filter=decision.input_filter,
            scope_filter=decision.scope_filter,
            sync_all=ctx.sync_all,
            warnings=tuple(decision.warnings),
            in_scope=decision.in_scope,
            action=action,
            matched=decision.target_user is not None,
            target_id=decision.target_id,
            skip_code=decision.skip_code,
            skip_reason=decision.skip_reason,
            op=decision.action,
            failed=error is not None,
            staged=staged,
        )

    def build(self) -> list[logs.Step]:
        upn = self.upn
        details = dict(zip(DETAIL_KEYS, self.details, strict=True))
        action = self.action
        out_of_scope = not self.in_scope
        steps = opening_steps(
            noun="User",
            name=upn,
            kind=self.kind,
            on_demand=self.on_demand,
            details=details,
            scope=scope_details(
                self,
                extra={"User has the required role": "True" if self.assigned else "False"},
            ),
            skipped=out_of_scope and action == "other",
            warnings=self.warnings,
        )
        if action == "other" and out_of_scope:
            return steps
        verb = {
            "create": "created",
            "update": "updated",
            "disable": "disabled",
            "delete": "deleted",
            "stagedDelete": "deleted",
            "restore": "restored",
        }
        if action == "other":
            return steps + skip_steps(self, noun="User", name=upn)
        op = self.op
        if op == "create":
            match_text = (
                f"User '{upn}' will be created in {TARGET} (User is active and assigned in "
                f"{SOURCE}, but no matching User was found in {TARGET})"
            )
            match_name = "EntrySynchronizationAdd"
        elif op == "delete":
            match_text = (
                f"User '{upn}' will be deleted in {TARGET} (User is not in scope in {SOURCE}, "
                f"and a matching User was found in {TARGET})"
            )
            match_name = "EntrySynchronizationDelete"
        else:
            match_text = (
                f"User '{upn}' will be {verb[op]} in {TARGET} (User is active and assigned in "
                f"{SOURCE}, and a matching User was found in {TARGET})"
            )
            match_name = "EntrySynchronizationUpdate"
        steps.append(logs.step(match_name, "matching", "success", match_text, {}))
        export_name = {
            "create": "EntryExportAdd",
            "update": "EntryExportUpdate",
            "restore": "EntryExportUpdate",
            "disable": "EntryExportUpdateSoftDelete",
            "delete": "EntryExportDelete",
        }[op]
        reportable = {"ReportableIdentifier": upn}
        if self.staged:
            steps.append(
                logs.step(
                    export_name,
                    "export",
                    "skipped",
                    f"User '{upn}' was not {verb[op]} in {TARGET}: the number of deletions in "
                    "this cycle exceeds the accidental-deletion threshold, so deletions are "
                    "staged.",
                    reportable,
                )
            )
        elif self.failed:
            failed_verb = {"create": "create", "delete": "delete", "disable": "disable"}.get(
                op, "update"
            )
            steps.append(
                logs.step(
                    export_name,
                    "export",
                    "failure",
                    f"Failed to {failed_verb} User '{upn}' in {TARGET}",
                    reportable,
                )
            )
        else:
            steps.append(
                logs.step(
                    export_name,
                    "export",
                    "success",
                    f"User '{upn}' was {verb[op]} in {TARGET}",
                    reportable,
                )
            )
        return steps


@dataclass(slots=True)
class FollowUpSteps:
    """The steps of the update record that follows a create in the same second (cts-defaults
    §3.1): the create's, with an update match and export."""

    main: StepRecipe

    def build(self) -> list[logs.Step]:
        upn = self.main.upn
        steps = [
            s
            if s.kind != "export"
            else logs.step(
                "EntryExportUpdate",
                "export",
                "success",
                f"User '{upn}' was updated in {TARGET}",
                {"ReportableIdentifier": upn},
            )
            for s in self.main.build()
            if s.kind != "matching"
        ]
        steps.insert(
            -1,
            logs.step(
                "EntrySynchronizationUpdate",
                "matching",
                "success",
                f"User '{upn}' will be updated in {TARGET} (User is active and assigned "
                f"in {SOURCE}, and a matching User was found in {TARGET})",
                {},
            ),
        )
        return steps


@dataclass
class Outcome:
    """What :func:`apply` did: the records written and how the export went."""

    decision: Decision
    records: list[logs.LogEntry]
    #: The main record's action and status (``provisioningAction``, ``provisioningResult``).
    action: str
    status: str
    error: ExportError | None = None
    exported: bool = False
    duration_ms: int = 0

    @property
    def steps(self) -> list[logs.Step]:
        """The main record's steps."""
        return self.records[0].steps()


def apply(
    ctx: JobContext,
    decision: Decision,
    *,
    at: datetime,
    rows: logs.RowContext,
    duration_ms: int,
    on_demand: bool = False,
    initial: bool = False,
    staged: bool = False,
) -> Outcome:
    """Export one decision (or record its skip) and build its provisioning-log records."""
    ids = ctx.emulator.ids
    error = _export_error(ctx, decision) if decision.exports and not staged else None
    target_id = decision.target_id
    target_name = str((decision.target_user or {}).get("displayName") or "")
    exported = False
    if decision.rematched and target_id is not None:
        # Matched again on the stamp (the cache was reset): remember the match.
        ctx.record.connector_data_store[decision.source_id] = target_id
    if decision.exports and not staged and error is None:
        target_id = _execute(ctx, decision, at)
        exported = True
        if ctx.target_index is not None:
            ctx.target_index.writes += 1
        if ctx.target is not None:
            # The target may be another job's source: its users changed.
            ctx.emulator.tenant_writes[ctx.target.id] += 1
        if target_id is not None:
            ctx.record.connector_data_store[decision.source_id] = target_id
            if decision.stamp and ctx.target is not None:
                ctx.target.alternative_security_ids.setdefault(target_id, decision.stamp)
            if ctx.target is not None and target_id in ctx.target.users:
                target_name = str(ctx.target.users[target_id].get("displayName") or "")
    if not decision.exports:
        action, status = "other", "skipped"
    elif staged:
        action, status = "stagedDelete", "skipped"
    else:
        action = {"restore": "update"}.get(decision.action, decision.action)
        status = "failure" if error is not None else "success"
    if action == "other":
        info: JsonObject | None = {
            "errorCode": decision.skip_code,
            "reason": decision.skip_reason,
            "additionalDetails": None,
            "errorCategory": None,
            "recommendedAction": None,
        }
    elif staged:
        info = {
            "errorCode": "TooManyDeletes",
            "reason": (
                "The number of deletions and disables in this cycle exceeds the accidental-"
                "deletion threshold; nothing was deleted."
            ),
            "additionalDetails": None,
            "errorCategory": None,
            "recommendedAction": (
                "Review the staged deletions, then restart the job with ForceDeletes to allow "
                "them, or fix the scope and restart."
            ),
        }
    elif error is not None:
        info = {
            "errorCode": error.code,
            "reason": error.reason,
            "additionalDetails": None,
            "errorCategory": error.category,
            "recommendedAction": error.recommended,
        }
    else:
        info = None
    recipe = StepRecipe.of(
        ctx,
        decision,
        on_demand=on_demand,
        initial=initial,
        action=action,
        error=error,
        staged=staged,
    )
    modified: list[logs.Modified] = [(c.attribute, c.old, c.new) for c in decision.changes]
    if decision.action == "restore":
        modified.insert(0, _UNDELETED)
    main_modified = modified
    follow_up: list[logs.Modified] = []
    if decision.action == "create" and exported:
        main_modified = [m for m in modified if m[0] in _CREATE_ATTRIBUTES]
        follow_up = [m for m in modified if m[0] not in _CREATE_ATTRIBUTES]
    activity = logs.iso(at, fraction=False)
    source = logs.source_identity(decision.user)
    records = [
        rows.entry(
            record_id=ids.guid(),
            change_id=ids.guid(),
            at=activity,
            duration_ms=duration_ms,
            action=action,
            status=status,
            error=info,
            source=source,
            target_id=target_id or "",
            target_name=target_name,
            steps=recipe,
            modified=logs.pack_modified(main_modified),
        )
    ]
    if follow_up:
        # A new user shows a create record and, in the same second, an update record with the
        # rest of its attributes (cts-defaults §3.1).
        records.append(
            rows.entry(
                record_id=ids.guid(),
                change_id=ids.guid(),
                at=activity,
                duration_ms=max(duration_ms // 4, 1),
                action="update",
                status="success",
                error=None,
                source=source,
                target_id=target_id or "",
                target_name=target_name,
                steps=FollowUpSteps(recipe),
                modified=logs.pack_modified(follow_up),
            )
        )
    return Outcome(
        decision=decision,
        records=records,
        action=action,
        status=status,
        error=error,
        exported=exported,
        duration_ms=duration_ms,
    )
