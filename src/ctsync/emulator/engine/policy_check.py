"""The cross-tenant policy check behind "Test connection" and every cross-tenant export.

A source tenant may sync users into a target only when automatic redemption is allowed on
both sides and the target allows inbound sync from the source (reference §10 item 5):

- the target's partner configuration for the source: ``automaticUserConsentSettings
  .inboundAllowed`` (``null`` inherits the target's default, which is ``false``);
- the source's partner configuration for the target: ``automaticUserConsentSettings
  .outboundAllowed`` (``null`` inherits the source's default);
- the target's ``identitySynchronization`` for the source: ``userSyncInbound.isSyncAllowed``;
- across Microsoft clouds, each side's ``allowedCloudEndpoints`` naming the other's cloud.

It reads two tenants, which is why it lives in ``engine/`` (the only part of the emulator that
crosses tenants). ``validateCredentials`` answers with it; the simulated provisioning engine
reuses :class:`PolicyCheck` to fail exports the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctsync.emulator.services.policies import GROUP_SYNC, cloud_blocked

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import Tenant

__all__ = [
    "CURRENT_CODE",
    "GROUP_SYNC_CODE",
    "LEGACY_CODE",
    "PolicyCheck",
    "PolicyFailure",
    "b2b_inbound_blocked",
    "check_cross_tenant_sync",
    "group_sync_allowed",
    "invitations_blocked",
]

#: The code Microsoft's Graph walkthrough and older provisioning docs show.
LEGACY_CODE = "AzureDirectoryB2BManagementPolicyCheckFailure"
#: The code current provisioning-log docs show for the same failure (cts-defaults §3.4).
CURRENT_CODE = "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure"
#: The emulator's code for a group export the target's ``groupSyncInbound`` does not allow
#: (Microsoft documents none; named after :data:`CURRENT_CODE`, docs/emulator.md).
GROUP_SYNC_CODE = "AzureActiveDirectoryCrossTenantGroupSyncPolicyCheckFailure"
#: The documented summary when automatic redemption is missing on either side.
REDEMPTION_MESSAGE = "Policy permitting auto-redemption of invitations not configured."

TARGET_INBOUND_CONSENT = "target_inbound_consent"
SOURCE_OUTBOUND_CONSENT = "source_outbound_consent"
TARGET_INBOUND_SYNC = "target_inbound_sync"
UNKNOWN_TARGET = "unknown_target"
SOURCE_CLOUD = "source_cloud_not_allowed"
TARGET_CLOUD = "target_cloud_not_allowed"
SAME_TENANT = "same_tenant"


@dataclass(frozen=True)
class PolicyFailure:
    """One missing piece of configuration."""

    #: ``target_inbound_consent``, ``source_outbound_consent``, ``target_inbound_sync``,
    #: ``unknown_target`` or ``same_tenant``.
    check: str
    #: The tenant whose administrator must change something.
    tenant_id: str
    message: str


@dataclass(frozen=True)
class PolicyCheck:
    """The outcome of checking one source -> target pair, with each effective setting."""

    source_tenant_id: str
    target_tenant_id: str
    #: The emulator holds the target tenant (it cannot check tenants it does not hold).
    target_known: bool
    #: Effective automatic redemption at the target for users from the source.
    inbound_redemption: bool
    #: Effective automatic redemption at the source for users going to the target.
    outbound_redemption: bool
    #: The target's identitySynchronization for the source allows inbound user sync.
    inbound_sync_allowed: bool
    failures: tuple[PolicyFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def checks_failed(self) -> frozenset[str]:
        return frozenset(f.check for f in self.failures)

    @property
    def code(self) -> str:
        """The error code a failed Test connection answers with."""
        return LEGACY_CODE

    @property
    def message(self) -> str:
        """One line for an error answer: the documented text when redemption is missing."""
        if not self.failures:
            return ""
        if self.checks_failed & {TARGET_INBOUND_CONSENT, SOURCE_OUTBOUND_CONSENT}:
            return REDEMPTION_MESSAGE
        return self.failures[0].message

    def details(self) -> list[dict[str, Any]]:
        """The failures as Graph error ``details`` (``code``, ``message``, ``target``)."""
        return [
            {"code": f.check, "message": f.message, "target": f.tenant_id} for f in self.failures
        ]


def _consent(tenant: Tenant, partner_id: str, member: str) -> bool:
    """Effective ``automaticUserConsentSettings.<member>`` of ``tenant`` towards a partner."""
    partner = tenant.access_policy.partners.get(partner_id)
    settings = (partner or {}).get("automaticUserConsentSettings") or {}
    value = settings.get(member)
    if value is None:
        default = tenant.access_policy.default or {}
        value = (default.get("automaticUserConsentSettings") or {}).get(member)
    # The service default never allows automatic redemption.
    return value is True


def _inbound_sync(target: Tenant, source_id: str) -> bool:
    policy = target.access_policy.identity_sync.get(source_id) or {}
    return (policy.get("userSyncInbound") or {}).get("isSyncAllowed") is True


def group_sync_allowed(target: Tenant, source_id: str) -> bool:
    """The target's identitySynchronization for the source allows inbound group sync (the
    beta-only ``groupSyncInbound.isSyncAllowed``; absent or ``null`` does not)."""
    policy = target.access_policy.identity_sync.get(source_id) or {}
    return (policy.get(GROUP_SYNC) or {}).get("isSyncAllowed") is True


def check_cross_tenant_sync(
    emulator: Emulator, source: Tenant, target_tenant_id: str
) -> PolicyCheck:
    """Check whether ``source`` may provision users into ``target_tenant_id``.

    Policy changes count as soon as they are made: the check does not apply replication lag.
    """
    target_id = target_tenant_id.lower()
    target = emulator.tenants.get(target_id)
    if target_id == source.id:
        failure = PolicyFailure(
            SAME_TENANT,
            source.id,
            "The target tenant must be another tenant: a tenant cannot synchronize into itself.",
        )
        return PolicyCheck(source.id, target_id, True, False, False, False, (failure,))
    if target is None:
        failure = PolicyFailure(
            UNKNOWN_TARGET,
            target_id,
            f"The target tenant '{target_tenant_id}' could not be found.",
        )
        return PolicyCheck(source.id, target_id, False, False, False, False, (failure,))

    failures: list[PolicyFailure] = []
    # Across Microsoft clouds each side must allow the other's cloud (allowedCloudEndpoints).
    for check, tenant, partner in ((SOURCE_CLOUD, source, target), (TARGET_CLOUD, target, source)):
        why = cloud_blocked(tenant, partner)
        if why is not None:
            failures.append(PolicyFailure(check, tenant.id, why))
    inbound = _consent(target, source.id, "inboundAllowed")
    outbound = _consent(source, target.id, "outboundAllowed")
    sync_allowed = _inbound_sync(target, source.id)
    if not inbound:
        failures.append(
            PolicyFailure(
                TARGET_INBOUND_CONSENT,
                target.id,
                "The target tenant has not enabled automatic user consent (automatic "
                "redemption) for users from the source tenant.",
            )
        )
    if not outbound:
        failures.append(
            PolicyFailure(
                SOURCE_OUTBOUND_CONSENT,
                source.id,
                "The source tenant has not enabled automatic user consent with the target tenant.",
            )
        )
    if not sync_allowed:
        failures.append(
            PolicyFailure(
                TARGET_INBOUND_SYNC,
                target.id,
                "The target tenant has not enabled inbound synchronization with this tenant "
                "(identitySynchronization userSyncInbound.isSyncAllowed).",
            )
        )
    return PolicyCheck(source.id, target.id, True, inbound, outbound, sync_allowed, tuple(failures))


# -- invitations into the target (AzureActiveDirectoryForbidden) -----------------------------


def invitations_blocked(target: Tenant) -> bool:
    """The target's external collaboration settings allow no invitations at all
    (``authorizationPolicy.allowInvitesFrom`` ``none``, the most restrictive setting)."""
    policy = target.authorization_policy or {}
    return policy.get("allowInvitesFrom") == "none"


def _effective_b2b_inbound(target: Tenant, source_id: str) -> dict[str, Any]:
    partner = target.access_policy.partners.get(source_id) or {}
    setting = partner.get("b2bCollaborationInbound")
    if setting is None:
        default = target.access_policy.default or {}
        setting = default.get("b2bCollaborationInbound")
    # The service default allows B2B collaboration for all users.
    return setting or {}


def b2b_inbound_blocked(target: Tenant, source_id: str, user_id: str, groups: list[str]) -> bool:
    """Whether the target's effective inbound B2B collaboration setting for the source tenant
    keeps this user out: ``blocked`` for all users or for the user or one of its direct groups,
    or ``allowed`` for a list of users and groups the user is not on."""
    users_and_groups = _effective_b2b_inbound(target, source_id).get("usersAndGroups") or {}
    access = users_and_groups.get("accessType")
    if access not in {"allowed", "blocked"}:
        return False
    targets = {
        str(t.get("target") or "").lower()
        for t in users_and_groups.get("targets") or []
        if isinstance(t, dict)
    }
    if not targets:
        return False
    listed = "allusers" in targets or user_id.lower() in targets
    listed = listed or any(g.lower() in targets for g in groups)
    return listed if access == "blocked" else not listed
