"""What each tenant should hold, derived from the config's links.

A partner configuration is one object per (tenant, partner) pair, but it can serve two links: in
a pair configured both ways, Contoso's partner entry for Fabrikam carries the *outbound* settings
of the link Contoso → Fabrikam and the *inbound* settings of the link Fabrikam → Contoso. So
partner settings are gathered per object, each member owned by exactly one link; everything on
the source side (the configuration app, its job, secrets, schema and assignments) belongs to one
link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ctsync.config import DesiredState, LinkSpec, OrganizationSpec, Principal, TenantSpec
from ctsync.graph.clouds import cloud_crossing

__all__ = [
    "ADOPTED_TAG",
    "LINK_TAG_PREFIX",
    "MANAGED_TAG",
    "STAGE_TAG_PREFIX",
    "LinkWant",
    "PartnerWant",
    "Wants",
    "b2b_setting",
    "default_members",
    "desired_secrets",
    "link_tag",
    "parse_stage_tag",
    "secrets_tag",
    "stage_tag",
    "wants",
]

#: Every service principal ctsync manages carries this tag (one filter finds them all) ...
MANAGED_TAG = "ctsync:managed"
#: ... and one naming its link by tenant ids, the stable identity a re-run finds it by.
LINK_TAG_PREFIX = "ctsync:link:"
#: Fingerprint of the synchronization secrets last saved: Graph does not document reading
#: secrets back, so ctsync compares this tag instead.
SECRETS_TAG_PREFIX = "ctsync:secrets:"
#: On a configuration ctsync adopted rather than made: destroy releases it, never deletes it
#: unless asked (``--delete-adopted``).
ADOPTED_TAG = "ctsync:adopted"


def link_tag(source_id: str, target_id: str) -> str:
    return f"{LINK_TAG_PREFIX}{source_id.lower()}:{target_id.lower()}"


def b2b_setting(access: str) -> dict[str, Any]:
    """A whole B2B collaboration setting: everyone and every application allowed or blocked."""
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


#: The stage of a staged rollout the link is at, and since when: ``ctsync:stage:<k>:<time>``.
STAGE_TAG_PREFIX = "ctsync:stage:"


def stage_tag(stage: int, since: str) -> str:
    return f"{STAGE_TAG_PREFIX}{stage}:{since}"


def parse_stage_tag(tags: list[str] | None) -> tuple[int, str] | None:
    """(stage, since) from a service principal's tags, or None when it has no stage tag."""
    for tag in tags or []:
        if tag.startswith(STAGE_TAG_PREFIX):
            stage, _, since = tag.removeprefix(STAGE_TAG_PREFIX).partition(":")
            if stage.isdigit():
                return int(stage), since
    return None


def desired_secrets(
    link: LinkSpec, target: TenantSpec, *, sync_all: bool | None = None
) -> dict[str, str]:
    """The job's saved credentials and settings (reference §1.2 S9).

    ``sync_all`` overrides the link's ``all_members`` (a rollout's last stage sets it).
    """
    threshold = link.sync.deletion_threshold
    notifications: dict[str, Any] = {
        "Enabled": False,
        "DeleteThresholdEnabled": threshold is not None,
        "HumanResourcesLookaheadQueryEnabled": False,
    }
    if threshold is not None:
        notifications["DeleteThresholdValue"] = threshold
    return {
        "AuthenticationType": "SyncPolicy",
        "CompanyId": target.tenant_id,
        "SyncNotificationSettings": json.dumps(notifications, separators=(",", ":")),
        "SyncAll": "true" if (link.sync.all_members if sync_all is None else sync_all) else "false",
    }


def secrets_tag(secrets: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(secrets, sort_keys=True).encode()).hexdigest()
    return SECRETS_TAG_PREFIX + digest[:16]


@dataclass
class PartnerWant:
    """What ``tenant``'s partner configuration for ``partner`` must hold.

    ``members`` maps dotted member paths (``automaticUserConsentSettings.inboundAllowed``,
    ``inboundTrust``) to wanted values; ``owners`` names the link that wants each member.
    """

    tenant: str
    partner: str
    partner_id: str
    members: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    #: The link (partner → tenant) that needs inbound user sync allowed, if any.
    sync_link: str | None = None
    #: The link (partner → tenant) that syncs groups too: inbound group sync allowed (the
    #: beta ``groupSyncInbound``), if any.
    group_sync_link: str | None = None

    @property
    def links(self) -> tuple[str, ...]:
        found = set(self.owners.values())
        if self.sync_link:
            found.add(self.sync_link)
        return tuple(sorted(found))

    def want(self, path: str, value: Any, link: str) -> None:
        self.members[path] = value
        self.owners[path] = link


@dataclass(frozen=True)
class LinkWant:
    """The source-side objects of one link."""

    link: LinkSpec
    source: TenantSpec
    target: TenantSpec
    app_name: str
    tag: str
    secrets: dict[str, str]
    principals: tuple[Principal, ...]

    @property
    def key(self) -> str:
        return self.link.key


