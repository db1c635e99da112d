"""Conditional Access in the target (does an enforced policy require MFA for the users the link
creates?), licences (Entra ID P1) and the directory-object quota."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ctsync.errors import GraphError
from ctsync.graph.clouds import cloud_crossing

from ._preflight_base import (
    P1_SERVICE_PLAN,
    Finding,
    LinkCheck,
    Reads,
    default_policy,
    member,
    produced,
)

__all__ = [
    "assigned_plans",
    "conditional_access_checks",
    "licence_checks",
    "p1_status",
    "quota_checks",
]

_ENUMERATED: Final = "#microsoft.graph.conditionalAccessEnumeratedExternalTenants"
_REPORT_ONLY: Final = "enabledForReportingButNotEnforced"


# -- Conditional Access ------------------------------------------------------------------------


def _types(spec: Any) -> set[str]:
    raw = member(spec, "guestOrExternalUserTypes") or ""
    return {part.strip() for part in str(raw).split(",") if part.strip()}


def _tenant_match(spec: Any, source_id: str) -> bool:
    tenants = member(spec, "externalTenants")
    if not isinstance(tenants, Mapping):
        return True
    if tenants.get("membershipKind") == "all" or "AllExternalTenants" in str(
        tenants.get("@odata.type")
    ):
        return True
    return source_id.lower() in {str(m).lower() for m in tenants.get("members") or []}


def _external(spec: Any, user_type: str, source_id: str) -> bool:
    return (
        isinstance(spec, Mapping) and user_type in _types(spec) and _tenant_match(spec, source_id)
    )


def _lower(values: Any) -> set[str]:
    return {str(v).lower() for v in values or []}


def _coverage(policy: Mapping[str, Any], user_type: str, source_id: str) -> tuple[bool, str]:
    """(covers, why not): does the policy's user condition take in the link's synced users?"""
    users = member(policy, "conditions.users") or {}
    included = _lower(users.get("includeUsers"))
    if "all" in included or "guestsorexternalusers" in included:
        return True, ""
    spec = users.get("includeGuestsOrExternalUsers")
    if isinstance(spec, Mapping):
        types = _types(spec)
        if user_type not in types:
            listed = ", ".join(sorted(types)) or "no type"
            return False, f"covers {listed}, not the {user_type} users this link creates"
        if not _tenant_match(spec, source_id):
            return False, "covers other external tenants, not the link's source"
        return True, ""
    return False, "targets no guest or external users"


def _requires_mfa(policy: Mapping[str, Any]) -> bool:
    grant = member(policy, "grantControls") or {}
    return "mfa" in _lower(grant.get("builtInControls")) or bool(
        grant.get("authenticationStrength")
    )


def _blocks(policy: Mapping[str, Any]) -> bool:
    return "block" in _lower(member(policy, "grantControls.builtInControls"))


def _policy_body(link: LinkCheck) -> dict[str, Any]:
    """A Conditional Access policy the target can create: MFA for the link's synced users."""
    return {
        "displayName": f"Require MFA for {link.source.name} users synced as {link.created_type}",
        "state": "enabled",
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {
                "includeGuestsOrExternalUsers": {
                    "guestOrExternalUserTypes": link.created_type,
                    "externalTenants": {
                        "@odata.type": _ENUMERATED,
                        "membershipKind": "enumerated",
                        "members": [link.source.tenant_id],
                    },
                }
            },
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }


def _name(policy: Mapping[str, Any]) -> str:
    return str(policy.get("displayName") or policy.get("id"))


def _excluded_external(users: Mapping[str, Any], kind: str, source_id: str) -> bool:
    if "guestsorexternalusers" in _lower(users.get("excludeUsers")):
        return True
    return _external(users.get("excludeGuestsOrExternalUsers"), kind, source_id)


