"""The multitenant organization (MTO) of a config: the steps that make it, and take it down.

Both sides, like a link's: the owner creates the MTO and adds each member; each member sets its
MTO templates and then joins (its join request names the owner). A join is processed by
Microsoft over up to two hours: while it runs, the plan says so and plans nothing. A tenant
that is read-only in the config gets a note saying what its admin must run, never a step.

Destroy takes out only what the ownership ledger says ctsync made: the members it added, and
the MTO it created once no tenant it did not add is left in it; the MTO template fields ctsync
changed go back to what they held.
"""

from __future__ import annotations

from typing import Any, Literal

from ctsync.config import DesiredState, OrganizationSpec
from ctsync.engine.live import MTO, MTO_TEMPLATES, LiveState
from ctsync.engine.model import FieldChange, Step
from ctsync.engine.ownership import Ledger, object_key

__all__ = [
    "MTO_KEY",
    "member_key",
    "organization_steps",
    "organization_teardown",
    "template_key",
]

#: The ledger's entry (in the owner) for the MTO ctsync created.
MTO_KEY = "multiTenantOrganization"
#: What a join request's processing is, in words (Microsoft: "up to 2 hours").
_PROCESSING = "Microsoft completes it within about 2 hours"


def member_key(tenant_id: str) -> str:
    """The ledger's entry (in the owner) for a member ctsync added."""
    return object_key("multiTenantOrganizationMember", tenant_id)


def _template_changes(
    wanted: dict[str, Any], live: dict[str, Any], prefix: str = ""
) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for key, value in wanted.items():
        current = live.get(key)
        if isinstance(value, dict):
            nested = current if isinstance(current, dict) else {}
            changes.extend(_template_changes(value, nested, f"{prefix}{key}."))
        elif value is not None and current != value:
            changes.append(FieldChange(f"{prefix}{key}", current, value))
    return changes


