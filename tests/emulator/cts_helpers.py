"""Steps of Microsoft's cross-tenant sync walkthrough, shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport

GRAPH = "https://graph.microsoft.com/v1.0"
CTS_TEMPLATE = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"
NON_GALLERY_TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
PARTNERS = "/policies/crossTenantAccessPolicy/partners"


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The Graph error of a response, after checking the envelope."""
    error: dict[str, Any] = response.json()["error"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


def client_with(emulator: Emulator, tenant: str, permissions: list[str]) -> httpx.Client:
    """A Graph client for a new app-only client of ``tenant`` holding ``permissions``."""
    app = emulator.add_client(emulator.tenant(tenant), permissions=permissions, display_name="t")
    token = EmulatorCredential(emulator, tenant, client_id=app.client_id).get_token(
        "https://graph.microsoft.com/.default"
    )
    return httpx.Client(
        base_url=GRAPH,
        transport=EmulatorTransport(emulator),
        headers={"authorization": f"Bearer {token.token}"},
    )


def instantiate(graph: httpx.Client, name: str = "Fabrikam") -> dict[str, Any]:
    response = graph.post(
        f"/applicationTemplates/{CTS_TEMPLATE}/instantiate", json={"displayName": name}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def allow_sync(
    source: httpx.Client,
    target: httpx.Client,
    source_id: str,
    target_id: str,
    *,
    inbound: bool = True,
    outbound: bool = True,
    sync_allowed: bool = True,
) -> None:
    """Microsoft's target steps T2-T3 and source steps S5a-S5b (reference §1.1-1.2)."""
    assert target.post(PARTNERS, json={"tenantId": source_id}).status_code == 201
    identity_sync = {"displayName": "Contoso", "userSyncInbound": {"isSyncAllowed": sync_allowed}}
    put = target.put(f"{PARTNERS}/{source_id}/identitySynchronization", json=identity_sync)
    assert put.status_code == 204
    consent = {"automaticUserConsentSettings": {"inboundAllowed": inbound}}
    assert target.patch(f"{PARTNERS}/{source_id}", json=consent).status_code == 204
    assert source.post(PARTNERS, json={"tenantId": target_id}).status_code == 201
    consent = {"automaticUserConsentSettings": {"outboundAllowed": outbound}}
    assert source.patch(f"{PARTNERS}/{target_id}", json=consent).status_code == 204


def cts_secrets(target_id: str, *, sync_all: bool = False) -> dict[str, Any]:
    """The S9 body."""
    return {
        "value": [
            {"key": "AuthenticationType", "value": "SyncPolicy"},
            {"key": "CompanyId", "value": target_id},
            {
                "key": "SyncNotificationSettings",
                "value": '{"Enabled":false,"DeleteThresholdEnabled":false,'
                '"HumanResourcesLookaheadQueryEnabled":false}',
            },
            {"key": "SyncAll", "value": "true" if sync_all else "false"},
        ]
    }


def connection_body(target_id: str) -> dict[str, Any]:
    """The S7 body."""
    return {
        "useSavedCredentials": False,
        "templateId": "Azure2Azure",
        "credentials": [
            {"key": "CompanyId", "value": target_id},
            {"key": "AuthenticationType", "value": "SyncPolicy"},
        ],
    }


def sync_root(sp_id: str) -> str:
    return f"/servicePrincipals/{sp_id}/synchronization"
