"""The directory ctsync needs: users, groups, group members, the organization; and the writes
that change what the provisioning engine reads (a user's properties, a group's names and
members).

Queries follow Graph's documented support for these resources (reference §7, graph-limits
§1.2 for costs); choices where Microsoft's documentation is silent are listed in
``docs/emulator.md`` (section "Directory").
"""

from __future__ import annotations

from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import bad_request, unsupported_query
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import (
    DIRECTORY_ADVANCED,
    ExpandSpec,
    FilterSpec,
    OrderbySpec,
    collection_response,
)
from ctsync.emulator.core.routing import Router
from ctsync.emulator.services._shared import (
    object_key,
    object_not_found,
    shaped_collection,
    shaped_entity,
)
from ctsync.emulator.state import Tenant

__all__ = ["USER_DEFAULT_PROPERTIES", "count_response", "find_principal", "find_user", "router"]

router = Router()

USER_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
GROUP_READ = (
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
ORGANIZATION_READ = (
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)

#: What ``GET /users`` returns without ``$select`` (Graph v1.0's default user properties).
USER_DEFAULT_PROPERTIES = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]

_STRING = "eq in startswith ne not endswith"
_ENUM_LIKE = "eq in ne not"

_USER_FILTER = FilterSpec(
    resource="User",
    properties={
        "id": _ENUM_LIKE,
        "userPrincipalName": _STRING,
        "mail": _STRING,
        "displayName": _STRING,
        "department": "eq in startswith ne not",
        "userType": _ENUM_LIKE,
        "externalUserState": _ENUM_LIKE,
        "creationType": _ENUM_LIKE,
        "accountEnabled": "eq ne not",
    },
    advanced=DIRECTORY_ADVANCED,
)
_USER_ORDERBY = OrderbySpec(resource="User", properties=("displayName", "userPrincipalName"))

_GROUP_FILTER = FilterSpec(
    resource="Group",
    properties={
        "id": _ENUM_LIKE,
        "displayName": _STRING,
        "mailEnabled": "eq ne not",
        "securityEnabled": "eq ne not",
    },
    advanced=DIRECTORY_ADVANCED,
)
_GROUP_ORDERBY = OrderbySpec(resource="Group", properties=("displayName",))


# -- lookups shared with other services --------------------------------------------------


def _visible_users(ctx: RequestContext) -> list[dict[str, Any]]:
    return [u for uid, u in ctx.tenant.users.items() if ctx.visible(object_key("user", uid))]


def _find_user(ctx: RequestContext, key: str) -> dict[str, Any] | None:
    """A user by object id or userPrincipalName (both case-insensitive)."""
    wanted = key.lower()
    for uid, user in ctx.tenant.users.items():
        upn = str(user.get("userPrincipalName") or "").lower()
        if (uid.lower() == wanted or upn == wanted) and ctx.visible(object_key("user", uid)):
            return user
    return None


def find_user(ctx: RequestContext, key: str) -> dict[str, Any] | None:
    """A user of the caller's tenant by object id or userPrincipalName (case-insensitive)."""
    return _find_user(ctx, key)


def _find_group(ctx: RequestContext, group_id: str) -> dict[str, Any] | None:
    wanted = group_id.lower()
    for gid, group in ctx.tenant.groups.items():
        if gid.lower() == wanted and ctx.visible(object_key("group", gid)):
            return group
    return None


def find_principal(ctx: RequestContext, object_id: str) -> tuple[str, dict[str, Any]] | None:
    """A user or group of the caller's tenant by object id: ``("User"|"Group", object)``."""
    user = _find_user(ctx, object_id)
    if user is not None and str(user["id"]).lower() == object_id.lower():
        return "User", user
    group = _find_group(ctx, object_id)
    if group is not None:
        return "Group", group
    return None


# -- users -------------------------------------------------------------------------------


@router.route("GET", "/users", permissions=USER_READ, cost=2)
def list_users(ctx: RequestContext) -> EmuResponse:
    return shaped_collection(
        ctx,
        _visible_users(ctx),
        context="users",
        type_name="user",
        default_select=USER_DEFAULT_PROPERTIES,
        filter_spec=_USER_FILTER,
        orderby=_USER_ORDERBY,
    )


