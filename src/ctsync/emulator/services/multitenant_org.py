"""The multitenant organization (MTO): the organization, its tenants, joining, and the MTO
policy templates that shape partner configurations when a tenant joins.

Microsoft Graph v1.0 pages: ``tenantrelationship-put-multitenantorganization``,
``multitenantorganization-{get,update,post-tenants,list-tenants,delete-tenants}``,
``multitenantorganizationmember-get``, ``multitenantorganizationjoinrequestrecord-{get,update}``,
``multitenantorganization{partnerconfiguration,identitysyncpolicy}template-{get,update,
resettodefaultsettings}``. An MTO spans tenants: its object and members live in the state of the
tenant that created it (its *home*); each tenant keeps its own join request and templates.
Joins and removals complete on the emulator clock after
``ProvisioningSettings.mto_processing_seconds``. Choices where the docs are silent are listed in
``docs/emulator.md`` (section "Multitenant organization").
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, forbidden
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec, collection_response
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services.policies import add_identity_sync, add_partner, merge_settings
from ctsync.emulator.state import MultiTenantOrgState, Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["router", "settle"]

router = Router()

READ = (
    "MultiTenantOrganization.ReadBasic.All",
    "MultiTenantOrganization.Read.All",
    "MultiTenantOrganization.ReadWrite.All",
)
READ_JOIN = ("MultiTenantOrganization.Read.All", "MultiTenantOrganization.ReadWrite.All")
WRITE = ("MultiTenantOrganization.ReadWrite.All",)
POLICY_READ = ("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess")
POLICY_WRITE = ("Policy.ReadWrite.CrossTenantAccess",)

ROOT = "/tenantRelationships/multiTenantOrganization"
TEMPLATES = "/policies/crossTenantAccessPolicy/templates"

MTO_TYPE = "multiTenantOrganization"
MEMBER_TYPE = "multiTenantOrganizationMember"
JOIN_TYPE = "multiTenantOrganizationJoinRequestRecord"
PARTNER_TEMPLATE_TYPE = "multiTenantOrganizationPartnerConfigurationTemplate"
SYNC_TEMPLATE_TYPE = "multiTenantOrganizationIdentitySyncPolicyTemplate"

NO_TENANT = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
#: Names the tenant-specific ids derive from (stable per tenant, no state needed).
_IDS = uuid.UUID("6f1d0c43-6a0e-4d51-9c1e-2f7b1a4c9e20")
_BOTH_LEVELS = "newPartners,existingPartners"
_PARTNER_SETTINGS = (
    "inboundTrust",
    "b2bCollaborationOutbound",
    "b2bCollaborationInbound",
    "b2bDirectConnectOutbound",
    "b2bDirectConnectInbound",
    "automaticUserConsentSettings",
)


def _local_id(tenant: Tenant, what: str) -> str:
    return str(uuid.uuid5(_IDS, f"{tenant.id}/{what}"))


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _mto(tenant: Tenant) -> MultiTenantOrgState:
    return tenant.multi_tenant_org


# -- where a tenant stands -------------------------------------------------------------------


def _homes(emulator: Emulator) -> Iterator[Tenant]:
    return (t for t in emulator.tenants.values() if _mto(t).organization is not None)


def _listing(emulator: Emulator, tenant_id: str) -> tuple[Tenant, dict[str, Any]] | None:
    """The home of the MTO that lists ``tenant_id`` (in any state), and its member record."""
    for home in _homes(emulator):
        member = _mto(home).members.get(tenant_id)
        if member is not None:
            return home, member
    return None


def _joined(emulator: Emulator, tenant: Tenant) -> tuple[Tenant, dict[str, Any]] | None:
    """The home of the MTO ``tenant`` takes part in (active, or being removed), and its
    member record; ``None`` while it is in none (a pending tenant is not in it yet)."""
    found = _listing(emulator, tenant.id)
    if found is None or found[1]["state"] == "pending":
        return None
    return found


def _organization_of(ctx: RequestContext) -> tuple[Tenant, dict[str, Any]]:
    found = _joined(ctx.emulator, ctx.tenant)
    if found is None:
        raise GraphFault(
            404,
            "Request_ResourceNotFound",
            "The tenant is not part of a multitenant organization.",
        )
    return found


def _require_owner(ctx: RequestContext) -> tuple[Tenant, dict[str, Any]]:
    home, me = _organization_of(ctx)
    if me["role"] != "owner" or me["state"] != "active":
        raise forbidden("Only an active owner tenant can manage the multitenant organization.")
    return home, me


def _window_status(window: tuple[datetime, datetime], now: datetime) -> str:
    asked, due = window
    return "running" if now >= asked + (due - asked) / 2 else "notStarted"


# -- the organization ------------------------------------------------------------------------


def _inactive(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": _local_id(tenant, "multiTenantOrganization"),
        "createdDateTime": None,
        "displayName": None,
        "description": None,
        "state": "inactive",
    }


@router.route("GET", ROOT, permissions=READ)
def get_organization(ctx: RequestContext) -> EmuResponse:
    found = _joined(ctx.emulator, ctx.tenant)
    if found is None:
        shown = _inactive(ctx.tenant)
    else:
        organization = _mto(found[0]).organization
        assert organization is not None
        shown = copy.deepcopy(organization)
        shown["id"] = _local_id(ctx.tenant, f"multiTenantOrganization/{organization['id']}")
    return ctx.entity(shown, context="tenantRelationships/multiTenantOrganization/$entity")


def _check_organization_body(body: Any, *, create: bool) -> dict[str, Any]:
    check_body(MTO_TYPE, body)
    for key in body:
        if key not in {"displayName", "description"} and not key.startswith("@"):
            raise bad_request(f"The property '{key}' is read-only and cannot be set.")
    name = body.get("displayName")
    if (create or "displayName" in body) and not (isinstance(name, str) and name.strip()):
        raise bad_request("The displayName property is required and cannot be empty.")
    return {k: v for k, v in body.items() if not k.startswith("@")}


@router.route("PUT", ROOT, permissions=WRITE)
def create_organization(ctx: RequestContext) -> EmuResponse:
    body = _check_organization_body(ctx.body_object(), create=True)
    if _joined(ctx.emulator, ctx.tenant) is not None or _mto(ctx.tenant).organization:
        raise bad_request(
            "The tenant is already part of a multitenant organization; a tenant can be part "
            "of only one."
        )
    now = _iso(ctx.now)
    organization = {
        "id": ctx.emulator.ids.guid(),
        "createdDateTime": now,
        "displayName": body["displayName"],
        "description": body.get("description"),
        "state": "active",
    }
    state = _mto(ctx.tenant)
    state.organization = organization
    state.members = {
        ctx.tenant.id: _member(
            ctx.tenant.id, ctx.tenant.display_name, "owner", ctx.tenant.id, now, state="active"
        )
    }
    state.members[ctx.tenant.id]["joinedDateTime"] = now
    return ctx.entity(
        organization, context="tenantRelationships/multiTenantOrganization/$entity", status=201
    )


@router.route("PATCH", ROOT, permissions=WRITE)
def update_organization(ctx: RequestContext) -> EmuResponse:
    changes = _check_organization_body(ctx.body_object(), create=False)
    home, _ = _require_owner(ctx)
    organization = _mto(home).organization
    assert organization is not None
    organization.update(changes)
    return ctx.no_content()


# -- tenants ---------------------------------------------------------------------------------


def _member(
    tenant_id: str, name: str, role: str, added_by: str, now: str, *, state: str = "pending"
) -> dict[str, Any]:
    return {
        "id": tenant_id,
        "tenantId": tenant_id,
        "displayName": name,
        "role": role,
        "state": state,
        "addedByTenantId": added_by,
        "addedDateTime": now,
        "joinedDateTime": None,
        "transitionDetails": None,
    }


def _shown_member(home: Tenant, member: dict[str, Any], now: datetime) -> dict[str, Any]:
    shown = copy.deepcopy(member)
    details = shown.get("transitionDetails")
    if details is not None and details.get("status") == "notStarted":
        window = _member_window(home, member)
        if window is not None:
            details["status"] = _window_status(window, now)
    return shown


def _member_window(home: Tenant, member: dict[str, Any]) -> tuple[datetime, datetime] | None:
    tenant_id = member["tenantId"]
    if tenant_id in _mto(home).removals:
        return _mto(home).removals[tenant_id]
    return None


_MEMBER_FILTER = FilterSpec(
    resource=MEMBER_TYPE, properties={"tenantId": ("eq",)}, case_sensitive=False
)


@router.route("GET", ROOT + "/tenants", permissions=READ)
def list_tenants(ctx: RequestContext) -> EmuResponse:
    home, _ = _organization_of(ctx)
    members = [_shown_member(home, m, ctx.now) for _, m in sorted(_mto(home).members.items())]
    return collection_response(
        ctx,
        members,
        context="tenantRelationships/multiTenantOrganization/tenants",
        filter_spec=_MEMBER_FILTER,
        count_requires_advanced=False,
    )


def _missing_member() -> GraphFault:
    return GraphFault(
        404,
        "Directory_ObjectNotFound",
        "Unable to read the company information from the directory.",
    )


def _member_of(home: Tenant, tenant_id: str) -> dict[str, Any]:
    member = _mto(home).members.get(tenant_id.lower())
    if member is None:
        raise _missing_member()
    return member


@router.route("GET", ROOT + "/tenants/{tenantId}", permissions=READ)
def get_tenant(ctx: RequestContext) -> EmuResponse:
    home, _ = _organization_of(ctx)
    member = _member_of(home, ctx.params["tenantId"])
    return ctx.entity(
        _shown_member(home, member, ctx.now),
        context="tenantRelationships/multiTenantOrganization/tenants/$entity",
    )


@router.route("POST", ROOT + "/tenants", permissions=WRITE)
def add_tenant(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    check_body(MEMBER_TYPE, body)
    for key in body:
        if key not in {"tenantId", "displayName", "role"} and not key.startswith("@"):
            raise bad_request(f"The property '{key}' is read-only and cannot be set.")
    tenant_id, name = body.get("tenantId"), body.get("displayName")
    if not isinstance(tenant_id, str) or not _GUID.match(tenant_id):
        raise bad_request("The tenantId property is required and must be a tenant ID (a GUID).")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("The displayName property is required and cannot be empty.")
    role = body.get("role") or "member"
    if role not in {"owner", "member"}:
        raise bad_request(f"The role '{role}' cannot be assigned.")
    home, _ = _require_owner(ctx)
    key = tenant_id.lower()
    if key in _mto(home).members:
        raise bad_request("Tenant is already being added in Multi-Tenant Organization.")
    member = _member(key, name, role, ctx.tenant.id, _iso(ctx.now))
    _mto(home).members[key] = member
    return ctx.entity(
        member, context="tenantRelationships/multiTenantOrganization/tenants/$entity", status=201
    )


@router.route("DELETE", ROOT + "/tenants/{tenantId}", permissions=WRITE)
def remove_tenant(ctx: RequestContext) -> EmuResponse:
    home, me = _organization_of(ctx)
    target = _member_of(home, ctx.params["tenantId"])
    members = _mto(home).members
    itself = target["tenantId"] == ctx.tenant.id
    if not itself and (me["role"] != "owner" or me["state"] != "active"):
        raise forbidden("Only an active owner tenant can remove another tenant.")
    if target["state"] == "removed":
        raise bad_request("The tenant is already being removed from the multitenant organization.")
    if itself and me["role"] == "owner":
        others = [m for m in members.values() if m is not me and m["state"] == "active"]
        if others and not any(m["role"] == "owner" for m in others):
            raise bad_request(
                "An owner tenant can leave only while another active owner tenant remains, or "
                "when no other active tenant remains."
            )
    if target["state"] == "pending":
        # Never joined: nothing to undo across tenants.
        del members[target["tenantId"]]
        return ctx.no_content()
    due = ctx.now + timedelta(seconds=ctx.emulator.provisioning.mto_processing_seconds)
    target["state"] = "removed"
    target["transitionDetails"] = {
        "desiredRole": target["role"],
        "desiredState": "removed",
        "status": "notStarted",
        "details": "",
    }
    _mto(home).removals[target["tenantId"]] = (ctx.now, due)
    _schedule(ctx.emulator, due)
    return ctx.no_content()


# -- joinRequest -----------------------------------------------------------------------------


def _blank_join(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": _local_id(tenant, "joinRequest"),
        "addedByTenantId": NO_TENANT,
        "memberState": None,
        "role": None,
        "transitionDetails": None,
    }


@router.route("GET", ROOT + "/joinRequest", permissions=READ_JOIN)
def get_join_request(ctx: RequestContext) -> EmuResponse:
    state = _mto(ctx.tenant)
    record = copy.deepcopy(state.join_request) if state.join_request else _blank_join(ctx.tenant)
    details = record.get("transitionDetails")
    if details is not None and state.join_window is not None:
        details["status"] = _window_status(state.join_window, ctx.now)
    return ctx.entity(
        record, context="tenantRelationships/multiTenantOrganization/joinRequest/$entity"
    )


@router.route("PATCH", ROOT + "/joinRequest", permissions=WRITE)
def submit_join_request(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    check_body(JOIN_TYPE, body)
    for key in body:
        if key != "addedByTenantId" and not key.startswith("@"):
            raise bad_request(f"The property '{key}' is read-only and cannot be set.")
    owner_id = body.get("addedByTenantId")
    if not isinstance(owner_id, str) or not _GUID.match(owner_id):
        raise bad_request(
            "The addedByTenantId property is required and must be a tenant ID (a GUID)."
        )
    state = _mto(ctx.tenant)
    if state.join_window is not None:
        raise bad_request("A join request is already being processed.")
    if _joined(ctx.emulator, ctx.tenant) is not None:
        raise bad_request("The tenant is already part of a multitenant organization.")
    if owner_id == NO_TENANT:
        # Resets a failed (or any finished) join request.
        state.join_request = None
        return ctx.no_content()
    due = ctx.now + timedelta(seconds=ctx.emulator.provisioning.mto_processing_seconds)
    state.join_request = {
        "id": _local_id(ctx.tenant, "joinRequest"),
        "addedByTenantId": owner_id.lower(),
        "memberState": "pending",
        "role": None,
        "transitionDetails": {
            "desiredMemberState": "active",
            "status": "notStarted",
            "details": "",
        },
    }
    state.join_window = (ctx.now, due)
    _schedule(ctx.emulator, due)
    return ctx.no_content()


# -- the processing, on the emulator clock ---------------------------------------------------


def _schedule(emulator: Emulator, due: datetime) -> None:
    current = emulator.mto_due_at
    emulator.mto_due_at = due if current is None else min(current, due)


def settle(emulator: Emulator, now: datetime) -> None:
    """Complete the joins and removals whose processing time has come (each at its own due
    time, earliest first), and note when the next one is due."""
    if emulator.mto_due_at is None or emulator.mto_due_at > now:
        return
    events: list[tuple[datetime, int, str, Tenant, str]] = []
    for tenant in emulator.tenants.values():
        state = _mto(tenant)
        if state.join_window is not None:
            events.append((state.join_window[1], len(events), "join", tenant, tenant.id))
        for member_id, (_, due) in state.removals.items():
            events.append((due, len(events), "remove", tenant, member_id))
    events.sort(key=lambda e: (e[0], e[1]))
    upcoming = [e[0] for e in events if e[0] > now]
    for due, _, kind, tenant, member_id in events:
        if due > now:
            break
        if kind == "join":
            _complete_join(emulator, tenant, due)
        else:
            _complete_removal(emulator, tenant, member_id)
    emulator.mto_due_at = min(upcoming) if upcoming else None


def _join_failure(emulator: Emulator, tenant: Tenant, owner_id: str) -> str | None:
    found = _listing(emulator, tenant.id)
    if found is None or found[1]["state"] != "pending":
        if _joined(emulator, tenant) is not None or _mto(tenant).organization is not None:
            return "The tenant is already part of a different multitenant organization."
        return "The tenant has not been added to the multitenant organization by its owner."
    home, member = found
    if owner_id != member["addedByTenantId"] and owner_id not in _mto(home).members:
        return "The tenant was not added to the multitenant organization by this tenant."
    return None


def _complete_join(emulator: Emulator, tenant: Tenant, due: datetime) -> None:
    state = _mto(tenant)
    record = state.join_request
    state.join_window = None
    if record is None:
        return
    failure = _join_failure(emulator, tenant, record["addedByTenantId"])
    if failure is not None:
        record["transitionDetails"] = {
            "desiredMemberState": "active",
            "status": "failed",
            "details": failure,
        }
        return
    found = _listing(emulator, tenant.id)
    assert found is not None
    home, member = found
    member.update(state="active", joinedDateTime=_iso(due), transitionDetails=None)
    record.update(memberState="active", role=member["role"], transitionDetails=None)
    for other_id, other in _mto(home).members.items():
        partner = emulator.tenants.get(other_id)
        if other_id == tenant.id or other["state"] != "active" or partner is None:
            continue
        # The joining tenant's templates reach every MTO tenant; the others' reach it only.
        _apply_templates(tenant, other_id)
        _apply_templates(partner, tenant.id)
    emulator.note_change()


def _complete_removal(emulator: Emulator, home: Tenant, member_id: str) -> None:
    state = _mto(home)
    state.removals.pop(member_id, None)
    state.members.pop(member_id, None)
    leaving = emulator.tenants.get(member_id)
    if leaving is not None:
        _mto(leaving).join_request = None
    for other_id in state.members:
        other = emulator.tenants.get(other_id)
        if other is not None and leaving is not None:
            _leave_partner(other, member_id)
            _leave_partner(leaving, other_id)
    if not any(m["state"] == "active" for m in state.members.values()):
        # The last active tenant left: the multitenant organization is deleted.
        state.organization, state.members, state.removals = None, {}, {}
    elif member_id == home.id:
        _move_home(emulator, home)
    emulator.note_change()


def _move_home(emulator: Emulator, home: Tenant) -> None:
    """The creator left while another owner stays: that owner's state becomes the home."""
    state = _mto(home)
    heir_id = next(
        tid
        for tid, m in sorted(state.members.items())
        if m["role"] == "owner" and m["state"] == "active"
    )
    heir = _mto(emulator.tenants[heir_id])
    heir.organization, heir.members = state.organization, state.members
    heir.removals = state.removals
    state.organization, state.members, state.removals = None, {}, {}


