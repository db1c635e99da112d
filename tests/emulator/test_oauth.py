"""The Entra side of the emulator (token endpoint, OpenID metadata, keys), the in-process
transport and credential, and how Graph checks the tokens they produce."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import jwt
import msal
import pytest

from ctsync.emulator import Emulator, FaultProfile, OffsetClock
from ctsync.emulator.core.oauth import OAuthError
from ctsync.emulator.core.tokens import GRAPH_APP_ID
from ctsync.emulator.state import ClientApp, Tenant
from ctsync.emulator.transport import AccessToken, EmulatorCredential, EmulatorTransport

#: Any https origin works in-process; MSAL insists on https.
ORIGIN = "https://login.emulator.test"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario="demo")


@pytest.fixture
def http(emu: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)


def _tenant(emu: Emulator, name: str) -> tuple[Tenant, ClientApp]:
    tenant = emu.tenant(name)
    return tenant, next(iter(tenant.clients.values()))


def _token_request(http: httpx.Client, tenant: str, **form: str) -> httpx.Response:
    return http.post(f"/{tenant}/oauth2/v2.0/token", data=form)


def _form(client: ClientApp, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v}


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- the token endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["id", "domain", "name"])
def test_token_endpoint_issues_graph_token_for_tenant_by_id_domain_or_name(
    emu: Emulator, http: httpx.Client, key: str
) -> None:
    tenant, client = _tenant(emu, "contoso")
    path_key = {"id": tenant.id, "domain": tenant.domain, "name": tenant.name.upper()}[key]

    response = _token_request(http, path_key, **_form(client))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert response.headers["cache-control"] == "no-store, no-cache"
    claims = _claims(body["access_token"])
    assert claims["tid"] == tenant.id
    assert claims["appid"] == client.client_id
    assert claims["aud"] == "https://graph.microsoft.com"
    assert set(claims["roles"]) == set(client.permissions)


def test_token_endpoint_accepts_http_basic_client_auth(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _tenant(emu, "fabrikam")
    response = http.post(
        f"/{tenant.id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        auth=(client.client_id, client.client_secret),
    )
    assert response.status_code == 200, response.text
    assert _claims(response.json()["access_token"])["tid"] == tenant.id


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        (f"{GRAPH_APP_ID}/.default", GRAPH_APP_ID),
        (f"{ORIGIN}/.default", ORIGIN),
        (f"{ORIGIN.upper()}//.default", ORIGIN),
        (f"openid {GRAPH_SCOPE} offline_access", "https://graph.microsoft.com"),
    ],
)
def test_token_audience_follows_the_scope(
    emu: Emulator, http: httpx.Client, scope: str, audience: str
) -> None:
    tenant, client = _tenant(emu, "contoso")
    response = _token_request(http, tenant.id, **_form(client, scope=scope))
    assert response.status_code == 200, response.text
    assert _claims(response.json()["access_token"])["aud"] == audience


@pytest.mark.parametrize(
    ("case", "status", "error", "code"),
    [
        ("unknown tenant", 400, "invalid_request", 90002),
        ("unknown client", 400, "unauthorized_client", 700016),
        ("wrong secret", 401, "invalid_client", 7000215),
        ("no secret", 401, "invalid_client", 7000218),
        ("password grant", 400, "unsupported_grant_type", 70003),
        ("no grant", 400, "invalid_request", 900144),
        ("no scope", 400, "invalid_request", 900144),
        ("scope without .default", 400, "invalid_scope", 1002012),
        ("two resources", 400, "invalid_scope", 70011),
        ("unknown resource", 400, "invalid_resource", 500011),
        ("malformed client assertion", 400, "invalid_request", 50027),
    ],
)
def test_token_endpoint_errors_in_entra_shape(
    emu: Emulator, http: httpx.Client, case: str, *, status: int, error: str, code: int
) -> None:
    tenant, client = _tenant(emu, "contoso")
    tenant_key = tenant.id
    form = _form(client)
    if case == "unknown tenant":
        tenant_key = "nosuchtenant.onmicrosoft.com"
    elif case == "unknown client":
        form["client_id"] = _tenant(emu, "fabrikam")[1].client_id  # exists, but elsewhere
    elif case == "wrong secret":
        form["client_secret"] = client.client_secret + "x"
    elif case == "no secret":
        del form["client_secret"]
    elif case == "password grant":
        form["grant_type"] = "password"
    elif case == "no grant":
        del form["grant_type"]
    elif case == "no scope":
        del form["scope"]
    elif case == "scope without .default":
        form["scope"] = "https://graph.microsoft.com/User.Read.All"
    elif case == "two resources":
        form["scope"] = f"{GRAPH_SCOPE} {ORIGIN}/.default"
    elif case == "unknown resource":
        form["scope"] = "https://management.azure.com/.default"
    elif case == "malformed client assertion":
        del form["client_secret"]
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"

    response = http.post(
        f"/{tenant_key}/oauth2/v2.0/token", data=form, headers={"client-request-id": "corr-1"}
    )

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["error_codes"] == [code]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert GUID.match(body["trace_id"])
    assert body["correlation_id"] == "corr-1"
    assert "access_token" not in body
    assert client.client_secret not in response.text


def test_token_endpoint_only_accepts_post(emu: Emulator, http: httpx.Client) -> None:
    tenant, _ = _tenant(emu, "contoso")
    response = http.get(f"/{tenant.id}/oauth2/v2.0/token")
    assert response.status_code == 400
    assert response.json()["error_codes"] == [900561]


def test_unserved_entra_path_is_a_json_404(http: httpx.Client) -> None:
    response = http.get("/contoso/oauth2/v2.0/logout")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# -- OpenID metadata and keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"]
)
def test_openid_configuration_points_at_the_emulator(
    emu: Emulator, http: httpx.Client, path: str
) -> None:
    tenant, _ = _tenant(emu, "contoso")
    response = http.get(f"/{tenant.domain}/{path}")

    assert response.status_code == 200
    config = response.json()
    base = f"{ORIGIN}/{tenant.id}"
    assert config["issuer"] == f"{base}/v2.0"
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert config["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert config["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert config["tenant_region_scope"]
    assert "client_secret_post" in config["token_endpoint_auth_methods_supported"]


def test_openid_configuration_of_unknown_tenant_is_400_invalid_tenant(http: httpx.Client) -> None:
    response = http.get("/nosuch/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"
    assert response.json()["error_codes"] == [90002]


def test_jwks_verifies_a_minted_token(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _tenant(emu, "contoso")
    config = http.get(f"/{tenant.id}/v2.0/.well-known/openid-configuration").json()
    token = _token_request(http, tenant.id, **_form(client)).json()["access_token"]

    jwks = jwt.PyJWKSet.from_dict(http.get(config["jwks_uri"]).json())
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    # The emulator's frozen clock is not wall time, so PyJWT checks the signature and audience
    # here and the emulator's own expiry check is tested through Graph below.
    claims = jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["tid"] == tenant.id
    assert claims["exp"] - claims["iat"] == 3600

    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key=key, algorithms=["RS256"], options={"verify_aud": False})


def test_msal_acquires_a_token_through_the_transport(emu: Emulator, http: httpx.Client) -> None:
    """MSAL's own discovery and token request, answered in-process (MSAL takes any client
    with requests' ``get``/``post`` shape; httpx has it)."""
    tenant, client = _tenant(emu, "contoso")
    app = msal.ConfidentialClientApplication(
        client.client_id,
        client_credential=client.client_secret,
        authority=f"{ORIGIN}/{tenant.domain}",
        http_client=http,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result.get("error_description")
    assert _claims(result["access_token"])["tid"] == tenant.id

    wrong = msal.ConfidentialClientApplication(
        client.client_id,
        client_credential="not-the-secret",
        authority=f"{ORIGIN}/{tenant.id}",
        http_client=http,
        instance_discovery=False,
    )
    failed = wrong.acquire_token_for_client([GRAPH_SCOPE])
    assert failed["error"] == "invalid_client"
    assert failed["error_codes"] == [7000215]


# -- the transport ----------------------------------------------------------------------------


def _graph(http: httpx.Client, token: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return http.request(kwargs.pop("method", "GET"), f"/v1.0{path}", headers=headers, **kwargs)


def test_async_transport_round_trip(emu: Emulator) -> None:
    tenant, client = _tenant(emu, "contoso")

    async def run() -> tuple[httpx.Response, httpx.Response]:
        transport = EmulatorTransport(emu)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            token = await http.post(f"/{tenant.id}/oauth2/v2.0/token", data=_form(client))
            graph = await http.get(
                "/v1.0/policies/crossTenantAccessPolicy/default",
                headers={
                    "authorization": f"Bearer {token.json()['access_token']}",
                    "client-request-id": "async-1",
                },
            )
            return token, graph

    token, graph = asyncio.run(run())
    assert token.status_code == 200
    assert graph.status_code == 200, graph.text
    assert graph.headers["client-request-id"] == "async-1"
    assert graph.json()["isServiceDefault"] is True


def test_transport_applies_latency_only_through_the_injected_sleep() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile.parse("latency=250ms"))
    credential = EmulatorCredential(emu, "contoso")
    token = credential.get_token(GRAPH_SCOPE).token
    slept: list[float] = []
    awaited: list[float] = []

    async def async_sleep(seconds: float) -> None:
        awaited.append(seconds)

    transport = EmulatorTransport(emu, sleep=slept.append, async_sleep=async_sleep)
    with httpx.Client(transport=transport, base_url=ORIGIN) as http:
        assert _graph(http, token, "/policies/crossTenantAccessPolicy/default").status_code == 200

    async def run() -> int:
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            response = await http.get(
                "/v1.0/policies/crossTenantAccessPolicy/default",
                headers={"authorization": f"Bearer {token}"},
            )
            return response.status_code

    assert asyncio.run(run()) == 200
    assert slept == [pytest.approx(0.25)]
    assert awaited == [pytest.approx(0.25)]
    # Without sleep functions the transport never waits, whatever the profile says.
    with httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN) as http:
        assert _graph(http, token, "/policies/crossTenantAccessPolicy/default").status_code == 200


