"""Group provisioning: what the provisioning service does with one source group.

Cross-tenant synchronization provisions security groups besides B2B users once the job's
schema enables its group object mapping (``sourceObjectName`` ``Group``; off by default) and
the target tenant allows it: its identitySynchronization for the source carries
``groupSyncInbound.isSyncAllowed`` ``true`` (beta only). A cycle takes its groups after its
users, so that the members exist first (:mod:`.cycles`): :func:`queue` lists the groups to
evaluate, :func:`plan` decides for one (create, update, delete, or a skip with its reason),
:func:`apply` carries the decision out in the target and builds its provisioning-log record.
provisionOnDemand shares :func:`plan` and :func:`apply`.

Scope: with ``SyncAll`` every group of the source, otherwise the groups assigned to the
configuration app; only security groups (``securityEnabled``, not mail-enabled, not
``Unified``) are provisioned, the others are skipped; then the group mapping's scoping filter.
A target group is a plain security group (``groupTypes`` ``[]``) made from the mapped
``displayName``, ``description`` and ``mailNickname``. The job remembers it in
``SyncJobRecord.group_store`` and stamps it with the source group's alternative security id
(``Tenant.group_alternative_security_ids``), so a job whose cache was reset matches it again.

Memberships: the job manages only the target users it provisioned itself
(``connector_data_store``): a direct user member of the source group whose target user exists
is added; a member the job provisioned that is no longer a direct member is removed; members
anyone else added are never touched. Nested groups are not members that flow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ctsync.emulator.engine import logs
from ctsync.emulator.engine.compiled import CompiledGroupMapping
from ctsync.emulator.engine.expressions import ExpressionError, Value
from ctsync.emulator.engine.policy_check import GROUP_SYNC_CODE, group_sync_allowed
from ctsync.emulator.engine.provisioner import (
    SOURCE,
    TARGET,
    Change,
    ExportError,
    JobContext,
    connection_error,
    object_count,
    opening_steps,
    scope_details,
    skip_steps,
)
from ctsync.emulator.engine.scoping import GroupsResult, group_view
from ctsync.emulator.state import Tenant

__all__ = [
    "GroupDecision",
    "GroupOutcome",
    "apply",
    "fingerprint",
    "is_security_group",
    "linked_count",
    "managed_members",
    "mapping",
    "plan",
    "queue",
]

JsonObject = dict[str, Any]

#: Source attributes the import step of a group's record shows.
DETAIL_KEYS = (
    "objectId",
    "displayName",
    "description",
    "mailNickname",
    "securityEnabled",
    "mailEnabled",
    "netId",
    "IsSoftDeleted",
    "appRoleAssignments",
    "members",
)
NOT_ALLOWED_REASON = (
    "The target tenant has not enabled inbound group synchronization with this tenant "
    "(identitySynchronization groupSyncInbound.isSyncAllowed is not true): no group is "
    "created, updated or deleted in the target tenant."
)
REDUNDANT_EXPORT = "The state of the group in both the source and target systems already match."


def mapping(ctx: JobContext) -> CompiledGroupMapping | None:
    """The job's group object mapping when it is enabled (``None``: no group provisioning)."""
    group = ctx.compiled.group
    return group if group is not None and group.enabled else None


def is_security_group(group: Mapping[str, Any]) -> bool:
    """A security group: security-enabled, not mail-enabled, not a Microsoft 365 group."""
    return (
        group.get("securityEnabled") is True
        and group.get("mailEnabled") is not True
        and "Unified" not in (group.get("groupTypes") or [])
    )


def managed_members(ctx: JobContext) -> frozenset[str]:
    """The target users the job provisioned: the only members it adds or removes."""
    return frozenset(ctx.record.connector_data_store.values())


def linked_count(ctx: JobContext) -> int:
    """The job's groups present in the target (``Group to Group`` in the job status)."""
    target = ctx.target
    if target is None:
        return 0
    return sum(1 for tid in ctx.record.group_store.values() if tid in target.groups)


# -- which groups a cycle evaluates ----------------------------------------------------------