def _judge(link: LinkCheck, policy: Mapping[str, Any]) -> tuple[list[Finding], bool]:
    """Findings about one policy, and whether it enforces MFA on the link's synced users."""
    source, target, kind = link.source, link.target, link.created_type
    state = policy.get("state")
    covers, why_not = _coverage(policy, kind, source.tenant_id)
    users = member(policy, "conditions.users") or {}
    external = users.get("includeGuestsOrExternalUsers") is not None
    name = _name(policy)
    data = {"policy_id": policy.get("id"), "state": state}
    found: list[Finding] = []
    if state == "disabled":
        return found, False
    if covers and _blocks(policy) and state == "enabled":
        found.append(
            link.finding(
                "warning",
                "ca.blocks",
                target,
                f"'{name}' blocks access for {kind} users from {source.name}: synced users are "
                "created but cannot sign in to the target",
                f"exclude {source.name}'s {kind} users from it if they should work in "
                f"{target.name}",
                subject=name,
                data=data,
            )
        )
    if not _requires_mfa(policy):
        return found, False
    if state == _REPORT_ONLY:
        if covers or external:
            verdict = (
                "would require MFA for the synced users but enforces nothing"
                if covers
                else f"enforces nothing, and {why_not}"
            )
            found.append(
                link.finding(
                    "warning" if covers else "info",
                    "ca.report-only",
                    target,
                    f"'{name}' is report-only: it {verdict}",
                    "turn it on (state: enabled) once its sign-in reports look right"
                    if covers
                    else f"it does not count for this link (see ca.mfa-missing for {kind})",
                    subject=name,
                    data=data,
                )
            )
        return found, False
    if not covers:
        if external:
            found.append(
                link.finding(
                    "info",
                    "ca.not-covering",
                    target,
                    f"'{name}' requires MFA but {why_not}",
                    f"add {kind} users from {source.name} to it, or create a policy for them",
                    subject=name,
                    data=data,
                )
            )
        return found, False
    if _excluded_external(users, kind, source.tenant_id):
        found.append(
            link.finding(
                "warning",
                "ca.excluded-external",
                target,
                f"'{name}' requires MFA but excludes {kind} users from {source.name}: the "
                "synced users are left out of it",
                f"remove {kind} from the policy's excludeGuestsOrExternalUsers",
                subject=name,
                data=data,
            )
        )
        return found, False
    groups = [str(g) for g in users.get("excludeGroups") or []]
    people = [str(u) for u in users.get("excludeUsers") or []]
    if groups or people:
        parts = [f"{len(groups)} group(s) ({', '.join(groups)})"] if groups else []
        parts += [f"{len(people)} user(s)"] if people else []
        found.append(
            link.finding(
                "info",
                "ca.excluded-principals",
                target,
                f"'{name}' excludes {' and '.join(parts)}: a synced user added there skips MFA",
                f"keep synced users out of those exclusions in {target.name} (review who is "
                "in the excluded groups)",
                subject=name,
                data={**data, "exclude_groups": groups, "exclude_users": people},
            )
        )
    return found, True


async def conditional_access_checks(reads: Reads, link: LinkCheck) -> list[Finding]:
    """Is there an enabled policy in the target requiring MFA (or an authentication strength)
    for the user type the link creates, covering the source tenant — and what does inbound
    trust change?"""
    source, target, kind = link.source, link.target, link.created_type
    try:
        policies = await reads.list(target.name, "/identity/conditionalAccess/policies")
    except GraphError as exc:
        return [
            link.finding(
                "warning",
                "ca.unreadable",
                target,
                f"{target.name}'s Conditional Access policies could not be read ({exc.status} "
                f"{exc.code}), so whether synced users must pass MFA there is unknown",
                f"grant Policy.Read.All to ctsync's app in {target.name}",
            )
        ]
    found: list[Finding] = []
    enforcing: list[str] = []
    for policy in policies:
        more, enforces = _judge(link, policy)
        found += more
        if enforces:
            enforcing.append(f"'{_name(policy)}'")
    default = await default_policy(reads, target.name)
    trust = produced(link, link.inbound, "inboundTrust", default, None)
    trusted = member(trust.value, "isMfaAccepted") is True
    if not enforcing:
        how = (
            f"inbound trust accepts {source.name}'s MFA, so once one exists synced users "
            "satisfy it with their home MFA"
            if trusted
            else f"without inbound MFA trust, synced users would then register MFA in {target.name}"
        )
        found.append(
            link.finding(
                "warning",
                "ca.mfa-missing",
                target,
                f"no enabled Conditional Access policy in {target.name} requires MFA (or an "
                f"authentication strength) for {kind} users from {source.name}, the users this "
                f"link creates; {how}",
                f"create one in {target.name}: POST /identity/conditionalAccess/policies with "
                "the body in data.policy (--output json); start it report-only if unsure",
                subject=kind,
                data={"policy": _policy_body(link)},
            )
        )
        return found
    names = ", ".join(enforcing)
    verb = "requires" if len(enforcing) == 1 else "require"
    if trusted:
        found.append(
            link.finding(
                "info",
                "ca.mfa-trusted",
                target,
                f"{names} {verb} MFA for the synced users; inbound trust accepts "
                f"{source.name}'s MFA, so they satisfy it in their home tenant (a user with no "
                f"MFA method is asked to register one in {source.name})",
                "nothing to do",
                subject=kind,
            )
        )
    else:
        found.append(
            link.finding(
                "warning",
                "ca.mfa-not-trusted",
                target,
                f"{names} {verb} MFA for the synced users and {target.name} does not trust "
                f"{source.name}'s MFA: they must register and perform MFA in {target.name}",
                f"set access.inbound_trust.mfa: true for {link.key} so home-tenant MFA counts",
                subject=kind,
            )
        )
    plans = await assigned_plans(reads, target.name)
    status = p1_status(plans) if plans is not None else "Enabled"
    if status != "Enabled":
        found.append(
            link.finding(
                "warning",
                "ca.licence",
                target,
                f"{target.name}'s Entra ID P1 is {status or 'missing'} (organization "
                f"assignedPlans); Conditional Access needs P1, so {names} may not be enforced "
                "or editable",
                f"renew Entra ID P1 (or a licence that includes it) in {target.name}",
                subject=kind,
            )
        )
    return found


