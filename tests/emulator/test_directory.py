"""Users, groups, group members and the organization, as ctsync's engine reads them."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
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
    assert org["assignedPlans"] == []
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
