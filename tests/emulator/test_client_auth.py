"""Client authentication at the token endpoint, in-process over raw HTTP: certificate client
assertions (``private_key_jwt``), federated tokens of the built-in OIDC issuer, and the issuer
itself (discovery, keys, the control API and GitHub Actions' request shape)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ctsync.emulator import Emulator
from ctsync.emulator.identities import key_credential, self_signed_certificate
from ctsync.emulator.state import ClientApp, Tenant
from ctsync.emulator.transport import EmulatorTransport

ORIGIN = "https://login.emulator.test"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE = "api://AzureADTokenExchange"


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario="demo")


@pytest.fixture
def http(emu: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)


class Certificate:
    """A key and its self-signed certificate, registered (or not) on a client."""

    def __init__(self, emu: Emulator, *, days: int = 365) -> None:
        pem, self.der = self_signed_certificate(
            "test", now=emu.clock.now(), validity=timedelta(days=days)
        )
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key
        self.key_id = str(uuid.uuid4())

    @property
    def x5t(self) -> str:
        return _b64url(hashlib.sha1(self.der, usedforsecurity=False).digest())

    @property
    def x5t_s256(self) -> str:
        return _b64url(hashlib.sha256(self.der).digest())

    def register(self, client: ClientApp) -> None:
        client.key_credentials.append(key_credential(self.der, key_id=self.key_id))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _contoso(emu: Emulator) -> tuple[Tenant, ClientApp]:
    tenant = emu.tenant("contoso")
    return tenant, next(iter(tenant.clients.values()))


def _assertion(
    emu: Emulator,
    tenant: Tenant,
    client: ClientApp,
    cert: Certificate,
    *,
    algorithm: str = "PS256",
    sign_with: rsa.RSAPrivateKey | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(emu.clock.now().timestamp())
    body: dict[str, Any] = {
        "aud": f"{ORIGIN}/{tenant.id}/oauth2/v2.0/token",
        "iss": client.client_id,
        "sub": client.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = (
        header
        if header is not None
        else ({"x5t#S256": cert.x5t_s256} if algorithm == "PS256" else {"x5t": cert.x5t})
    )
    return jwt.encode(body, sign_with or cert.key, algorithm=algorithm, headers=headers)


def _token(http: httpx.Client, tenant: Tenant, client_id: str, assertion: str) -> httpx.Response:
    return http.post(
        f"/{tenant.id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": GRAPH_SCOPE,
        },
    )


def _aadsts(response: httpx.Response, status: int, error: str, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert "access_token" not in body
    description: str = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ")
    return description


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- certificates ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_a_certificate_assertion_gets_a_token_with_the_clients_roles(
    emu: Emulator, http: httpx.Client, algorithm: str
) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, algorithm=algorithm)
    )

    assert response.status_code == 200, response.text
    claims = _claims(response.json()["access_token"])
    assert claims["appid"] == client.client_id
    assert claims["oid"] == client.object_id
    assert claims["tid"] == tenant.id
    assert claims["roles"] == sorted(client.permissions)
    # The token works on Graph like any other.
    graph = http.get(
        "/v1.0/organization",
        headers={"authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert graph.status_code == 200, graph.text


@pytest.mark.parametrize("form", ["v1 endpoint", "domain", "name"])
def test_the_assertion_audience_may_name_the_tenant_any_way_and_the_v1_endpoint(
    emu: Emulator, http: httpx.Client, form: str
) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    audience = {
        "v1 endpoint": f"{ORIGIN}/{tenant.id}/oauth2/token",
        "domain": f"{ORIGIN}/{tenant.domain}/oauth2/v2.0/token",
        "name": f"{ORIGIN}/{tenant.name}/oauth2/v2.0/token",
    }[form]

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, aud=audience)
    )

    assert response.status_code == 200, response.text


def test_an_assertion_may_be_presented_again_until_it_expires(
    emu: Emulator, http: httpx.Client
) -> None:
    # Microsoft's certificate-credentials page: exp "allows the assertion to be used until
    # then"; MSAL reuses one assertion for nine minutes.
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    assertion = _assertion(emu, tenant, client, cert)

    first = _token(http, tenant, client.client_id, assertion)
    emu.clock.advance(60)
    second = _token(http, tenant, client.client_id, assertion)

    assert (first.status_code, second.status_code) == (200, 200)


def test_an_unregistered_certificate_is_700027_naming_its_thumbprint(
    emu: Emulator, http: httpx.Client
) -> None:
    tenant, client = _contoso(emu)
    Certificate(emu).register(client)
    stranger = Certificate(emu)

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, stranger, algorithm="RS256")
    )

    description = _aadsts(response, 401, "invalid_client", 700027)
    assert "not registered on application" in description
    assert "The key was not found." in description
    assert hashlib.sha1(stranger.der, usedforsecurity=False).hexdigest().upper() in description
    assert client.client_id in description


def test_a_signature_by_another_key_is_700027(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, sign_with=impostor)
    )

    description = _aadsts(response, 401, "invalid_client", 700027)
    assert "failed signature validation" in description


def test_an_assertion_without_a_thumbprint_is_700027(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, header={})
    )

    _aadsts(response, 401, "invalid_client", 700027)


def test_an_expired_assertion_is_700024_against_the_emulator_clock(
    emu: Emulator, http: httpx.Client
) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    now = int(emu.clock.now().timestamp())
    assertion = _assertion(emu, tenant, client, cert, exp=now + 60)
    assert _token(http, tenant, client.client_id, assertion).status_code == 200

    emu.clock.advance(61)
    response = _token(http, tenant, client.client_id, assertion)

    description = _aadsts(response, 401, "invalid_client", 700024)
    assert "Client assertion is not within its valid time range." in description
    assert "expiry time of assertion" in description


def test_an_assertion_not_yet_valid_is_700024(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    later = int(emu.clock.now().timestamp()) + 3600

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, nbf=later)
    )

    _aadsts(response, 401, "invalid_client", 700024)


def test_an_expired_certificate_is_700027(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu, days=1)
    cert.register(client)
    emu.clock.advance(2 * 86400)

    response = _token(http, tenant, client.client_id, _assertion(emu, tenant, client, cert))

    description = _aadsts(response, 401, "invalid_client", 700027)
    assert "The key used is expired." in description


@pytest.mark.parametrize(
    ("claims", "status", "error", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}, 401, "", 700023),
        ({"iss": str(uuid.UUID(int=1))}, 401, "invalid_client", 700021),
        ({"sub": str(uuid.UUID(int=1))}, 401, "invalid_client", 700021),
        ({"jti": None}, 400, "invalid_request", 50027),
        ({"exp": None}, 400, "invalid_request", 50027),
    ],
)
def test_assertion_claims_are_checked(
    emu: Emulator,
    http: httpx.Client,
    claims: dict[str, Any],
    *,
    status: int,
    error: str,
    code: int,
) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)

    response = _token(
        http, tenant, client.client_id, _assertion(emu, tenant, client, cert, **claims)
    )

    _aadsts(response, status, error or "invalid_client", code)


def test_an_assertion_for_an_unknown_client_is_700016(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    stranger = str(uuid.uuid4())

    response = _token(
        http,
        tenant,
        stranger,
        _assertion(emu, tenant, client, cert, iss=stranger, sub=stranger),
    )

    _aadsts(response, 400, "unauthorized_client", 700016)


def test_form_problems_with_assertions(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    cert = Certificate(emu)
    cert.register(client)
    assertion = _assertion(emu, tenant, client, cert)
    base = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "scope": GRAPH_SCOPE,
    }
    url = f"/{tenant.id}/oauth2/v2.0/token"

    no_type = http.post(url, data={**base, "client_assertion": assertion})
    both = http.post(
        url,
        data={
            **base,
            "client_assertion": assertion,
            "client_assertion_type": JWT_BEARER,
            "client_secret": client.client_secret,
        },
    )
    garbage = http.post(
        url, data={**base, "client_assertion": "not-a-jwt", "client_assertion_type": JWT_BEARER}
    )

    _aadsts(no_type, 400, "invalid_request", 900144)
    assert both.status_code == 400
    _aadsts(garbage, 400, "invalid_request", 50027)
    for response in (no_type, both, garbage):
        assert assertion not in response.text
        assert client.client_secret not in response.text


def test_openid_configuration_offers_private_key_jwt(emu: Emulator, http: httpx.Client) -> None:
    tenant, _ = _contoso(emu)
    config = http.get(f"/{tenant.id}/v2.0/.well-known/openid-configuration").json()
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]


# -- the built-in OIDC issuer --------------------------------------------------------------


def test_the_issuer_serves_discovery_and_its_own_keys(emu: Emulator, http: httpx.Client) -> None:
    config = http.get("/_oidc/.well-known/openid-configuration")
    keys = http.get("/_oidc/keys")

    assert config.status_code == 200
    assert config.json()["issuer"] == f"{ORIGIN}/_oidc"
    assert config.json()["jwks_uri"] == f"{ORIGIN}/_oidc/keys"
    assert keys.status_code == 200
    (key,) = keys.json()["keys"]
    tenant, _ = _contoso(emu)
    entra_keys = http.get(f"/{tenant.id}/discovery/v2.0/keys").json()["keys"]
    assert key["kid"] not in {k["kid"] for k in entra_keys}
    assert key["n"] not in {k["n"] for k in entra_keys}
    assert http.post("/_oidc/keys").status_code == 405
    assert http.get("/_oidc/nothing").status_code == 404


def _mint(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/_emulator/oidc/token", json=body)


def test_control_mints_a_token_the_issuers_keys_verify(emu: Emulator, http: httpx.Client) -> None:
    response = _mint(http, subject="repo:org/repo:ref:refs/heads/main", audience=EXCHANGE)

    assert response.status_code == 200, response.text
    body = response.json()
    jwks = jwt.PyJWKSet.from_dict(http.get("/_oidc/keys").json())
    claims = jwt.decode(
        body["value"],
        jwks.keys[0].key,
        algorithms=["RS256"],
        audience=EXCHANGE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == f"{ORIGIN}/_oidc" == body["issuer"]
    assert claims["sub"] == "repo:org/repo:ref:refs/heads/main"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["iat"] == int(emu.clock.now().timestamp())
    assert body["expires_on"] == claims["exp"]
    assert claims["jti"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"subject": ""},
        {"subject": "s", "lifetime": 0},
        {"subject": "s", "lifetime": 10 * 365 * 86400},
        {"subject": "s", "claims": {"iss": "x"}},
        {"subject": "s", "audience": 5},
    ],
)
def test_control_mint_refuses_bad_requests(http: httpx.Client, body: dict[str, Any]) -> None:
    assert _mint(http, **body).status_code == 400


def test_github_actions_request_shape(emu: Emulator, http: httpx.Client) -> None:
    run = http.post(
        "/_emulator/oidc/actions",
        json={"repository": "contoso/infra", "environment": "prod"},
    )
    assert run.status_code == 200, run.text
    url = run.json()["ACTIONS_ID_TOKEN_REQUEST_URL"]
    request_token = run.json()["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]

    answer = http.get(
        f"{url}&audience={EXCHANGE}", headers={"authorization": f"Bearer {request_token}"}
    )
    default = http.get(url, headers={"authorization": f"Bearer {request_token}"})
    refused = http.get(f"{url}&audience=x", headers={"authorization": "Bearer nope"})

    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"value"}
    claims = _claims(answer.json()["value"])
    assert claims["sub"] == "repo:contoso/infra:environment:prod" == run.json()["subject"]
    assert claims["aud"] == EXCHANGE
    assert claims["repository"] == "contoso/infra"
    assert claims["repository_owner"] == "contoso"
    assert claims["environment"] == "prod"
    assert claims["ref"] == "refs/heads/main"
    assert claims["exp"] - claims["iat"] == 300
    # GitHub's default audience is the URL of the repository owner.
    assert _claims(default.json()["value"])["aud"] == "https://github.com/contoso"
    assert refused.status_code == 401
    assert "value" not in refused.json()


# -- federated credentials -------------------------------------------------------------------


def _trust(client: ClientApp, *, subject: str, audiences: list[str] | None = None) -> None:
    client.federated_credentials.append(
        {
            "id": str(uuid.uuid4()),
            "name": "github",
            "issuer": f"{ORIGIN}/_oidc",
            "subject": subject,
            "audiences": audiences or [EXCHANGE],
        }
    )


SUBJECT = "repo:contoso/infra:environment:prod"


def test_a_federated_token_gets_a_token(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    _trust(client, subject=SUBJECT)
    federated = _mint(http, subject=SUBJECT).json()["value"]

    response = _token(http, tenant, client.client_id, federated)

    assert response.status_code == 200, response.text
    claims = _claims(response.json()["access_token"])
    assert claims["appid"] == client.client_id
    assert claims["roles"] == sorted(client.permissions)


def test_a_federated_token_of_a_workflow_run_gets_a_token(
    emu: Emulator, http: httpx.Client
) -> None:
    tenant, client = _contoso(emu)
    _trust(client, subject=SUBJECT)
    run = http.post(
        "/_emulator/oidc/actions", json={"repository": "contoso/infra", "environment": "prod"}
    ).json()
    federated = http.get(
        f"{run['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={EXCHANGE}",
        headers={"authorization": f"Bearer {run['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
    ).json()["value"]

    assert _token(http, tenant, client.client_id, federated).status_code == 200


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no federated credential", 70021),
        ("other issuer", 700211),
        ("other subject", 700213),
        ("subject differs in case", 700213),
        ("other audience", 700212),
    ],
)
def test_a_federated_token_must_match_a_credential(
    emu: Emulator, http: httpx.Client, case: str, code: int
) -> None:
    tenant, client = _contoso(emu)
    if case != "no federated credential":
        _trust(client, subject=SUBJECT)
    if case == "other issuer":
        client.federated_credentials[0]["issuer"] = "https://token.actions.githubusercontent.com"
    subject = {"other subject": "repo:contoso/infra:ref:refs/heads/main"}.get(case, SUBJECT)
    if case == "subject differs in case":
        subject = SUBJECT.upper()
    audience = "api://other" if case == "other audience" else EXCHANGE
    federated = _mint(http, subject=subject, audience=audience).json()["value"]

    response = _token(http, tenant, client.client_id, federated)

    error, status = ("invalid_request", 400) if code == 70021 else ("invalid_client", 401)
    description = _aadsts(response, status, error, code)
    assert "No matching federated identity record found for presented assertion" in description
    assert federated not in response.text


def test_an_expired_federated_token_is_700024(emu: Emulator, http: httpx.Client) -> None:
    tenant, client = _contoso(emu)
    _trust(client, subject=SUBJECT)
    federated = _mint(http, subject=SUBJECT, lifetime=60).json()["value"]

    emu.clock.advance(60)
    response = _token(http, tenant, client.client_id, federated)

    _aadsts(response, 401, "invalid_client", 700024)


def test_a_foreign_token_naming_a_trusted_issuer_is_refused(
    emu: Emulator, http: httpx.Client
) -> None:
    tenant, client = _contoso(emu)
    _trust(client, subject=SUBJECT)
    now = int(emu.clock.now().timestamp())
    claims = {
        "iss": f"{ORIGIN}/_oidc",
        "sub": SUBJECT,
        "aud": EXCHANGE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown_kid = jwt.encode(claims, foreign_key, algorithm="RS256", headers={"kid": "other"})
    # Forged with the built-in issuer's key id, signed by another key.
    our_kid = emu.oidc.kid
    forged = jwt.encode(claims, foreign_key, algorithm="RS256", headers={"kid": our_kid})

    _aadsts(_token(http, tenant, client.client_id, unknown_kid), 401, "invalid_client", 50166)
    _aadsts(_token(http, tenant, client.client_id, forged), 401, "invalid_client", 700027)


def test_a_certificate_in_a_key_credential_round_trips_its_thumbprints() -> None:
    emu = Emulator(scenario="demo")
    cert = Certificate(emu)
    credential = key_credential(cert.der, key_id=cert.key_id)
    parsed = x509.load_der_x509_certificate(base64.b64decode(credential["key"]))
    assert parsed.public_bytes(serialization.Encoding.DER) == cert.der
    assert (
        base64.b64decode(credential["customKeyIdentifier"])
        == hashlib.sha1(cert.der, usedforsecurity=False).digest()
    )