# -- $count: a path segment, only as an advanced query --------------------------------------


def count_response(
    ctx: RequestContext, items: list[dict[str, Any]], filter_spec: FilterSpec | None
) -> EmuResponse:
    """``GET …/$count``: the number as ``text/plain``. Directory objects count only in an
    advanced query (``ConsistencyLevel: eventual``); ``$filter`` narrows what is counted."""
    eventual = (ctx.request.header("consistencylevel") or "").strip().lower() == "eventual"
    if not eventual:
        raise bad_request("$count is not currently supported.")
    for key in ctx.query:
        if key.startswith("$") and key != "$filter":
            raise bad_request(f"Query option '{key}' is not supported with the $count segment.")
    raw = ctx.query.get("$filter")
    if raw is not None:
        if filter_spec is None:
            raise unsupported_query(f"Filtering is not supported on '{ctx.path}'.")
        compiled = filter_spec.compile(raw, advanced_query=True)
        items = [item for item in items if compiled.matches(item)]
    return EmuResponse(
        status=200,
        headers={"content-type": "text/plain; charset=utf-8"},
        body=str(len(items)).encode(),
    )


@router.route("GET", "/users/$count", permissions=USER_READ)
def count_users(ctx: RequestContext) -> EmuResponse:
    return count_response(ctx, _visible_users(ctx), _USER_FILTER)


@router.route("GET", "/users/{id}", permissions=USER_READ)
def get_user(ctx: RequestContext) -> EmuResponse:
    user = _find_user(ctx, ctx.params["id"])
    if user is None:
        raise object_not_found(ctx.params["id"])
    return shaped_entity(
        ctx,
        user,
        context="users/$entity",
        type_name="user",
        default_select=USER_DEFAULT_PROPERTIES,
    )


USER_WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")

#: User properties the directory sets; a PATCH naming one is refused.
_USER_READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "creationType",
        "deletedDateTime",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "onPremisesSyncEnabled",
        "proxyAddresses",
        "securityIdentifier",
        "signInActivity",
        "identityParentId",
        "isManagementRestricted",
    }
)


@router.route("PATCH", "/users/{id}", permissions=USER_WRITE)
def patch_user(ctx: RequestContext) -> EmuResponse:
    """``PATCH /users/{id}``: change a user's properties (checked against the v1.0 type);
    ``204``. What the provisioning engine's incremental cycles pick up."""
    from ctsync.emulator.core.schema import check_body

    user = _find_user(ctx, ctx.params["id"])
    if user is None:
        raise object_not_found(ctx.params["id"])
    body = ctx.body_object()
    check_body("user", body)
    for key in body:
        if key in _USER_READ_ONLY:
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")
    upn = body.get("userPrincipalName")
    if isinstance(upn, str):
        taken = any(
            uid != user["id"] and str(other.get("userPrincipalName") or "").lower() == upn.lower()
            for uid, other in ctx.tenant.users.items()
        )
        if taken:
            raise bad_request(
                "Another object with the same value for property userPrincipalName already exists."
            )
    was_enabled = user.get("accountEnabled") is not False
    for key, value in body.items():
        if not key.startswith("@odata."):
            user[key] = value
    if was_enabled and user.get("accountEnabled") is False:
        # Disabling an account ends its sign-in sessions: its refresh tokens stop working.
        from ctsync.emulator.core.delegated import revoke_user_sessions

        revoke_user_sessions(ctx.tenant, str(user["id"]), ctx.now)
    return ctx.no_content()


# -- groups ------------------------------------------------------------------------------


def _visible_groups(ctx: RequestContext) -> list[dict[str, Any]]:
    return [g for gid, g in ctx.tenant.groups.items() if ctx.visible(object_key("group", gid))]


def _expanded_members(ctx: RequestContext, group: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        shown
        for mid in ctx.tenant.group_members.get(group["id"], [])
        if (shown := _member(ctx, ctx.tenant, mid)) is not None
    ]