def _leave_partner(tenant: Tenant, partner_id: str) -> None:
    partner = tenant.access_policy.partners.get(partner_id)
    if partner is not None:
        partner["isInMultiTenantOrganization"] = False


# -- templates -------------------------------------------------------------------------------


def _partner_template(tenant: Tenant) -> dict[str, Any]:
    stored = _mto(tenant).partner_template
    if stored is not None:
        return copy.deepcopy(stored)
    template: dict[str, Any] = {
        "id": _local_id(tenant, "partnerTemplate"),
        "templateApplicationLevel": _BOTH_LEVELS,
    }
    template.update(dict.fromkeys(_PARTNER_SETTINGS))
    template["automaticUserConsentSettings"] = {"inboundAllowed": None, "outboundAllowed": None}
    return template


def _sync_template(tenant: Tenant) -> dict[str, Any]:
    stored = _mto(tenant).identity_sync_template
    if stored is not None:
        return copy.deepcopy(stored)
    return {
        "id": _local_id(tenant, "identitySyncTemplate"),
        "templateApplicationLevel": _BOTH_LEVELS,
        "userSyncInbound": {"isSyncAllowed": None},
    }


def _levels(template: dict[str, Any]) -> set[str]:
    return {p.strip() for p in str(template["templateApplicationLevel"]).split(",")}


