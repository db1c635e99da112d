"""Conditional Access policies: ``/identity/conditionalAccess/policies`` (CRUD).

Behaviour follows reference §6 and Microsoft's conditionalAccessPolicy pages: ``POST`` answers
``201`` with the whole policy, ``PATCH`` and ``DELETE`` ``204``; bodies are checked against the
v1.0 types. Reads need ``Policy.Read.All``; writes need ``Policy.ReadWrite.ConditionalAccess``
together with ``Policy.Read.All`` (or, for create and update, ``Application.Read.All``).
Microsoft documents that throttled Conditional Access calls carry no ``Retry-After``; the
emulator's throttling does not model that difference. Choices where the docs are silent are
in ``docs/emulator.md`` (section "Conditional Access").
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, forbidden
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec, OrderbySpec
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services._shared import shaped_collection, shaped_entity
from ctsync.emulator.state import Tenant

__all__ = [
    "BUILT_IN_AUTHENTICATION_STRENGTHS",
    "PolicyError",
    "new_policy",
    "router",
    "seed_policy",
]

router = Router()

POLICY_TYPE = "conditionalAccessPolicy"
ROOT = "/identity/conditionalAccess/policies"
CONTEXT = "identity/conditionalAccess/policies"

READ = ("Policy.Read.All",)
WRITE = ("Policy.ReadWrite.ConditionalAccess",)
#: What a write needs beside ``Policy.ReadWrite.ConditionalAccess`` (one of these).
_WRITE_COMPANIONS = ("Policy.Read.All", "Application.Read.All")
_DELETE_COMPANIONS = ("Policy.Read.All",)

#: Microsoft's built-in authentication strengths (id -> display name).
BUILT_IN_AUTHENTICATION_STRENGTHS = {
    "00000000-0000-0000-0000-000000000002": "Multifactor authentication",
    "00000000-0000-0000-0000-000000000003": "Passwordless MFA",
    "00000000-0000-0000-0000-000000000004": "Phishing-resistant MFA",
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_READ_ONLY = ("id", "createdDateTime", "modifiedDateTime", "deletedDateTime")
_USER_KEYWORDS = {"all", "none", "guestsorexternalusers"}
_APP_KEYWORDS = {"all", "none", "office365", "microsoftadminportals"}

_USERS_DEFAULT: dict[str, Any] = {
    "includeUsers": [],
    "excludeUsers": [],
    "includeGroups": [],
    "excludeGroups": [],
    "includeRoles": [],
    "excludeRoles": [],
    "includeGuestsOrExternalUsers": None,
    "excludeGuestsOrExternalUsers": None,
}
_APPLICATIONS_DEFAULT: dict[str, Any] = {
    "includeApplications": [],
    "excludeApplications": [],
    "includeUserActions": [],
    "includeAuthenticationContextClassReferences": [],
    "applicationFilter": None,
}
_CONDITIONS_DEFAULT: dict[str, Any] = {
    "userRiskLevels": [],
    "signInRiskLevels": [],
    "servicePrincipalRiskLevels": [],
    "clientAppTypes": ["all"],
    "insiderRiskLevels": None,
    "platforms": None,
    "locations": None,
    "devices": None,
    "clientApplications": None,
    "authenticationFlows": None,
}
_GRANT_DEFAULT: dict[str, Any] = {
    "operator": None,
    "builtInControls": [],
    "customAuthenticationFactors": [],
    "termsOfUse": [],
    "authenticationStrength": None,
}


class PolicyError(GraphFault):
    """A policy body Entra would refuse: ``400 BadRequest`` with the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BadRequest", message)


# -- validation and normalisation --------------------------------------------------------------


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"'{where}' must be a collection of strings.")
    return value


def _check_ids(values: list[str], where: str, keywords: set[str]) -> None:
    for value in values:
        if value.lower() not in keywords and not _GUID.match(value):
            allowed = ", ".join(sorted(keywords)) or "none"
            msg = (
                f"'{value}' in '{where}' is neither an object id (GUID) nor a keyword ({allowed})."
            )
            raise PolicyError(msg)