#: ``$expand=members``: direct members, at most 20 (Graph's cap for expanded directory
#: relationships), without a nextLink.
_GROUP_EXPAND = ExpandSpec("group", {"members": _expanded_members}, directory=True)


@router.route("GET", "/groups", permissions=GROUP_READ)
def list_groups(ctx: RequestContext) -> EmuResponse:
    return shaped_collection(
        ctx,
        _visible_groups(ctx),
        context="groups",
        type_name="group",
        filter_spec=_GROUP_FILTER,
        orderby=_GROUP_ORDERBY,
        expand=_GROUP_EXPAND,
    )


@router.route("GET", "/groups/$count", permissions=GROUP_READ)
def count_groups(ctx: RequestContext) -> EmuResponse:
    return count_response(ctx, _visible_groups(ctx), _GROUP_FILTER)


@router.route("GET", "/groups/{id}", permissions=GROUP_READ)
def get_group(ctx: RequestContext) -> EmuResponse:
    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    return shaped_entity(
        ctx, group, context="groups/$entity", type_name="group", expand=_GROUP_EXPAND
    )


def _member(ctx: RequestContext, tenant: Tenant, member_id: str) -> dict[str, Any] | None:
    """One direct member as a ``directoryObject`` with its ``@odata.type``.

    A caller that may read groups but not users still sees a user member, but only its type
    and id, as Graph does for inaccessible members of a ``directoryObject`` collection.
    """
    if member_id in tenant.users and ctx.visible(object_key("user", member_id)):
        if not ctx.roles & set(USER_READ):
            return {"@odata.type": "#microsoft.graph.user", "id": member_id}
        user = tenant.users[member_id]
        return {
            "@odata.type": "#microsoft.graph.user",
            **{k: user.get(k) for k in USER_DEFAULT_PROPERTIES},
        }
    if member_id in tenant.groups and ctx.visible(object_key("group", member_id)):
        return {"@odata.type": "#microsoft.graph.group", **tenant.groups[member_id]}
    return None


@router.route("GET", "/groups/{id}/members/$count", permissions=GROUP_READ)
def count_members(ctx: RequestContext) -> EmuResponse:
    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    members = [
        shown
        for mid in ctx.tenant.group_members.get(group["id"], [])
        if (shown := _member(ctx, ctx.tenant, mid)) is not None
    ]
    return count_response(ctx, members, None)


@router.route("GET", "/groups/{id}/members", permissions=GROUP_READ, cost=3)
def list_members(ctx: RequestContext) -> EmuResponse:
    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    # Direct members only: a nested group is listed as a group, never expanded.
    members = [
        shown
        for mid in ctx.tenant.group_members.get(group["id"], [])
        if (shown := _member(ctx, ctx.tenant, mid)) is not None
    ]
    # Members are of several types, so $select is not checked against one of them.
    return collection_response(ctx, members, context="directoryObjects")


GROUP_WRITE = ("Group.ReadWrite.All", "Directory.ReadWrite.All")
GROUP_MEMBER_WRITE = ("GroupMember.ReadWrite.All", *GROUP_WRITE)

#: Group properties a PATCH may change (what the provisioning engine's group mapping reads).
_GROUP_WRITABLE = frozenset({"displayName", "description", "mailNickname"})


@router.route("PATCH", "/groups/{id}", permissions=GROUP_WRITE)
def patch_group(ctx: RequestContext) -> EmuResponse:
    """``PATCH /groups/{id}``: change a group's ``displayName``, ``description`` or
    ``mailNickname`` (checked against the v1.0 type; any other property ``400``); ``204``."""
    from ctsync.emulator.core.schema import check_body

    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    body = ctx.body_object()
    check_body("group", body)
    for key in body:
        if key not in _GROUP_WRITABLE and not key.startswith("@odata."):
            raise bad_request(
                f"Property '{key}' cannot be changed by the emulator; it changes "
                f"{', '.join(sorted(_GROUP_WRITABLE))}."
            )
    for key, value in body.items():
        if not key.startswith("@odata."):
            group[key] = value
    return ctx.no_content()