def _configured(value: Any) -> bool:
    """A template member counts when it is set: not null, and not an object of nulls."""
    if isinstance(value, dict):
        return any(_configured(v) for v in value.values())
    return value is not None


def _apply_templates(tenant: Tenant, partner_id: str) -> None:
    """``tenant``'s MTO templates applied to its partner configuration for ``partner_id``."""
    template = _partner_template(tenant)
    levels = _levels(template)
    partners = tenant.access_policy.partners
    existed = partner_id in partners
    if not existed:
        add_partner(tenant, {"tenantId": partner_id})
    if ("existingPartners" if existed else "newPartners") in levels:
        settings = {k: template[k] for k in _PARTNER_SETTINGS if _configured(template[k])}
        partners[partner_id] = merge_settings(partners[partner_id], settings)
    partners[partner_id]["isInMultiTenantOrganization"] = True
    sync = _sync_template(tenant)
    inbound = sync.get("userSyncInbound")
    if not _configured(inbound):
        return
    policies = tenant.access_policy.identity_sync
    if partner_id not in policies:
        if "newPartners" in _levels(sync):
            add_identity_sync(tenant, partner_id, {"userSyncInbound": inbound})
    elif "existingPartners" in _levels(sync):
        policies[partner_id] = merge_settings(policies[partner_id], {"userSyncInbound": inbound})


