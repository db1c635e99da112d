"""What provisioning error codes, skip reasons and quarantine reasons mean, and what to do.

From Microsoft's provisioning-log and CTS troubleshooting documentation (graph-cts-api §9,
cts-defaults §3, graph-limits §4.4). Day-2 commands use it to explain, in plain words, what the
provisioning service reports.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Advice", "advice_for", "quarantine_advice", "refine_reason"]


@dataclass(frozen=True)
class Advice:
    meaning: str
    fix: str


_CODES: dict[str, Advice] = {
    "AzureDirectoryB2BManagementPolicyCheckFailure": Advice(
        "the cross-tenant access policy does not allow the sync: automatic redemption is "
        "missing inbound in the target or outbound in the source, or the target does not allow "
        "user sync in from the source",
        "run `ctsync plan` / `ctsync apply` for the link: it sets both redemption settings and "
        "the target's inbound sync policy",
    ),
    "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure": Advice(
        "the cross-tenant access policy does not allow the sync (newer name of "
        "AzureDirectoryB2BManagementPolicyCheckFailure)",
        "run `ctsync apply` for the link to restore automatic redemption and inbound sync",
    ),
    "AzureActiveDirectoryForbidden": Advice(
        "the target tenant's external collaboration settings block invitations (e.g. guest "
        "invitations not allowed)",
        "in the target, allow invitations (authorizationPolicy allowInvitesFrom) or B2B "
        "collaboration inbound from the source tenant",
    ),
    "AzureActiveDirectoryQuotaLimitExceeded": Advice(
        "the target directory has reached its object quota",
        "free objects in the target or ask Microsoft to raise its quota; narrow the scope",
    ),
    "AzureActiveDirectoryCannotUpdateObjectsOriginatedInExternalService": Advice(
        "a property is mastered elsewhere (source of authority enforcement, e.g. mail or "
        "showInAddressList on a mailbox user)",
        "remove that attribute mapping, or manage the property where it is mastered",
    ),
    "AzureActiveDirectoryCannotUpdateObjectsMasteredOnPremises": Advice(
        "the matching target user is synced from on-premises AD and cannot be updated by CTS",
        "manage that user on premises, or remove it from the sync scope",
    ),
    "AzureActiveDirectoryInsufficientRights": Advice(
        "the B2B user in the target holds an admin role, so CTS may not delete it",
        "remove the role from the target user, then let the next cycle retry",
    ),
    "InvitationCreationFailure": Advice(
        "creating the invitation for the user in the target failed",
        "check the user's mail and UPN; if it persists, contact Microsoft support",
    ),
    "InvitationCreationFailureUserAccountDisabled": Advice(
        "the user exists in the target, disabled, with an invitation pending",
        "enable or remove the target user, then retry",
    ),
    "InvitationCreationFailureInvalidPropertyValue": Advice(
        "a property of the invitation is invalid: primary SMTP address, a userType other than "
        "Guest or Member, or a mail that collides with a group",
        "fix the source user's mail/UPN or the userType mapping",
    ),
    "InvitationCreationFailureAmbiguousUser": Advice(
        "the user's address matches an internal user in the target; CTS never matches "
        "internal users",
        "rename or remove the target's internal user, or leave this user out of scope",
    ),
    "EntityTypeNotSupported": Advice(
        "a group was evaluated, but the link does not sync groups (only their direct members "
        "are in scope), or the group is not a security group",
        "nothing to do; to sync security groups themselves set the link's sync.groups "
        "(with `beta: [group_sync]`)",
    ),
    "RedundantExport": Advice("the user already matches in both tenants", "nothing to do"),
    "NotEffectivelyEntitled": Advice(
        "the user (or, on a link that syncs groups, the group) is not assigned to the "
        "configuration app (a user directly or as a direct member of an assigned group; nested "
        "groups do not count)",
        "assign the user or a group it is a direct member of, or the group itself (the link's "
        "scope.assigned)",
    ),
    "SmsSignInEnabled": Advice(
        "SMS sign-in is enabled for this user; CTS skips such users",
        "disable SMS sign-in for the user (`disableSmsSignIn`), then retry",
    ),
    "ExternalUser": Advice(
        "the user is a guest or external user in the source; CTS syncs internal members only",
        "nothing to do: only internal members can be synchronized",
    ),
    "OutOfScope": Advice(
        "the user does not pass the link's scoping filter",
        "change the user's attributes or the link's scope.filter",
    ),
    "InvalidAnchor": Advice(
        "the target user previously matched is gone", "restart the job (ctsync restart)"
    ),
    "InternalError": Advice(
        "a transient error in the provisioning service", "none: retried in 40 minutes"
    ),
    "Timeout": Advice("a transient timeout", "none: retried in 40 minutes"),
    "TooManyRequests": Advice("throttled by the target", "none: retried automatically"),
}

_QUARANTINE: dict[str, Advice] = {
    "EncounteredQuarantineException": Advice(
        "most or all calls fail, typically because of the cross-tenant policy or credentials",
        "fix the cause shown in the error (e.g. `ctsync apply` for the link's policies), then "
        "`ctsync start` — start clears quarantine",
    ),
    "EncounteredEscrowProportionThreshold": Advice(
        "too many objects failed (over 40 % of events, once at least 5,000 failed)",
        "read `ctsync logs --status failure --summary`, fix the top error, then "
        "`ctsync restart --reset escrows,quarantine`",
    ),
    "EncounteredBaseEscrowThreshold": Advice(
        "too many failures in one cycle",
        "read `ctsync logs --status failure --summary`, fix the cause, then `ctsync restart "
        "--reset escrows,quarantine`",
    ),
    "EncounteredTotalEscrowThreshold": Advice(
        "the absolute number of failures passed its cap",
        "fix the top error from `ctsync logs --summary`, then `ctsync restart --reset "
        "escrows,quarantine`",
    ),
    "TooManyDeletes": Advice(
        "a cycle would delete or disable more users than the accidental-deletion threshold",
        "check why so many users left scope (`ctsync logs --action delete`); if intended, raise "
        "`deletion_threshold` or restart with ForceDeletes in the portal; otherwise fix the scope "
        "and `ctsync start`",
    ),
    "QuarantinedOnDemand": Advice(
        "the job was quarantined on request", "`ctsync start` when ready"
    ),
    "IngestionInterrupted": Advice(
        "ingestion was interrupted", "`ctsync restart --reset full` if it persists"
    ),
}


def advice_for(code: str | None) -> Advice | None:
    """What an error code or skip reason means and how to fix it (None if unknown)."""
    if not code:
        return None
    return _CODES.get(code)


def quarantine_advice(reason: str | None) -> Advice:
    return _QUARANTINE.get(reason or "", Advice("the job is quarantined", "`ctsync start`"))


def refine_reason(code: str | None, text: str | None) -> str | None:
    """``EntrySynchronizationSkipped`` covers several skips; its reason text says which
    (reference §9, cts-defaults §3.3). Other codes pass through."""
    if code != "EntrySynchronizationSkipped":
        return code
    lowered = (text or "").lower()
    if "sms" in lowered:
        return "SmsSignInEnabled"
    if "external" in lowered or "guest" in lowered:
        return "ExternalUser"
    return "OutOfScope"
