"""Users, groups, group members and the organization, as ctsync's engine reads them."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.scenarios import ScenarioError
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import client_with, error_of

DEFAULT_USER_PROPERTIES = {
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
}
EVENTUAL = {"ConsistencyLevel": "eventual"}
ENTRA_ID_P1 = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
MFA_PREMIUM = "8a256a2b-b617-496d-b51b-e76466e88db0"


def _upns(body: dict[str, Any]) -> list[str]:
    return sorted(u["userPrincipalName"] for u in body["value"])


def test_users_answer_graphs_default_properties(http_for: HttpFor) -> None:
    response = http_for("contoso").get("/users")
    assert response.status_code == 200
    assert response.headers["x-ms-resource-unit"] == "2"
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#users")
    assert len(body["value"]) == 12
    for user in body["value"]:
        assert set(user) == DEFAULT_USER_PROPERTIES
        assert_conforms("user", user)


def test_select_returns_exactly_what_was_asked_nulls_included(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    fields = "id,userType,accountEnabled,department,externalUserState,employeeHireDate"
    body = graph.get("/users", params={"$select": fields}).json()
    for user in body["value"]:
        assert set(user) == set(fields.split(","))
        assert user["employeeHireDate"] is None
        assert_conforms("user", user)
    jordan = next(u for u in body["value"] if u["userType"] == "Guest")
    assert jordan["externalUserState"] == "Accepted"
    everything = graph.get("/users/adele@contoso.com", params={"$select": "*"}).json()
    assert {"userType", "employeeHireDate", "department"} <= set(everything)
    assert_conforms("user", everything)
    bad = graph.get("/users", params={"$select": "id,shoeSize"})
    assert bad.status_code == 400
    assert "shoeSize" in error_of(bad)["message"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("userPrincipalName eq 'adele@contoso.com'", ["adele@contoso.com"]),
        ("startswith(displayName, 'Al')", ["alex@contoso.com"]),
        ("department in ('Finance', 'Operations')", ["diego@contoso.com", "nestor@contoso.com"]),
        ("accountEnabled eq false", ["patti@contoso.com"]),
        ("userType eq 'Guest'", ["jordan_northwind.example#EXT#@contoso.onmicrosoft.com"]),
        ("mail eq 'MEGAN@CONTOSO.COM'", ["megan@contoso.com"]),
        (
            "userType eq 'Member' and department eq 'Engineering'",
            ["grady@contoso.com", "johanna@contoso.com", "lee@contoso.com"],
        ),
    ],
)
def test_user_filters(http_for: HttpFor, query: str, expected: list[str]) -> None:
    body = http_for("contoso").get("/users", params={"$filter": query}).json()
    assert _upns(body) == expected


def test_advanced_operators_need_an_advanced_query(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    for query in (
        "endswith(mail, '@contoso.com')",
        "userType ne 'Member'",
        "not(accountEnabled eq true)",
    ):
        refused = graph.get("/users", params={"$filter": query})
        assert refused.status_code == 400, query
        assert error_of(refused)["code"] == "Request_UnsupportedQuery"
    body = graph.get(
        "/users",
        params={"$filter": "userType ne 'Member'", "$count": "true"},
        headers=EVENTUAL,
    ).json()
    assert body["@odata.count"] == 1
    assert graph.get("/users", params={"$count": "true"}).status_code == 400
    assert graph.get("/users", params={"$filter": "jobTitle eq 'Director'"}).status_code == 400


def test_users_page_with_next_links(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    seen: list[str] = []
    body = graph.get("/users", params={"$top": "5", "$orderby": "displayName"}).json()
    while True:
        seen.extend(u["displayName"] for u in body["value"])
        if "@odata.nextLink" not in body:
            break
        body = graph.get(body["@odata.nextLink"]).json()
    assert len(seen) == 12
    assert seen == sorted(seen, key=str.casefold)


def test_one_user_by_id_or_upn(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    by_upn = graph.get("/users/Adele@Contoso.com")
    assert by_upn.status_code == 200
    user = by_upn.json()
    assert user["@odata.context"].endswith("$metadata#users/$entity")
    assert_conforms("user", user)
    by_id = graph.get(
        f"/users/{user['id']}", params={"$select": "id,department,accountEnabled"}
    ).json()
    assert (by_id["department"], by_id["accountEnabled"]) == ("Sales", True)
    guest = graph.get("/users/jordan_northwind.example%23EXT%23@contoso.onmicrosoft.com")
    assert guest.status_code == 200
    missing = graph.get("/users/11111111-2222-4333-8444-555555555555")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "Request_ResourceNotFound"


def test_groups_and_their_direct_members(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    groups = graph.get("/groups").json()["value"]
    assert {g["displayName"] for g in groups} == {
        "CTS-Pilot",
        "Sales",
        "Engineering",
        "All Employees",
    }
    for group in groups:
        assert_conforms("group", group)
    [everyone] = graph.get("/groups", params={"$filter": "displayName eq 'All Employees'"}).json()[
        "value"
    ]
    assert graph.get(f"/groups/{everyone['id']}").json()["displayName"] == "All Employees"
    started = graph.get("/groups", params={"$filter": "startswith(displayName, 'CTS')"}).json()
    assert [g["displayName"] for g in started["value"]] == ["CTS-Pilot"]

    response = graph.get(f"/groups/{everyone['id']}/members")
    assert response.headers["x-ms-resource-unit"] == "3"
    members = response.json()["value"]
    kinds = {m["@odata.type"] for m in members}
    assert kinds == {"#microsoft.graph.user", "#microsoft.graph.group"}
    # Engineering is a direct member; its own members are not expanded.
    nested = [m for m in members if m["@odata.type"] == "#microsoft.graph.group"]
    assert [g["displayName"] for g in nested] == ["Engineering"]
    assert len(members) == 12
    for member in members:
        kind = member["@odata.type"].removeprefix("#microsoft.graph.")
        assert_conforms(kind, {k: v for k, v in member.items() if k != "@odata.type"})
    assert graph.get("/groups/11111111-2222-4333-8444-555555555555/members").status_code == 404


def test_members_without_user_read_show_type_and_id_only(demo: Emulator) -> None:
    with client_with(demo, "contoso", ["GroupMember.Read.All"]) as graph:
        pilot = graph.get("/groups", params={"$filter": "displayName eq 'CTS-Pilot'"}).json()[
            "value"
        ][0]
        members = graph.get(f"/groups/{pilot['id']}/members").json()["value"]
        assert members
        assert all(set(m) == {"@odata.type", "id"} for m in members)
        assert graph.get("/users").status_code == 403


def test_organization(demo: Emulator, http_for: HttpFor) -> None:
    body = http_for("contoso").get("/organization").json()
    [org] = body["value"]
    assert org["id"] == demo.tenant("contoso").id
    assert org["displayName"] == "Contoso"
    domains = {d["name"]: d for d in org["verifiedDomains"]}
    assert domains["contoso.onmicrosoft.com"]["isInitial"] is True
    assert domains["contoso.onmicrosoft.com"]["isDefault"] is False
    assert domains["contoso.com"]["isDefault"] is True
    assert {p["servicePlanId"]: p["capabilityStatus"] for p in org["assignedPlans"]} == {
        ENTRA_ID_P1: "Enabled",
        MFA_PREMIUM: "Enabled",
    }
    assert_conforms("organization", org)
    one = http_for("contoso").get(
        f"/organization/{org['id']}", params={"$select": "verifiedDomains"}
    )
    assert set(one.json()) == {"@odata.context", "verifiedDomains"}


def test_directory_permissions(demo: Emulator) -> None:
    with client_with(demo, "contoso", ["Policy.Read.All"]) as graph:
        for path in ("/users", "/groups", "/organization"):
            response = graph.get(path)
            assert response.status_code == 403, path
            assert error_of(response)["code"] == "Authorization_RequestDenied"
    with client_with(demo, "contoso", ["User.Read.All"]) as graph:
        assert graph.get("/users").status_code == 200
        assert graph.get("/groups").status_code == 403


def test_tenants_see_only_their_own_directory(demo: Emulator, http_for: HttpFor) -> None:
    fabrikam = http_for("fabrikam")
    assert _upns(fabrikam.get("/users").json()) == [
        "christie@fabrikam.com",
        "miriam@fabrikam.com",
        "pradeep@fabrikam.com",
    ]
    adele = http_for("contoso").get("/users/adele@contoso.com").json()
    assert fabrikam.get(f"/users/{adele['id']}").status_code == 404
    assert fabrikam.get(f"/organization/{demo.tenant('contoso').id}").status_code == 404


# -- licences ------------------------------------------------------------------------------


def test_licences_show_on_the_organization_and_on_members(http_for: HttpFor) -> None:
    """Contoso and Fabrikam hold Entra ID P1; Tailspin's has lapsed (Suspended)."""

    def p1_status(tenant: str) -> list[str]:
        [org] = http_for(tenant).get("/organization").json()["value"]
        assert_conforms("organization", org)
        assert {p["service"] for p in org["provisionedPlans"]} == {
            "AADPremiumService",
            "MultiFactorService",
        }
        return [
            p["capabilityStatus"] for p in org["assignedPlans"] if p["servicePlanId"] == ENTRA_ID_P1
        ]

    assert p1_status("contoso") == ["Enabled"]
    assert p1_status("fabrikam") == ["Enabled"]
    assert p1_status("tailspin") == ["Suspended"]
    graph = http_for("contoso")
    fields = {"$select": "id,assignedLicenses,assignedPlans"}
    adele = graph.get("/users/adele@contoso.com", params=fields).json()
    assert adele["assignedLicenses"] == [
        {"disabledPlans": [], "skuId": "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"}
    ]
    assert ENTRA_ID_P1 in {p["servicePlanId"] for p in adele["assignedPlans"]}
    assert_conforms("user", {k: v for k, v in adele.items() if k != "@odata.context"})
    [guest] = graph.get("/users", params={"$filter": "userType eq 'Guest'", **fields}).json()[
        "value"
    ]
    assert guest["assignedLicenses"] == []


