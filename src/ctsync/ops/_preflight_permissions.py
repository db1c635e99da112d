"""Permissions: what each tenant's access token holds versus what the link's planned steps (and
preflight's own reads) need there. The token is read from the session's ``on_token``; no Graph
call is made to learn it."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ctsync.config import TenantSpec
from ctsync.engine.model import Plan
from ctsync.permissions import ROLE_IDS, Side, duties_for

from ._preflight_base import Finding, LinkCheck

__all__ = ["Grant", "TokenRoles", "permission_checks"]


@dataclass(frozen=True)
class Grant:
    """The permissions an access token carries: app roles, or delegated scopes."""

    app_id: str | None
    roles: frozenset[str]
    scopes: frozenset[str]
    #: A person's directory roles (template ids, from ``wids``); empty for an app.
    wids: frozenset[str] = frozenset()

    @property
    def delegated(self) -> bool:
        return not self.roles and bool(self.scopes)

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(p.lower() for p in self.roles | self.scopes)


class TokenRoles:
    """Collects the permissions of each tenant's access token as a session's clients get them.

    Pass it as ``Session(on_token=...)``; preflight then needs no extra call to learn what the
    credential may do. The token is decoded, never checked or kept: only ``tid``, ``appid``,
    ``roles`` and ``scp`` are read. ``chain`` is called with every token as well (e.g. the audit
    trail's actor tap).
    """

    def __init__(self, chain: Callable[[str], None] | None = None) -> None:
        self._grants: dict[str, Grant] = {}
        self._chain = chain

    def __call__(self, token: str) -> None:
        claims = _jwt_claims(token)
        tenant = claims.get("tid")
        if isinstance(tenant, str) and tenant:
            roles = claims.get("roles")
            scopes = claims.get("scp")
            wids = claims.get("wids")
            app_id = claims.get("appid") or claims.get("azp")
            self._grants[tenant.lower()] = Grant(
                app_id=app_id if isinstance(app_id, str) else None,
                roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
                scopes=frozenset(scopes.split()) if isinstance(scopes, str) else frozenset(),
                wids=frozenset(str(w).lower() for w in wids)
                if isinstance(wids, list)
                else frozenset(),
            )
        if self._chain is not None:
            self._chain(token)

    def grant(self, tenant_id: str) -> Grant | None:
        """What the token of ``tenant_id`` carries, or None if no token was seen for it."""
        return self._grants.get(tenant_id.lower())


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class _Need:
    """A permission to grant (``name``, least privilege) and the grants that also satisfy it."""

    name: str
    any_of: tuple[frozenset[str], ...]
    alternatives: str = ""

    def met(self, held: frozenset[str]) -> bool:
        return any({p.lower() for p in option} <= held for option in self.any_of)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.alternatives})" if self.alternatives else self.name


def _need(name: str, *also: str | tuple[str, ...], alternatives: str = "") -> _Need:
    options = [frozenset({name})]
    options += [frozenset(a) if isinstance(a, tuple) else frozenset({a}) for a in also]
    return _Need(name, tuple(options), alternatives)


_CTAP_WRITE = _need("Policy.ReadWrite.CrossTenantAccess")
_CTAP_READ = _need("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess")
_APP_WRITE = _need(
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.ReadWrite.All",
    alternatives="or Application.ReadWrite.OwnedBy",
)
_APP_READ = _need(
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_SYNC_WRITE = _need(
    "Synchronization.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    alternatives="or Application.ReadWrite.OwnedBy",
)
_ASSIGN_WRITE = _need("AppRoleAssignment.ReadWrite.All")
_ASSIGN_DELETE = _need("AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All")
_DIRECTORY_READ = _need(
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    ("User.Read.All", "GroupMember.Read.All"),
    ("User.Read.All", "Group.Read.All"),
    ("User.ReadWrite.All", "Group.ReadWrite.All"),
)
_AUDIT_READ = _need("AuditLog.Read.All")
_METHODS_READ = _need(
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Phone.Read.All",
    "UserAuthMethod-Phone.ReadWrite.All",
)
_PHONE_WRITE = _need(
    "UserAuthMethod-Phone.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
    alternatives="or UserAuthenticationMethod.ReadWrite.All",
)
_POLICY_READ = _need("Policy.Read.All")

#: What each planned step's resource needs in its tenant (graph-cts-api §2, §2.6).
_STEP_NEEDS: Final[Mapping[str, tuple[_Need, ...]]] = {
    "partner": (_CTAP_WRITE,),
    "identitySynchronization": (_CTAP_WRITE,),
    "defaultPolicy": (_CTAP_WRITE,),
    "crossTenantAccessPolicy": (_CTAP_WRITE,),
    "application": (_APP_WRITE,),
    "synchronizationJob": (_SYNC_WRITE,),
    # Saving secrets also tags the service principal (a PATCH of the application side).
    "synchronizationSecrets": (_SYNC_WRITE, _APP_WRITE),
    "synchronizationSchema": (_SYNC_WRITE,),
    "credentials": (_SYNC_WRITE,),
    "appRoleAssignments": (_ASSIGN_WRITE, _APP_READ),
    # A staged rollout records its stage in the service principal's tags.
    "servicePrincipal": (_APP_WRITE,),
}


def permission_checks(
    link: LinkCheck,
    plan: Plan,
    roles: TokenRoles | None,
    *,
    live_known: bool,
    blocking_only: bool,
    sms: int,
) -> list[Finding]:
    source, target = link.source, link.target
    # Errors: what the planned steps of this link write, and the reads plan/apply make.
    writes: dict[str, dict[_Need, list[str]]] = defaultdict(lambda: defaultdict(list))
    for step in plan.steps:
        if link.key not in step.links:
            continue
        needs = _STEP_NEEDS.get(step.resource, ())
        if step.resource == "appRoleAssignments" and step.action == "delete":
            needs = (_ASSIGN_DELETE,)
        for need in needs:
            writes[step.tenant][need].append(step.id)
    if not live_known and (link.spec.sync.assigned or link.spec.sync.rollout):
        # Unread live state plans no assignment (principals unresolved); apply would make one.
        writes[source.name][_ASSIGN_WRITE].append(f"{link.key}/assignments")
        writes[source.name][_APP_READ].append(f"{link.key}/assignments")
    reads: dict[str, dict[_Need, list[str]]] = defaultdict(lambda: defaultdict(list))
    reads[target.name][_CTAP_READ].append("read the partner configuration (plan)")
    reads[source.name][_CTAP_READ].append("read the partner configuration (plan)")
    reads[source.name][_APP_READ].append("find the configuration app (plan)")
    if link.live_link.principals or link.spec.sync.assigned or link.spec.sync.rollout:
        reads[source.name][_DIRECTORY_READ].append("resolve the assigned users and groups")
    # Warnings: what preflight itself and day-2 commands read.
    soft: dict[str, dict[_Need, list[str]]] = defaultdict(lambda: defaultdict(list))
    if not blocking_only:
        soft[source.name][_DIRECTORY_READ].append("list the users in scope (preflight)")
        soft[source.name][_AUDIT_READ].append(
            "the registration report (preflight) and provisioning logs (ctsync logs)"
        )
        soft[source.name][_METHODS_READ].append("SMS sign-in state (preflight)")
        soft[target.name][_POLICY_READ].append(
            "Conditional Access and external collaboration settings (preflight)"
        )
        if sms:
            soft[source.name][_PHONE_WRITE].append("disable SMS sign-in (--fix sms-sign-in)")
    found: list[Finding] = []
    for tenant in (source, target):
        if tenant.name not in writes and tenant.name not in reads and tenant.name not in soft:
            continue
        grant = roles.grant(tenant.tenant_id) if roles is not None else None
        if grant is None:
            found.append(
                link.finding(
                    "info",
                    "permission.unknown",
                    tenant,
                    f"no access token of {tenant.name} was seen (an async credential, or "
                    "preflight run without TokenRoles), so its permissions were not checked",
                    "compare the app's API permissions with what `ctsync bootstrap "
                    f"{tenant.name} --dry-run` lists for this tenant",
                )
            )
            continue
        if grant.delegated:
            side: Side = "source" if tenant is source else "target"
            found.extend(_role_findings(link, tenant, grant, side, blocking_only=blocking_only))
        held = grant.permissions
        hard: dict[_Need, list[str]] = defaultdict(list)
        for source_of_needs in (reads[tenant.name], writes[tenant.name]):
            for need, why in source_of_needs.items():
                hard[need] += why
        for need, why in sorted(hard.items(), key=lambda kv: kv[0].name):
            if need.met(held):
                continue
            steps = ", ".join(sorted(set(why)))
            # Directory.AccessAsUser.All lets a person do what their roles allow: the role
            # check above decides then, so a missing scope only warns.
            broad = "directory.accessasuser.all" in held
            found.append(
                link.finding(
                    "warning" if grant.delegated and broad else "error",
                    "permission.missing",
                    tenant,
                    f"ctsync's app in {tenant.name} lacks {need.label}, which apply needs for: "
                    f"{steps}",
                    _grant_fix(need.name, tenant.name, delegated=grant.delegated),
                    subject=need.name,
                    data={"steps": sorted(set(why))},
                )
            )
        for need, why in sorted(soft[tenant.name].items(), key=lambda kv: kv[0].name):
            if need.met(held) or need in hard:
                continue
            code = "permission.missing-fix" if need is _PHONE_WRITE else "permission.missing-read"
            found.append(
                link.finding(
                    "warning",
                    code,
                    tenant,
                    f"ctsync's app in {tenant.name} lacks {need.label}, needed to "
                    f"{'; '.join(sorted(set(why)))}",
                    f"grant the application permission {need.name} to ctsync's app in "
                    f"{tenant.name} (with admin consent)",
                    subject=need.name,
                )
            )
    return found


def _grant_fix(permission: str, tenant: str, *, delegated: bool) -> str:
    if delegated:
        return (
            f"sign in to {tenant} with a client that may ask for the delegated scope "
            f"{permission} (device_code or interactive_browser do), and consent to it"
        )
    return (
        f"grant the application permission {permission} to ctsync's app in {tenant} (with "
        f"admin consent; `ctsync bootstrap {tenant}` grants them all)"
    )


def _role_findings(
    link: LinkCheck, tenant: TenantSpec, grant: Grant, side: Side, *, blocking_only: bool
) -> list[Finding]:
    """A person's token: Graph also wants one of each duty's directory roles (``wids``)."""
    if ROLE_IDS["Global Administrator"] in grant.wids:
        return []
    found: list[Finding] = []
    for duty in duties_for([side], required_only=blocking_only):
        if any(ROLE_IDS[role] in grant.wids for role in duty.roles):
            continue
        roles = " or ".join(duty.roles)
        found.append(
            link.finding(
                "error" if duty.required else "warning",
                "permission.role-missing" if duty.required else "permission.role-missing-read",
                tenant,
                f"the person signed in to {tenant.name} holds none of the directory roles "
                f"Graph requires of a person for: {duty.what} ({roles})",
                f"assign {duty.roles[0]} to them in {tenant.name} (or activate it in PIM), or "
                f"use an app-only credential (`ctsync bootstrap {tenant.name}`)",
                subject=duty.roles[0],
            )
        )
    return found
