"""Delegated sign-in against the in-process emulator: the device code flow, the authorization
code flow with PKCE, refresh tokens, and the tokens they bring (docs/emulator.md, "Delegated
sign-in"). Every error answer is Entra's (``error``, ``error_codes``)."""

from __future__ import annotations

import html.parser
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.core.delegated import AZURE_CLI_GRAPH_SCOPES, GRAPH_CLI_TOOLS_APP_ID
from ctsync.emulator.core.directory_roles import ROLE_TEMPLATES, USER_ROLE_ID
from ctsync.emulator.services.applications import NON_GALLERY_TEMPLATE_ID, new_instance
from tests.emulator.signin_helpers import (
    AZURE_CLI_APP_ID,
    GRAPH_DEFAULT,
    approve,
    claims,
    client,
    device_code,
    graph,
    location_params,
    pkce,
    poll,
    sign_in,
)

ADMIN = "lee@contoso.com"  # Global Administrator in the demo
REDIRECT = "http://localhost:8400"


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario="demo")


@pytest.fixture
def http(emu: Emulator) -> httpx.Client:
    return client(emu)


def _error(response: httpx.Response) -> tuple[int, str, list[int]]:
    body = response.json()
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    return response.status_code, body["error"], body["error_codes"]


# -- device code ------------------------------------------------------------------------------


def test_devicecode_answers_as_entra_does(http: httpx.Client) -> None:
    code = device_code(http, "contoso")

    assert set(code) == {
        "user_code",
        "device_code",
        "verification_uri",
        "expires_in",
        "interval",
        "message",
    }
    assert code["verification_uri"] == "https://login.emulator.test/devicelogin"
    assert (code["expires_in"], code["interval"]) == (900, 5)
    assert len(code["user_code"]) == 9
    assert code["user_code"].isupper() or code["user_code"].isalnum()
    assert code["message"] == (
        "To sign in, use a web browser to open the page https://login.emulator.test/devicelogin "
        f"and enter the code {code['user_code']} to authenticate."
    )


def test_device_code_polls_pending_slow_down_then_tokens_once_approved(
    emu: Emulator, http: httpx.Client
) -> None:
    code = device_code(http, "contoso")
    assert _error(poll(http, "contoso", code)) == (400, "authorization_pending", [70016])
    # Polled again before the interval passed (emulator clock): slow down, and the interval
    # grows by five seconds.
    emu.clock.advance(4)
    assert _error(poll(http, "contoso", code)) == (400, "slow_down", [9999001])
    emu.clock.advance(9)
    assert _error(poll(http, "contoso", code)) == (400, "slow_down", [9999001])
    emu.clock.advance(15)
    assert _error(poll(http, "contoso", code)) == (400, "authorization_pending", [70016])

    pending = http.get("/_emulator/signin/pending").json()["device_codes"]
    assert [p["user_code"] for p in pending] == [code["user_code"]]
    assert pending[0]["client_name"] == "Microsoft Azure CLI"
    assert pending[0]["polls"] == 4
    approved = approve(http, code["user_code"], ADMIN)
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    assert approved.json()["user"]["userPrincipalName"] == ADMIN

    emu.clock.advance(20)
    response = poll(http, "contoso", code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
        "refresh_token",
        "id_token",
        "client_info",
    }
    assert response.headers["cache-control"].startswith("no-store")
    # The code is redeemed once.
    assert _error(poll(http, "contoso", code)) == (400, "bad_verification_code", [70018])
    assert http.get("/_emulator/signin/pending").json()["device_codes"] == []