_CONTEXT = "policies/crossTenantAccessPolicy/templates/{}/$entity"


def _check_template_body(type_name: str, body: Any) -> dict[str, Any]:
    check_body(type_name, body)
    if "id" in body:
        raise bad_request("The property 'id' is read-only and cannot be set.")
    return {k: v for k, v in body.items() if not k.startswith("@")}


def _template_routes(
    name: str, type_name: str, current: Callable[[Tenant], dict[str, Any]], slot: str
) -> None:
    """``GET``/``PATCH`` and ``resetToDefaultSettings`` of one template, kept in ``slot`` of
    the tenant's :class:`MultiTenantOrgState` (``None``: the default)."""
    path = f"{TEMPLATES}/{name}"

    def get(ctx: RequestContext) -> EmuResponse:
        return ctx.entity(current(ctx.tenant), context=_CONTEXT.format(name))

    def update(ctx: RequestContext) -> EmuResponse:
        changes = _check_template_body(type_name, ctx.body_object())
        setattr(_mto(ctx.tenant), slot, merge_settings(current(ctx.tenant), changes))
        return ctx.no_content()

    def reset(ctx: RequestContext) -> EmuResponse:
        setattr(_mto(ctx.tenant), slot, None)
        return ctx.no_content()

    router.route("GET", path, permissions=POLICY_READ)(get)
    router.route("PATCH", path, permissions=POLICY_WRITE)(update)
    router.route("POST", path + "/resetToDefaultSettings", permissions=POLICY_WRITE)(reset)


_template_routes(
    "multiTenantOrganizationPartnerConfiguration",
    PARTNER_TEMPLATE_TYPE,
    _partner_template,
    "partner_template",
)
_template_routes(
    "multiTenantOrganizationIdentitySynchronization",
    SYNC_TEMPLATE_TYPE,
    _sync_template,
    "identity_sync_template",
)