@dataclass
class Wants:
    partners: dict[tuple[str, str], PartnerWant]
    links: dict[str, LinkWant]
    #: Default cross-tenant access settings by tenant name: member path → wanted value
    #: (only tenants whose config sets ``default_access``).
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Cross-cloud links: tenant name → the other cloud's ``allowedCloudEndpoints`` value its
    #: policy must hold → the links that need it.
    clouds: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    #: The multitenant organization (only when the whole config is planned, not some links).
    organization: OrganizationSpec | None = None


def default_members(spec: TenantSpec) -> dict[str, Any]:
    """The default policy's members the tenant's ``default_access`` sets (same paths as a
    partner configuration's)."""
    access = spec.default_access
    if access is None:
        return {}
    members: dict[str, Any] = {}
    if access.inbound_trust is not None:
        members["inboundTrust"] = access.inbound_trust.to_graph()
    if access.b2b_collaboration_inbound is not None:
        members["b2bCollaborationInbound"] = b2b_setting(access.b2b_collaboration_inbound)
    if access.b2b_collaboration_outbound is not None:
        members["b2bCollaborationOutbound"] = b2b_setting(access.b2b_collaboration_outbound)
    if access.redemption_inbound is not None:
        members["automaticUserConsentSettings.inboundAllowed"] = access.redemption_inbound
    if access.redemption_outbound is not None:
        members["automaticUserConsentSettings.outboundAllowed"] = access.redemption_outbound
    return members


def _partner(
    out: dict[tuple[str, str], PartnerWant], tenant: str, partner: TenantSpec
) -> PartnerWant:
    key = (tenant, partner.name)
    if key not in out:
        out[key] = PartnerWant(tenant=tenant, partner=partner.name, partner_id=partner.tenant_id)
    return out[key]


def wants(
    desired: DesiredState,
    *,
    links: tuple[LinkSpec, ...] | None = None,
    organization: bool | None = None,
) -> Wants:
    """Everything the given links (default: all) need in both tenants; with
    ``organization`` (default: when no links are given) the config's multitenant
    organization too."""
    partners: dict[tuple[str, str], PartnerWant] = {}
    link_wants: dict[str, LinkWant] = {}
    clouds: dict[str, dict[str, set[str]]] = {}
    wanted_org = organization if organization is not None else links is None
    for link in links if links is not None else desired.links:
        source, target = desired.tenants[link.source], desired.tenants[link.target]
        # Across Microsoft clouds, each side must allow the other's (config load checked it).
        crossing = cloud_crossing(source.cloud, target.cloud)
        if crossing is not None:
            for tenant, endpoint in ((source.name, crossing[1]), (target.name, crossing[0])):
                clouds.setdefault(tenant, {}).setdefault(endpoint, set()).add(link.key)
        access = link.access
        inbound = _partner(partners, target.name, source)
        outbound = _partner(partners, source.name, target)
        inbound.want(
            "automaticUserConsentSettings.inboundAllowed", access.automatic_redemption, link.key
        )
        inbound.sync_link = link.key
        if link.sync.groups:
            inbound.group_sync_link = link.key
        outbound.want(
            "automaticUserConsentSettings.outboundAllowed", access.automatic_redemption, link.key
        )
        if access.inbound_trust is not None:
            trust = access.inbound_trust
            inbound.want("inboundTrust", trust.to_graph(), link.key)
        if access.b2b_collaboration_inbound is not None:
            inbound.want(
                "b2bCollaborationInbound", b2b_setting(access.b2b_collaboration_inbound), link.key
            )
        if access.b2b_collaboration_outbound is not None:
            outbound.want(
                "b2bCollaborationOutbound",
                b2b_setting(access.b2b_collaboration_outbound),
                link.key,
            )
        secrets = desired_secrets(link, target)
        link_wants[link.key] = LinkWant(
            link=link,
            source=source,
            target=target,
            app_name=link.sync.app_display_name or f"{target.name} (ctsync)",
            tag=link_tag(source.tenant_id, target.tenant_id),
            secrets=secrets,
            principals=_principals(link),
        )
    # The default policy of every tenant the links touch (all tenants for the whole config).
    touched = (
        set(desired.tenants)
        if links is None
        else {t for link in links for t in (link.source, link.target)}
    )
    defaults = {
        name: members
        for name in sorted(touched)
        if (members := default_members(desired.tenants[name]))
    }
    return Wants(
        partners=partners,
        links=link_wants,
        defaults=defaults,
        clouds={
            tenant: {endpoint: tuple(sorted(keys)) for endpoint, keys in sorted(need.items())}
            for tenant, need in sorted(clouds.items())
        },
        organization=desired.organization if wanted_org else None,
    )


def _principals(link: LinkSpec) -> tuple[Principal, ...]:
    """Every principal the link may assign: a rollout's groups of all stages (resolved up
    front, so promoting needs no second read), else the assigned ones."""
    rollout = link.sync.rollout
    if rollout is not None:
        return rollout.groups
    return () if link.sync.all_members else link.sync.assigned