def test_scenario_licences_are_checked() -> None:
    for bad in (["AAD_PREMIUM_P9"], [{"sku": "AAD_PREMIUM", "capabilityStatus": "Maybe"}], "P1"):
        with pytest.raises(ScenarioError, match="licenses"):
            Emulator(scenario={"tenants": [{"name": "x", "licenses": bad}]})
    free = Emulator(scenario={"tenants": [{"name": "free", "users": [{"alias": "a"}]}]})
    assert free.tenant("free").assigned_plans == []


# -- $count ----------------------------------------------------------------------------------


def test_count_segment_answers_plain_text_in_an_advanced_query(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    users = graph.get("/users/$count", headers=EVENTUAL)
    assert users.status_code == 200
    assert users.headers["content-type"].startswith("text/plain")
    assert users.text == "12"
    guests = graph.get("/users/$count", params={"$filter": "userType eq 'Guest'"}, headers=EVENTUAL)
    assert guests.text == "1"
    # ne and not are advanced operators: the $count segment is an advanced query.
    members = graph.get(
        "/users/$count", params={"$filter": "userType ne 'Guest'"}, headers=EVENTUAL
    )
    assert members.text == "11"
    assert graph.get("/groups/$count", headers=EVENTUAL).text == "4"
    [everyone] = graph.get("/groups", params={"$filter": "displayName eq 'All Employees'"}).json()[
        "value"
    ]
    assert graph.get(f"/groups/{everyone['id']}/members/$count", headers=EVENTUAL).text == "12"
    assert http_for("fabrikam").get("/users/$count", headers=EVENTUAL).text == "3"


def test_count_segment_refusals(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    refused = graph.get("/users/$count")
    assert refused.status_code == 400
    assert error_of(refused) | {"innerError": None} == {
        "code": "Request_BadRequest",
        "message": "$count is not currently supported.",
        "innerError": None,
    }
    assert graph.get("/users/$count", params={"$top": "1"}, headers=EVENTUAL).status_code == 400
    bad_filter = graph.get("/users/$count", params={"$filter": "jobTitle eq 'x'"}, headers=EVENTUAL)
    assert error_of(bad_filter)["code"] == "Request_UnsupportedQuery"
    missing = graph.get(
        "/groups/11111111-2222-4333-8444-555555555555/members/$count", headers=EVENTUAL
    )
    assert missing.status_code == 404
    with client_with(demo, "contoso", ["Policy.Read.All"]) as other:
        assert other.get("/users/$count", headers=EVENTUAL).status_code == 403


def test_count_in_a_batch_is_text(http_for: HttpFor) -> None:
    body = {
        "requests": [
            {
                "id": "1",
                "method": "GET",
                "url": "/users/$count",
                "headers": {"ConsistencyLevel": "eventual"},
            }
        ]
    }
    [item] = http_for("contoso").post("/$batch", json=body).json()["responses"]
    assert (item["status"], item["body"]) == (200, "12")


def test_query_options_survive_a_guest_upn_in_the_path(http_for: HttpFor) -> None:
    """A guest's UPN holds '#' (…#EXT#@…); the path must not swallow the query after it."""
    graph = http_for("contoso")
    upn = "jordan_northwind.example#EXT#@contoso.onmicrosoft.com"
    found = graph.get(f"/users/{upn.replace('#', '%23')}", params={"$select": "id,userType"})
    assert found.status_code == 200, found.text
    assert set(found.json()) - {"@odata.context"} == {"id", "userType"}