def _reference_id(ctx: RequestContext) -> str:
    """The object id an ``@odata.id`` reference body names (``…/directoryObjects/{id}``)."""
    body = ctx.body_object()
    reference = body.get("@odata.id")
    if not isinstance(reference, str) or not reference.rstrip("/"):
        raise bad_request("The request body must carry '@odata.id', the member's URL.")
    return reference.rstrip("/").rsplit("/", 1)[-1]


@router.route("POST", "/groups/{id}/members/$ref", permissions=GROUP_MEMBER_WRITE)
def add_member(ctx: RequestContext) -> EmuResponse:
    """``POST /groups/{id}/members/$ref``: add a user or group of the tenant; ``204``."""
    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    member_id = _reference_id(ctx)
    found = find_principal(ctx, member_id)
    if found is None:
        raise object_not_found(member_id)
    member = str(found[1]["id"])
    members = ctx.tenant.group_members.setdefault(group["id"], [])
    if member in members:
        raise bad_request(
            "One or more added object references already exist for the following modified "
            "properties: 'members'."
        )
    members.append(member)
    return ctx.no_content()


@router.route("DELETE", "/groups/{id}/members/{memberId}/$ref", permissions=GROUP_MEMBER_WRITE)
def remove_member(ctx: RequestContext) -> EmuResponse:
    """``DELETE /groups/{id}/members/{memberId}/$ref``: remove a direct member; ``204``."""
    group = _find_group(ctx, ctx.params["id"])
    if group is None:
        raise object_not_found(ctx.params["id"])
    wanted = ctx.params["memberId"].lower()
    members = ctx.tenant.group_members.get(group["id"], [])
    member = next((m for m in members if m.lower() == wanted), None)
    if member is None:
        raise object_not_found(ctx.params["memberId"])
    members.remove(member)
    return ctx.no_content()


# -- organization ------------------------------------------------------------------------


def organization(tenant: Tenant, created: str) -> dict[str, Any]:
    """The tenant's ``organization`` object in Graph's wire shape."""
    default = tenant.verified_domains[0] if tenant.verified_domains else tenant.domain
    domains = [
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": tenant.domain == default,
            "isInitial": True,
            "name": tenant.domain,
            "type": "Managed",
        }
    ]
    domains.extend(
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": name == default,
            "isInitial": False,
            "name": name,
            "type": "Managed",
        }
        for name in tenant.verified_domains
    )
    return {
        "id": tenant.id,
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": "US",
        "createdDateTime": created,
        "defaultUsageLocation": None,
        "displayName": tenant.display_name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": None,
        "postalCode": None,
        "preferredLanguage": "en",
        "privacyProfile": None,
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [],
        "tenantType": "AAD",
        "assignedPlans": [dict(plan) for plan in tenant.assigned_plans],
        "provisionedPlans": _provisioned_plans(tenant),
        "verifiedDomains": domains,
    }


def _provisioned_plans(tenant: Tenant) -> list[dict[str, Any]]:
    """One ``provisionedPlan`` per service of the assigned plans (first status wins)."""
    out: dict[str, dict[str, Any]] = {}
    for plan in tenant.assigned_plans:
        service = str(plan.get("service"))
        out.setdefault(
            service,
            {
                "capabilityStatus": plan.get("capabilityStatus"),
                "provisioningStatus": "Success",
                "service": service,
            },
        )
    return list(out.values())


def _organization(ctx: RequestContext) -> dict[str, Any]:
    # A fixed date before anything the emulator creates, so answers stay reproducible.
    return organization(ctx.tenant, "2020-01-01T00:00:00Z")


@router.route("GET", "/organization", permissions=ORGANIZATION_READ)
def list_organization(ctx: RequestContext) -> EmuResponse:
    return shaped_collection(
        ctx,
        [_organization(ctx)],
        context="organization",
        type_name="organization",
        count_requires_advanced=False,
    )


@router.route("GET", "/organization/{id}", permissions=ORGANIZATION_READ)
def get_organization(ctx: RequestContext) -> EmuResponse:
    if ctx.params["id"].lower() != ctx.tenant.id:
        raise object_not_found(ctx.params["id"])
    return shaped_entity(
        ctx, _organization(ctx), context="organization/$entity", type_name="organization"
    )