# -- the credential and Graph's token checks ------------------------------------------------


def test_credential_tokens_are_accepted_by_graph(emu: Emulator, http: httpx.Client) -> None:
    credential = EmulatorCredential(emu, "contoso.onmicrosoft.com")
    access = credential.get_token(GRAPH_SCOPE)

    assert isinstance(access, AccessToken)
    assert access.expires_on == int(emu.clock.now().timestamp()) + 3600
    response = _graph(http, access.token, "/policies/crossTenantAccessPolicy/default")
    assert response.status_code == 200, response.text
    unknown = _graph(http, access.token, "/no/such/thing")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "BadRequest"


def test_credential_audience_follows_the_scope(emu: Emulator, http: httpx.Client) -> None:
    credential = EmulatorCredential(emu, "contoso")
    own_origin = credential.get_token(f"{ORIGIN}/.default").token
    assert _claims(own_origin)["aud"] == ORIGIN
    assert _graph(http, own_origin, "/policies/crossTenantAccessPolicy/default").status_code == 200

    elsewhere = credential.get_token("https://elsewhere.example/.default").token
    response = _graph(http, elsewhere, "/policies/crossTenantAccessPolicy/default")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"

    with pytest.raises(OAuthError) as info:
        credential.get_token("https://graph.microsoft.com/User.Read.All")
    assert info.value.error == "invalid_scope"


