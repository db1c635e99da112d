"""The tenant's ``authorizationPolicy``: external collaboration settings."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.scenarios import ScenarioError
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import client_with, error_of

POLICY = "/policies/authorizationPolicy"
WRITE = ["Policy.ReadWrite.Authorization"]


def _bare(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k[0] != "@"}


def test_get_answers_the_single_object_with_defaults(http_for: HttpFor) -> None:
    response = http_for("contoso").get(POLICY)
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#policies/authorizationPolicy/$entity")
    assert "value" not in body
    assert body["id"] == "authorizationPolicy"
    assert body["allowInvitesFrom"] == "everyone"
    assert body["guestUserRoleId"] == "10dae51f-b6af-4016-8d66-8c2a99b929b3"
    assert body["defaultUserRolePermissions"]["allowedToReadOtherUsers"] is True
    assert_conforms("authorizationPolicy", _bare(body))
    selected = http_for("contoso").get(POLICY, params={"$select": "allowInvitesFrom"}).json()
    assert _bare(selected) == {"allowInvitesFrom": "everyone"}
    assert http_for("contoso").get(POLICY, params={"$select": "nope"}).status_code == 400


def test_patch_changes_what_the_engine_reads(demo: Emulator, http_for: HttpFor) -> None:
    with client_with(demo, "fabrikam", WRITE) as admin:
        response = admin.patch(POLICY, json={"allowInvitesFrom": "adminsAndGuestInviters"})
        assert response.status_code == 204
        assert response.content == b""
        restrict = {
            "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
            "defaultUserRolePermissions": {"allowedToCreateApps": False},
        }
        assert admin.patch(POLICY, json=restrict).status_code == 204
        body = admin.get(POLICY).json()
    assert body["allowInvitesFrom"] == "adminsAndGuestInviters"
    assert body["guestUserRoleId"] == "2af84b1e-32c8-42b7-82bc-daa82404023b"
    # defaultUserRolePermissions merges: untouched members keep their values.
    assert body["defaultUserRolePermissions"]["allowedToCreateApps"] is False
    assert body["defaultUserRolePermissions"]["allowedToCreateSecurityGroups"] is True
    assert_conforms("authorizationPolicy", _bare(body))
    assert demo.tenant("fabrikam").authorization_policy["allowInvitesFrom"] == (
        "adminsAndGuestInviters"
    )
    # Other tenants are untouched.
    assert http_for("contoso").get(POLICY).json()["allowInvitesFrom"] == "everyone"


@pytest.mark.parametrize(
    "body",
    [
        {"allowInvitesFrom": "strangers"},
        {"allowInvitesFrom": "unknownFutureValue"},
        {"allowedToUseSSPR": None},
        {"allowedToUseSSPR": "yes"},
        {"guestUserRoleId": "62e90394-69f5-4237-9190-012177145e10"},
        {"guestUserRoleId": "not-a-guid"},
        {"id": "somethingElse"},
        {"shoeSize": 42},
        {"defaultUserRolePermissions": {"allowedToFly": True}},
        [],
    ],
)
def test_bad_patches_are_400_and_change_nothing(demo: Emulator, body: Any) -> None:
    before = dict(demo.tenant("contoso").authorization_policy)
    with client_with(demo, "contoso", WRITE) as admin:
        response = admin.patch(POLICY, json=body)
    assert response.status_code == 400
    assert error_of(response)["code"] in {"BadRequest", "Request_BadRequest"}
    assert demo.tenant("contoso").authorization_policy == before


def test_permissions(demo: Emulator, http_for: HttpFor) -> None:
    refused = http_for("contoso").patch(POLICY, json={"allowInvitesFrom": "none"})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "Authorization_RequestDenied"
    with client_with(demo, "contoso", ["Directory.Read.All"]) as reader:
        assert reader.get(POLICY).status_code == 403
    with client_with(demo, "contoso", WRITE) as writer:
        assert writer.get(POLICY).status_code == 200


def test_scenarios_can_set_it() -> None:
    emu = Emulator(
        scenario={"tenants": [{"name": "x", "authorization_policy": {"allowInvitesFrom": "none"}}]}
    )
    assert emu.tenant("x").authorization_policy["allowInvitesFrom"] == "none"
    bad = {"tenants": [{"name": "y", "authorization_policy": {"allowInvitesFrom": "all"}}]}
    with pytest.raises(ScenarioError, match="authorization_policy"):
        Emulator(scenario=bad)
