"""What Graph asks of a *delegated* caller: one of the operation's delegated scopes, and a
directory role that reaches the operation.

An app-only token needs one of a route's application permissions (``Route.permissions``,
checked in ``Emulator.dispatch``). A token a user signed in for (``scp``) needs instead

1. one of the operation's **delegated scopes** in ``scp``, and
2. a **directory role** the operation's "Permissions" section supports ("For delegated access
   using work or school accounts, the signed-in user must be assigned a supported Microsoft
   Entra role …"), checked against the user's role assignments *now* (not the token's
   ``wids``). Global Administrator reaches everything. ``MEMBER`` stands for "a non-admin
   member user with default user permissions" where the page lists it; an empty role list
   means the page asks for no role.

:data:`DELEGATED_RULES` is that table, one row per group of routes, each with the page it comes
from (Microsoft Graph v1.0 reference, ``microsoft-graph-docs-contrib``
``api-reference/v1.0/includes/rbac-for-apis/*.md`` and the permissions tables). A route no row
covers (a route added later) takes the route's application permission names as scopes and
admits only a Global Administrator: it fails closed, and a test lists every route the table
does not cover.

Refusals are Graph's directory answer: ``403 Authorization_RequestDenied`` "Insufficient
privileges to complete the operation."
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ctsync.emulator.core.directory_roles import (
    GLOBAL_ADMINISTRATOR,
    ROLE_TEMPLATES,
    assigned_role_ids,
    is_member,
)
from ctsync.emulator.core.errors import forbidden

if TYPE_CHECKING:
    from ctsync.emulator.core.routing import Route
    from ctsync.emulator.core.tokens import TokenClaims
    from ctsync.emulator.state import JsonObject, Tenant

__all__ = [
    "APP_ONLY_PERMISSIONS",
    "DELEGATED_RULES",
    "MEMBER",
    "DelegatedRule",
    "check_delegated",
    "rule_for",
]

#: "A non-admin member user with default user permissions" (not a guest).
MEMBER = "member"
#: Any signed-in user of the tenant, guests included.
ANY_USER = "any user"

#: Application permissions with no delegated counterpart.
APP_ONLY_PERMISSIONS = frozenset({"Application.ReadWrite.OwnedBy"})

_DOCS = "microsoft-graph-docs-contrib api-reference/v1.0/"


@dataclass(frozen=True)
class DelegatedRule:
    """The delegated scopes and directory roles of a group of routes."""

    #: HTTP methods the row covers.
    methods: frozenset[str]
    #: Matched (``re.fullmatch``, case-insensitive) against a route's pattern.
    pattern: str
    #: Delegated scopes, any one of which allows the call.
    scopes: tuple[str, ...]
    #: Role display names (or :data:`MEMBER`, :data:`ANY_USER`), any one of which allows it.
    roles: tuple[str, ...]
    #: Where the row comes from.
    source: str
    #: A path parameter naming a user: acting on yourself needs no role ("where the signed-in
    #: user is acting on another user").
    self_param: str | None = None
    #: The object the route addresses is an application or service principal (by ``{id}`` or
    #: ``(appId='{appId}')``): its owners need no role.
    owners: bool = False
    #: :data:`MEMBER` counts only while this ``defaultUserRolePermissions`` flag of the tenant's
    #: authorization policy is on (``allowedToCreateApps``).
    member_setting: str | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE))
        unknown = [r for r in self.roles if r not in ROLE_TEMPLATES and r not in {MEMBER, ANY_USER}]
        if unknown:
            msg = f"unknown directory role(s) {unknown} in a delegated rule"
            raise ValueError(msg)

    def covers(self, method: str, pattern: str) -> bool:
        return method.upper() in self.methods and bool(self._regex.fullmatch(pattern))


def _m(*methods: str) -> frozenset[str]:
    return frozenset(methods)


_READ = _m("GET", "HEAD")
_WRITE = _m("POST", "PATCH", "PUT", "DELETE")
_ALL = _READ | _WRITE

_XTAP = r"/policies/crossTenantAccessPolicy"
_MTO = r"/tenantRelationships/multiTenantOrganization"
_IDSYNC = _XTAP + r"/partners/\{tenantId\}/identitySynchronization"
_SYNC = r"/servicePrincipals/\{id\}/synchronization(/.*)?"
_APP_READ = ("Application.Read.All", "Application.ReadWrite.All")
_DIR_READ = ("Directory.Read.All", "Directory.ReadWrite.All")
_SYNC_ROLES = (
    "Application Administrator",
    "Cloud Application Administrator",
    "Hybrid Identity Administrator",
)
_LOG_ROLES = (
    "Reports Reader",
    "Security Reader",
    "Global Reader",
    "Security Operator",
    "Security Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
)
_GRANT_WRITE_ROLES = (
    "Application Administrator",
    "Application Developer",
    "Cloud Application Administrator",
    "Directory Writers",
    "Privileged Role Administrator",
    "User Administrator",
)

#: The table, first match wins.
DELEGATED_RULES: tuple[DelegatedRule, ...] = (
    # -- cross-tenant access policy --------------------------------------------------------
    DelegatedRule(
        _READ,
        _IDSYNC,
        ("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"),
        ("Security Reader", "Global Reader", "Security Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-xtap-apis-read.md (identity synchronization "
        "settings are excluded for Global Secure Access and Teams Administrators)",
    ),
    DelegatedRule(
        _WRITE,
        _IDSYNC,
        ("Policy.ReadWrite.CrossTenantAccess",),
        ("Security Administrator",),
        _DOCS + "includes/rbac-for-apis/rbac-xtap-apis-write.md (Teams Administrator: "
        "excluding identity synchronization settings)",
    ),
    DelegatedRule(
        _READ,
        _XTAP + r"(/.*)?",
        ("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"),
        (
            "Security Reader",
            "Global Reader",
            "Global Secure Access Administrator",
            "Teams Administrator",
            "Security Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-xtap-apis-read.md",
    ),
    DelegatedRule(
        _WRITE,
        _XTAP + r"(/.*)?",
        ("Policy.ReadWrite.CrossTenantAccess",),
        ("Teams Administrator", "Security Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-xtap-apis-write.md",
    ),
    DelegatedRule(
        _READ,
        _MTO + r"/joinRequest",
        ("MultiTenantOrganization.Read.All", "MultiTenantOrganization.ReadWrite.All"),
        ("Security Reader", "Global Reader", "Security Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-multitenantorganization-apis-read.md",
    ),
    DelegatedRule(
        _READ,
        _MTO + r"(/.*)?",
        (
            "MultiTenantOrganization.ReadBasic.All",
            "MultiTenantOrganization.Read.All",
            "MultiTenantOrganization.ReadWrite.All",
        ),
        ("Security Reader", "Global Reader", "Security Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-multitenantorganization-apis-read.md",
    ),
    DelegatedRule(
        _WRITE,
        _MTO + r"(/.*)?",
        ("MultiTenantOrganization.ReadWrite.All",),
        ("Security Administrator",),
        _DOCS + "includes/rbac-for-apis/rbac-multitenantorganization-apis-write.md",
    ),
    DelegatedRule(
        _READ,
        r"/tenantRelationships/.*",
        ("CrossTenantInformation.ReadBasic.All",),
        (MEMBER,),
        _DOCS + "api/tenantrelationship-findtenantinformationbytenantid.md (no role named: "
        "default user permissions)",
    ),
    # -- directory ---------------------------------------------------------------------------
    DelegatedRule(
        _READ,
        r"/users/\{id\}/authentication/.*",
        (
            "UserAuthenticationMethod.Read.All",
            "UserAuthenticationMethod.ReadWrite.All",
            "UserAuthMethod-Phone.Read.All",
            "UserAuthMethod-Phone.ReadWrite.All",
        ),
        (
            "Global Reader",
            "Authentication Administrator",
            "Privileged Authentication Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-authentication-methods-apis-read-others.md",
        self_param="id",
    ),
    DelegatedRule(
        _WRITE,
        r"/users/\{id\}/authentication/.*",
        ("UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-Phone.ReadWrite.All"),
        ("Authentication Administrator", "Privileged Authentication Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-authentication-methods-apis-write-others.md",
        self_param="id",
    ),
    DelegatedRule(
        _READ,
        r"/users(/.*)?",
        ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", *_DIR_READ),
        (MEMBER,),
        _DOCS + "api/user-list.md, user-get.md (default user permissions read users)",
    ),
    DelegatedRule(
        _WRITE,
        r"/users/\{id\}",
        ("User.ReadWrite.All", "Directory.ReadWrite.All"),
        ("User Administrator",),
        _DOCS + "api/user-update.md (User Administrator for other users' properties)",
    ),
    DelegatedRule(
        _READ,
        r"/groups(/.*)?",
        ("GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", *_DIR_READ),
        (MEMBER,),
        _DOCS + "api/group-list.md, group-list-members.md (default user permissions)",
    ),
    DelegatedRule(
        _WRITE,
        r"/groups/\{id\}/members/.*",
        ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
        ("Groups Administrator", "User Administrator", "Directory Writers"),
        _DOCS + "api/group-post-members.md, group-delete-members.md (a group's owners may "
        "too; the emulator keeps no group owners)",
    ),
    DelegatedRule(
        _WRITE,
        r"/groups/\{id\}",
        ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
        ("Groups Administrator", "Directory Writers"),
        _DOCS + "api/group-update.md",
    ),
    DelegatedRule(
        _READ,
        r"/organization(/.*)?",
        ("Organization.Read.All", "Organization.ReadWrite.All", *_DIR_READ),
        (ANY_USER,),
        _DOCS + "includes/rbac-for-apis/rbac-organization-apis-read.md (User and Guest User "
        "roles are listed)",
    ),
    # -- applications and service principals --------------------------------------------------
    DelegatedRule(
        _READ,
        r"/applicationTemplates(/.*)?",
        (),
        (ANY_USER,),
        _DOCS + "api/applicationtemplate-list.md",
    ),
    DelegatedRule(
        _m("POST"),
        r"/applicationTemplates/\{id\}/instantiate",
        ("Application.ReadWrite.All", "Directory.ReadWrite.All"),
        _SYNC_ROLES,
        _DOCS + "api/applicationtemplate-instantiate.md; Microsoft's CTS how-to asks for "
        "Hybrid Identity Administrator to configure cross-tenant sync",
    ),
    DelegatedRule(
        _READ,
        r"/servicePrincipals/\{id\}/appRoleAssignedTo(/.*)?",
        (*_APP_READ, *_DIR_READ, "AppRoleAssignment.ReadWrite.All"),
        (
            "Directory Readers",
            "Directory Synchronization Accounts",
            "Directory Writers",
            "Hybrid Identity Administrator",
            "Identity Governance Administrator",
            "Privileged Role Administrator",
            "User Administrator",
            "Application Administrator",
            "Cloud Application Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-approleassignments-apis-read.md",
    ),
    DelegatedRule(
        _WRITE,
        r"/servicePrincipals/\{id\}/appRoleAssignedTo(/.*)?",
        ("AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"),
        (
            "Directory Synchronization Accounts",
            "Directory Writers",
            "Hybrid Identity Administrator",
            "Identity Governance Administrator",
            "Privileged Role Administrator",
            "User Administrator",
            "Application Administrator",
            "Cloud Application Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-approleassignments-apis-write.md",
    ),
    DelegatedRule(
        _ALL,
        _SYNC,
        ("Synchronization.Read.All", "Synchronization.ReadWrite.All"),
        _SYNC_ROLES,
        _DOCS + "includes/rbac-for-apis/rbac-synchronization-apis.md (reads); Application or "
        "Cloud Application Administrator, Hybrid Identity Administrator for Cloud Sync",
    ),
    DelegatedRule(
        _READ,
        r"/(servicePrincipals|applications)(\(appId='\{appId\}'\)|/\{id\})?"
        r"(/federatedIdentityCredentials.*)?",
        (*_APP_READ, *_DIR_READ),
        (MEMBER,),
        _DOCS + "includes/rbac-for-apis/rbac-serviceprincipal-apis-read.md, "
        "rbac-application-apis-read.md (a non-admin member with default user permissions)",
    ),
    DelegatedRule(
        _m("POST"),
        r"/applications",
        ("Application.ReadWrite.All", "Directory.ReadWrite.All"),
        (
            MEMBER,
            "Application Developer",
            "Hybrid Identity Administrator",
            "Security Administrator",
            "Cloud Application Administrator",
            "Application Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-application-apis-write.md (a non-admin member "
        "with default user permissions, unless the admin restricted it: allowedToCreateApps)",
        member_setting="allowedToCreateApps",
    ),
    DelegatedRule(
        _WRITE,
        r"/servicePrincipals(\(appId='\{appId\}'\)|/\{id\})?",
        ("Application.ReadWrite.All", "Directory.ReadWrite.All"),
        ("Application Administrator", "Cloud Application Administrator"),
        _DOCS + "includes/rbac-for-apis/rbac-serviceprincipal-apis-create-update-upsert.md "
        "(owners manage their own)",
        owners=True,
    ),
    DelegatedRule(
        _WRITE,
        r"/applications(\(appId='\{appId\}'\)|/\{id\})(/.*)?",
        ("Application.ReadWrite.All", "Directory.ReadWrite.All"),
        (
            "Hybrid Identity Administrator",
            "Security Administrator",
            "Cloud Application Administrator",
            "Application Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-application-apis-write.md (owners manage their "
        "own: addPassword, addKey, federatedIdentityCredentials)",
        owners=True,
    ),
    # -- readiness ----------------------------------------------------------------------------
    DelegatedRule(
        _READ,
        r"/reports/authenticationMethods/.*",
        ("AuditLog.Read.All",),
        (
            "Reports Reader",
            "Security Reader",
            "Global Reader",
            "Security Operator",
            "Security Administrator",
            "Application Administrator",
            "Cloud Application Administrator",
        ),
        "entra-docs identity/authentication/howto-authentication-methods-activity.md "
        "(roles that read the Authentication Methods Activity APIs)",
    ),
    DelegatedRule(
        _READ,
        r"/identity/conditionalAccess/.*",
        ("Policy.Read.All",),
        (
            "Global Secure Access Administrator",
            "Security Reader",
            "Security Administrator",
            "Global Reader",
            "Conditional Access Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-conditionalaccess-apis-read.md",
    ),
    DelegatedRule(
        _WRITE,
        r"/identity/conditionalAccess/.*",
        ("Policy.ReadWrite.ConditionalAccess",),
        ("Conditional Access Administrator", "Security Administrator"),
        _DOCS + "api/conditionalaccessroot-post-policies.md (rbac-conditionalaccess-apis-write)",
    ),
    DelegatedRule(
        _READ,
        r"/policies/authorizationPolicy",
        ("Policy.Read.All", "Policy.ReadWrite.Authorization"),
        (MEMBER,),
        _DOCS + "includes/rbac-for-apis/rbac-authorization-policy-apis-read.md (the APIs also "
        "work with the default user permissions)",
    ),
    DelegatedRule(
        _WRITE,
        r"/policies/authorizationPolicy",
        ("Policy.ReadWrite.Authorization",),
        ("Privileged Role Administrator",),
        _DOCS + "includes/rbac-for-apis/rbac-authorization-policy-apis-update.md",
    ),
    DelegatedRule(
        _READ,
        r"/auditLogs/provisioning",
        ("AuditLog.Read.All", "ProvisioningLog.Read.All", "Directory.Read.All"),
        _LOG_ROLES,
        _DOCS + "api/provisioningobjectsummary-list.md",
    ),
    # -- delegated permission grants -----------------------------------------------------------
    DelegatedRule(
        _READ,
        r"/oauth2PermissionGrants(/.*)?",
        (
            "DelegatedPermissionGrant.Read.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            *_DIR_READ,
            "Directory.AccessAsUser.All",
        ),
        (
            "Global Reader",
            "Directory Readers",
            "Application Administrator",
            "Application Developer",
            "Cloud Application Administrator",
            "Directory Writers",
            "Privileged Role Administrator",
            "User Administrator",
        ),
        _DOCS + "includes/rbac-for-apis/rbac-oauth2permissiongrant-apis-read.md",
    ),
    DelegatedRule(
        _WRITE,
        r"/oauth2PermissionGrants(/.*)?",
        (
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ),
        _GRANT_WRITE_ROLES,
        _DOCS + "includes/rbac-for-apis/rbac-oauth2permissiongrant-apis-write.md",
    ),
)


def rule_for(method: str, pattern: str) -> DelegatedRule | None:
    """The table's row for a route, or ``None`` when no row covers it."""
    return next((r for r in DELEGATED_RULES if r.covers(method, pattern)), None)


