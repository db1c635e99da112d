"""Users' authentication methods, phone methods and SMS sign-in (reference §5.1, §10.19)."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import client_with, error_of

MOBILE = "3179e48a-750b-4051-897c-87b9720928f7"
ALTERNATE_MOBILE = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE = "e37fc753-ff3b-4958-9484-eaa9425c82bc"
PASSWORD = "28c10230-6103-485e-b985-444c60001490"
MISSING_USER = "11111111-2222-4333-8444-555555555555"


def _methods(http_for: HttpFor, user: str, tenant: str = "contoso") -> list[dict[str, Any]]:
    response = http_for(tenant).get(f"/users/{user}/authentication/methods")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "/authentication/methods" in body["@odata.context"]
    methods: list[dict[str, Any]] = body["value"]
    for method in methods:
        assert method["@odata.type"].startswith("#microsoft.graph.")
        assert_conforms("authenticationMethod", method)
    return methods


def _types(methods: list[dict[str, Any]]) -> list[str]:
    return [m["@odata.type"].removeprefix("#microsoft.graph.") for m in methods]


def _sms_state(demo: Emulator, upn: str) -> str:
    tenant = demo.tenant("contoso")
    [uid] = [u for u, user in tenant.users.items() if user["userPrincipalName"] == upn]
    [phone] = [m for m in tenant.auth_methods[uid] if m["id"] == MOBILE]
    state: str = phone["smsSignInState"]
    return state


def test_methods_are_typed_with_the_fixed_phone_id(http_for: HttpFor) -> None:
    isaiah = _methods(http_for, "isaiah@contoso.com")
    assert _types(isaiah) == ["passwordAuthenticationMethod", "phoneAuthenticationMethod"]
    password, phone = isaiah
    assert password["id"] == PASSWORD
    assert password["password"] is None
    assert phone["id"] == MOBILE
    assert (phone["phoneType"], phone["smsSignInState"]) == ("mobile", "ready")
    assert phone["phoneNumber"].startswith("+1 ")


@pytest.mark.parametrize(
    ("upn", "expected"),
    [
        ("adele@contoso.com", ["microsoftAuthenticatorAuthenticationMethod"]),
        (
            "alex@contoso.com",
            ["microsoftAuthenticatorAuthenticationMethod", "fido2AuthenticationMethod"],
        ),
        (
            "lee@contoso.com",
            [
                "microsoftAuthenticatorAuthenticationMethod",
                "windowsHelloForBusinessAuthenticationMethod",
            ],
        ),
        ("grady@contoso.com", ["softwareOathAuthenticationMethod"]),
        ("diego@contoso.com", []),
        ("lynne@contoso.com", ["phoneAuthenticationMethod"]),
    ],
)
def test_each_demo_user_lists_their_methods(
    http_for: HttpFor, upn: str, expected: list[str]
) -> None:
    methods = _methods(http_for, upn)
    assert _types(methods) == ["passwordAuthenticationMethod", *expected]


def test_users_by_object_id_and_one_method_by_id(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    adele = graph.get("/users/adele@contoso.com").json()
    by_id = _methods(http_for, adele["id"])
    authenticator = by_id[1]
    one = graph.get(f"/users/{adele['id']}/authentication/methods/{authenticator['id']}")
    assert one.status_code == 200
    body = one.json()
    assert body["@odata.context"].endswith("/authentication/methods/$entity")
    assert body["@odata.type"] == "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"
    assert_conforms("authenticationMethod", body)
    missing = graph.get(f"/users/{adele['id']}/authentication/methods/{MOBILE}")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "query",
    [{"$filter": "id eq 'x'"}, {"$select": "id"}, {"$top": "1"}, {"$count": "true"}],
)
@pytest.mark.parametrize("tail", ["methods", "phoneMethods", f"phoneMethods/{MOBILE}"])
def test_no_odata_query_options(http_for: HttpFor, query: dict[str, str], tail: str) -> None:
    response = http_for("contoso").get(
        f"/users/isaiah@contoso.com/authentication/{tail}", params=query
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert next(iter(query)) in error["message"]


def test_unknown_users_are_404(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    for tail in ("methods", "phoneMethods"):
        response = graph.get(f"/users/{MISSING_USER}/authentication/{tail}")
        assert response.status_code == 404
        assert error_of(response)["code"] == "Request_ResourceNotFound"
    disable = graph.post(
        f"/users/nobody@contoso.com/authentication/phoneMethods/{MOBILE}/disableSmsSignIn"
    )
    assert disable.status_code == 404


def test_phone_methods(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    listed = graph.get("/users/isaiah@contoso.com/authentication/phoneMethods")
    assert listed.status_code == 200
    [phone] = listed.json()["value"]
    assert phone["id"] == MOBILE
    assert_conforms("phoneAuthenticationMethod", phone)
    one = graph.get(f"/users/isaiah@contoso.com/authentication/phoneMethods/{MOBILE}").json()
    assert one["smsSignInState"] == "ready"
    assert_conforms("phoneAuthenticationMethod", one)
    assert graph.get("/users/diego@contoso.com/authentication/phoneMethods").json()["value"] == []
    for bad in (MOBILE, OFFICE, "not-a-method"):
        response = graph.get(f"/users/diego@contoso.com/authentication/phoneMethods/{bad}")
        assert response.status_code == 404, bad


def test_disable_sms_sign_in_flips_ready_to_not_enabled(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    url = f"/users/isaiah@contoso.com/authentication/phoneMethods/{MOBILE}/disableSmsSignIn"
    response = graph.post(url)
    assert response.status_code == 204
    assert response.content == b""
    assert _sms_state(demo, "isaiah@contoso.com") == "notEnabled"
    [_, phone] = _methods(http_for, "isaiah@contoso.com")
    assert phone["smsSignInState"] == "notEnabled"
    # The number stays registered (still a second factor); a retry changes nothing.
    assert phone["phoneNumber"]
    assert graph.post(url).status_code == 204
    assert _sms_state(demo, "isaiah@contoso.com") == "notEnabled"


def test_disable_sms_sign_in_refusals(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    # No mobile phone method at all.
    diego = graph.post(
        f"/users/diego@contoso.com/authentication/phoneMethods/{MOBILE}/disableSmsSignIn"
    )
    assert diego.status_code == 404
    # Not one of the three phone method ids.
    other = graph.post(
        f"/users/isaiah@contoso.com/authentication/phoneMethods/{PASSWORD}/disableSmsSignIn"
    )
    assert other.status_code == 404
    # An office phone exists but SMS sign-in is for the mobile number only.
    tenant = demo.tenant("contoso")
    [lynne] = [u for u, user in tenant.users.items() if user["mailNickname"] == "lynne"]
    tenant.auth_methods[lynne].append(
        {
            "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
            "id": OFFICE,
            "phoneNumber": "+1 4255550100",
            "phoneType": "office",
            "smsSignInState": "notSupported",
        }
    )
    office = graph.post(f"/users/{lynne}/authentication/phoneMethods/{OFFICE}/disableSmsSignIn")
    assert office.status_code == 400
    assert error_of(office)["code"] == "BadRequest"
    alternate = graph.post(
        f"/users/{lynne}/authentication/phoneMethods/{ALTERNATE_MOBILE}/disableSmsSignIn"
    )
    assert alternate.status_code == 404


def test_enable_sms_sign_in_needs_a_number_no_one_else_signs_in_with(
    demo: Emulator, http_for: HttpFor
) -> None:
    graph = http_for("contoso")
    base = f"/authentication/phoneMethods/{MOBILE}"
    # The demo gives Lynne and Isaiah the same number; Isaiah signs in with it.
    taken = graph.post(f"/users/lynne@contoso.com{base}/enableSmsSignIn")
    assert taken.status_code == 400
    assert "phoneNumberNotUnique" in error_of(taken)["message"]
    assert graph.post(f"/users/isaiah@contoso.com{base}/disableSmsSignIn").status_code == 204
    assert graph.post(f"/users/lynne@contoso.com{base}/enableSmsSignIn").status_code == 204
    assert _sms_state(demo, "lynne@contoso.com") == "ready"
    assert graph.post(f"/users/lynne@contoso.com{base}/enableSmsSignIn").status_code == 204


def test_permissions(demo: Emulator) -> None:
    phone_url = f"/users/isaiah@contoso.com/authentication/phoneMethods/{MOBILE}"
    with client_with(demo, "contoso", ["UserAuthenticationMethod.Read.All"]) as reader:
        assert reader.get("/users/isaiah@contoso.com/authentication/methods").status_code == 200
        assert reader.get(phone_url).status_code == 200
        denied = reader.post(phone_url + "/disableSmsSignIn")
        assert denied.status_code == 403
        assert error_of(denied)["code"] == "Authorization_RequestDenied"
    with client_with(demo, "contoso", ["UserAuthMethod-Phone.ReadWrite.All"]) as phone_only:
        assert phone_only.get(phone_url).status_code == 200
        assert phone_only.get("/users/isaiah@contoso.com/authentication/methods").status_code == 403
        assert phone_only.post(phone_url + "/disableSmsSignIn").status_code == 204
    with client_with(demo, "contoso", ["User.Read.All", "Directory.Read.All"]) as directory:
        assert directory.get("/users/isaiah@contoso.com/authentication/methods").status_code == 403
        assert directory.get(phone_url).status_code == 403


def test_tenants_see_only_their_own_users_methods(http_for: HttpFor) -> None:
    isaiah = http_for("contoso").get("/users/isaiah@contoso.com").json()
    fabrikam = http_for("fabrikam")
    assert fabrikam.get(f"/users/{isaiah['id']}/authentication/methods").status_code == 404
    refused = fabrikam.post(
        f"/users/{isaiah['id']}/authentication/phoneMethods/{MOBILE}/disableSmsSignIn"
    )
    assert refused.status_code == 404
    christie = _methods(http_for, "christie@fabrikam.com", tenant="fabrikam")
    assert christie[1]["smsSignInState"] == "notEnabled"
