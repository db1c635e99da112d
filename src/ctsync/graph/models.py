"""Typed views of the cross-tenant access policy resources (graph-cts-api §3.1-3.5).

snake_case in Python, Graph's camelCase on the wire. Every model keeps members it does not know
(``extra="allow"``): Graph returns undocumented ones such as ``crossCloudMeetingConfiguration``,
and a read-modify-write must not drop them. ``None`` means "not set / inherit the default".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CrossTenantAccessPolicyB2BSetting",
    "CrossTenantAccessPolicyConfigurationDefault",
    "CrossTenantAccessPolicyConfigurationPartner",
    "CrossTenantAccessPolicyInboundTrust",
    "CrossTenantAccessPolicyTarget",
    "CrossTenantAccessPolicyTargetConfiguration",
    "CrossTenantAccessPolicyTenantRestrictions",
    "CrossTenantIdentitySyncPolicyPartner",
    "CrossTenantUserSyncInbound",
    "GraphModel",
    "InboundOutboundPolicyConfiguration",
    "TenantInformation",
]


def graph_name(name: str) -> str:
    """``b2b_collaboration_inbound`` -> ``b2bCollaborationInbound``.

    pydantic's ``to_camel`` would say ``b2BCollaborationInbound``: it capitalises after digits.
    """
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class GraphModel(BaseModel):
    """Base of every Graph resource model."""

    model_config = ConfigDict(alias_generator=graph_name, populate_by_name=True, extra="allow")

    def to_graph(self) -> dict[str, Any]:
        """The wire form: camelCase, only the members that were set (explicit nulls kept)."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")

    @classmethod
    def wire_name(cls, name: str) -> str:
        """Graph's name for a field given by its Python or Graph name (unknown names pass)."""
        field = cls.model_fields.get(name)
        if field is not None and field.alias:
            return field.alias
        return name


class CrossTenantAccessPolicyTarget(GraphModel):
    """A user, group or application (or ``AllUsers`` / ``AllApplications`` / ``Office365``)."""

    target: str | None = None
    target_type: str | None = None


class CrossTenantAccessPolicyTargetConfiguration(GraphModel):
    access_type: str | None = None
    """``allowed`` | ``blocked``."""
    targets: list[CrossTenantAccessPolicyTarget] | None = None


class CrossTenantAccessPolicyB2BSetting(GraphModel):
    users_and_groups: CrossTenantAccessPolicyTargetConfiguration | None = None
    applications: CrossTenantAccessPolicyTargetConfiguration | None = None


class CrossTenantAccessPolicyTenantRestrictions(CrossTenantAccessPolicyB2BSetting):
    devices: dict[str, Any] | None = None


class CrossTenantAccessPolicyInboundTrust(GraphModel):
    is_mfa_accepted: bool | None = None
    is_compliant_device_accepted: bool | None = None
    # graph_name would say "AzureAd"; Graph says "AzureAD".
    is_hybrid_azure_ad_joined_device_accepted: bool | None = Field(
        default=None, alias="isHybridAzureADJoinedDeviceAccepted"
    )


class InboundOutboundPolicyConfiguration(GraphModel):
    """``automaticUserConsentSettings``: automatic redemption in each direction."""

    inbound_allowed: bool | None = None
    outbound_allowed: bool | None = None


class CrossTenantUserSyncInbound(GraphModel):
    is_sync_allowed: bool | None = None


class CrossTenantIdentitySyncPolicyPartner(GraphModel):
    """``partners/{tenantId}/identitySynchronization``: may the partner sync users in?"""

    tenant_id: str | None = None
    display_name: str | None = None
    user_sync_inbound: CrossTenantUserSyncInbound | None = None


class _PolicySettings(GraphModel):
    inbound_trust: CrossTenantAccessPolicyInboundTrust | None = None
    automatic_user_consent_settings: InboundOutboundPolicyConfiguration | None = None
    b2b_collaboration_inbound: CrossTenantAccessPolicyB2BSetting | None = None
    b2b_collaboration_outbound: CrossTenantAccessPolicyB2BSetting | None = None
    b2b_direct_connect_inbound: CrossTenantAccessPolicyB2BSetting | None = None
    b2b_direct_connect_outbound: CrossTenantAccessPolicyB2BSetting | None = None
    tenant_restrictions: CrossTenantAccessPolicyTenantRestrictions | None = None


class CrossTenantAccessPolicyConfigurationPartner(_PolicySettings):
    """A partner's cross-tenant access settings, keyed by the partner's tenant id."""

    tenant_id: str
    is_service_provider: bool | None = None
    is_in_multi_tenant_organization: bool | None = None
    identity_synchronization: CrossTenantIdentitySyncPolicyPartner | None = None


class CrossTenantAccessPolicyConfigurationDefault(_PolicySettings):
    """The tenant's defaults, which every ``null`` partner setting inherits."""

    id: str | None = None
    is_service_default: bool | None = None
    invitation_redemption_identity_provider_configuration: dict[str, Any] | None = None


class TenantInformation(GraphModel):
    """``findTenantInformationByTenantId``: a tenant's public name and default domain."""

    tenant_id: str
    display_name: str | None = None
    default_domain_name: str | None = None
    federation_brand_name: str | None = None