def test_delegated_access_token_carries_entras_claims(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    admin = next(u for u in tenant.users.values() if u["userPrincipalName"] == ADMIN)

    body = sign_in(emu, "contoso", ADMIN)
    token = claims(body["access_token"])

    assert token["aud"] == "https://graph.microsoft.com"
    assert token["iss"] == f"https://sts.windows.net/{tenant.id}/"
    assert token["tid"] == tenant.id
    assert token["oid"] == admin["id"]
    assert token["upn"] == token["unique_name"] == ADMIN
    assert token["name"] == "Lee Gu"
    assert (token["given_name"], token["family_name"]) == ("Lee", "Gu")
    assert token["idtyp"] == "user"
    assert token["appid"] == AZURE_CLI_APP_ID
    assert token["appidacr"] == "0"
    assert token["ver"] == "1.0"
    assert "roles" not in token
    assert token["wids"] == [ROLE_TEMPLATES["Global Administrator"], USER_ROLE_ID]
    assert set(token["scp"].split()) == AZURE_CLI_GRAPH_SCOPES | {"openid", "profile"}
    assert token["sub"] != token["oid"]
    assert token["exp"] - token["iat"] == body["expires_in"] == 3600
    # The response's scope names the resource's scopes and the .default asked for.
    assert "https://graph.microsoft.com/.default" in body["scope"].split()
    assert "https://graph.microsoft.com/User.Read.All" in body["scope"].split()


def test_id_token_and_client_info_are_what_msal_keys_its_cache_by(emu: Emulator) -> None:
    import base64
    import json

    tenant = emu.tenant("contoso")
    body = sign_in(emu, "contoso", ADMIN)
    id_token = claims(body["id_token"])
    assert id_token["aud"] == AZURE_CLI_APP_ID
    assert id_token["iss"] == f"https://login.emulator.test/{tenant.id}/v2.0"
    assert id_token["preferred_username"] == ADMIN
    assert id_token["ver"] == "2.0"
    assert id_token["tid"] == tenant.id
    padded = body["client_info"] + "=" * (-len(body["client_info"]) % 4)
    info = json.loads(base64.urlsafe_b64decode(padded))
    assert info == {"uid": id_token["oid"], "utid": tenant.id}


def test_device_code_expires_after_fifteen_minutes(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(http, "contoso")
    emu.clock.advance(900)
    assert approve(http, code["user_code"], ADMIN).status_code == 400
    assert _error(poll(http, "contoso", code)) == (400, "expired_token", [70019])


def test_declined_code_answers_authorization_declined(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(http, "contoso")
    declined = http.post("/_emulator/signin/decline", json={"user_code": code["user_code"]})
    assert declined.status_code == 200
    assert declined.json()["state"] == "declined"
    # Once decided, a code cannot be decided again (Entra's AADSTS90120).
    again = approve(http, code["user_code"], ADMIN)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "AADSTS90120"
    assert _error(poll(http, "contoso", code)) == (400, "authorization_declined", [65004])
    assert _error(poll(http, "contoso", code)) == (400, "bad_verification_code", [70018])


def test_unknown_device_code_is_bad_verification_code(http: httpx.Client) -> None:
    fake = {"device_code": "not-a-code"}
    assert _error(poll(http, "contoso", fake)) == (400, "bad_verification_code", [70018])


def test_approve_refuses_what_entra_refuses(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(http, "contoso")
    assert approve(http, "NOSUCHCOD", ADMIN).status_code == 404
    assert approve(http, code["user_code"], "nobody@contoso.com").status_code == 404
    # A user of another tenant cannot approve a Contoso code.
    assert approve(http, code["user_code"], "miriam@fabrikam.com").status_code == 404
    disabled = approve(http, code["user_code"], "patti@contoso.com")
    assert disabled.status_code == 400
    assert disabled.json()["error"]["code"] == "AADSTS50057"
    bad = http.post("/_emulator/signin/approve", json={"user": ADMIN})
    assert bad.status_code == 400


def test_device_login_page_approves_as_the_user_named(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(http, "contoso")
    page = http.get("/devicelogin")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    wrong = http.post("/devicelogin", data={"otc": "ZZZZZZZZZ", "login": ADMIN})
    assert "AADSTS70018" in wrong.text
    done = http.post("/devicelogin", data={"otc": code["user_code"].lower(), "login": ADMIN})
    assert "You have signed in to the Microsoft Azure CLI application" in done.text
    assert poll(http, "contoso", code).status_code == 200


def test_a_queued_sign_in_approves_the_next_device_code_at_once(http: httpx.Client) -> None:
    queued = http.post("/_emulator/signin/next", json={"user": ADMIN})
    assert queued.status_code == 200, queued.text
    code = device_code(http, "contoso")
    # The first poll already has the token: no interval to wait.
    first = poll(http, "contoso", code)
    assert first.status_code == 200, first.text
    assert claims(first.json()["access_token"])["upn"] == ADMIN
    assert http.get("/_emulator/signin/pending").json() == {"device_codes": [], "next": []}
    # The queue is used up: the next code waits for an approval.
    again = device_code(http, "contoso")
    assert _error(poll(http, "contoso", again)) == (400, "authorization_pending", [70016])


def test_a_queued_sign_in_entra_refuses_ends_the_device_code_flow(http: httpx.Client) -> None:
    assert http.post("/_emulator/signin/next", json={"user": "patti@contoso.com"}).is_success
    code = device_code(http, "contoso")
    assert _error(poll(http, "contoso", code)) == (400, "invalid_grant", [50057])
    # The code is used up.
    assert _error(poll(http, "contoso", code)) == (400, "bad_verification_code", [70018])
    # An ordinary user may not consent to what only an administrator can grant.
    assert http.post("/_emulator/signin/next", json={"user": "megan@contoso.com"}).is_success
    admin_only = "https://graph.microsoft.com/Application.ReadWrite.All openid offline_access"
    code = device_code(http, "contoso", GRAPH_CLI_TOOLS_APP_ID, admin_only)
    status, error, codes = _error(poll(http, "contoso", code, GRAPH_CLI_TOOLS_APP_ID))
    assert (status, error) == (400, "invalid_grant")
    assert codes[0] in (65001, 90094)


def test_a_client_without_public_client_flows_must_authenticate(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    app, sp = new_instance(emu.ids, tenant, NON_GALLERY_TEMPLATE_ID, "tool", now=emu.clock.now())
    tenant.applications[app["id"]] = app
    tenant.service_principals[sp["id"]] = sp
    with client(emu) as http:
        code = device_code(http, "contoso", app["appId"])
        assert _error(poll(http, "contoso", code, app["appId"])) == (
            401,
            "invalid_client",
            [7000218],
        )
        app["isFallbackPublicClient"] = True
        assert _error(poll(http, "contoso", code, app["appId"]))[1] == "authorization_pending"
        # A public client presents no credential.
        response = http.post(
            "/contoso/oauth2/v2.0/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "client_id": app["appId"],
                "client_secret": "x",
                "device_code": code["device_code"],
            },
        )
        assert _error(response) == (401, "invalid_client", [700025])


def test_unknown_client_and_tenant(http: httpx.Client) -> None:
    response = http.post(
        "/contoso/oauth2/v2.0/devicecode",
        data={"client_id": "00000000-0000-0000-0000-000000000001", "scope": GRAPH_DEFAULT},
    )
    assert _error(response) == (400, "unauthorized_client", [700016])
    response = http.post(
        "/nowhere/oauth2/v2.0/devicecode", data={"client_id": AZURE_CLI_APP_ID, "scope": "x"}
    )
    assert _error(response)[2] == [90002]
    response = http.post("/contoso/oauth2/v2.0/devicecode", data={"client_id": AZURE_CLI_APP_ID})
    assert _error(response) == (400, "invalid_request", [900144])
    assert _error(http.get("/contoso/oauth2/v2.0/devicecode"))[2] == [900561]


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        (
            "https://graph.microsoft.com/User.Read https://management.azure.com/.default",
            "invalid_resource",
            500011,
        ),
        (
            "https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read",
            "invalid_scope",
            70011,
        ),
    ],
)
def test_scopes_entra_refuses(http: httpx.Client, scope: str, error: str, code: int) -> None:
    response = http.post(
        "/contoso/oauth2/v2.0/devicecode", data={"client_id": AZURE_CLI_APP_ID, "scope": scope}
    )
    assert _error(response) == (400, error, [code])


def test_azure_cli_gets_only_its_preauthorized_scopes(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(
        http, "contoso", scope="https://graph.microsoft.com/Policy.ReadWrite.CrossTenantAccess"
    )
    refused = approve(http, code["user_code"], ADMIN)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "AADSTS65002"


# -- consent (Microsoft Graph Command Line Tools, registered apps) ------------------------------

CTS_SCOPES = (
    "https://graph.microsoft.com/Policy.ReadWrite.CrossTenantAccess "
    "https://graph.microsoft.com/Policy.Read.All offline_access openid profile"
)


def test_an_admin_consents_for_themselves_and_the_grant_shapes_scp(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    body = sign_in(emu, "contoso", ADMIN, client_id=GRAPH_CLI_TOOLS_APP_ID, scope=CTS_SCOPES)
    token = claims(body["access_token"])
    assert set(token["scp"].split()) == {
        "Policy.ReadWrite.CrossTenantAccess",
        "Policy.Read.All",
        "openid",
        "profile",
    }
    [grant] = tenant.oauth2_permission_grants.values()
    assert grant["consentType"] == "Principal"
    assert grant["principalId"] == token["oid"]
    # The client's service principal appeared in the tenant with its first consent.
    assert grant["clientId"] in tenant.microsoft_service_principals


def test_a_user_without_an_admin_role_cannot_consent_to_admin_scopes(
    emu: Emulator, http: httpx.Client
) -> None:
    code = device_code(http, "contoso", GRAPH_CLI_TOOLS_APP_ID, CTS_SCOPES)
    refused = approve(http, code["user_code"], "adele@contoso.com")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "AADSTS90094"
    # ...until an admin consents for the organization.
    sign_in(
        emu,
        "contoso",
        ADMIN,
        client_id=GRAPH_CLI_TOOLS_APP_ID,
        scope=CTS_SCOPES,
        consent="organization",
    )
    assert approve(http, code["user_code"], "adele@contoso.com").status_code == 200
    token = claims(poll(http, "contoso", code, GRAPH_CLI_TOOLS_APP_ID).json()["access_token"])
    assert "Policy.ReadWrite.CrossTenantAccess" in token["scp"].split()


def test_without_consent_there_is_no_token(emu: Emulator, http: httpx.Client) -> None:
    code = device_code(http, "contoso", GRAPH_CLI_TOOLS_APP_ID, CTS_SCOPES)
    # Declining the consent prompt: the sign-in cannot finish.
    refused = approve(http, code["user_code"], ADMIN, consent="none")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "AADSTS65001"
    # Consent given, then revoked before the client polls: the token endpoint refuses.
    assert approve(http, code["user_code"], ADMIN).status_code == 200
    emu.tenant("contoso").oauth2_permission_grants.clear()
    assert _error(poll(http, "contoso", code, GRAPH_CLI_TOOLS_APP_ID)) == (
        400,
        "invalid_grant",
        [65001],
    )


# -- authorization code with PKCE --------------------------------------------------------------


def _authorize(http: httpx.Client, challenge: str, **extra: str) -> httpx.Response:
    params = {
        "client_id": AZURE_CLI_APP_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": GRAPH_DEFAULT,
        "state": "s-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n-456",
    }
    params.update(extra)
    return http.get("/contoso/oauth2/v2.0/authorize", params=params)


def _redeem(http: httpx.Client, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": AZURE_CLI_APP_ID,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "scope": GRAPH_DEFAULT,
    }
    form.update(extra)
    return http.post("/contoso/oauth2/v2.0/token", data=form)


def _queue(http: httpx.Client, user: str = ADMIN, **extra: Any) -> None:
    queued = http.post("/_emulator/signin/next", json={"user": user, **extra})
    assert queued.status_code == 200, queued.text


def test_authorize_redirects_to_the_loopback_with_code_and_state(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    _queue(http)
    params = location_params(_authorize(http, challenge))
    assert params["state"] == "s-123"
    assert http.get("/_emulator/signin/pending").json()["next"] == []

    response = _redeem(http, params["code"], verifier)
    assert response.status_code == 200
    body = response.json()
    assert claims(body["id_token"])["nonce"] == "n-456"
    assert claims(body["access_token"])["upn"] == ADMIN
    # A code is redeemed once.
    assert _error(_redeem(http, params["code"], verifier)) == (400, "invalid_grant", [54005])


def test_pkce_verifier_must_match_the_challenge(http: httpx.Client) -> None:
    _, challenge = pkce()
    _queue(http)
    params = location_params(_authorize(http, challenge))
    other, _ = pkce()
    assert _error(_redeem(http, params["code"], other)) == (400, "invalid_grant", [501481])


def test_plain_challenge_and_fragment_mode(http: httpx.Client) -> None:
    verifier = "v" * 50
    _queue(http)
    response = _authorize(http, verifier, code_challenge_method="plain", response_mode="fragment")
    assert "#" in response.headers["location"]
    code = location_params(response)["code"]
    assert _redeem(http, code, verifier).status_code == 200


class _Form(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def test_form_post_answers_a_self_posting_form(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    _queue(http)
    page = _authorize(http, challenge, response_mode="form_post")
    assert page.status_code == 200
    form = _Form()
    form.feed(page.text)
    assert form.action == REDIRECT
    assert form.fields["state"] == "s-123"
    assert _redeem(http, form.fields["code"], verifier).status_code == 200


def test_without_a_queued_sign_in_authorize_shows_a_sign_in_form(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    page = _authorize(http, challenge, login_hint=ADMIN)
    assert page.status_code == 200
    form = _Form()
    form.feed(page.text)
    assert form.fields["login"] == ADMIN
    unknown = http.post(form.action, data={**form.fields, "login": "nobody@contoso.com"})
    assert "AADSTS50034" in unknown.text
    signed_in = http.post(form.action, data=form.fields)
    params = location_params(signed_in)
    assert _redeem(http, params["code"], verifier).status_code == 200
    cancelled = http.post(form.action, data={**form.fields, "decline": "1"})
    assert location_params(cancelled)["error"] == "access_denied"


def test_a_declined_sign_in_redirects_access_denied(http: httpx.Client) -> None:
    _, challenge = pkce()
    _queue(http, decline=True)
    params = location_params(_authorize(http, challenge))
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004:")
    assert params["state"] == "s-123"


def test_authorize_errors_before_the_redirect_uri_is_trusted_are_pages(
    http: httpx.Client,
) -> None:
    _, challenge = pkce()
    wrong = _authorize(http, challenge, redirect_uri="https://evil.example/callback")
    assert wrong.status_code == 400
    assert "AADSTS50011" in wrong.text
    assert "location" not in wrong.headers
    unknown = _authorize(http, challenge, client_id="00000000-0000-0000-0000-000000000001")
    assert "AADSTS700016" in unknown.text


@pytest.mark.parametrize(
    ("extra", "error", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type", 70005),
        ({"code_challenge_method": "S512"}, "invalid_request", 90100),
        ({"prompt": "none"}, "login_required", 50058),
        (
            {"scope": "https://graph.microsoft.com/User.Read https://x.example/.default"},
            "invalid_resource",
            500011,
        ),
    ],
)
def test_authorize_errors_go_to_the_redirect_uri(
    http: httpx.Client, extra: dict[str, str], error: str, code: int
) -> None:
    _, challenge = pkce()
    params = location_params(_authorize(http, challenge, **extra))
    assert params["error"] == error
    assert params["error_description"].startswith(f"AADSTS{code}:")


def test_authorization_code_expires_after_ten_minutes(emu: Emulator, http: httpx.Client) -> None:
    verifier, challenge = pkce()
    _queue(http)
    code = location_params(_authorize(http, challenge))["code"]
    emu.clock.advance(600)
    assert _error(_redeem(http, code, verifier)) == (400, "invalid_grant", [70008])


def test_a_web_redirect_uri_makes_a_confidential_redemption(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    app, sp = new_instance(emu.ids, tenant, NON_GALLERY_TEMPLATE_ID, "web", now=emu.clock.now())
    app["web"] = {**(app.get("web") or {}), "redirectUris": ["https://app.contoso.com/auth"]}
    tenant.applications[app["id"]] = app
    tenant.service_principals[sp["id"]] = sp
    with client(emu) as http:
        _verifier, challenge = pkce()
        _queue(http)
        code = location_params(
            _authorize(
                http,
                challenge,
                client_id=app["appId"],
                redirect_uri="https://app.contoso.com/auth",
                scope="https://graph.microsoft.com/.default openid",
            )
        )
        assert "code" not in code  # nothing consented for this app yet
        assert code["error"] == "invalid_grant"
        assert code["error_description"].startswith("AADSTS65001:")


# -- refresh tokens ---------------------------------------------------------------------------


def _refresh(http: httpx.Client, token: str, client_id: str = AZURE_CLI_APP_ID) -> httpx.Response:
    return http.post(
        "/contoso/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": token,
            "scope": GRAPH_DEFAULT,
        },
    )


def test_refresh_answers_new_tokens_and_a_new_refresh_token(emu: Emulator) -> None:
    first = sign_in(emu, "contoso", ADMIN)
    with client(emu) as http:
        emu.clock.advance(3600)
        renewed = _refresh(http, first["refresh_token"])
        assert renewed.status_code == 200
        body = renewed.json()
        assert body["refresh_token"] != first["refresh_token"]
        token = claims(body["access_token"])
        assert token["oid"] == claims(first["access_token"])["oid"]
        assert token["sid"] == claims(first["access_token"])["sid"]
        with graph(emu, body["access_token"]) as g:
            assert g.get("/users?$top=1").status_code == 200
        # Microsoft does not revoke the old refresh token when it is used.
        assert _refresh(http, first["refresh_token"]).status_code == 200


def test_refresh_tokens_die_with_the_users_sessions(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    first = sign_in(emu, "contoso", "adele@contoso.com")
    admin = sign_in(emu, "contoso", ADMIN, scope=GRAPH_DEFAULT)
    adele = next(u for u in tenant.users.values() if u["mailNickname"] == "adele")
    emu.clock.advance(60)
    with graph(emu, admin["access_token"]) as g:
        disabled = g.patch(f"/users/{adele['id']}", json={"accountEnabled": False})
        assert disabled.status_code == 204
    with client(emu) as http:
        assert _error(_refresh(http, first["refresh_token"])) == (400, "invalid_grant", [50057])
        emu.clock.advance(60)
        with graph(emu, admin["access_token"]) as g:
            assert (
                g.patch(f"/users/{adele['id']}", json={"accountEnabled": True}).status_code == 204
            )
        # Re-enabled, the account signs in again, but the old refresh token stays revoked.
        assert _error(_refresh(http, first["refresh_token"])) == (400, "invalid_grant", [50173])
        emu.clock.advance(60)
        again = sign_in(emu, "contoso", "adele@contoso.com")
        assert _refresh(http, again["refresh_token"]).status_code == 200


def test_refresh_token_lifetime_and_binding(emu: Emulator) -> None:
    first = sign_in(emu, "contoso", ADMIN)
    with client(emu) as http:
        assert _error(_refresh(http, "garbage")) == (400, "invalid_grant", [9002313])
        other = _refresh(http, first["refresh_token"], GRAPH_CLI_TOOLS_APP_ID)
        assert _error(other) == (400, "invalid_grant", [70000])
        emu.clock.advance(90 * 24 * 3600)
        assert _error(_refresh(http, first["refresh_token"])) == (400, "invalid_grant", [700082])


def test_without_offline_access_there_is_no_refresh_token(emu: Emulator) -> None:
    body = sign_in(emu, "contoso", ADMIN, scope="https://graph.microsoft.com/.default")
    assert "refresh_token" not in body
    assert "id_token" not in body


def test_delegated_tokens_are_refused_once_expired(emu: Emulator) -> None:
    body = sign_in(emu, "contoso", ADMIN)
    emu.clock.advance(3600)
    with graph(emu, body["access_token"]) as g:
        response = g.get("/users")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
