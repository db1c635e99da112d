"""The cross-tenant access policy: default settings, partners, identitySynchronization.

Behaviour follows reference §1.1–1.2, §2.1, §3.1–3.5 and §10 items 1–5. Choices where
Microsoft's documentation is silent are listed in ``docs/emulator.md`` (section "Policies").
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, conflict
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import ExpandSpec, FilterSpec, collection_response
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.state import CLOUD_ENDPOINTS, Tenant

__all__ = [
    "add_identity_sync",
    "add_partner",
    "apply_default_changes",
    "cloud_blocked",
    "merge_settings",
    "router",
    "service_default",
    "set_allowed_clouds",
]

router = Router()

READ = ("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess")
WRITE = ("Policy.ReadWrite.CrossTenantAccess",)

ROOT = "/policies/crossTenantAccessPolicy"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

PARTNER_TYPE = "crossTenantAccessPolicyConfigurationPartner"
DEFAULT_TYPE = "crossTenantAccessPolicyConfigurationDefault"
POLICY_TYPE = "crossTenantAccessPolicy"
SYNC_TYPE = "crossTenantIdentitySyncPolicyPartner"

#: Members a partner object always shows, null meaning "inherit the default" (reference §1.1).
_PARTNER_MEMBERS = (
    "inboundTrust",
    "b2bCollaborationOutbound",
    "b2bCollaborationInbound",
    "b2bDirectConnectOutbound",
    "b2bDirectConnectInbound",
    "tenantRestrictions",
    "automaticUserConsentSettings",
)


def _targets(access: str) -> dict[str, Any]:
    return {
        "usersAndGroups": {
            "accessType": access,
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": access,
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }


def service_default() -> dict[str, Any]:
    """The default settings Entra assigns a tenant until an admin changes them [G8]."""
    return {
        "isServiceDefault": True,
        "inboundTrust": {
            "isMfaAccepted": False,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
        "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
        "b2bCollaborationOutbound": _targets("allowed"),
        "b2bCollaborationInbound": _targets("allowed"),
        "b2bDirectConnectOutbound": _targets("blocked"),
        "b2bDirectConnectInbound": _targets("blocked"),
        "tenantRestrictions": {**_targets("blocked"), "devices": None},
        "invitationRedemptionIdentityProviderConfiguration": {
            "primaryIdentityProviderPrecedenceOrder": [
                "externalFederation",
                "azureActiveDirectory",
                "socialIdentityProviders",
            ],
            "fallbackIdentityProvider": "defaultConfiguredIdp",
        },
    }


def merge_settings(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: supplied members replace, complex members merge one level deep.

    An explicit ``null`` resets a member (for a partner: back to "inherit the default").
    """
    out = copy.deepcopy(current)
    for key, value in changes.items():
        if key.startswith("@odata."):
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- the policy itself -------------------------------------------------------------------


@router.route("GET", ROOT, permissions=READ)
def get_policy(ctx: RequestContext) -> EmuResponse:
    policy: dict[str, Any] = {
        "id": ctx.tenant.id,
        "deletedDateTime": None,
        "displayName": "CrossTenantAccessPolicy",
        "description": None,
        "allowedCloudEndpoints": list(ctx.tenant.access_policy.allowed_cloud_endpoints),
    }
    return ctx.entity(policy, context="policies/crossTenantAccessPolicy/$entity")


def set_allowed_clouds(tenant: Tenant, changes: Any) -> None:
    """Apply a ``PATCH …/crossTenantAccessPolicy`` body (``400`` on a bad body or an unknown
    cloud endpoint). The collection is replaced whole, as PATCH does with collections.
    Scenarios seed ``allowed_cloud_endpoints`` through this too."""
    check_body(POLICY_TYPE, changes)
    unsettable = sorted(k for k in changes if k not in {"allowedCloudEndpoints", "displayName"})
    unsettable = [k for k in unsettable if not k.startswith("@odata.")]
    if unsettable:
        raise bad_request(f"The property '{unsettable[0]}' is read-only and cannot be set.")
    if "allowedCloudEndpoints" not in changes:
        return
    values = changes["allowedCloudEndpoints"]
    known = sorted(set(CLOUD_ENDPOINTS.values()))
    if values is None or any(v not in known for v in values):
        raise bad_request(
            f"Invalid value in allowedCloudEndpoints: {values!r}. Allowed values: "
            f"{', '.join(known)}."
        )
    tenant.access_policy.allowed_cloud_endpoints = list(dict.fromkeys(values))


@router.route("PATCH", ROOT, permissions=WRITE)
def patch_policy(ctx: RequestContext) -> EmuResponse:
    set_allowed_clouds(ctx.tenant, ctx.body_object())
    return ctx.no_content()