def test_credential_picks_the_given_client_and_rejects_unknown_ones(emu: Emulator) -> None:
    tenant, client = _tenant(emu, "fabrikam")
    token = EmulatorCredential(emu, tenant.id, client.client_id).get_token(GRAPH_SCOPE).token
    assert _claims(token)["appid"] == client.client_id

    with pytest.raises(OAuthError, match="90002"):
        EmulatorCredential(emu, "nosuch")
    with pytest.raises(OAuthError, match="700016"):
        EmulatorCredential(emu, "fabrikam", "00000000-0000-0000-0000-000000000000")


def test_a_token_only_ever_sees_its_own_tenant(emu: Emulator, http: httpx.Client) -> None:
    contoso, fabrikam = emu.tenant("contoso"), emu.tenant("fabrikam")
    contoso_token = EmulatorCredential(emu, "contoso").get_token(GRAPH_SCOPE).token
    fabrikam_token = EmulatorCredential(emu, "fabrikam").get_token(GRAPH_SCOPE).token
    partners = "/policies/crossTenantAccessPolicy/partners"

    created = _graph(http, contoso_token, partners, method="POST", json={"tenantId": fabrikam.id})
    assert created.status_code == 201, created.text

    seen_by_contoso = _graph(http, contoso_token, partners).json()["value"]
    seen_by_fabrikam = _graph(http, fabrikam_token, partners).json()["value"]
    assert [p["tenantId"] for p in seen_by_contoso] == [fabrikam.id]
    assert seen_by_fabrikam == []
    assert _graph(http, fabrikam_token, f"{partners}/{fabrikam.id}").status_code == 404
    assert contoso.access_policy.partners
    assert not fabrikam.access_policy.partners