def _fallback(route: Route) -> DelegatedRule:
    scopes = tuple(p for p in route.permissions if p not in APP_ONLY_PERMISSIONS)
    return DelegatedRule(
        frozenset({route.method}),
        re.escape(route.pattern),
        scopes,
        (),
        "no row: the route's application permission names, Global Administrator only",
    )


def check_delegated(
    tenant: Tenant, route: Route, params: dict[str, str], claims: TokenClaims
) -> None:
    """Refuse (``403``) a delegated call the token's scopes or the user's roles do not reach."""
    if not route.permissions and rule_for(route.method, route.pattern) is None:
        return  # a route any token may call ($batch)
    rule = rule_for(route.method, route.pattern)
    fallback = rule is None
    rule = rule or _fallback(route)
    if rule.scopes and not claims.scopes & set(rule.scopes):
        raise forbidden()
    user = tenant.users.get(claims.object_id)
    if user is None:
        raise forbidden()
    roles = assigned_role_ids(tenant, claims.object_id)
    if GLOBAL_ADMINISTRATOR in roles:
        return
    if fallback:
        raise forbidden()
    if not rule.roles or ANY_USER in rule.roles:
        return
    if MEMBER in rule.roles and is_member(user) and _members_may(tenant, rule):
        return
    if rule.self_param is not None and _is_self(user, params.get(rule.self_param)):
        return
    if rule.owners and _owns(tenant, claims.object_id, route.pattern, params):
        return
    if roles & {ROLE_TEMPLATES[r] for r in rule.roles if r in ROLE_TEMPLATES}:
        return
    raise forbidden()


def _members_may(tenant: Tenant, rule: DelegatedRule) -> bool:
    if rule.member_setting is None:
        return True
    defaults = tenant.authorization_policy.get("defaultUserRolePermissions") or {}
    return defaults.get(rule.member_setting) is not False


def _owns(tenant: Tenant, user_id: str, pattern: str, params: dict[str, str]) -> bool:
    """Whether the user owns the application or service principal the route addresses."""
    objects = tenant.applications if pattern.startswith("/applications") else None
    if objects is None:
        objects = tenant.service_principals
    object_id = params.get("id")
    if object_id is None and "appId" in params:
        wanted = params["appId"].lower()
        object_id = next(
            (oid for oid, o in objects.items() if str(o.get("appId", "")).lower() == wanted),
            None,
        )
    if object_id is None:
        return False
    owners = {o.lower() for o in tenant.owners.get(object_id.lower(), [])}
    owners |= {o.lower() for o in tenant.owners.get(object_id, [])}
    return user_id.lower() in owners


def _is_self(user: JsonObject, ref: str | None) -> bool:
    if not ref:
        return False
    ref = ref.lower()
    return ref in {str(user["id"]).lower(), str(user.get("userPrincipalName") or "").lower()}