def cloud_blocked(tenant: Tenant, partner: Tenant | None) -> str | None:
    """Why ``tenant`` may not work with ``partner`` across Microsoft clouds, or None: a
    partner in another cloud needs that cloud's endpoint in ``tenant``'s
    ``allowedCloudEndpoints`` (an unknown partner cannot be told apart: allowed)."""
    if partner is None:
        return None
    mine, theirs = CLOUD_ENDPOINTS[tenant.cloud], CLOUD_ENDPOINTS[partner.cloud]
    if mine == theirs or theirs in tenant.access_policy.allowed_cloud_endpoints:
        return None
    return (
        f"The tenant '{partner.id}' is in another Microsoft cloud ({theirs}), which is not in "
        f"the allowedCloudEndpoints of tenant '{tenant.id}'. Enable collaboration with that "
        "cloud (Microsoft cloud settings) first."
    )


def _check_cloud(ctx: RequestContext, partner_id: str) -> None:
    why = cloud_blocked(ctx.tenant, ctx.emulator.tenants.get(partner_id.lower()))
    if why is not None:
        raise bad_request(why)


# -- default -----------------------------------------------------------------------------


def _current_default(tenant: Tenant) -> dict[str, Any]:
    stored = tenant.access_policy.default
    return copy.deepcopy(stored) if stored is not None else service_default()


@router.route("GET", ROOT + "/default", permissions=READ)
def get_default(ctx: RequestContext) -> EmuResponse:
    return ctx.entity(
        _current_default(ctx.tenant), context="policies/crossTenantAccessPolicy/default/$entity"
    )


def apply_default_changes(tenant: Tenant, changes: Any) -> None:
    """Apply a ``PATCH …/default`` body to ``tenant``'s default settings (checked; ``400`` on
    a bad body). Scenarios seed the default through this too."""
    check_body(DEFAULT_TYPE, changes)
    changes = {k: v for k, v in changes.items() if k != "isServiceDefault"}
    base = service_default()
    # A null resets a default member to the service default (it has nothing to inherit from).
    resolved = {k: (base.get(k) if v is None else v) for k, v in changes.items()}
    updated = merge_settings(_current_default(tenant), resolved)
    updated["isServiceDefault"] = False
    tenant.access_policy.default = updated


@router.route("PATCH", ROOT + "/default", permissions=WRITE)
def patch_default(ctx: RequestContext) -> EmuResponse:
    apply_default_changes(ctx.tenant, ctx.body_object())
    return ctx.no_content()


@router.route("POST", ROOT + "/default/resetToSystemDefault", permissions=WRITE)
def reset_default(ctx: RequestContext) -> EmuResponse:
    ctx.tenant.access_policy.default = None
    return ctx.no_content()


# -- partners ----------------------------------------------------------------------------


def _partner_key(tenant_id: str) -> str:
    return tenant_id.lower()


def _object_key(kind: str, tenant_id: str) -> str:
    return f"{kind}:{tenant_id.lower()}"


def _missing_partner() -> GraphFault:
    return GraphFault(
        404,
        "Directory_ObjectNotFound",
        "Unable to read the company information from the directory.",
    )


def _partner(ctx: RequestContext, tenant_id: str) -> dict[str, Any]:
    key = _partner_key(tenant_id)
    partner = ctx.tenant.access_policy.partners.get(key)
    if partner is None or not ctx.visible(_object_key("partner", key)):
        raise _missing_partner()
    return partner


def _new_partner(tenant_id: str) -> dict[str, Any]:
    partner: dict[str, Any] = {"tenantId": tenant_id, "isServiceProvider": None}
    for member in _PARTNER_MEMBERS:
        partner[member] = None
    partner["isInMultiTenantOrganization"] = False
    partner["automaticUserConsentSettings"] = {"inboundAllowed": None, "outboundAllowed": None}
    return partner


