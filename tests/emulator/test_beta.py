"""The beta endpoint: the emulator serves only what ctsync may opt into there — a partner's
identitySynchronization with ``groupSyncInbound`` (group sync, a preview). Everything else under
``/beta`` answers 501; v1.0 neither takes nor shows the beta member."""

from __future__ import annotations

from ctsync.emulator import Emulator
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor

BETA = "https://graph.microsoft.com/beta"
PARTNERS = "/policies/crossTenantAccessPolicy/partners"


def _partner(demo: Emulator, http_for: HttpFor) -> tuple[str, str]:
    graph = http_for("fabrikam")
    contoso = demo.tenant("contoso").id
    assert graph.post(PARTNERS, json={"tenantId": contoso}).status_code == 201
    return contoso, f"{PARTNERS}/{contoso}/identitySynchronization"


def test_group_sync_is_set_and_read_in_beta_only(demo: Emulator, http_for: HttpFor) -> None:
    contoso, path = _partner(demo, http_for)
    graph = http_for("fabrikam")
    body = {
        "displayName": "Contoso",
        "userSyncInbound": {"isSyncAllowed": True},
        "groupSyncInbound": {"isSyncAllowed": True},
    }
    refused = graph.put(path, json=body)  # v1.0 has no such member
    assert refused.status_code == 400
    assert graph.put(BETA + path, json=body).status_code == 204

    beta = graph.get(BETA + path).json()
    assert beta["groupSyncInbound"] == {"isSyncAllowed": True}
    assert beta["userSyncInbound"] == {"isSyncAllowed": True}
    v1 = graph.get(path).json()
    assert "groupSyncInbound" not in v1
    assert_conforms("crossTenantIdentitySyncPolicyPartner", v1)
    listed = graph.get(PARTNERS, params={"$expand": "identitySynchronization"}).json()
    [partner] = [p for p in listed["value"] if p["tenantId"] == contoso]
    assert "groupSyncInbound" not in partner["identitySynchronization"]

    patch = {"groupSyncInbound": {"isSyncAllowed": False}}
    assert graph.patch(path, json=patch).status_code == 400
    assert graph.patch(BETA + path, json=patch).status_code == 204
    assert graph.get(BETA + path).json()["groupSyncInbound"] == {"isSyncAllowed": False}
    assert graph.get(BETA + path).json()["userSyncInbound"] == {"isSyncAllowed": True}


def test_a_policy_made_in_v1_shows_no_group_sync_in_beta(demo: Emulator, http_for: HttpFor) -> None:
    _, path = _partner(demo, http_for)
    graph = http_for("fabrikam")
    assert graph.put(path, json={"userSyncInbound": {"isSyncAllowed": True}}).status_code == 204
    assert graph.get(BETA + path).json()["groupSyncInbound"] == {"isSyncAllowed": None}
    bad = graph.patch(BETA + path, json={"groupSyncInbound": {"isSyncAllowed": "yes"}})
    assert bad.status_code == 400
    assert "groupSyncInbound" in bad.json()["error"]["message"]


def test_the_rest_of_beta_is_not_implemented(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    for method, path in (("GET", "/users"), ("GET", PARTNERS), ("POST", "/$batch")):
        answer = graph.request(method, BETA + path, json={"requests": []})
        assert answer.status_code == 501, (method, path)
        assert answer.json()["error"]["code"] == "NotImplemented"
    # An unknown version is still no Graph path at all.
    assert graph.get("https://graph.microsoft.com/v2.0/users").status_code == 404
