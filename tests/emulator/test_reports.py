"""The registration report: ``/reports/authenticationMethods/userRegistrationDetails``."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import client_with, error_of

REPORT = "/reports/authenticationMethods/userRegistrationDetails"
MOBILE = "3179e48a-750b-4051-897c-87b9720928f7"


def _rows(http_for: HttpFor, tenant: str = "contoso", **params: str) -> list[dict[str, Any]]:
    response = http_for(tenant).get(REPORT, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith(
        "$metadata#reports/authenticationMethods/userRegistrationDetails"
    )
    rows: list[dict[str, Any]] = body["value"]
    for row in rows:
        assert_conforms("userRegistrationDetails", row)
    return rows


def _by_upn(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["userPrincipalName"].split("@")[0].split("_")[0]: row for row in rows}


def test_one_row_per_user_derived_from_their_methods(http_for: HttpFor) -> None:
    rows = _by_upn(_rows(http_for))
    assert len(rows) == 12
    isaiah, diego, lynne = rows["isaiah"], rows["diego"], rows["lynne"]
    assert isaiah["methodsRegistered"] == ["mobilePhone"]
    assert isaiah["isMfaRegistered"] is True
    assert diego["isMfaRegistered"] is False
    assert diego["isMfaCapable"] is False
    assert diego["methodsRegistered"] == []
    assert diego["systemPreferredAuthenticationMethods"] == []
    assert diego["userPreferredMethodForSecondaryAuthentication"] == "none"
    assert lynne["methodsRegistered"] == ["mobilePhone"]
    assert lynne["systemPreferredAuthenticationMethods"] == ["sms"]
    assert lynne["userPreferredMethodForSecondaryAuthentication"] == "sms"
    assert lynne["isPasswordlessCapable"] is False
    jordan = rows["jordan"]
    assert jordan["userType"] == "guest"
    assert (jordan["isMfaRegistered"], jordan["isSsprEnabled"]) == (False, False)
    assert {r["userType"] for name, r in rows.items() if name != "jordan"} == {"member"}
    adele = rows["adele"]
    assert adele["methodsRegistered"] == ["microsoftAuthenticatorPush", "softwareOneTimePasscode"]
    assert adele["systemPreferredAuthenticationMethods"] == ["push"]
    assert adele["userPreferredMethodForSecondaryAuthentication"] == "push"
    assert (adele["isSsprRegistered"], adele["isSsprEnabled"], adele["isSsprCapable"]) == (
        True,
        True,
        True,
    )
    assert rows["alex"]["isPasswordlessCapable"] is True
    assert "fido2" in rows["alex"]["methodsRegistered"]
    assert "windowsHelloForBusiness" in rows["lee"]["methodsRegistered"]
    assert rows["grady"]["systemPreferredAuthenticationMethods"] == ["oath"]
    # The demo's Global Administrator and Security Administrator; nobody else holds a role.
    assert {a for a, r in rows.items() if r["isAdmin"]} == {"lee", "nestor"}
    assert all(r["isSystemPreferredAuthenticationMethodEnabled"] for r in rows.values())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("isMfaRegistered eq false", ["diego", "jordan"]),
        ("isMfaCapable eq true and userType eq 'guest'", []),
        ("methodsRegistered/any(m: m eq 'mobilePhone')", ["isaiah", "lynne"]),
        ("methodsRegistered/any(m: m eq 'fido2')", ["alex"]),
        ("systemPreferredAuthenticationMethods/any(m: m eq 'oath')", ["grady"]),
        ("userType eq 'guest'", ["jordan"]),
        ("userPrincipalName eq 'LEE@contoso.com'", ["lee"]),
        ("startswith(userDisplayName, 'Jo')", ["johanna", "jordan"]),
        ("startswith(userPrincipalName, 'a')", ["adele", "alex"]),
        ("isPasswordlessCapable eq true", ["alex", "lee"]),
        ("userPreferredMethodForSecondaryAuthentication eq 'sms'", ["isaiah", "lynne"]),
    ],
)
def test_documented_filters(http_for: HttpFor, query: str, expected: list[str]) -> None:
    names = sorted(_by_upn(_rows(http_for, **{"$filter": query})))
    assert names == expected


def test_orderby(http_for: HttpFor) -> None:
    rows = _rows(http_for, **{"$orderby": "userDisplayName desc"})
    names = [r["userDisplayName"] for r in rows]
    assert names == sorted(names, key=str.casefold, reverse=True)
    filtered = _rows(
        http_for,
        **{"$filter": "isMfaRegistered eq false", "$orderby": "userPrincipalName"},
    )
    assert [r["userDisplayName"] for r in filtered] == [
        "Diego Siciliani",
        "Jordan Miller (Northwind)",
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$select": "id"}, "Request_BadRequest"),
        ({"$top": "5"}, "Request_BadRequest"),
        ({"$count": "true"}, "Request_BadRequest"),
        ({"$skip": "1"}, "Request_BadRequest"),
        ({"$search": '"adele"'}, "Request_BadRequest"),
        ({"$expand": "x"}, "Request_BadRequest"),
        ({"$filter": "isMfaRegistered ne true"}, "Request_UnsupportedQuery"),
        ({"$filter": "endswith(userPrincipalName, '.com')"}, "Request_UnsupportedQuery"),
        ({"$filter": "lastUpdatedDateTime gt 2020-01-01T00:00:00Z"}, "Request_UnsupportedQuery"),
        ({"$filter": "methodsRegistered/all(m: m eq 'email')"}, "Request_UnsupportedQuery"),
        ({"$filter": "not(methodsRegistered/any(m: m eq 'sms'))"}, "Request_UnsupportedQuery"),
        ({"$orderby": "isMfaRegistered"}, "Request_UnsupportedQuery"),
        ({"$filter": "isMfaRegistered eq"}, "BadRequest"),
    ],
)
def test_only_filter_and_orderby(http_for: HttpFor, params: dict[str, str], code: str) -> None:
    response = http_for("contoso").get(REPORT, params=params)
    assert response.status_code == 400
    assert error_of(response)["code"] == code


def test_one_users_details(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    diego = graph.get("/users/diego@contoso.com").json()
    response = graph.get(f"{REPORT}/{diego['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("userRegistrationDetails/$entity")
    assert body["id"] == diego["id"]
    assert body["isMfaRegistered"] is False
    assert_conforms("userRegistrationDetails", {k: v for k, v in body.items() if k[0] != "@"})
    assert graph.get(f"{REPORT}/11111111-2222-4333-8444-555555555555").status_code == 404
    assert graph.get(f"{REPORT}/{diego['id']}", params={"$select": "id"}).status_code == 400


def test_disabling_sms_sign_in_shows_in_the_report(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    isaiah = graph.get("/users/isaiah@contoso.com").json()
    before = graph.get(f"{REPORT}/{isaiah['id']}").json()
    demo.clock.advance(600)
    url = f"/users/{isaiah['id']}/authentication/phoneMethods/{MOBILE}/disableSmsSignIn"
    assert graph.post(url).status_code == 204
    after = graph.get(f"{REPORT}/{isaiah['id']}").json()
    # Still registered for MFA with the phone; only the record's time moves.
    assert after["methodsRegistered"] == before["methodsRegistered"] == ["mobilePhone"]
    assert after["isMfaRegistered"] is True
    assert after["lastUpdatedDateTime"] > before["lastUpdatedDateTime"]
    assert_conforms("userRegistrationDetails", {k: v for k, v in after.items() if k[0] != "@"})


def test_report_pages_server_side(http_for: HttpFor) -> None:
    scenario = {
        "tenants": [
            {
                "name": "big",
                "clients": [{"permissions": "ctsync"}],
                "users": [
                    {"alias": f"user{i:03}", "displayName": f"User {i:03}"} for i in range(250)
                ],
            }
        ]
    }
    emu = Emulator(scenario=scenario)
    with client_with(emu, "big", ["AuditLog.Read.All"]) as graph:
        body = graph.get(REPORT, params={"$filter": "isMfaRegistered eq true"}).json()
        pages = [body]
        while "@odata.nextLink" in body:
            assert "%24filter=" in body["@odata.nextLink"] or "$filter=" in body["@odata.nextLink"]
            body = graph.get(body["@odata.nextLink"]).json()
            pages.append(body)
    assert [len(p["value"]) for p in pages] == [100, 100, 50]


def test_permission_quota_and_isolation(demo: Emulator, http_for: HttpFor) -> None:
    with client_with(demo, "contoso", ["UserAuthenticationMethod.Read.All"]) as graph:
        denied = graph.get(REPORT)
        assert denied.status_code == 403
        assert error_of(denied)["code"] == "Authorization_RequestDenied"
    # The reports quota: 5 requests per 10 seconds per app and tenant.
    with client_with(demo, "contoso", ["AuditLog.Read.All"]) as graph:
        statuses = [graph.get(REPORT).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
    assert len(_rows(http_for, "fabrikam")) == 3
    diego = http_for("contoso").get("/users/diego@contoso.com").json()
    assert http_for("fabrikam").get(f"{REPORT}/{diego['id']}").status_code == 404