def _shown(partner: dict[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(partner)
    if shown.get("automaticUserConsentSettings") is None:
        shown["automaticUserConsentSettings"] = {"inboundAllowed": None, "outboundAllowed": None}
    return shown


_PARTNER_FILTER = FilterSpec(
    resource=PARTNER_TYPE, properties={"tenantId": ("eq",)}, case_sensitive=False
)


def _expanded_sync(ctx: RequestContext, partner: dict[str, Any]) -> dict[str, Any] | None:
    key = _partner_key(str(partner["tenantId"]))
    policy = ctx.tenant.access_policy.identity_sync.get(key)
    if policy is None or not ctx.visible(_object_key("identitySynchronization", key)):
        return None
    return copy.deepcopy(_sync_shown(ctx, policy))


#: ``$expand=identitySynchronization``, which Microsoft documents on the partner list.
_PARTNER_EXPAND = ExpandSpec(PARTNER_TYPE, {"identitySynchronization": _expanded_sync})


@router.route("GET", ROOT + "/partners", permissions=READ)
def list_partners(ctx: RequestContext) -> EmuResponse:
    partners = [
        _shown(p)
        for key, p in sorted(ctx.tenant.access_policy.partners.items())
        if ctx.visible(_object_key("partner", key))
    ]
    return collection_response(
        ctx,
        partners,
        context="policies/crossTenantAccessPolicy/partners",
        filter_spec=_PARTNER_FILTER,
        count_requires_advanced=False,
        expand=_PARTNER_EXPAND,
    )


def add_partner(tenant: Tenant, body: Any) -> dict[str, Any]:
    """Store a partner configuration from a ``POST …/partners`` body (checked: ``400`` on a
    bad body or tenant id, ``409`` for a duplicate); the stored partner. Scenarios seed
    partners through this too."""
    check_body(PARTNER_TYPE, body)
    tenant_id = body.get("tenantId")
    if not isinstance(tenant_id, str) or not _GUID.match(tenant_id):
        raise bad_request("The tenantId property is required and must be a tenant ID (a GUID).")
    if tenant_id.lower() == tenant.id:
        raise bad_request("A partner configuration cannot be created for your own tenant.")
    key = _partner_key(tenant_id)
    if key in tenant.access_policy.partners:
        raise conflict("Another object with the same value for property tenantId already exists.")
    settings = {k: v for k, v in body.items() if k != "tenantId" and not k.startswith("@")}
    partner = merge_settings(_new_partner(tenant_id.lower()), settings)
    tenant.access_policy.partners[key] = partner
    return partner


@router.route("POST", ROOT + "/partners", permissions=WRITE)
def create_partner(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    if isinstance(body.get("tenantId"), str):
        _check_cloud(ctx, body["tenantId"])
    partner = add_partner(ctx.tenant, body)
    ctx.mark_created(_object_key("partner", _partner_key(partner["tenantId"])))
    return ctx.entity(
        _shown(partner),
        context="policies/crossTenantAccessPolicy/partners/$entity",
        status=201,
    )


@router.route("GET", ROOT + "/partners/{tenantId}", permissions=READ)
def get_partner(ctx: RequestContext) -> EmuResponse:
    partner = _partner(ctx, ctx.params["tenantId"])
    return ctx.entity(
        _shown(partner),
        context="policies/crossTenantAccessPolicy/partners/$entity",
        expand=_PARTNER_EXPAND,
    )


@router.route("PATCH", ROOT + "/partners/{tenantId}", permissions=WRITE)
def patch_partner(ctx: RequestContext) -> EmuResponse:
    tenant_id = ctx.params["tenantId"]
    partner = _partner(ctx, tenant_id)
    changes = ctx.body_object()
    check_body(PARTNER_TYPE, changes)
    given = changes.pop("tenantId", None)
    if given is not None and str(given).lower() != tenant_id.lower():
        raise bad_request("The tenantId property is read-only and cannot be changed.")
    ctx.tenant.access_policy.partners[_partner_key(tenant_id)] = merge_settings(partner, changes)
    return ctx.no_content()


@router.route("DELETE", ROOT + "/partners/{tenantId}", permissions=WRITE)
def delete_partner(ctx: RequestContext) -> EmuResponse:
    tenant_id = ctx.params["tenantId"]
    _partner(ctx, tenant_id)
    key = _partner_key(tenant_id)
    if key in ctx.tenant.access_policy.identity_sync:
        raise bad_request(
            "The partner configuration has an identity synchronization policy. Delete the "
            "identitySynchronization object before you delete the partner configuration."
        )
    del ctx.tenant.access_policy.partners[key]
    ctx.tenant.created_at.pop(_object_key("partner", key), None)
    return ctx.no_content()


# -- identitySynchronization -------------------------------------------------------------

SYNC_PATH = ROOT + "/partners/{tenantId}/identitySynchronization"


def _sync_policy(ctx: RequestContext, tenant_id: str) -> dict[str, Any]:
    key = _partner_key(tenant_id)
    policy = ctx.tenant.access_policy.identity_sync.get(key)
    if policy is None or not ctx.visible(_object_key("identitySynchronization", key)):
        raise GraphFault(
            404,
            "Request_ResourceNotFound",
            f"Resource 'identitySynchronization' for partner '{tenant_id}' does not exist.",
        )
    return policy


#: The beta-only member of crossTenantIdentitySyncPolicyPartner (group sync, a preview).
GROUP_SYNC = "groupSyncInbound"


def _check_sync_body(body: dict[str, Any], tenant_id: str, *, beta: bool = False) -> None:
    """A v1.0 body, or (``beta``) one that may also hold ``groupSyncInbound``
    (``{"isSyncAllowed": bool}``); v1.0 refuses that member as any unknown property."""
    rest = dict(body)
    group = rest.pop(GROUP_SYNC, None) if beta else None
    check_body(SYNC_TYPE, rest)
    if group is not None and not (
        isinstance(group, dict)
        and set(group) <= {"isSyncAllowed", "@odata.type"}
        and isinstance(group.get("isSyncAllowed"), bool | None)
    ):
        raise bad_request(
            "Invalid value for property 'groupSyncInbound': expected {\"isSyncAllowed\": bool}."
        )
    given = body.get("tenantId")
    if given is not None and str(given).lower() != tenant_id.lower():
        raise bad_request("The tenantId in the body must match the partner tenant in the URL.")


def _beta(ctx: RequestContext) -> bool:
    return ctx.call.version == "beta"


def _sync_shown(ctx: RequestContext, policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as the version asked sees it: ``groupSyncInbound`` only in beta."""
    shown = {k: v for k, v in policy.items() if k != GROUP_SYNC}
    if _beta(ctx):
        shown[GROUP_SYNC] = copy.deepcopy(policy.get(GROUP_SYNC)) or {"isSyncAllowed": None}
    return shown


def add_identity_sync(
    tenant: Tenant, tenant_id: str, body: Any, *, beta: bool = False
) -> dict[str, Any]:
    """Store a partner's identitySynchronization from a ``PUT`` body (checked: ``404``
    without the partner, ``400`` on a bad body, ``409`` when one exists); the stored object.
    Scenarios seed identitySynchronization through this too."""
    key = _partner_key(tenant_id)
    if key not in tenant.access_policy.partners:
        raise _missing_partner()
    _check_sync_body(body, tenant_id, beta=beta)
    if key in tenant.access_policy.identity_sync:
        raise conflict(
            "Another object with the same value for property tenantId already exists.",
            details=[
                {
                    "code": "ConflictingObjects",
                    "message": "Conflicting object: identitySynchronization",
                    "target": "identitySynchronization",
                }
            ],
        )
    policy = {
        "tenantId": tenant_id.lower(),
        "displayName": body.get("displayName"),
        "userSyncInbound": body.get("userSyncInbound") or {"isSyncAllowed": None},
    }
    if beta and body.get(GROUP_SYNC) is not None:
        policy[GROUP_SYNC] = {"isSyncAllowed": body[GROUP_SYNC].get("isSyncAllowed")}
    tenant.access_policy.identity_sync[key] = policy
    return policy


@router.route("PUT", SYNC_PATH, permissions=WRITE, beta=True)
def put_identity_sync(ctx: RequestContext) -> EmuResponse:
    tenant_id = ctx.params["tenantId"]
    _partner(ctx, tenant_id)
    _check_cloud(ctx, tenant_id)
    add_identity_sync(ctx.tenant, tenant_id, ctx.body_object(), beta=_beta(ctx))
    ctx.mark_created(_object_key("identitySynchronization", _partner_key(tenant_id)))
    return ctx.no_content()


@router.route("GET", SYNC_PATH, permissions=READ, beta=True)
def get_identity_sync(ctx: RequestContext) -> EmuResponse:
    policy = _sync_policy(ctx, ctx.params["tenantId"])
    return ctx.entity(
        _sync_shown(ctx, policy),
        context=f"policies/crossTenantAccessPolicy/partners('{policy['tenantId']}')"
        "/identitySynchronization/$entity",
    )


@router.route("PATCH", SYNC_PATH, permissions=WRITE, beta=True)
def patch_identity_sync(ctx: RequestContext) -> EmuResponse:
    tenant_id = ctx.params["tenantId"]
    policy = _sync_policy(ctx, tenant_id)
    changes = ctx.body_object()
    _check_sync_body(changes, tenant_id, beta=_beta(ctx))
    changes.pop("tenantId", None)
    updated = merge_settings(policy, changes)
    ctx.tenant.access_policy.identity_sync[_partner_key(tenant_id)] = updated
    return ctx.no_content()


@router.route("DELETE", SYNC_PATH, permissions=WRITE, beta=True)
def delete_identity_sync(ctx: RequestContext) -> EmuResponse:
    tenant_id = ctx.params["tenantId"]
    _sync_policy(ctx, tenant_id)
    key = _partner_key(tenant_id)
    del ctx.tenant.access_policy.identity_sync[key]
    ctx.tenant.created_at.pop(_object_key("identitySynchronization", key), None)
    return ctx.no_content()
