"""``/oauth2PermissionGrants``: delegated consent as Graph keeps it, and what it does to the next
delegated token's ``scp``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential
from ctsync.emulator.core.first_party import microsoft_graph_service_principal
from ctsync.emulator.services.applications import NON_GALLERY_TEMPLATE_ID, new_instance
from tests.conformance import assert_conforms
from tests.emulator.signin_helpers import claims, client, graph, sign_in

ROOT = "/oauth2PermissionGrants"
ADMIN = "admin@contoso.onmicrosoft.com"

SCENARIO: dict[str, Any] = {
    "tenants": [
        {
            "name": "contoso",
            "clients": [
                {
                    "display_name": "consent-admin",
                    "permissions": [
                        "DelegatedPermissionGrant.ReadWrite.All",
                        "Application.Read.All",
                    ],
                }
            ],
            "users": [
                {"alias": "admin", "roles": ["Global Administrator"]},
                {"alias": "ava"},
            ],
        }
    ]
}


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario=SCENARIO)


@pytest.fixture
def app_only(emu: Emulator) -> httpx.Client:
    token = EmulatorCredential(emu, "contoso").get_token("https://graph.microsoft.com/.default")
    return graph(emu, token.token)


@pytest.fixture
def public_app(emu: Emulator) -> dict[str, Any]:
    """A registered app that allows public client flows, with its service principal."""
    tenant = emu.tenant("contoso")
    app, sp = new_instance(emu.ids, tenant, NON_GALLERY_TEMPLATE_ID, "cli", now=emu.clock.now())
    app["isFallbackPublicClient"] = True
    tenant.applications[app["id"]] = app
    tenant.service_principals[sp["id"]] = sp
    return {"appId": app["appId"], "sp": sp["id"]}


def _grant(emu: Emulator, public_app: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "clientId": public_app["sp"],
        "consentType": "AllPrincipals",
        "resourceId": microsoft_graph_service_principal(emu.tenant("contoso"))["id"],
        "scope": "User.Read.All Policy.Read.All",
    }
    body.update(overrides)
    return body


def test_admin_consent_shapes_the_next_delegated_token(
    emu: Emulator, app_only: httpx.Client, public_app: dict[str, Any]
) -> None:
    created = app_only.post(ROOT, json=_grant(emu, public_app))
    assert created.status_code == 201
    body = created.json()
    assert body["@odata.context"].endswith("$metadata#oauth2PermissionGrants/$entity")
    assert_conforms("oAuth2PermissionGrant", body)
    assert body["consentType"] == "AllPrincipals"
    assert body["principalId"] is None

    token = sign_in(emu, "contoso", "ava@contoso.onmicrosoft.com", client_id=public_app["appId"])
    assert set(claims(token["access_token"])["scp"].split()) == {
        "User.Read.All",
        "Policy.Read.All",
        "openid",
        "profile",
    }

    assert (
        app_only.patch(f"{ROOT}/{body['id']}", json={"scope": "User.Read.All"}).status_code == 204
    )
    token = sign_in(emu, "contoso", "ava@contoso.onmicrosoft.com", client_id=public_app["appId"])
    assert claims(token["access_token"])["scp"].split()[0] == "User.Read.All"
    assert "Policy.Read.All" not in claims(token["access_token"])["scp"]

    assert app_only.delete(f"{ROOT}/{body['id']}").status_code == 204
    assert app_only.get(f"{ROOT}/{body['id']}").status_code == 404


def test_list_get_and_filter(
    emu: Emulator, app_only: httpx.Client, public_app: dict[str, Any]
) -> None:
    ava = next(u for u in emu.tenant("contoso").users.values() if u["mailNickname"] == "ava")
    org = app_only.post(ROOT, json=_grant(emu, public_app)).json()
    mine = app_only.post(
        ROOT,
        json=_grant(
            emu, public_app, consentType="Principal", principalId=ava["id"], scope="User.Read"
        ),
    ).json()
    listed = app_only.get(ROOT)
    assert listed.status_code == 200
    assert listed.json()["@odata.context"].endswith("$metadata#oauth2PermissionGrants")
    for item in listed.json()["value"]:
        assert_conforms("oAuth2PermissionGrant", item)
    assert {g["id"] for g in listed.json()["value"]} == {org["id"], mine["id"]}
    filtered = app_only.get(ROOT, params={"$filter": f"principalId eq '{ava['id']}'"})
    assert [g["id"] for g in filtered.json()["value"]] == [mine["id"]]
    one = app_only.get(f"{ROOT}/{mine['id']}")
    assert one.status_code == 200
    assert_conforms("oAuth2PermissionGrant", one.json())
    assert one.json()["scope"] == "User.Read"


def test_one_grant_per_client_resource_and_principal(
    emu: Emulator, app_only: httpx.Client, public_app: dict[str, Any]
) -> None:
    assert app_only.post(ROOT, json=_grant(emu, public_app)).status_code == 201
    again = app_only.post(ROOT, json=_grant(emu, public_app, scope="User.Read"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"


@pytest.mark.parametrize(
    ("overrides", "prop"),
    [
        ({"clientId": "00000000-0000-0000-0000-000000000001"}, "clientId"),
        ({"resourceId": "not-a-guid"}, "resourceId"),
        ({"consentType": "Everyone"}, "consentType"),
        ({"consentType": "Principal"}, "principalId"),
        ({"principalId": "00000000-0000-0000-0000-000000000002"}, "principalId"),
    ],
)
def test_invalid_grants_are_refused(
    emu: Emulator,
    app_only: httpx.Client,
    public_app: dict[str, Any],
    overrides: dict[str, Any],
    prop: str,
) -> None:
    response = app_only.post(ROOT, json=_grant(emu, public_app, **overrides))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"Invalid value specified for property '{prop}' of resource 'OAuth2PermissionGrant'."
    )


def test_bodies_are_checked_against_the_v1_type(
    emu: Emulator, app_only: httpx.Client, public_app: dict[str, Any]
) -> None:
    response = app_only.post(ROOT, json={**_grant(emu, public_app), "expiryTime": "x"})
    assert response.status_code == 400
    assert (
        "does not exist on type 'microsoft.graph.oAuth2PermissionGrant'"
        in (response.json()["error"]["message"])
    )
    grant = app_only.post(ROOT, json=_grant(emu, public_app)).json()
    patched = app_only.patch(f"{ROOT}/{grant['id']}", json={"consentType": "Principal"})
    assert patched.status_code == 400


def test_a_signed_in_administrator_grants_consent_with_the_azure_cli(
    emu: Emulator, public_app: dict[str, Any]
) -> None:
    # The Azure CLI holds DelegatedPermissionGrant.ReadWrite.All; a Global Administrator may
    # write grants.
    token = sign_in(emu, "contoso", "admin@contoso.onmicrosoft.com")
    with graph(emu, token["access_token"]) as g:
        created = g.post(ROOT, json=_grant(emu, public_app))
        assert created.status_code == 201
    # A member without a role may not.
    token = sign_in(emu, "contoso", "ava@contoso.onmicrosoft.com")
    with graph(emu, token["access_token"]) as g:
        assert g.post(ROOT, json=_grant(emu, public_app, scope="User.Read")).status_code == 403
        assert g.get(ROOT).status_code == 403


def test_unconsented_public_app_gets_no_token(emu: Emulator, public_app: dict[str, Any]) -> None:
    with client(emu) as http:
        code = http.post(
            "/contoso/oauth2/v2.0/devicecode",
            data={
                "client_id": public_app["appId"],
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()
        approved = http.post(
            "/_emulator/signin/approve",
            json={"user_code": code["user_code"], "user": "ava@contoso.onmicrosoft.com"},
        )
        assert approved.status_code == 400
        assert approved.json()["error"]["code"] == "AADSTS65001"