def test_expired_token_is_rejected(emu: Emulator, http: httpx.Client) -> None:
    token = EmulatorCredential(emu, "contoso").get_token(GRAPH_SCOPE).token
    path = "/policies/crossTenantAccessPolicy/default"
    emu.clock.advance(59 * 60)
    assert _graph(http, token, path).status_code == 200

    emu.clock.advance(61)
    response = _graph(http, token, path, headers={"client-request-id": "late-1"})

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert "expired" in error["message"]
    assert error["innerError"]["client-request-id"] == "late-1"


def test_tampered_token_is_rejected(emu: Emulator, http: httpx.Client) -> None:
    token = EmulatorCredential(emu, "contoso").get_token(GRAPH_SCOPE).token
    header, _, signature = token.split(".")
    claims = _claims(token)
    claims["roles"] = [*claims["roles"], "Directory.ReadWrite.All"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"

    response = _graph(http, forged, "/policies/crossTenantAccessPolicy/default")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Basic dXNlcjpwYXNz"])
def test_missing_bearer_is_rejected(http: httpx.Client, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = http.get("/v1.0/policies/crossTenantAccessPolicy/default", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


# -- the emulator's clock, not the wall clock ------------------------------------------------


def test_tokens_issued_after_a_clock_advance_are_accepted() -> None:
    """A served emulator's clock is real time plus whatever was advanced: a token issued an hour
    ahead of the wall clock must still be valid for Graph (its iat and nbf are emulator time)."""
    emu = Emulator(scenario="demo", clock=OffsetClock())
    http = httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)
    _, client = _tenant(emu, "contoso")
    emu.clock.advance(3600)

    token = _token_request(http, "contoso", **_form(client))
    assert token.status_code == 200, token.text
    claims = _claims(token.json()["access_token"])
    assert claims["iat"] == pytest.approx(emu.clock.now().timestamp(), abs=5)

    response = _graph(http, token.json()["access_token"], "/policies/crossTenantAccessPolicy")
    assert response.status_code == 200, response.text


def test_a_token_from_the_emulators_future_is_refused_as_not_yet_valid(emu: Emulator) -> None:
    tenant, client = _tenant(emu, "contoso")
    ahead = emu.clock.now() + timedelta(hours=1)
    token, _ = emu.tokens.issue(
        tenant_id=tenant.id,
        app_id=client.client_id,
        object_id=client.object_id,
        roles=client.permissions,
        audience="https://graph.microsoft.com",
        now=ahead,
        token_id="0" * 32,
    )
    http = httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)

    response = _graph(http, token, "/policies/crossTenantAccessPolicy")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "not yet valid" in response.json()["error"]["message"]
    # Within Entra's five minutes of clock skew a token is fine.
    emu.clock.advance(3600 - 4 * 60)
    assert _graph(http, token, "/policies/crossTenantAccessPolicy").status_code == 200
