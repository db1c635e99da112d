"""Conditional Access policies: ``/identity/conditionalAccess/policies`` (reference §6)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.scenarios import ScenarioError
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import client_with, error_of

POLICIES = "/identity/conditionalAccess/policies"
WRITER = ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]
ENUMERATED = "#microsoft.graph.conditionalAccessEnumeratedExternalTenants"
ALL_TENANTS = "#microsoft.graph.conditionalAccessAllExternalTenants"


def _conforms(policy: dict[str, Any]) -> None:
    assert_conforms("conditionalAccessPolicy", {k: v for k, v in policy.items() if k[0] != "@"})


def _policies(graph: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = graph.get(POLICIES, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#identity/conditionalAccess/policies")
    policies: list[dict[str, Any]] = body["value"]
    for policy in policies:
        _conforms(policy)
    return policies


def _mfa_for_partner(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    """Reference §6: MFA for CTS users from one partner tenant."""
    body: dict[str, Any] = {
        "displayName": "Require MFA for CTS members from partner",
        "state": "enabled",
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {
                "includeGuestsOrExternalUsers": {
                    "guestOrExternalUserTypes": "b2bCollaborationMember,b2bCollaborationGuest",
                    "externalTenants": {
                        "@odata.type": ENUMERATED,
                        "membershipKind": "enumerated",
                        "members": [tenant_id],
                    },
                }
            },
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def writer(demo: Emulator) -> Iterator[httpx.Client]:
    with client_with(demo, "fabrikam", WRITER) as graph:
        yield graph


# -- the demo's policies ---------------------------------------------------------------------


def test_fabrikam_only_reports_mfa_for_guests(http_for: HttpFor) -> None:
    [policy] = _policies(http_for("fabrikam"))
    assert policy["state"] == "enabledForReportingButNotEnforced"
    external = policy["conditions"]["users"]["includeGuestsOrExternalUsers"]
    # b2bCollaborationMember (what a CTS link creates by default) is not covered.
    assert external["guestOrExternalUserTypes"] == "b2bCollaborationGuest"
    assert external["externalTenants"] == {"@odata.type": ALL_TENANTS, "membershipKind": "all"}
    assert policy["grantControls"]["builtInControls"] == ["mfa"]
    assert policy["conditions"]["applications"]["includeApplications"] == ["All"]


def test_tailspin_enforces_mfa_for_contoso_except_a_group(
    demo: Emulator, http_for: HttpFor
) -> None:
    graph = http_for("tailspin")
    [policy] = _policies(graph)
    assert policy["state"] == "enabled"
    users = policy["conditions"]["users"]
    external = users["includeGuestsOrExternalUsers"]
    assert set(external["guestOrExternalUserTypes"].split(",")) == {
        "b2bCollaborationGuest",
        "b2bCollaborationMember",
    }
    assert external["externalTenants"]["@odata.type"] == ENUMERATED
    assert external["externalTenants"]["members"] == [demo.tenant("contoso").id]
    [excluded] = users["excludeGroups"]
    group = graph.get(f"/groups/{excluded}").json()
    assert group["displayName"] == "CA-Exclusions"
    assert _policies(http_for("contoso")) == []


# -- create, read, update, delete ------------------------------------------------------------


def test_create_answers_201_with_the_whole_policy(demo: Emulator, writer: httpx.Client) -> None:
    contoso = demo.tenant("contoso").id
    response = writer.post(POLICIES, json=_mfa_for_partner(contoso))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["@odata.context"].endswith("identity/conditionalAccess/policies/$entity")
    _conforms(created)
    assert created["createdDateTime"].startswith("20")
    assert created["modifiedDateTime"] is None
    users = created["conditions"]["users"]
    assert users["includeUsers"] == users["excludeGroups"] == []
    assert users["excludeGuestsOrExternalUsers"] is None
    assert created["conditions"]["signInRiskLevels"] == []
    assert created["grantControls"]["termsOfUse"] == []
    one = writer.get(f"{POLICIES}/{created['id']}")
    assert one.status_code == 200
    assert {k: v for k, v in one.json().items() if k[0] != "@"} == {
        k: v for k, v in created.items() if k[0] != "@"
    }
    assert len(_policies(writer)) == 2


def test_update_merges_and_delete_removes(demo: Emulator, writer: httpx.Client) -> None:
    created = writer.post(POLICIES, json=_mfa_for_partner(demo.tenant("contoso").id)).json()
    url = f"{POLICIES}/{created['id']}"
    demo.clock.advance(60)
    assert writer.patch(url, json={"state": "disabled"}).status_code == 204
    after = writer.get(url).json()
    assert after["state"] == "disabled"
    assert after["modifiedDateTime"] is not None
    assert after["conditions"] == created["conditions"]
    # An object with its @odata.type replaces the stored one whole.
    widen = {
        "conditions": {
            "users": {
                "includeGuestsOrExternalUsers": {
                    "externalTenants": {"@odata.type": ALL_TENANTS, "membershipKind": "all"}
                }
            }
        }
    }
    assert writer.patch(url, json=widen).status_code == 204
    external = writer.get(url).json()["conditions"]["users"]["includeGuestsOrExternalUsers"]
    assert external["externalTenants"] == {"@odata.type": ALL_TENANTS, "membershipKind": "all"}
    assert external["guestOrExternalUserTypes"] == "b2bCollaborationMember,b2bCollaborationGuest"
    _conforms(writer.get(url).json())
    assert writer.delete(url).status_code == 204
    assert writer.get(url).status_code == 404
    assert writer.delete(url).status_code == 404
    assert writer.patch(url, json={"state": "enabled"}).status_code == 404


def test_authentication_strength_instead_of_mfa(demo: Emulator, writer: httpx.Client) -> None:
    body = _mfa_for_partner(demo.tenant("contoso").id)
    body["grantControls"] = {
        "operator": "OR",
        "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"},
    }
    response = writer.post(POLICIES, json=body)
    assert response.status_code == 201, response.text
    strength = response.json()["grantControls"]["authenticationStrength"]
    assert strength["displayName"] == "Phishing-resistant MFA"
    _conforms(response.json())


def _invalid(contoso: str) -> list[tuple[str, dict[str, Any]]]:
    base = _mfa_for_partner(contoso)

    def changed(path: list[str], value: Any) -> dict[str, Any]:
        body = copy.deepcopy(base)
        target = body
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return body

    guests = ["conditions", "users", "includeGuestsOrExternalUsers"]
    return [
        ("no displayName", changed(["displayName"], _DELETE)),
        ("empty displayName", changed(["displayName"], " ")),
        ("no conditions", changed(["conditions"], _DELETE)),
        ("null conditions", changed(["conditions"], None)),
        ("no state", changed(["state"], _DELETE)),
        ("bad state", changed(["state"], "on")),
        ("unknown property", changed(["color"], "blue")),
        ("no users", changed(["conditions", "users"], _DELETE)),
        ("no applications", changed(["conditions", "applications"], _DELETE)),
        ("nobody included", changed(["conditions", "users"], {"excludeUsers": []})),
        ("not a guid", changed(["conditions", "users", "includeGroups"], ["CTS-Pilot"])),
        ("bad user type", changed([*guests, "guestOrExternalUserTypes"], "partners")),
        ("tenants without types", changed([*guests, "guestOrExternalUserTypes"], "none")),
        ("abstract tenants", changed([*guests, "externalTenants"], {"membershipKind": "all"})),
        (
            "enumerated without members",
            changed(
                [*guests, "externalTenants"],
                {"@odata.type": ENUMERATED, "membershipKind": "enumerated", "members": []},
            ),
        ),
        (
            "all with members",
            changed(
                [*guests, "externalTenants"],
                {"@odata.type": ALL_TENANTS, "membershipKind": "all", "members": [contoso]},
            ),
        ),
        ("block and mfa", changed(["grantControls", "builtInControls"], ["block", "mfa"])),
        ("bad control", changed(["grantControls", "builtInControls"], ["prayer"])),
        ("no operator", changed(["grantControls", "operator"], _DELETE)),
        ("no controls", changed(["grantControls"], _DELETE)),
        (
            "unknown strength",
            changed(
                ["grantControls"],
                {"operator": "OR", "authenticationStrength": {"id": "not-a-strength"}},
            ),
        ),
    ]


_DELETE = object()


def test_bad_bodies_are_400(demo: Emulator, writer: httpx.Client) -> None:
    for name, body in _invalid(demo.tenant("contoso").id):
        response = writer.post(POLICIES, json=body)
        assert response.status_code == 400, name
        assert error_of(response)["code"] == "BadRequest", name
    assert _policies(writer)[0]["displayName"] == "Guests: require MFA (report-only)"
    assert len(_policies(writer)) == 1


def test_bad_updates_are_400_and_change_nothing(demo: Emulator, writer: httpx.Client) -> None:
    [policy] = _policies(writer)
    url = f"{POLICIES}/{policy['id']}"
    for body in (
        {"state": "sometimes"},
        {"conditions": None},
        {"displayName": None},
        {"grantControls": {"builtInControls": ["block", "mfa"]}},
        {"conditions": {"users": {"includeGroups": ["not-a-guid"]}}},
    ):
        response = writer.patch(url, json=body)
        assert response.status_code == 400, body
    assert writer.get(url).json() | {"@odata.context": None} == policy | {"@odata.context": None}


def test_query_options(writer: httpx.Client, demo: Emulator) -> None:
    writer.post(POLICIES, json=_mfa_for_partner(demo.tenant("contoso").id))
    enabled = _policies(writer, **{"$filter": "state eq 'enabled'"})
    assert [p["displayName"] for p in enabled] == ["Require MFA for CTS members from partner"]
    started = _policies(writer, **{"$filter": "startswith(displayName, 'Guests')"})
    assert len(started) == 1
    selected = _policies(writer, **{"$select": "id,displayName,state", "$orderby": "displayName"})
    assert [set(p) for p in selected] == [{"id", "displayName", "state"}] * 2
    assert [p["displayName"] for p in selected] == sorted(p["displayName"] for p in selected)
    counted = writer.get(POLICIES, params={"$count": "true", "$top": "1"}).json()
    assert counted["@odata.count"] == 2
    assert len(counted["value"]) == 1
    rest = writer.get(counted["@odata.nextLink"]).json()
    assert len(rest["value"]) == 1
    assert "@odata.nextLink" not in rest
    bad = writer.get(POLICIES, params={"$filter": "conditions/clientAppTypes/any(c: c eq 'all')"})
    assert error_of(bad)["code"] == "Request_UnsupportedQuery"
    assert writer.get(POLICIES, params={"$select": "colour"}).status_code == 400


def test_permissions(demo: Emulator, http_for: HttpFor) -> None:
    contoso = demo.tenant("contoso").id
    body = _mfa_for_partner(contoso)
    # ctsync only reads Conditional Access.
    ctsync = http_for("fabrikam")
    assert ctsync.get(POLICIES).status_code == 200
    refused = ctsync.post(POLICIES, json=body)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "Authorization_RequestDenied"
    with client_with(demo, "fabrikam", ["Policy.ReadWrite.ConditionalAccess"]) as alone:
        assert alone.get(POLICIES).status_code == 403
        assert alone.post(POLICIES, json=body).status_code == 403
    with client_with(
        demo, "fabrikam", ["Policy.ReadWrite.ConditionalAccess", "Application.Read.All"]
    ) as app_reader:
        created = app_reader.post(POLICIES, json=body)
        assert created.status_code == 201
        url = f"{POLICIES}/{created.json()['id']}"
        assert app_reader.patch(url, json={"state": "disabled"}).status_code == 204
        # Delete documents Policy.Read.All as the companion permission.
        assert app_reader.delete(url).status_code == 403
    with client_with(demo, "fabrikam", WRITER) as writer:
        assert writer.delete(url).status_code == 204


def test_tenants_see_only_their_own_policies(http_for: HttpFor) -> None:
    [tailspin] = _policies(http_for("tailspin"))
    fabrikam = http_for("fabrikam")
    assert fabrikam.get(f"{POLICIES}/{tailspin['id']}").status_code == 404


def test_scenario_policies_are_checked() -> None:
    scenario = {
        "tenants": [
            {
                "name": "x",
                "conditional_access_policies": [{"displayName": "half", "state": "enabled"}],
            }
        ]
    }
    with pytest.raises(ScenarioError, match=r"conditional_access_policies\[0\]"):
        Emulator(scenario=scenario)
