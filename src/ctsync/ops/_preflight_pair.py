"""The tenant pair of a link: automatic redemption on both sides, inbound user sync, B2B
collaboration for the partner, and the target's external collaboration settings.

Each is judged on the state the plan will produce (:func:`produced`): a managed tenant's
settings are what the config says, so live drift there is a warning ("apply will fix"); a
read-only tenant's live settings count, so a blocking one is an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ctsync.config import TenantSpec
from ctsync.engine.desired import PartnerWant, b2b_setting
from ctsync.errors import GraphError
from ctsync.graph.clouds import cloud_crossing

from ._preflight_base import POLICY, Finding, LinkCheck, Reads, default_policy, member, produced

__all__ = ["pair_checks"]

_APPLY_FIXES: Final = "run `ctsync apply`: it repairs this"


@dataclass(frozen=True)
class _Side:
    """One side of the link: inbound settings live in the target, outbound in the source."""

    name: Literal["inbound", "outbound"]
    want: PartnerWant
    tenant: TenantSpec
    partner: TenantSpec
    default: Mapping[str, Any]

    @property
    def consent(self) -> str:
        return f"automaticUserConsentSettings.{self.name}Allowed"

    @property
    def b2b(self) -> str:
        return f"b2bCollaboration{self.name.capitalize()}"


def _read_only(tenant: TenantSpec) -> str:
    return f"{tenant.name} is read-only in the config (managed: false), so its live settings count"


def _ask_admin(side: _Side, what: str) -> str:
    return (
        f"ask {side.tenant.name}'s administrator to {what} in its partner configuration for "
        f"{side.partner.name} (PATCH {POLICY}/partners/{side.partner.tenant_id}), or let ctsync "
        f"manage {side.tenant.name} (managed: true)"
    )


def pair_reads(reads: Reads, source: TenantSpec, target: TenantSpec) -> None:
    """Send the reads :func:`pair_checks` makes (both default policies, the target's
    ``authorizationPolicy``) at once, beside the live read they do not depend on."""
    reads.prefetch(target.name, f"{POLICY}/default")
    reads.prefetch(source.name, f"{POLICY}/default")
    reads.prefetch(target.name, "/policies/authorizationPolicy")


async def pair_checks(reads: Reads, link: LinkCheck) -> list[Finding]:
    source, target = link.source, link.target
    target_default, source_default = await asyncio.gather(
        default_policy(reads, target.name), default_policy(reads, source.name)
    )
    sides = (
        _Side("inbound", link.inbound, target, source, target_default),
        _Side("outbound", link.outbound, source, target, source_default),
    )
    found = _clouds(link)
    found += _redemption(link, sides)
    found += _inbound_sync(link)
    found += _inbound_group_sync(link)
    for side in sides:
        found += _b2b(link, side)
    found += await _invitations(reads, link)
    return found


def _clouds(link: LinkCheck) -> list[Finding]:
    """Across Microsoft clouds each tenant must allow the other's cloud: a managed tenant gets
    it from apply, a read-only one must already have it."""
    crossing = cloud_crossing(link.source.cloud, link.target.cloud)
    if crossing is None:
        return []
    found: list[Finding] = []
    for tenant, other, endpoint in (
        (link.source, link.target, crossing[1]),
        (link.target, link.source, crossing[0]),
    ):
        allowed = link.live.tenants[tenant.name].cloud_endpoints
        if tenant.managed or allowed is None or endpoint in allowed:
            continue
        found.append(
            link.finding(
                "error",
                "clouds.not-allowed",
                tenant,
                f"{_read_only(tenant)}: {other.name} is in another Microsoft cloud "
                f"({endpoint}) and {tenant.name}'s cross-tenant access policy does not allow it "
                f"(allowedCloudEndpoints: {', '.join(allowed) or 'none'}), so no partner "
                "setting or sync between them works",
                f"ask {tenant.name}'s administrator to enable {endpoint} in Microsoft cloud "
                f"settings (PATCH {POLICY} adding {endpoint!r} to allowedCloudEndpoints, "
                "keeping the values there), or let ctsync manage "
                f"{tenant.name} (managed: true)",
            )
        )
    return found


def _redemption(link: LinkCheck, sides: tuple[_Side, ...]) -> list[Finding]:
    """Automatic redemption, both sides (else AzureDirectoryB2BManagementPolicyCheckFailure)."""
    if not link.spec.access.automatic_redemption:
        return [
            link.finding(
                "error",
                "redemption.off-in-config",
                link.target,
                "the config sets automatic_redemption: false for this link; cross-tenant sync "
                f"needs automatic redemption on both sides (inbound in {link.target.name}, "
                f"outbound in {link.source.name}), else every user fails with "
                "AzureDirectoryB2BManagementPolicyCheckFailure",
                f"set access.automatic_redemption: true for {link.key} (or remove the link)",
            )
        ]
    found: list[Finding] = []
    for side in sides:
        setting = produced(link, side.want, side.consent, side.default, False)
        if setting.value is True:
            if setting.origin == "config" and setting.partner_exists and setting.live is not True:
                found.append(
                    link.finding(
                        "warning",
                        f"redemption.{side.name}-drift",
                        side.tenant,
                        f"{side.tenant.name}'s partner configuration for {side.partner.name} "
                        f"has {side.consent} = {json.dumps(setting.live)} (changed outside "
                        "ctsync); apply sets it back to true",
                        _APPLY_FIXES,
                    )
                )
            continue
        inherited = ", inherited from its default" if setting.origin != "partner" else ""
        found.append(
            link.finding(
                "error",
                f"redemption.{side.name}-blocked",
                side.tenant,
                f"{_read_only(side.tenant)}: its partner configuration for {side.partner.name} "
                f"does not allow {side.name} automatic redemption ({side.consent} = "
                f"{json.dumps(setting.value)}{inherited}): every user fails with "
                "AzureDirectoryB2BManagementPolicyCheckFailure",
                _ask_admin(side, f"set {side.consent} to true"),
            )
        )
    return found


def _inbound_sync(link: LinkCheck) -> list[Finding]:
    source, target = link.source, link.target
    sync = link.live.tenants[target.name].identity_sync.get(source.tenant_id)
    allowed = member(sync, "userSyncInbound.isSyncAllowed")
    if target.managed:
        if sync is None or allowed is True:
            return []
        return [
            link.finding(
                "warning",
                "sync.inbound-drift",
                target,
                f"{target.name}'s identitySynchronization for {source.name} has "
                f"userSyncInbound.isSyncAllowed = {json.dumps(allowed)} (changed outside ctsync); "
                "apply sets it back to true",
                _APPLY_FIXES,
            )
        ]
    if allowed is True:
        return []
    state = "there is none" if sync is None else f"isSyncAllowed = {json.dumps(allowed)}"
    return [
        link.finding(
            "error",
            "sync.inbound-blocked",
            target,
            f"{_read_only(target)}: it does not allow user sync in from {source.name} "
            f"(identitySynchronization: {state}), so the job cannot export any user",
            f"ask {target.name}'s administrator to allow inbound user sync for {source.name} "
            f"(PUT {POLICY}/partners/{source.tenant_id}/identitySynchronization with "
            "userSyncInbound.isSyncAllowed: true)",
        )
    ]


def _inbound_group_sync(link: LinkCheck) -> list[Finding]:
    """A link that syncs groups: the target must allow group sync in (``groupSyncInbound``,
    Graph beta: a managed target gets it from apply), and the source needs Entra ID
    Governance or Entra Suite, which Graph v1.0 does not let ctsync check."""
    if not link.spec.sync.groups:
        return []
    source, target = link.source, link.target
    found = [
        link.finding(
            "warning",
            "licence.group-sync",
            source,
            f"link {link.key} syncs groups: cross-tenant group synchronization needs Microsoft "
            f"Entra ID Governance or Microsoft Entra Suite, which ctsync does not check in "
            f"{source.name}",
            f"make sure {source.name} holds Microsoft Entra ID Governance or Microsoft Entra "
            "Suite (Entra admin center: Billing > Licenses)",
        )
    ]
    allowed = link.live.tenants[target.name].group_sync.get(source.tenant_id)
    if target.managed or allowed is True:
        return found
    found.append(
        link.finding(
            "error",
            "groups.inbound-blocked",
            target,
            f"{_read_only(target)}: it does not allow group sync in from {source.name} "
            f"(groupSyncInbound.isSyncAllowed = {json.dumps(allowed)}), so the job cannot "
            "export any group",
            f"ask {target.name}'s administrator to allow inbound group sync for {source.name} "
            f"(PATCH /beta{POLICY}/partners/{source.tenant_id}/identitySynchronization with "
            "groupSyncInbound.isSyncAllowed: true)",
        )
    )
    return found


def _b2b_state(setting: Any) -> tuple[str, str]:
    """(state, why): ``ok``, ``blocked``, ``partial`` or ``apps-blocked``."""
    users = member(setting, "usersAndGroups") or {}
    access = users.get("accessType")
    targets = {
        str(t.get("target") or "") for t in users.get("targets") or [] if isinstance(t, dict)
    }
    everyone = any(t.lower() == "allusers" for t in targets)
    if access == "blocked" and everyone:
        return "blocked", "blocked for all users"
    if access == "blocked" and targets:
        return "partial", f"blocked for {len(targets)} listed user(s) or group(s)"
    if access == "allowed" and targets and not everyone:
        return "partial", f"allowed only for {len(targets)} listed user(s) or group(s)"
    apps = member(setting, "applications") or {}
    app_targets = {
        str(t.get("target") or "").lower() for t in apps.get("targets") or [] if isinstance(t, dict)
    }
    if apps.get("accessType") == "blocked" and "allapplications" in app_targets:
        return "apps-blocked", "every application is blocked"
    return "ok", ""


def _b2b(link: LinkCheck, side: _Side) -> list[Finding]:
    """B2B collaboration for the partner: effective = partner setting, else the default."""
    setting = produced(link, side.want, side.b2b, side.default, b2b_setting("allowed"))
    state, why = _b2b_state(setting.value)
    tenant, partner = side.tenant, side.partner
    where = {
        "config": f"the config sets b2b_collaboration.{side.name}: block_all",
        "partner": f"{tenant.name}'s partner configuration for {partner.name}"
        + ("" if tenant.managed else f"; {_read_only(tenant)}"),
        "default": f"{tenant.name}'s default cross-tenant access settings, not overridden for "
        f"{partner.name}",
        "service": "the service default",
    }[setting.origin]
    if setting.origin == "config":
        fix = f"set access.b2b_collaboration.{side.name}: allow_all for {link.key}"
    elif tenant.managed:
        fix = (
            f"set access.b2b_collaboration.{side.name}: allow_all for {link.key} (ctsync then "
            f"writes it to {tenant.name}'s partner configuration), or change the setting there"
        )
    else:
        fix = _ask_admin(side, f"allow B2B collaboration {side.name} for all users")
    found: list[Finding] = []
    if state == "blocked":
        found.append(
            link.finding(
                "error",
                f"b2b.{side.name}-blocked",
                tenant,
                f"B2B collaboration {side.name} is {why} ({where}): users from "
                f"{link.source.name} cannot be created in {link.target.name}",
                fix,
                subject="users and groups",
            )
        )
    elif state == "partial":
        found.append(
            link.finding(
                "warning",
                f"b2b.{side.name}-partial",
                tenant,
                f"B2B collaboration {side.name} is {why} ({where}): users outside those lists "
                "fail to provision",
                fix,
                subject="users and groups",
            )
        )
    elif state == "apps-blocked" and side.name == "inbound":
        found.append(
            link.finding(
                "warning",
                "b2b.inbound-apps-blocked",
                tenant,
                f"B2B collaboration inbound: {why} ({where}): synced users are created but can "
                "open no application in the target",
                fix,
                subject="applications",
            )
        )
    drifted = setting.live is not None and _b2b_state(setting.live)[0] != state
    if setting.origin == "config" and setting.partner_exists and drifted:
        found.append(
            link.finding(
                "warning",
                f"b2b.{side.name}-drift",
                tenant,
                f"{tenant.name}'s partner configuration for {partner.name} has B2B "
                f"collaboration {side.name} {_b2b_state(setting.live)[1] or 'allowed'} (changed "
                "outside ctsync); apply sets it back to what the config says",
                _APPLY_FIXES,
            )
        )
    return found


async def _invitations(reads: Reads, link: LinkCheck) -> list[Finding]:
    """The target's external collaboration settings (``authorizationPolicy``), which ctsync
    never manages: invitations blocked there is an error even in a managed tenant."""
    source, target = link.source, link.target
    try:
        policy = await reads.get(target.name, "/policies/authorizationPolicy")
    except GraphError as exc:
        return [
            link.finding(
                "warning",
                "invitations.unreadable",
                target,
                f"{target.name}'s external collaboration settings (authorizationPolicy) could "
                f"not be read ({exc.status} {exc.code}), so whether they block the invitations "
                "cross-tenant sync makes is unknown",
                f"grant Policy.Read.All to ctsync's app in {target.name}",
            )
        ]
    if policy.get("allowInvitesFrom") != "none":
        return []
    return [
        link.finding(
            "error",
            "invitations.blocked",
            target,
            f"{target.name}'s external collaboration settings allow no invitations "
            "(authorizationPolicy.allowInvitesFrom = none): every user from "
            f"{source.name} fails with AzureActiveDirectoryForbidden",
            f"an administrator of {target.name} allows guest invitations (Entra admin center › "
            "External Identities › External collaboration settings, or PATCH "
            "/policies/authorizationPolicy allowInvitesFrom); ctsync does not manage it",
        )
    ]
