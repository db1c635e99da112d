"""Typed calls for the cross-tenant access policy (graph-cts-api §2.1, §3.1-3.5).

A partner and its ``identitySynchronization`` are keyed by the *partner's* tenant id: the tenant
on the other side, not the one the client talks to. Setting a partner member to ``None`` in
:meth:`CrossTenantAccessPolicyApi.update_partner` sends JSON ``null``, which makes it inherit
the tenant default again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from .client import GraphClient
from .models import (
    CrossTenantAccessPolicyConfigurationDefault,
    CrossTenantAccessPolicyConfigurationPartner,
    CrossTenantIdentitySyncPolicyPartner,
    GraphModel,
    TenantInformation,
)

__all__ = ["CrossTenantAccessPolicyApi"]

POLICY: Final = "/policies/crossTenantAccessPolicy"

Changes = Mapping[str, Any] | GraphModel


class CrossTenantAccessPolicyApi:
    """``/policies/crossTenantAccessPolicy`` of the tenant ``client`` talks to."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    # -- default --------------------------------------------------------------------------

    async def get_default(self) -> CrossTenantAccessPolicyConfigurationDefault:
        response = await self.client.get(f"{POLICY}/default")
        return CrossTenantAccessPolicyConfigurationDefault.model_validate(response.json_object())

    async def update_default(self, changes: Changes) -> None:
        """PATCH the default; only the given members change."""
        body = _wire(CrossTenantAccessPolicyConfigurationDefault, changes)
        await self.client.patch(f"{POLICY}/default", json=body)

    async def reset_default(self) -> None:
        """Back to the service default (``resetToSystemDefault``)."""
        await self.client.post(f"{POLICY}/default/resetToSystemDefault")

    # -- partners -------------------------------------------------------------------------

    async def list_partners(
        self, *, select: Sequence[str] | None = None
    ) -> list[CrossTenantAccessPolicyConfigurationPartner]:
        items = await self.client.list_all(f"{POLICY}/partners", select=select)
        return [CrossTenantAccessPolicyConfigurationPartner.model_validate(i) for i in items]

    async def get_partner(self, tenant_id: str) -> CrossTenantAccessPolicyConfigurationPartner:
        """Raises :class:`~ctsync.errors.NotFoundError` when there is no such partner."""
        response = await self.client.get(_partner(tenant_id))
        return CrossTenantAccessPolicyConfigurationPartner.model_validate(response.json_object())

    async def create_partner(
        self, tenant_id: str, **settings: Any
    ) -> CrossTenantAccessPolicyConfigurationPartner:
        """POST a partner; ``settings`` by Python or Graph name, e.g.
        ``automatic_user_consent_settings={"inboundAllowed": True}``.

        Raises :class:`~ctsync.errors.ConflictError` if the partner exists.
        """
        body = {
            "tenantId": tenant_id,
            **_wire(CrossTenantAccessPolicyConfigurationPartner, settings),
        }
        response = await self.client.post(f"{POLICY}/partners", json=body)
        payload = response.json_object() or body
        return CrossTenantAccessPolicyConfigurationPartner.model_validate(payload)

    async def update_partner(self, tenant_id: str, changes: Changes) -> None:
        """PATCH a partner; a member given as None is sent as null (inherit the default)."""
        body = _wire(CrossTenantAccessPolicyConfigurationPartner, changes)
        await self.client.patch(_partner(tenant_id), json=body)

    async def delete_partner(self, tenant_id: str) -> None:
        """Delete a partner (its identitySynchronization must be deleted first)."""
        await self.client.delete(_partner(tenant_id))

    # -- identity synchronization ---------------------------------------------------------

    async def get_identity_sync(self, tenant_id: str) -> CrossTenantIdentitySyncPolicyPartner:
        response = await self.client.get(f"{_partner(tenant_id)}/identitySynchronization")
        return CrossTenantIdentitySyncPolicyPartner.model_validate(response.json_object())

    async def put_identity_sync(
        self, tenant_id: str, *, display_name: str | None = None, sync_allowed: bool = True
    ) -> None:
        """Create the sync policy with PUT. Raises ConflictError if it exists (then PATCH)."""
        body: dict[str, Any] = {"userSyncInbound": {"isSyncAllowed": sync_allowed}}
        if display_name is not None:
            body = {"displayName": display_name, **body}
        await self.client.put(f"{_partner(tenant_id)}/identitySynchronization", json=body)

    async def update_identity_sync(self, tenant_id: str, changes: Changes) -> None:
        body = _wire(CrossTenantIdentitySyncPolicyPartner, changes)
        await self.client.patch(f"{_partner(tenant_id)}/identitySynchronization", json=body)

    async def delete_identity_sync(self, tenant_id: str) -> None:
        await self.client.delete(f"{_partner(tenant_id)}/identitySynchronization")

    # -- tenant lookup --------------------------------------------------------------------

    async def find_tenant_information(self, tenant_id: str) -> TenantInformation:
        """Public name and default domain of any tenant, by id."""
        literal = quote(tenant_id.replace("'", "''"), safe="")
        response = await self.client.get(
            f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{literal}')"
        )
        return TenantInformation.model_validate(response.json_object())


def _partner(tenant_id: str) -> str:
    return f"{POLICY}/partners/{quote(tenant_id, safe='')}"


def _wire(model: type[GraphModel], changes: Changes) -> dict[str, Any]:
    """A PATCH/POST body: top-level keys mapped to Graph names, explicit None kept as null."""
    if isinstance(changes, GraphModel):
        return changes.to_graph()
    return {model.wire_name(key): _wire_value(value) for key, value in changes.items()}


def _wire_value(value: Any) -> Any:
    if isinstance(value, GraphModel):
        return value.to_graph()
    if isinstance(value, Mapping):
        return {key: _wire_value(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire_value(v) for v in value]
    return value