def _patch_of(changes: list[FieldChange]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for change in changes:
        node = body
        *parents, leaf = change.field.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = change.new
    return body


def _template_steps(org: OrganizationSpec, tenant: str, live: LiveState) -> list[Step]:
    steps: list[Step] = []
    for name, wanted in (("partner", org.partner_template), ("sync", org.sync_template)):
        if wanted is None:
            continue
        changes = _template_changes(
            _plain(wanted), live.tenants[tenant].mto_templates.get(name, {})
        )
        if not changes:
            continue
        steps.append(_template_step(tenant, name, changes, revert=False))
    return steps


def _template_step(tenant: str, name: str, changes: list[FieldChange], *, revert: bool) -> Step:
    """Set ``tenant``'s MTO template ``name`` (partner, sync) as ``changes`` say; ``revert``:
    back to what it held before ctsync (destroy). The ledger keeps what the fields held before
    a first change, for destroy to give back."""
    what = "partner-configuration" if name == "partner" else "identity-synchronization"
    return Step(
        id=f"{tenant}/mtoTemplate/{name}" + ("/revert" if revert else ""),
        tenant=tenant,
        resource="multiTenantOrganizationTemplate",
        action="update",
        summary=f"set the MTO {what} template "
        + (
            "back to what it held before ctsync"
            if revert
            else "(what joining gives partner settings)"
        ),
        changes=tuple(changes),
        destructive=revert,
        params={
            "path": MTO_TEMPLATES[name],
            "patch": _patch_of(changes),
            "object": template_key(name),
            **({"revert": [c.field for c in changes]} if revert else {}),
        },
    )


def template_key(name: str) -> str:
    """The ledger's entry (in each tenant) for an MTO template ctsync changed."""
    return object_key("multiTenantOrganizationTemplate", name)


def _template_reverts(
    desired: DesiredState, live: LiveState, org: OrganizationSpec, ledger: Ledger
) -> list[Step]:
    """Each managed tenant's MTO template fields ctsync changed, back to what they held."""
    steps: list[Step] = []
    for tenant in (org.owner, *org.members):
        spec = desired.tenants[tenant]
        if not spec.managed:
            continue
        for name in ("partner", "sync"):
            was = ledger.before(spec.tenant_id, template_key(name))
            current = live.tenants[tenant].mto_templates.get(name, {})
            changes = [
                FieldChange(field, _at(current, field), value)
                for field, value in sorted(was.items())
                if _at(current, field) != value
            ]
            if not changes:
                continue
            steps.append(_template_step(tenant, name, changes, revert=True))
    return steps


def _at(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def organization_steps(
    desired: DesiredState, live: LiveState, org: OrganizationSpec
) -> tuple[list[Step], list[str], list[Step]]:
    """Create or update the MTO in its owner, add the members, set templates, join.

    Returns the steps, the notes, and the steps of read-only tenants: what their admins must
    run (shown in the plan and written by ``--format powershell``, never run by apply)."""
    steps: list[Step] = []
    notes: list[str] = []
    handoff: list[Step] = []
    owner = desired.tenants[org.owner]
    owners = steps if owner.managed else handoff
    mine = live.tenants[org.owner]
    mto = mine.mto or {}
    active = mto.get("state") == "active"
    wanted = {"displayName": org.name, "description": org.description}
    changes = [
        FieldChange(k, mto.get(k) if active else None, v)
        for k, v in wanted.items()
        if v is not None and (not active or mto.get(k) != v)
    ]
    body = {c.field: c.new for c in changes}
    if changes:
        action: Literal["create", "update"] = "update" if active else "create"
        owners.append(
            Step(
                id=f"organization/{action}",
                tenant=org.owner,
                resource="multiTenantOrganization",
                action=action,
                summary=f"{action} the multitenant organization {org.name!r}",
                changes=tuple(changes),
                params=(
                    {"path": MTO, "patch": body}
                    if active
                    else {"path": MTO, "body": body, "object": MTO_KEY}
                ),
            )
        )
    created = ("organization/create",) if owners and owners[0].id == "organization/create" else ()
    owners.extend(_template_steps(org, org.owner, live))
    if not owner.managed and owners:
        notes.append(_handoff_note(org.owner))
    listed = mine.mto_tenants or {}
    for name in org.members:
        spec = desired.tenants[name]
        theirs = steps if spec.managed else handoff
        member = listed.get(spec.tenant_id)
        added: tuple[str, ...] = ()
        if member is None:
            add_id = f"organization/member/{name}"
            owners.append(
                Step(
                    id=add_id,
                    tenant=org.owner,
                    resource="multiTenantOrganizationMember",
                    action="create",
                    summary=f"add {name} to the multitenant organization (it joins next)",
                    changes=(FieldChange("tenant", None, spec.tenant_id),),
                    depends_on=created,
                    params={
                        "path": f"{MTO}/tenants",
                        "body": {"tenantId": spec.tenant_id, "displayName": name},
                        "object": member_key(spec.tenant_id),
                    },
                )
            )
            # A step ctsync runs never waits for one its admin runs (apply could not order it).
            added = (add_id,) if owner.managed or not spec.managed else ()
        templates = _template_steps(org, name, live)
        theirs.extend(templates)
        join = live.tenants[name].join_request or {}
        state = join.get("memberState")
        status = (join.get("transitionDetails") or {}).get("status")
        if state == "active" or (member or {}).get("state") == "active":
            if templates and not spec.managed:
                notes.append(_handoff_note(name))
            continue
        if state == "pending" and status in {"notStarted", "running"}:
            notes.append(f"{name} is joining the multitenant organization: {_PROCESSING}")
            continue
        if status == "failed":
            why = (join.get("transitionDetails") or {}).get("details") or "no reason given"
            notes.append(
                f"{name}'s last request to join the multitenant organization failed ({why}); "
                "the plan joins again"
            )
        if member is None and not owner.managed and spec.managed:
            notes.append(f"{name} joins once {org.owner}'s admin has added it to the organization")
            continue
        if not spec.managed:
            notes.append(_handoff_note(name))
        theirs.append(
            Step(
                id=f"organization/join/{name}",
                tenant=name,
                resource="multiTenantOrganizationJoinRequest",
                action="update",
                summary=f"join the multitenant organization of {org.owner} ({_PROCESSING})",
                changes=(
                    FieldChange("addedByTenantId", join.get("addedByTenantId"), owner.tenant_id),
                ),
                depends_on=(*added, *(s.id for s in templates)),
                params={
                    "path": f"{MTO}/joinRequest",
                    "patch": {"addedByTenantId": owner.tenant_id},
                },
            )
        )
    return steps, notes, handoff


def _handoff_note(tenant: str) -> str:
    return (
        f"{tenant} is read-only in the config: its admin must run its steps of the multitenant "
        "organization (the plan lists them for it; `--format powershell` writes them)"
    )


def organization_teardown(
    desired: DesiredState,
    live: LiveState,
    org: OrganizationSpec,
    *,
    ledger: Ledger | None,
    after: tuple[str, ...] = (),
) -> tuple[list[Step], list[str]]:
    """Remove the members ctsync added, then the MTO if ctsync created it and no tenant it did
    not add stays; what ctsync did not make stays, and the plan says so."""
    if ledger is None:
        return [], []
    reverts = _template_reverts(desired, live, org, ledger)
    owner = desired.tenants[org.owner]
    listed = live.tenants[org.owner].mto_tenants or {}
    if not owner.managed or not listed:
        return reverts, []
    steps: list[Step] = list(reverts)
    notes: list[str] = []
    staying: list[str] = []
    names = {t.tenant_id: t.name for t in desired.tenants.values()}
    for tenant_id, member in sorted(listed.items()):
        if tenant_id == owner.tenant_id or member.get("state") == "removed":
            continue
        name = names.get(tenant_id, str(member.get("displayName") or tenant_id))
        if not ledger.created(owner.tenant_id, member_key(tenant_id)):
            staying.append(name)
            continue
        steps.append(
            Step(
                id=f"organization/member/{name}/delete",
                tenant=org.owner,
                resource="multiTenantOrganizationMember",
                action="delete",
                summary=f"remove {name} from the multitenant organization (added by ctsync; "
                f"{_PROCESSING})",
                changes=(FieldChange("tenant", tenant_id, None),),
                depends_on=after,
                destructive=True,
                params={"path": f"{MTO}/tenants/{tenant_id}", "object": member_key(tenant_id)},
            )
        )
    me = listed.get(owner.tenant_id) or {}
    if not ledger.created(owner.tenant_id, MTO_KEY) or me.get("state") == "removed":
        return steps, notes
    if staying:
        notes.append(
            f"the multitenant organization {org.name!r} stays: ctsync did not add "
            f"{', '.join(staying)}"
        )
        return steps, notes
    steps.append(
        Step(
            id="organization/delete",
            tenant=org.owner,
            resource="multiTenantOrganization",
            action="delete",
            summary=f"delete the multitenant organization {org.name!r} (created by ctsync): "
            f"{org.owner} leaves it last ({_PROCESSING})",
            changes=(FieldChange("multiTenantOrganization", org.name, None),),
            depends_on=(*after, *(s.id for s in steps)),
            destructive=True,
            params={"path": f"{MTO}/tenants/{owner.tenant_id}", "object": MTO_KEY},
        )
    )
    return steps, notes
