"""The cross-tenant access policy surface, driven over HTTP through the in-process transport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor

PARTNERS = "/policies/crossTenantAccessPolicy/partners"


def _ids(demo: Emulator) -> tuple[str, str]:
    return demo.tenant("contoso").id, demo.tenant("fabrikam").id


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


def test_default_is_the_service_default_until_patched(http_for: HttpFor) -> None:
    graph = http_for("fabrikam")
    body = graph.get("/policies/crossTenantAccessPolicy/default").json()
    assert body["isServiceDefault"] is True
    assert body["automaticUserConsentSettings"] == {
        "inboundAllowed": False,
        "outboundAllowed": False,
    }
    assert body["b2bDirectConnectInbound"]["usersAndGroups"]["accessType"] == "blocked"
    assert body["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "allowed"
    assert_conforms("crossTenantAccessPolicyConfigurationDefault", body)

    patch = {"inboundTrust": {"isMfaAccepted": True}}
    assert graph.patch("/policies/crossTenantAccessPolicy/default", json=patch).status_code == 204
    body = graph.get("/policies/crossTenantAccessPolicy/default").json()
    assert body["isServiceDefault"] is False
    assert body["inboundTrust"] == {
        "isMfaAccepted": True,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    }
    reset = graph.post("/policies/crossTenantAccessPolicy/default/resetToSystemDefault")
    assert reset.status_code == 204
    assert graph.get("/policies/crossTenantAccessPolicy/default").json()["isServiceDefault"]


def test_the_policy_root_conforms(http_for: HttpFor) -> None:
    body = http_for("contoso").get("/policies/crossTenantAccessPolicy").json()
    assert body["displayName"] == "CrossTenantAccessPolicy"
    assert_conforms("crossTenantAccessPolicy", body)


def test_partner_lifecycle_as_documented(demo: Emulator, http_for: HttpFor) -> None:
    source, _ = _ids(demo)
    graph = http_for("fabrikam")
    created = graph.post(PARTNERS, json={"tenantId": source})
    assert created.status_code == 201
    body = created.json()
    assert body["@odata.context"].endswith(
        "$metadata#policies/crossTenantAccessPolicy/partners/$entity"
    )
    assert body["tenantId"] == source
    assert body["inboundTrust"] is None
    assert body["automaticUserConsentSettings"] == {"inboundAllowed": None, "outboundAllowed": None}
    assert_conforms("crossTenantAccessPolicyConfigurationPartner", body)

    again = graph.post(PARTNERS, json={"tenantId": source.upper()})
    assert again.status_code == 409
    assert _error(again)["code"] == "Request_MultipleObjectsWithSameKeyValue"

    patch = {
        "inboundTrust": {"isMfaAccepted": True},
        "automaticUserConsentSettings": {"inboundAllowed": True},
    }
    assert graph.patch(f"{PARTNERS}/{source}", json=patch).status_code == 204
    body = graph.get(f"{PARTNERS}/{source}").json()
    assert body["inboundTrust"]["isMfaAccepted"] is True
    assert body["automaticUserConsentSettings"] == {"inboundAllowed": True, "outboundAllowed": None}

    # An explicit null resets a member to "inherit the default".
    assert graph.patch(f"{PARTNERS}/{source}", json={"inboundTrust": None}).status_code == 204
    body = graph.get(f"{PARTNERS}/{source}").json()
    assert body["inboundTrust"] is None
    assert body["automaticUserConsentSettings"]["inboundAllowed"] is True

    listed = graph.get(PARTNERS).json()
    assert [p["tenantId"] for p in listed["value"]] == [source]
    for item in listed["value"]:
        assert_conforms("crossTenantAccessPolicyConfigurationPartner", item)

    assert graph.delete(f"{PARTNERS}/{source}").status_code == 204
    gone = graph.get(f"{PARTNERS}/{source}")
    assert gone.status_code == 404
    assert _error(gone)["code"] == "Directory_ObjectNotFound"


def test_create_may_carry_settings(demo: Emulator, http_for: HttpFor) -> None:
    _, target = _ids(demo)
    graph = http_for("contoso")
    body = {"tenantId": target, "automaticUserConsentSettings": {"outboundAllowed": True}}
    created = graph.post(PARTNERS, json=body).json()
    assert created["automaticUserConsentSettings"] == {
        "inboundAllowed": None,
        "outboundAllowed": True,
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "tenantId"),
        ({"tenantId": "not-a-guid"}, "tenantId"),
        ({"tenantId": "3d3c0a2b-0000-4000-8000-000000000001", "bogus": 1}, "bogus"),
        (
            {
                "tenantId": "3d3c0a2b-0000-4000-8000-000000000001",
                "inboundTrust": {"isMfaAccepted": "yes"},
            },
            "Edm.Boolean",
        ),
        (
            {
                "tenantId": "3d3c0a2b-0000-4000-8000-000000000001",
                "b2bCollaborationInbound": {"usersAndGroups": {"accessType": "maybe"}},
            },
            "maybe",
        ),
    ],
)
def test_bad_partner_bodies_are_400(http_for: HttpFor, body: dict[str, Any], fragment: str) -> None:
    graph = http_for("contoso")
    response = graph.post(PARTNERS, json=body)
    assert response.status_code == 400
    assert fragment in _error(response)["message"]
    assert graph.get(PARTNERS).json()["value"] == []


def test_own_tenant_cannot_be_a_partner(demo: Emulator, http_for: HttpFor) -> None:
    source, _ = _ids(demo)
    assert http_for("contoso").post(PARTNERS, json={"tenantId": source}).status_code == 400


def test_malformed_json_is_400_bad_request(http_for: HttpFor) -> None:
    response = http_for("contoso").post(
        PARTNERS, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "BadRequest"


def test_unknown_partner_is_404_for_get_patch_delete(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    missing = f"{PARTNERS}/11111111-2222-4333-8444-555555555555"
    for response in (graph.get(missing), graph.patch(missing, json={}), graph.delete(missing)):
        assert response.status_code == 404
        assert _error(response)["code"] == "Directory_ObjectNotFound"


def test_identity_synchronization_lifecycle(demo: Emulator, http_for: HttpFor) -> None:
    source, _ = _ids(demo)
    graph = http_for("fabrikam")
    sync = f"{PARTNERS}/{source}/identitySynchronization"
    body = {"displayName": "Contoso", "userSyncInbound": {"isSyncAllowed": True}}

    # The partner configuration comes first (reference §1.1, T2a before T2b).
    assert graph.put(sync, json=body).status_code == 404
    graph.post(PARTNERS, json={"tenantId": source})

    assert graph.get(sync).status_code == 404
    assert graph.patch(sync, json={"userSyncInbound": {"isSyncAllowed": False}}).status_code == 404
    put = graph.put(sync, json=body)
    assert put.status_code == 204
    assert put.content == b""
    second = graph.put(sync, json=body)
    assert second.status_code == 409
    error = _error(second)
    assert error["code"] == "Request_MultipleObjectsWithSameKeyValue"
    assert error["details"][0]["code"] == "ConflictingObjects"

    got = graph.get(sync).json()
    assert got["tenantId"] == source
    assert got["userSyncInbound"] == {"isSyncAllowed": True}
    assert_conforms("crossTenantIdentitySyncPolicyPartner", got)
    assert graph.get(sync, params={"$select": "userSyncInbound"}).json().keys() >= {
        "userSyncInbound"
    }

    assert graph.patch(sync, json={"userSyncInbound": {"isSyncAllowed": False}}).status_code == 204
    assert graph.get(sync).json()["userSyncInbound"] == {"isSyncAllowed": False}

    # A partner with a sync policy cannot be deleted: the policy goes first (reference §1.4).
    blocked = graph.delete(f"{PARTNERS}/{source}")
    assert blocked.status_code == 400
    assert "identitySynchronization" in _error(blocked)["message"]
    assert graph.delete(sync).status_code == 204
    assert graph.delete(sync).status_code == 404
    assert graph.delete(f"{PARTNERS}/{source}").status_code == 204


def test_tenants_never_see_each_others_policies(demo: Emulator, http_for: HttpFor) -> None:
    source, target = _ids(demo)
    http_for("fabrikam").post(PARTNERS, json={"tenantId": source})
    contoso = http_for("contoso")
    assert contoso.get(PARTNERS).json()["value"] == []
    assert contoso.get(f"{PARTNERS}/{source}").status_code == 404
    assert contoso.get(f"{PARTNERS}/{target}").status_code == 404


def test_permissions_are_checked(demo: Emulator) -> None:
    from ctsync.emulator import EmulatorCredential, EmulatorTransport

    tenant = demo.tenant("contoso")
    reader = demo.add_client(tenant, permissions=["Policy.Read.All"], display_name="reader")
    token = EmulatorCredential(demo, "contoso", client_id=reader.client_id).get_token(
        "https://graph.microsoft.com/.default"
    )
    with httpx.Client(
        base_url="https://graph.microsoft.com/v1.0",
        transport=EmulatorTransport(demo),
        headers={"authorization": f"Bearer {token.token}"},
    ) as graph:
        assert graph.get(PARTNERS).status_code == 200
        denied = graph.post(PARTNERS, json={"tenantId": demo.tenant("fabrikam").id})
        assert denied.status_code == 403
        assert _error(denied)["code"] == "Authorization_RequestDenied"


def test_replication_lag_hides_new_objects_for_a_while(demo: Emulator, http_for: HttpFor) -> None:
    source, _ = _ids(demo)
    demo.traffic.configure(demo.faults.merged({"replication_lag": 2.0}))
    graph = http_for("fabrikam")
    assert graph.post(PARTNERS, json={"tenantId": source}).status_code == 201
    assert graph.get(f"{PARTNERS}/{source}").status_code == 404
    assert graph.get(PARTNERS).json()["value"] == []
    demo.clock.advance(2.0)
    assert graph.get(f"{PARTNERS}/{source}").status_code == 200


def test_forgiving_urls(demo: Emulator, http_for: HttpFor) -> None:
    source, _ = _ids(demo)
    graph = http_for("fabrikam")
    graph.post(PARTNERS, json={"tenantId": source})
    for path in (
        f"https://graph.microsoft.com//v1.0//policies//crossTenantAccessPolicy/partners/{source}/",
        f"/POLICIES/CrossTenantAccessPolicy/Partners/{source.upper()}",
    ):
        assert graph.get(path).status_code == 200, path


def test_unknown_routes_are_400_or_501_never_a_silent_200(http_for: HttpFor) -> None:
    # Graph has no such segment: OData's 400.
    response = http_for("contoso").get("/policies/crossTenantAccessPolicy/nothingHere")
    assert response.status_code == 400
    assert _error(response)["code"] == "BadRequest"
    assert _error(response)["message"] == "Resource not found for the segment 'nothingHere'."
    # A real Graph route the emulator does not serve: 501.
    response = http_for("contoso").get("/policies/authenticationMethodsPolicy")
    assert response.status_code == 501
    assert _error(response)["code"] == "NotImplemented"
    wrong_method = http_for("contoso").put("/policies/crossTenantAccessPolicy/partners", json={})
    assert wrong_method.status_code == 405


def test_request_ids_are_echoed(http_for: HttpFor) -> None:
    response = http_for("contoso").get(
        f"{PARTNERS}/11111111-2222-4333-8444-555555555555",
        headers={"client-request-id": "abc-123"},
    )
    assert response.headers["client-request-id"] == "abc-123"
    error = _error(response)
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_find_tenant_information(demo: Emulator, http_for: HttpFor) -> None:
    _, target = _ids(demo)
    graph = http_for("contoso")
    info = graph.get(f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{target}')")
    assert info.status_code == 200
    body = info.json()
    assert body["displayName"] == "Fabrikam"
    assert body["defaultDomainName"] == "fabrikam.onmicrosoft.com"
    assert_conforms("tenantInformation", body)
    missing = graph.get(
        "/tenantRelationships/findTenantInformationByTenantId(tenantId='11111111-2222-4333-8444-555555555555')"
    )
    assert missing.status_code == 404