def _flags(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [p.strip() for p in value.split(",") if p.strip() and p.strip() != "none"]


def _check_guests(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise PolicyError(f"'{where}' must be an object.")
    kinds = _flags(value.get("guestOrExternalUserTypes"))
    if "guestOrExternalUserTypes" not in value or value["guestOrExternalUserTypes"] is None:
        raise PolicyError(f"'{where}/guestOrExternalUserTypes' is required.")
    tenants = value.get("externalTenants")
    if tenants is None:
        return
    if not kinds:
        msg = (
            f"'{where}/externalTenants' can only be set when guestOrExternalUserTypes names at "
            "least one guest or external user type."
        )
        raise PolicyError(msg)
    odata_type = str(tenants.get("@odata.type", "")).removeprefix("#microsoft.graph.")
    kind = tenants.get("membershipKind")
    if odata_type == "conditionalAccessAllExternalTenants":
        if kind not in (None, "all") or "members" in tenants:
            raise PolicyError(f"'{where}/externalTenants': all external tenants take no members.")
        tenants["membershipKind"] = "all"
    elif odata_type == "conditionalAccessEnumeratedExternalTenants":
        if kind not in (None, "enumerated"):
            raise PolicyError(f"'{where}/externalTenants': membershipKind must be 'enumerated'.")
        members = _strings(tenants.get("members"), f"{where}/externalTenants/members")
        if not members:
            raise PolicyError(f"'{where}/externalTenants/members' must list at least one tenant.")
        _check_ids(members, f"{where}/externalTenants/members", set())
        tenants["membershipKind"] = "enumerated"
    else:
        msg = (
            f"'{where}/externalTenants' needs an @odata.type: "
            "#microsoft.graph.conditionalAccessAllExternalTenants or "
            "#microsoft.graph.conditionalAccessEnumeratedExternalTenants."
        )
        raise PolicyError(msg)


def _normalise_users(users: Any) -> dict[str, Any]:
    if not isinstance(users, dict):
        raise PolicyError("The policy needs a users condition ('conditions/users').")
    out = {**copy.deepcopy(_USERS_DEFAULT), **copy.deepcopy(users)}
    for key in ("includeUsers", "excludeUsers"):
        out[key] = _strings(out[key], f"conditions/users/{key}")
        _check_ids(out[key], f"conditions/users/{key}", _USER_KEYWORDS)
    for key in ("includeGroups", "excludeGroups", "includeRoles", "excludeRoles"):
        out[key] = _strings(out[key], f"conditions/users/{key}")
        _check_ids(out[key], f"conditions/users/{key}", set())
    for key in ("includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers"):
        _check_guests(out[key], f"conditions/users/{key}")
    included = (
        out["includeUsers"]
        or out["includeGroups"]
        or out["includeRoles"]
        or out["includeGuestsOrExternalUsers"] is not None
    )
    if not included:
        msg = (
            "The users condition must include someone: includeUsers (a user, 'All' or 'None'), "
            "includeGroups, includeRoles or includeGuestsOrExternalUsers."
        )
        raise PolicyError(msg)
    return out


def _normalise_applications(applications: Any) -> dict[str, Any]:
    if not isinstance(applications, dict):
        raise PolicyError("The policy needs an applications condition ('conditions/applications').")
    out = {**copy.deepcopy(_APPLICATIONS_DEFAULT), **copy.deepcopy(applications)}
    for key in (
        "includeApplications",
        "excludeApplications",
        "includeUserActions",
        "includeAuthenticationContextClassReferences",
    ):
        out[key] = _strings(out[key], f"conditions/applications/{key}")
    for key in ("includeApplications", "excludeApplications"):
        _check_ids(out[key], f"conditions/applications/{key}", _APP_KEYWORDS)
    if not (
        out["includeApplications"]
        or out["includeUserActions"]
        or out["includeAuthenticationContextClassReferences"]
    ):
        msg = (
            "The applications condition must include applications ('All', 'None', an app id), "
            "user actions or authentication contexts."
        )
        raise PolicyError(msg)
    return out


def _normalise_conditions(conditions: Any) -> dict[str, Any]:
    if not isinstance(conditions, dict):
        raise PolicyError("The conditions property is required.")
    out = {**copy.deepcopy(_CONDITIONS_DEFAULT), **copy.deepcopy(conditions)}
    for key in ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels"):
        if out[key] is None:
            out[key] = []
    if not out["clientAppTypes"]:
        raise PolicyError("'conditions/clientAppTypes' must name at least one client app type.")
    out["users"] = _normalise_users(out.get("users"))
    out["applications"] = _normalise_applications(out.get("applications"))
    return out


def _normalise_grant(grant: Any) -> dict[str, Any] | None:
    if grant is None:
        return None
    if not isinstance(grant, dict):
        raise PolicyError("'grantControls' must be an object.")
    out = {**copy.deepcopy(_GRANT_DEFAULT), **copy.deepcopy(grant)}
    for key in ("builtInControls", "customAuthenticationFactors", "termsOfUse"):
        out[key] = _strings(out[key], f"grantControls/{key}")
    strength = out["authenticationStrength"]
    if strength is not None:
        strength_id = strength.get("id") if isinstance(strength, dict) else None
        if strength_id not in BUILT_IN_AUTHENTICATION_STRENGTHS:
            msg = (
                "'grantControls/authenticationStrength' must reference an authentication "
                f"strength by id; known: {', '.join(BUILT_IN_AUTHENTICATION_STRENGTHS)}."
            )
            raise PolicyError(msg)
        out["authenticationStrength"] = {
            "id": strength_id,
            "displayName": BUILT_IN_AUTHENTICATION_STRENGTHS[strength_id],
            "policyType": "builtIn",
        }
        if "mfa" in out["builtInControls"]:
            raise PolicyError("'mfa' and an authentication strength cannot be required together.")
    controls = out["builtInControls"]
    if "block" in controls and (len(controls) > 1 or strength is not None or out["termsOfUse"]):
        raise PolicyError("'block' cannot be combined with other grant controls.")
    required = controls or out["termsOfUse"] or out["customAuthenticationFactors"] or strength
    if required and out["operator"] not in ("AND", "OR"):
        raise PolicyError("'grantControls/operator' must be 'AND' or 'OR'.")
    return out


def _strip_navigation(body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The body without ``grantControls/authenticationStrength`` (a navigation property the
    type check cannot see), and that value."""
    grant = body.get("grantControls")
    if not isinstance(grant, dict) or "authenticationStrength" not in grant:
        return body, None
    stripped = dict(body)
    stripped["grantControls"] = {k: v for k, v in grant.items() if k != "authenticationStrength"}
    return stripped, grant["authenticationStrength"]


def _check_types(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PolicyError("The request body must be a conditionalAccessPolicy object.")
    stripped, _ = _strip_navigation(body)
    check_body(POLICY_TYPE, stripped)
    return body


def _validated(policy: dict[str, Any]) -> dict[str, Any]:
    """A complete policy in Graph's shape, or :class:`PolicyError`."""
    name = policy.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError("The displayName property is required.")
    if policy.get("state") is None:
        raise PolicyError(
            "The state property is required: enabled, disabled or "
            "enabledForReportingButNotEnforced."
        )
    out = dict(policy)
    out["conditions"] = _normalise_conditions(policy.get("conditions"))
    out["grantControls"] = _normalise_grant(policy.get("grantControls"))
    if out["grantControls"] is None and not policy.get("sessionControls"):
        raise PolicyError("The policy needs grant controls or session controls.")
    return out


def _timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_policy(body: Any, *, policy_id: str, now: datetime) -> dict[str, Any]:
    """A policy created from a ``POST`` body (checked against the v1.0 type)."""
    _check_types(body)
    given = {k: v for k, v in body.items() if k not in _READ_ONLY and not k.startswith("@")}
    checked = _validated(given)
    return {
        "id": policy_id,
        "templateId": checked.get("templateId"),
        "displayName": checked["displayName"],
        "description": checked.get("description"),
        "createdDateTime": _timestamp(now),
        "modifiedDateTime": None,
        "state": checked["state"],
        "sessionControls": checked.get("sessionControls"),
        "conditions": checked["conditions"],
        "grantControls": checked["grantControls"],
    }


def seed_policy(tenant: Tenant, body: Any, *, now: datetime) -> dict[str, Any]:
    """Add a policy to a tenant from a scenario; its id is stable (derived from the tenant id
    and the policy name) unless the body names one."""
    if not isinstance(body, dict):
        raise PolicyError("A Conditional Access policy must be an object.")
    policy_id = body.get("id") or str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"ctsync-emulator:{tenant.id}:{body.get('displayName')}")
    )
    policy = new_policy(body, policy_id=str(policy_id), now=now)
    tenant.conditional_access_policies[policy["id"]] = policy
    return policy


def _merge(current: Any, changes: Any) -> Any:
    """PATCH: objects merge member by member, at every depth; collections and scalars are
    replaced; an object that names its ``@odata.type`` replaces the stored one whole."""
    if not isinstance(current, dict) or not isinstance(changes, dict) or "@odata.type" in changes:
        return copy.deepcopy(changes)
    out = dict(current)
    for key, value in changes.items():
        out[key] = _merge(current.get(key), value) if key in current else copy.deepcopy(value)
    return out


# -- routes ----------------------------------------------------------------------------------


def _require(ctx: RequestContext, companions: tuple[str, ...]) -> None:
    if not ctx.roles & set(companions):
        raise forbidden()


def _policy(ctx: RequestContext, policy_id: str) -> dict[str, Any]:
    wanted = policy_id.lower()
    for pid, policy in ctx.tenant.conditional_access_policies.items():
        if pid.lower() == wanted and ctx.visible(_key(pid)):
            return policy
    raise GraphFault(
        404,
        "Request_ResourceNotFound",
        f"Conditional Access policy '{policy_id}' does not exist.",
    )


def _key(policy_id: str) -> str:
    return f"conditionalAccessPolicy:{policy_id.lower()}"


_FILTER = FilterSpec(
    resource=POLICY_TYPE,
    properties={
        "id": "eq in",
        "displayName": "eq in startswith",
        "state": "eq in",
        "templateId": "eq",
        "createdDateTime": "eq gt ge lt le",
        "modifiedDateTime": "eq gt ge lt le",
    },
)
_ORDERBY = OrderbySpec(
    resource=POLICY_TYPE, properties=("displayName", "createdDateTime", "modifiedDateTime")
)


@router.route("GET", ROOT, permissions=READ)
def list_policies(ctx: RequestContext) -> EmuResponse:
    policies = [
        copy.deepcopy(p)
        for pid, p in ctx.tenant.conditional_access_policies.items()
        if ctx.visible(_key(pid))
    ]
    return shaped_collection(
        ctx,
        policies,
        context=CONTEXT,
        type_name=POLICY_TYPE,
        filter_spec=_FILTER,
        orderby=_ORDERBY,
        count_requires_advanced=False,
    )


@router.route("POST", ROOT, permissions=WRITE)
def create_policy(ctx: RequestContext) -> EmuResponse:
    _require(ctx, _WRITE_COMPANIONS)
    policy = new_policy(ctx.body_object(), policy_id=ctx.emulator.ids.guid(), now=ctx.now)
    ctx.tenant.conditional_access_policies[policy["id"]] = policy
    ctx.mark_created(_key(policy["id"]))
    return ctx.json(
        201, {"@odata.context": f"{ctx.base_url}/$metadata#{CONTEXT}/$entity", **policy}
    )


@router.route("GET", ROOT + "/{id}", permissions=READ)
def get_policy(ctx: RequestContext) -> EmuResponse:
    policy = _policy(ctx, ctx.params["id"])
    return shaped_entity(
        ctx, copy.deepcopy(policy), context=f"{CONTEXT}/$entity", type_name=POLICY_TYPE
    )


@router.route("PATCH", ROOT + "/{id}", permissions=WRITE)
def update_policy(ctx: RequestContext) -> EmuResponse:
    _require(ctx, _WRITE_COMPANIONS)
    policy = _policy(ctx, ctx.params["id"])
    changes = _check_types(ctx.body_object())
    given = {k: v for k, v in changes.items() if k not in _READ_ONLY and not k.startswith("@")}
    merged = _merge(policy, given)
    checked = _validated(merged)
    checked["modifiedDateTime"] = _timestamp(ctx.now)
    ctx.tenant.conditional_access_policies[policy["id"]] = checked
    return ctx.no_content()


@router.route("DELETE", ROOT + "/{id}", permissions=WRITE)
def delete_policy(ctx: RequestContext) -> EmuResponse:
    _require(ctx, _DELETE_COMPANIONS)
    policy = _policy(ctx, ctx.params["id"])
    del ctx.tenant.conditional_access_policies[policy["id"]]
    ctx.tenant.created_at.pop(_key(policy["id"]), None)
    return ctx.no_content()