def _member_links(ctx: JobContext, group_id: str) -> list[str]:
    """Each direct user member and the target user the job provisioned for it ("" for none)."""
    cache = ctx.record.connector_data_store
    target_users = ctx.target.users if ctx.target is not None else {}
    users = ctx.source.users
    out: list[str] = []
    for member in ctx.source.group_members.get(group_id, []):
        if member in users:
            linked = cache.get(member)
            out.append(f"{member}>{linked if linked in target_users else ''}")
    return out


def fingerprint(ctx: JobContext, group_id: str) -> str | None:
    """What a delta query would notice about a source group (the group, its direct members
    and which of them the job provisioned, its assignment); ``None`` when it is gone."""
    group = ctx.source.groups.get(group_id)
    if group is None:
        return None
    parts = [
        _FINGERPRINT.encode(group),
        *_member_links(ctx, group_id),
        str(ctx.sync_all or group_id in ctx.assigned_groups),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


_FINGERPRINT = json.JSONEncoder(sort_keys=True, default=str)


def queue(ctx: JobContext, *, initial: bool) -> list[str]:
    """The groups a cycle evaluates once its users are done: every source group on an initial
    cycle, otherwise those whose fingerprint changed since last seen; then the groups seen,
    linked or escrowed that are gone from the source. Nothing without the group mapping."""
    if mapping(ctx) is None:
        return []
    record = ctx.record
    groups = ctx.source.groups
    order: dict[str, None] = {}
    for gid in groups:
        if initial or record.seen_groups.get(gid) != fingerprint(ctx, gid):
            order[gid] = None
    for known in (record.seen_groups, record.group_store, record.group_escrows):
        order.update((gid, None) for gid in known if gid not in groups)
    order.update(dict.fromkeys(record.group_escrows))
    return list(order)


# -- decisions -------------------------------------------------------------------------------


@dataclass(slots=True)
class GroupDecision:
    source_id: str
    #: The source group (its last known name when deleted in the source).
    group: JsonObject
    view: dict[str, Value]
    deleted_in_source: bool
    assigned: bool
    security: bool
    input_filter: GroupsResult
    scope_filter: GroupsResult
    in_scope: bool
    target_id: str | None
    target_group: JsonObject | None
    #: create, update, delete, skip
    action: str = "skip"
    skip_code: str | None = None
    skip_reason: str | None = None
    changes: list[Change] = field(default_factory=list)
    #: Target user ids to add to / remove from the target group.
    add_members: list[str] = field(default_factory=list)
    remove_members: list[str] = field(default_factory=list)
    #: Direct user members the job has not provisioned (user principal names).
    unresolved: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stamp: str | None = None
    #: The target group was found by its stamp rather than the job's map.
    rematched: bool = False
    #: A skip that also drops the group from the job's map (out of scope, deletes disabled).
    forget: bool = False

    @property
    def name(self) -> str:
        return str(self.group.get("displayName") or self.source_id)

    @property
    def exports(self) -> bool:
        return self.action in {"create", "update", "delete"}


def _find_target(ctx: JobContext, group_id: str, stamp: str | None) -> tuple[str | None, bool]:
    target = ctx.target
    if target is None:
        return None, False
    linked = ctx.record.group_store.get(group_id)
    if linked is not None and linked in target.groups:
        return linked, False
    if stamp:
        for tid, stamped in target.group_alternative_security_ids.items():
            if stamped == stamp and tid in target.groups:
                return tid, True
    return None, False


def _stamp(ctx: JobContext, group_mapping: CompiledGroupMapping, view: dict[str, Value]) -> str:
    matching = group_mapping.stamp
    if matching is None:
        return ""
    try:
        value = matching.value(view, ctx.expression_context)
    except ExpressionError:
        return ""
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def plan(ctx: JobContext, group_id: str, *, managed: Collection[str]) -> GroupDecision | None:
    """Decide what to do with one source group (the group mapping must be enabled);
    ``None`` when there is nothing to evaluate (a group gone from the source that the job
    never provisioned). ``managed`` is :func:`managed_members`."""
    group_mapping = ctx.compiled.group
    assert group_mapping is not None
    source = ctx.source
    target = ctx.target
    group = source.groups.get(group_id)
    deleted = group is None
    if group is None:
        linked = ctx.record.group_store.get(group_id)
        known = target.groups.get(linked) if target is not None and linked else None
        if known is None:
            return None
        group = {"id": group_id, "displayName": known.get("displayName")}
    ctx.emulator.engine_stats["groups_planned"] += 1
    members = [] if deleted else list(source.group_members.get(group_id, []))
    assigned = not deleted and (ctx.sync_all or group_id in ctx.assigned_groups)
    view = group_view(group, members=members, deleted=deleted, assigned=assigned)
    input_filter = group_mapping.input_filter.evaluate(view)
    scope_filter = group_mapping.scope_filter.evaluate(view)
    security = not deleted and is_security_group(group)
    stamp = _stamp(ctx, group_mapping, view) or None
    target_id, rematched = _find_target(ctx, group_id, stamp)
    decision = GroupDecision(
        source_id=group_id,
        group=group,
        view=view,
        deleted_in_source=deleted,
        assigned=assigned,
        security=security,
        input_filter=input_filter,
        scope_filter=scope_filter,
        in_scope=assigned and security and input_filter.passed and scope_filter.passed,
        target_id=target_id,
        target_group=target.groups.get(target_id) if target is not None and target_id else None,
        stamp=stamp,
        rematched=rematched,
    )
    if not deleted and not input_filter.passed:
        failed = ", ".join(f'"{c.label}"' for c in input_filter.failed)
        return _skip(
            decision,
            "EntrySynchronizationSkipped",
            f"The Group '{decision.name}' will be skipped: {failed} is false.",
        )
    if not decision.in_scope:
        return _leave_scope(decision, group_mapping.flow_types)
    return _in_scope(ctx, decision, group_mapping, members, managed)


def _skip(decision: GroupDecision, code: str, reason: str) -> GroupDecision:
    decision.action = "skip"
    decision.skip_code = code
    decision.skip_reason = reason
    return decision


def _leave_scope(decision: GroupDecision, flows: frozenset[str]) -> GroupDecision:
    """An out-of-scope group: skip it, or delete (or forget) the group this job provisioned."""
    name = decision.name
    code = "EntrySynchronizationSkipped"
    if decision.deleted_in_source:
        why = f"The Group '{name}' was deleted in {SOURCE}."
    elif not decision.assigned:
        why = (
            f"The Group '{name}' will be skipped due to the following reasons: 1) This object "
            "is not assigned to the application. If you did not expect the object to be "
            "skipped, update provisioning scope to 'Sync all users and groups' or assign the "
            "object to the application with entitlement of provisioning category."
        )
        code = "NotEffectivelyEntitled"
    elif not decision.security:
        why = (
            f"The Group '{name}' will be skipped: only security groups are provisioned (a "
            "security-enabled group that is neither mail-enabled nor a Microsoft 365 group)."
        )
    else:
        failed = ", ".join(f'"{c.label}"' for c in decision.scope_filter.failed)
        why = (
            f"The Group '{name}' is out of scope: the scoping filter evaluation failed "
            f"({failed} is false)."
        )
    if decision.target_group is None:
        return _skip(decision, code, why)
    if "Delete" not in flows:
        decision.forget = True
        return _skip(
            decision,
            "EntrySynchronizationSkipped",
            why + f" The Group was not deleted in {TARGET} because deletes are disabled; the "
            "job no longer manages it.",
        )
    decision.action = "delete"
    decision.skip_reason = why
    return decision


def _in_scope(
    ctx: JobContext,
    decision: GroupDecision,
    group_mapping: CompiledGroupMapping,
    members: list[str],
    managed: Collection[str],
) -> GroupDecision:
    target = ctx.target
    flows = group_mapping.flow_types
    creating = decision.target_group is None
    changes, warnings = _evaluate_mappings(ctx, decision, group_mapping, creating=creating)
    decision.changes, decision.warnings = changes, warnings
    desired: list[str] = []
    if group_mapping.members:
        desired, decision.unresolved = _desired_members(ctx, members)
    allowed = target is not None and group_sync_allowed(target, ctx.source.id)
    if creating:
        if "Add" not in flows:
            return _skip(
                decision, "EntrySynchronizationSkipped", "Creating groups is disabled (flowTypes)."
            )
        decision.action = "create"
        decision.add_members = desired
        return decision
    if "Update" not in flows:
        return _skip(decision, "EntrySynchronizationSkipped", "Updates are disabled (flowTypes).")
    assert target is not None
    assert decision.target_id is not None
    if group_mapping.members:
        current = target.group_members.get(decision.target_id, [])
        wanted = set(desired)
        present = set(current)
        decision.add_members = [m for m in desired if m not in present]
        decision.remove_members = [m for m in current if m in managed and m not in wanted]
    if changes or decision.add_members or decision.remove_members or not allowed:
        # Not allowed: the group in scope is refused even when nothing would change.
        decision.action = "update"
        return decision
    return _skip(decision, "RedundantExport", REDUNDANT_EXPORT)


def _desired_members(ctx: JobContext, members: list[str]) -> tuple[list[str], list[str]]:
    """The target users the job provisioned for the direct user members, and the user
    principal names of the members it has not (yet) provisioned."""
    cache = ctx.record.connector_data_store
    target_users = ctx.target.users if ctx.target is not None else {}
    users = ctx.source.users
    desired: dict[str, None] = {}
    unresolved: list[str] = []
    for member in members:
        user = users.get(member)
        if user is None:
            continue  # a nested group, or a member gone from the source
        linked = cache.get(member)
        if linked is not None and linked in target_users:
            desired[linked] = None
        else:
            unresolved.append(str(user.get("userPrincipalName") or member))
    return list(desired), unresolved


def _evaluate_mappings(
    ctx: JobContext,
    decision: GroupDecision,
    group_mapping: CompiledGroupMapping,
    *,
    creating: bool,
) -> tuple[list[Change], list[str]]:
    changes: list[Change] = []
    warnings: list[str] = []
    existing = decision.target_group or {}
    for attribute_mapping in group_mapping.attributes:
        attribute = attribute_mapping.attribute
        if attribute_mapping.role != "export":
            continue
        try:
            raw = attribute_mapping.value(decision.view, ctx.expression_context)
        except ExpressionError as exc:
            warnings.append(f"Attribute mapping for '{attribute}' skipped: {exc}")
            continue
        if raw is None:
            raw = attribute_mapping.default
        value = (raw[0] if raw else None) if isinstance(raw, list) else raw
        if value is None:
            continue
        prop = attribute_mapping.prop
        if prop is None:
            warnings.append(
                f"Attribute mapping for '{attribute}' skipped: the target Group has no "
                f"attribute '{attribute}' (SchemaAttributeNotFound)."
            )
            continue
        if creating:
            changes.append(Change(attribute, prop, value, None, value))
            continue
        if attribute_mapping.object_add_only:
            continue
        old = existing.get(prop)
        old_text = None if old is None else str(old)
        if (attribute_mapping.add_only and old_text) or old_text == value:
            continue
        changes.append(Change(attribute, prop, value, old_text, value))
    if creating:
        # A group needs a display name and a mail nickname: the source's when not mapped.
        mapped = {c.prop for c in changes}
        for prop in ("displayName", "mailNickname"):
            fallback = decision.group.get(prop)
            if prop not in mapped and fallback:
                changes.append(Change(prop, prop, str(fallback), None, str(fallback)))
    return changes, warnings


# -- exports ---------------------------------------------------------------------------------


def _export_error(ctx: JobContext, decision: GroupDecision) -> ExportError | None:
    error = connection_error(ctx)
    if error is not None:
        return error
    target = ctx.target
    assert target is not None
    if not group_sync_allowed(target, ctx.source.id):
        return ExportError(
            GROUP_SYNC_CODE,
            NOT_ALLOWED_REASON,
            recommended=(
                "Allow inbound group synchronization from the source tenant in the target "
                "tenant (identitySynchronization groupSyncInbound.isSyncAllowed, beta)."
            ),
        )
    if decision.action == "create" and object_count(target) >= target.object_quota:
        return ExportError(
            "AzureActiveDirectoryQuotaLimitExceeded",
            f"The number of objects in the target tenant exceeds its directory quota "
            f"({target.object_quota}).",
            recommended="Increase the directory quota of the target tenant.",
        )
    return None


def _execute(ctx: JobContext, decision: GroupDecision, at: datetime) -> str:
    """Carry out an export in the target; the target group id."""
    target = ctx.target
    assert target is not None
    record = ctx.record
    if decision.action == "create":
        gid = ctx.emulator.ids.guid()
        group: JsonObject = {
            "id": gid,
            "displayName": None,
            "description": None,
            "mailEnabled": False,
            "mailNickname": None,
            "securityEnabled": True,
            "groupTypes": [],
            "createdDateTime": logs.iso(at, fraction=False),
            "deletedDateTime": None,
        }
        for change in decision.changes:
            group[str(change.prop)] = change.value
        target.groups[gid] = group
        target.group_members[gid] = list(decision.add_members)
        target.created_at[f"group:{gid}"] = at
        if decision.stamp:
            target.group_alternative_security_ids[gid] = decision.stamp
        record.group_store[decision.source_id] = gid
        return gid
    target_id = decision.target_id
    assert target_id is not None
    if decision.action == "delete":
        _delete(target, target_id)
        record.group_store.pop(decision.source_id, None)
        return target_id
    group = target.groups[target_id]
    for change in decision.changes:
        group[str(change.prop)] = change.value
    members = target.group_members.setdefault(target_id, [])
    removed = set(decision.remove_members)
    members[:] = [m for m in members if m not in removed]
    members.extend(decision.add_members)
    record.group_store[decision.source_id] = target_id
    return target_id


def _delete(target: Tenant, group_id: str) -> None:
    """Delete a target group outright (the emulator keeps no recycle bin for groups)."""
    del target.groups[group_id]
    target.group_members.pop(group_id, None)
    target.group_alternative_security_ids.pop(group_id, None)
    target.created_at.pop(f"group:{group_id}", None)
    for members in target.group_members.values():
        if group_id in members:
            members.remove(group_id)


@dataclass(frozen=True, slots=True)
class GroupSteps:
    """What a group's record keeps instead of its ``provisioningSteps`` (built when read)."""

    on_demand: bool
    #: The import's change type: Add (initial cycle), Update, Delete.
    kind: str
    name: str
    details: tuple[Any, ...]
    deleted_in_source: bool
    assigned: bool
    security: bool
    input_filter: GroupsResult
    scope_filter: GroupsResult
    sync_all: bool
    warnings: tuple[str, ...]
    unresolved: tuple[str, ...]
    in_scope: bool
    #: The record's provisioningAction: other (a skip) or the export's.
    action: str
    matched: bool
    target_id: str | None
    skip_code: str | None
    skip_reason: str | None
    failed: bool

    def build(self) -> list[logs.Step]:
        name = self.name
        details = dict(zip(DETAIL_KEYS, self.details, strict=True))
        action = self.action
        out_of_scope = not self.in_scope
        steps = opening_steps(
            noun="Group",
            name=name,
            kind=self.kind,
            on_demand=self.on_demand,
            details=details,
            scope=scope_details(
                self, extra={"Security group": "True" if self.security else "False"}
            ),
            skipped=out_of_scope and action == "other",
            warnings=self.warnings,
        )
        if action == "other" and out_of_scope:
            return steps
        if self.unresolved and action != "delete":
            listed = ", ".join(f"'{m}'" for m in self.unresolved)
            steps.append(
                logs.step(
                    "EntrySynchronizationWarning",
                    "processing",
                    "warning",
                    f"The members {listed} of Group '{name}' are not provisioned in {TARGET} "
                    "yet (not in scope of this job, or not synchronized yet): they are added "
                    "to the group once they are.",
                    {"MembersNotProvisioned": ", ".join(self.unresolved)},
                )
            )
        if action == "other":
            return steps + skip_steps(self, noun="Group", name=name)
        if action == "create":
            match_name = "EntrySynchronizationAdd"
            match_text = (
                f"Group '{name}' will be created in {TARGET} (Group is active and assigned in "
                f"{SOURCE}, but no matching Group was found in {TARGET})"
            )
        elif action == "delete":
            match_name = "EntrySynchronizationDelete"
            match_text = (
                f"Group '{name}' will be deleted in {TARGET} (Group is not in scope in "
                f"{SOURCE}, and a matching Group was found in {TARGET})"
            )
        else:
            match_name = "EntrySynchronizationUpdate"
            match_text = (
                f"Group '{name}' will be updated in {TARGET} (Group is active and assigned in "
                f"{SOURCE}, and a matching Group was found in {TARGET})"
            )
        steps.append(logs.step(match_name, "matching", "success", match_text, {}))
        export_name = {
            "create": "EntryExportAdd",
            "update": "EntryExportUpdate",
            "delete": "EntryExportDelete",
        }[action]
        verb = {"create": "created", "update": "updated", "delete": "deleted"}[action]
        reportable = {"ReportableIdentifier": name}
        if self.failed:
            steps.append(
                logs.step(
                    export_name,
                    "export",
                    "failure",
                    f"Failed to {action} Group '{name}' in {TARGET}",
                    reportable,
                )
            )
        else:
            steps.append(
                logs.step(
                    export_name,
                    "export",
                    "success",
                    f"Group '{name}' was {verb} in {TARGET}",
                    reportable,
                )
            )
        return steps


@dataclass
class GroupOutcome:
    """What :func:`apply` did: the record written and how the export went."""

    decision: GroupDecision
    records: list[logs.LogEntry]
    action: str
    status: str
    error: ExportError | None = None
    exported: bool = False
    duration_ms: int = 0

    @property
    def steps(self) -> list[logs.Step]:
        return self.records[0].steps()


def apply(
    ctx: JobContext,
    decision: GroupDecision,
    *,
    at: datetime,
    rows: logs.RowContext,
    duration_ms: int,
    on_demand: bool = False,
    initial: bool = False,
) -> GroupOutcome:
    """Export one group decision (or record its skip) and build its provisioning-log record."""
    record = ctx.record
    error = _export_error(ctx, decision) if decision.exports else None
    target_id = decision.target_id
    target_name = str((decision.target_group or {}).get("displayName") or "")
    exported = False
    if decision.rematched and target_id is not None:
        # Matched again on the stamp (the job's map was reset): remember the match.
        record.group_store[decision.source_id] = target_id
    if decision.forget:
        record.group_store.pop(decision.source_id, None)
    if decision.exports and error is None:
        target_id = _execute(ctx, decision, at)
        exported = True
        target = ctx.target
        assert target is not None
        # The target may be another job's source: its groups changed.
        ctx.emulator.tenant_writes[target.id] += 1
        if target_id in target.groups:
            target_name = str(target.groups[target_id].get("displayName") or "")
    if not decision.exports:
        action, status = "other", "skipped"
        info: JsonObject | None = {
            "errorCode": decision.skip_code,
            "reason": decision.skip_reason,
            "additionalDetails": None,
            "errorCategory": None,
            "recommendedAction": None,
        }
    else:
        action = decision.action
        status = "failure" if error is not None else "success"
        info = None
        if error is not None:
            info = {
                "errorCode": error.code,
                "reason": error.reason,
                "additionalDetails": None,
                "errorCategory": error.category,
                "recommendedAction": error.recommended,
            }
    view = decision.view
    members = view.get("members") or []
    shown = {**view, "members": f"({len(members)} values)"}
    steps = GroupSteps(
        on_demand=on_demand,
        kind="Delete" if decision.deleted_in_source else ("Add" if initial else "Update"),
        name=decision.name,
        details=tuple("" if shown.get(k) is None else shown.get(k) for k in DETAIL_KEYS),
        deleted_in_source=decision.deleted_in_source,
        assigned=decision.assigned,
        security=decision.security,
        input_filter=decision.input_filter,
        scope_filter=decision.scope_filter,
        sync_all=ctx.sync_all,
        warnings=tuple(decision.warnings),
        unresolved=tuple(decision.unresolved),
        in_scope=decision.in_scope,
        action=action,
        matched=decision.target_group is not None,
        target_id=decision.target_id,
        skip_code=decision.skip_code,
        skip_reason=decision.skip_reason,
        failed=error is not None,
    )
    modified: list[logs.Modified] = [(c.attribute, c.old, c.new) for c in decision.changes]
    modified.extend(("members", None, m) for m in decision.add_members)
    modified.extend(("members", m, None) for m in decision.remove_members)
    ids = ctx.emulator.ids
    entry = rows.entry(
        record_id=ids.guid(),
        change_id=ids.guid(),
        at=at,
        duration_ms=duration_ms,
        action=action,
        status=status,
        error=info,
        source=(decision.source_id, decision.group.get("displayName"), None),
        target_id=target_id or "",
        target_name=target_name,
        steps=steps,
        modified=logs.pack_modified(modified),
        kind="Group",
    )
    return GroupOutcome(
        decision=decision,
        records=[entry],
        action=action,
        status=status,
        error=error,
        exported=exported,
        duration_ms=duration_ms,
    )