# -- licences and quota ------------------------------------------------------------------------


async def assigned_plans(reads: Reads, tenant: str) -> list[dict[str, Any]] | None:
    """The organization's ``assignedPlans`` (None when unreadable)."""
    try:
        orgs = await reads.list(tenant, "/organization", select=["id", "assignedPlans"])
    except GraphError:
        return None
    return [p for org in orgs for p in org.get("assignedPlans") or [] if isinstance(p, dict)]


def p1_status(plans: list[dict[str, Any]]) -> str | None:
    """``Enabled`` when any P1 plan is enabled, else the best status found (None: no P1)."""
    statuses = [
        str(p.get("capabilityStatus"))
        for p in plans
        if str(p.get("servicePlanId") or "").lower() == P1_SERVICE_PLAN
    ]
    for wanted in ("Enabled", "Warning"):
        if wanted in statuses:
            return wanted
    return statuses[0] if statuses else None


def _cross_cloud_licence(link: LinkCheck) -> list[Finding]:
    crossing = cloud_crossing(link.source.cloud, link.target.cloud)
    if crossing is None:
        return []
    source = link.source
    return [
        link.finding(
            "warning",
            "licence.cross-cloud",
            source,
            f"link {link.key} crosses Microsoft clouds ({crossing[0]} → {crossing[1]}): "
            "cross-cloud synchronization needs Microsoft Entra ID Governance or Microsoft Entra "
            f"Suite in the source, which ctsync does not check in {source.name}",
            f"make sure {source.name} holds Microsoft Entra ID Governance or Microsoft Entra "
            "Suite (Entra admin center: Billing > Licenses)",
        )
    ]


async def licence_checks(reads: Reads, link: LinkCheck) -> list[Finding]:
    return _cross_cloud_licence(link) + await _p1_checks(reads, link)


async def _p1_checks(reads: Reads, link: LinkCheck) -> list[Finding]:
    source = link.source
    plans = await assigned_plans(reads, source.name)
    if plans is None:
        return [
            link.finding(
                "info",
                "licence.unreadable",
                source,
                f"{source.name}'s licences (organization assignedPlans) could not be read, so "
                "the Entra ID P1 that cross-tenant sync needs in the source was not checked",
                f"grant Organization.Read.All (or Directory.Read.All) in {source.name}, or "
                "check the licence in the Entra admin center",
            )
        ]
    status = p1_status(plans)
    if status == "Enabled":
        return []
    if status == "Warning":
        return [
            link.finding(
                "warning",
                "licence.p1-grace",
                source,
                f"{source.name}'s Entra ID P1 is in its grace period (capabilityStatus "
                "Warning): cross-tenant sync stops needing attention when it lapses",
                f"renew Entra ID P1 in {source.name}",
            )
        ]
    return [
        link.finding(
            "warning",
            "licence.p1-missing",
            source,
            f"{source.name} has no enabled Entra ID P1 (service plan {P1_SERVICE_PLAN} is "
            f"{status or 'absent'} in organization assignedPlans); cross-tenant sync needs P1 "
            "in the source tenant for every synced user",
            f"buy or renew Entra ID P1 (or P2, E3, E5 — any licence with it) in {source.name}",
        )
    ]


def quota_checks(link: LinkCheck) -> list[Finding]:
    return [
        link.finding(
            "info",
            "quota.unknown",
            link.target,
            f"Graph v1.0 does not expose {link.target.name}'s directory-object quota "
            "(directorySizeQuota is beta-only), so the headroom for the users in scope was not "
            "checked; when it is exceeded users fail with AzureActiveDirectoryQuotaLimitExceeded",
            "check the directory size in the Entra admin center (300,000 objects with a "
            "verified domain, 50,000 without; each synced user is one object)",
        )
    ]
