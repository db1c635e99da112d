"""App registrations through Graph, and what the token endpoint then accepts: applications,
their secrets (addPassword/removePassword), certificates (keyCredentials, addKey/removeKey),
federated identity credentials, service principals, and admin consent for application
permissions (appRoleAssignedTo on Microsoft Graph's service principal)."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ctsync.emulator import Emulator, EmulatorTransport
from ctsync.emulator.identities import self_signed_certificate
from tests.conformance import assert_conforms
from tests.emulator.cts_helpers import client_with, error_of

ORIGIN = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE = "api://AzureADTokenExchange"

#: Microsoft Graph's application permissions ctsync uses, with Microsoft's role ids.
GRAPH_ROLES = {
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "AppRoleAssignment.ReadWrite.All": "06b708a9-e830-4db3-a914-8e69da51d44f",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "CrossTenantInformation.ReadBasic.All": "cac88765-0581-4025-9725-5ebc13f729ee",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Policy.ReadWrite.CrossTenantAccess": "338163d7-f101-4c92-94ba-ca46fe52447c",
    "Synchronization.ReadWrite.All": "9b50c33d-700f-43b1-b2eb-87e89b703581",
    "UserAuthenticationMethod.ReadWrite.All": "50483e42-d915-4231-9639-7fdb7fd190e5",
}


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario="demo")


@pytest.fixture
def admin(emu: Emulator) -> httpx.Client:
    """Graph as the demo's ctsync client (Application.ReadWrite.All and the rest)."""
    return client_with(
        emu,
        "contoso",
        ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Application.Read.All"],
    )


@pytest.fixture
def login(emu: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)


def _token(login: httpx.Client, emu: Emulator, **form: str) -> httpx.Response:
    tenant = emu.tenant("contoso")
    body = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE, **form}
    return login.post(f"/{tenant.id}/oauth2/v2.0/token", data=body)


def _roles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    roles: list[str] = claims["roles"]
    return roles


def _register(admin: httpx.Client, name: str = "tool", **body: Any) -> dict[str, Any]:
    response = admin.post("/applications", json={"displayName": name, **body})
    assert response.status_code == 201, response.text
    app: dict[str, Any] = response.json()
    return app


def _service_principal(admin: httpx.Client, app: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/servicePrincipals", json={"appId": app["appId"]})
    assert response.status_code == 201, response.text
    sp: dict[str, Any] = response.json()
    return sp


def _graph_sp(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')")
    assert response.status_code == 200, response.text
    sp: dict[str, Any] = response.json()
    return sp


def _add_password(admin: httpx.Client, app: dict[str, Any], **credential: Any) -> dict[str, Any]:
    response = admin.post(
        f"/applications/{app['id']}/addPassword", json={"passwordCredential": credential}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _aadsts(response: httpx.Response, code: int) -> None:
    assert response.status_code in {400, 401}, response.text
    assert response.json()["error_codes"] == [code]


# -- applications ----------------------------------------------------------------------------


def test_create_read_update_delete_an_application(admin: httpx.Client) -> None:
    app = _register(admin, tags=["ctsync"], signInAudience="AzureADMyOrg")

    assert_conforms("application", app)
    assert app["@odata.context"].endswith("$metadata#applications/$entity")
    uuid.UUID(app["appId"])
    assert app["appId"] != app["id"]
    assert app["tags"] == ["ctsync"]
    assert app["passwordCredentials"] == app["keyCredentials"] == []
    by_app_id = admin.get(f"/applications(appId='{app['appId']}')")
    assert by_app_id.status_code == 200
    assert_conforms("application", by_app_id.json())
    assert admin.patch(f"/applications/{app['id']}", json={"notes": "n"}).status_code == 204
    assert admin.get(f"/applications/{app['id']}").json()["notes"] == "n"
    assert admin.delete(f"/applications/{app['id']}").status_code == 204
    assert admin.get(f"/applications/{app['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"displayName": ""},
        {"displayName": "x", "passwordCredentials": [{"displayName": "s"}]},
        {"displayName": "x", "appId": str(uuid.uuid4())},
        {"displayName": "x", "keyCredentials": [{"type": "AsymmetricX509Cert"}]},
        {"displayName": "x", "keyCredentials": [{"key": base64.b64encode(b"junk").decode()}]},
    ],
)
def test_bad_applications_are_400(admin: httpx.Client, body: dict[str, Any]) -> None:
    response = admin.post("/applications", json=body)
    assert response.status_code == 400, response.text
    error_of(response)


def test_writes_need_application_permissions(emu: Emulator) -> None:
    reader = client_with(emu, "contoso", ["Application.Read.All"])
    assert reader.post("/applications", json={"displayName": "x"}).status_code == 403


def test_owned_by_manages_only_what_it_created(emu: Emulator, admin: httpx.Client) -> None:
    owned_by = client_with(emu, "contoso", ["Application.ReadWrite.OwnedBy"])
    mine = owned_by.post("/applications", json={"displayName": "mine"})
    assert mine.status_code == 201, mine.text
    theirs = _register(admin, "theirs")

    assert (
        owned_by.post(f"/applications/{mine.json()['id']}/addPassword", json={}).status_code == 200
    )
    assert owned_by.post(f"/applications/{theirs['id']}/addPassword", json={}).status_code == 403
    assert (
        owned_by.post("/servicePrincipals", json={"appId": mine.json()["appId"]}).status_code == 201
    )
    assert owned_by.post("/servicePrincipals", json={"appId": theirs["appId"]}).status_code == 403


# -- service principals ----------------------------------------------------------------------


def test_create_a_service_principal_once(admin: httpx.Client) -> None:
    app = _register(admin)
    sp = _service_principal(admin, app)

    assert_conforms("servicePrincipal", sp)
    assert sp["appId"] == app["appId"]
    assert sp["displayName"] == "tool"
    assert sp["servicePrincipalType"] == "Application"
    again = admin.post("/servicePrincipals", json={"appId": app["appId"]})
    assert again.status_code == 409
    assert error_of(again)["code"] == "Request_MultipleObjectsWithSameKeyValue"
    unknown = admin.post("/servicePrincipals", json={"appId": str(uuid.uuid4())})
    assert unknown.status_code == 400
    graph = admin.post("/servicePrincipals", json={"appId": GRAPH_APP_ID})
    assert graph.status_code == 409
    # Deleting the application deletes its service principal.
    assert admin.delete(f"/applications/{app['id']}").status_code == 204
    assert admin.get(f"/servicePrincipals/{sp['id']}").status_code == 404


def test_microsoft_graph_has_a_service_principal_with_its_permissions(
    emu: Emulator, admin: httpx.Client
) -> None:
    sp = _graph_sp(admin)

    assert_conforms("servicePrincipal", sp)
    assert sp["appId"] == GRAPH_APP_ID
    assert sp["displayName"] == "Microsoft Graph"
    roles = {r["value"]: r for r in sp["appRoles"]}
    for value, role_id in GRAPH_ROLES.items():
        assert roles[value]["id"] == role_id
        assert roles[value]["allowedMemberTypes"] == ["Application"]
    filtered = admin.get("/servicePrincipals", params={"$filter": f"appId eq '{GRAPH_APP_ID}'"})
    assert [s["id"] for s in filtered.json()["value"]] == [sp["id"]]
    assert sp["id"] in {s["id"] for s in admin.get("/servicePrincipals").json()["value"]}
    assert admin.get(f"/servicePrincipals/{sp['id']}").status_code == 200
    # Each tenant has its own, and the tenant cannot change or delete it.
    other = client_with(emu, "fabrikam", ["Application.Read.All"])
    assert other.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')").json()["id"] != sp["id"]
    assert admin.patch(f"/servicePrincipals/{sp['id']}", json={"notes": "x"}).status_code == 403
    assert admin.delete(f"/servicePrincipals/{sp['id']}").status_code == 403
    # ctsync finds its configurations by template: Microsoft Graph's is not one.
    cts = admin.get(
        "/servicePrincipals",
        params={"$filter": "applicationTemplateId eq '518e5f48-1fc8-4c48-9387-9fdf28b0dfe7'"},
    )
    assert cts.json()["value"] == []
    assert len(emu.tenant("contoso").service_principals) == 0


# -- secrets ---------------------------------------------------------------------------------


def test_add_password_shows_the_secret_once_and_it_signs_in(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    created = _add_password(admin, app, displayName="ci")

    assert_conforms("passwordCredential", created)
    secret = created["secretText"]
    assert created["hint"] == secret[:3]
    assert created["displayName"] == "ci"
    # No service principal yet: the app cannot sign in to the tenant.
    _aadsts(_token(login, emu, client_id=app["appId"], client_secret=secret), 700016)
    sp = _service_principal(admin, app)

    response = _token(login, emu, client_id=app["appId"], client_secret=secret)

    assert _roles(response) == []
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["oid"] == sp["id"]
    assert claims["appid"] == app["appId"]
    # Graph never shows the secret again.
    for answer in (
        admin.get(f"/applications/{app['id']}"),
        admin.get("/applications"),
        admin.get(f"/applications/{app['id']}?$select=passwordCredentials"),
    ):
        assert secret not in answer.text
    stored = admin.get(f"/applications/{app['id']}").json()["passwordCredentials"]
    assert [c["secretText"] for c in stored] == [None]
    assert [c["keyId"] for c in stored] == [created["keyId"]]
    assert secret not in str(emu.request_log)


def test_remove_password_ends_the_secret(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    _service_principal(admin, app)
    created = _add_password(admin, app)
    path = f"/applications/{app['id']}/removePassword"

    assert admin.post(path, json={"keyId": created["keyId"]}).status_code == 204
    assert admin.post(path, json={"keyId": created["keyId"]}).status_code == 400

    _aadsts(
        _token(login, emu, client_id=app["appId"], client_secret=created["secretText"]), 7000215
    )


def test_an_expired_secret_is_7000222(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    _service_principal(admin, app)
    end = (emu.clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = _add_password(admin, app, endDateTime=end)["secretText"]
    assert _token(login, emu, client_id=app["appId"], client_secret=secret).status_code == 200

    emu.clock.advance(3601)

    _aadsts(_token(login, emu, client_id=app["appId"], client_secret=secret), 7000222)


def test_a_disabled_service_principal_cannot_sign_in(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    sp = _service_principal(admin, app)
    secret = _add_password(admin, app)["secretText"]
    patched = admin.patch(f"/servicePrincipals/{sp['id']}", json={"accountEnabled": False})
    assert patched.status_code == 204

    _aadsts(_token(login, emu, client_id=app["appId"], client_secret=secret), 7000112)


# -- admin consent for application permissions ---------------------------------------------


def test_a_granted_permission_shows_in_the_next_token(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    sp = _service_principal(admin, app)
    secret = _add_password(admin, app)["secretText"]
    before = _token(login, emu, client_id=app["appId"], client_secret=secret)
    assert _roles(before) == []
    graph_sp = _graph_sp(admin)

    grant = admin.post(
        f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
        json={
            "principalId": sp["id"],
            "resourceId": graph_sp["id"],
            "appRoleId": GRAPH_ROLES["Directory.Read.All"],
        },
    )

    assert grant.status_code == 201, grant.text
    assert_conforms("appRoleAssignment", grant.json())
    assert grant.json()["principalType"] == "ServicePrincipal"
    assert grant.json()["resourceDisplayName"] == "Microsoft Graph"
    # The token already issued keeps its roles; the next one carries the grant.
    old = httpx.Client(
        transport=EmulatorTransport(emu),
        base_url=f"{ORIGIN}/v1.0",
        headers={"authorization": f"Bearer {before.json()['access_token']}"},
    )
    assert old.get("/users").status_code == 403
    after = _token(login, emu, client_id=app["appId"], client_secret=secret)
    assert _roles(after) == ["Directory.Read.All"]
    new = httpx.Client(
        transport=EmulatorTransport(emu),
        base_url=f"{ORIGIN}/v1.0",
        headers={"authorization": f"Bearer {after.json()['access_token']}"},
    )
    assert new.get("/users").status_code == 200
    # Revoking the grant takes it out of the next token.
    path = f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo/{grant.json()['id']}"
    assert admin.delete(path).status_code == 204
    assert _roles(_token(login, emu, client_id=app["appId"], client_secret=secret)) == []


def test_a_grant_to_a_seeded_client_adds_to_its_permissions(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    tenant = emu.tenant("contoso")
    client = emu.add_client(tenant, permissions=["Policy.Read.All"], display_name="seeded")
    graph_sp = _graph_sp(admin)
    grant = admin.post(
        f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
        json={
            "principalId": client.object_id,
            "resourceId": graph_sp["id"],
            "appRoleId": GRAPH_ROLES["AuditLog.Read.All"],
        },
    )
    assert grant.status_code == 201, grant.text

    roles = _roles(
        _token(login, emu, client_id=client.client_id, client_secret=client.client_secret)
    )

    assert roles == ["AuditLog.Read.All", "Policy.Read.All"]


def test_graph_permissions_are_not_for_users(emu: Emulator, admin: httpx.Client) -> None:
    graph_sp = _graph_sp(admin)
    user = next(iter(emu.tenant("contoso").users))
    response = admin.post(
        f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
        json={
            "principalId": user,
            "resourceId": graph_sp["id"],
            "appRoleId": GRAPH_ROLES["Directory.Read.All"],
        },
    )
    assert response.status_code == 400
    error_of(response)


# -- certificates ----------------------------------------------------------------------------


class Cert:
    def __init__(self, emu: Emulator, *, days: int = 365) -> None:
        pem, self.der = self_signed_certificate(
            "app", now=emu.clock.now(), validity=timedelta(days=days)
        )
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key

    @property
    def b64(self) -> str:
        return base64.b64encode(self.der).decode()

    def credential(self) -> dict[str, Any]:
        return {"type": "AsymmetricX509Cert", "usage": "Verify", "key": self.b64}


def _assertion(emu: Emulator, client_id: str, cert: Cert) -> str:
    import hashlib

    now = int(emu.clock.now().timestamp())
    tenant = emu.tenant("contoso")
    x5t_s256 = base64.urlsafe_b64encode(hashlib.sha256(cert.der).digest()).rstrip(b"=").decode()
    return jwt.encode(
        {
            "aud": f"{ORIGIN}/{tenant.id}/oauth2/v2.0/token",
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": now,
            "exp": now + 600,
        },
        cert.key,
        algorithm="PS256",
        headers={"x5t#S256": x5t_s256},
    )


def _proof(emu: Emulator, app: dict[str, Any], cert: Cert, **claims: Any) -> str:
    now = int(emu.clock.now().timestamp())
    body = {
        "aud": "00000002-0000-0000-c000-000000000000",
        "iss": app["id"],
        "nbf": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, cert.key, algorithm="RS256")


def test_key_credentials_register_a_certificate_that_signs_in(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    cert = Cert(emu)
    app = _register(admin, keyCredentials=[cert.credential()])
    _service_principal(admin, app)

    [stored] = app["keyCredentials"]
    assert_conforms("keyCredential", stored)
    assert stored["key"] is None
    assert stored["type"] == "AsymmetricX509Cert"
    assert stored["usage"] == "Verify"
    assert cert.b64 not in admin.get("/applications").text
    assert cert.b64 not in admin.get(f"/applications/{app['id']}").text
    # "Returned only on $select for a single object".
    selected = admin.get(f"/applications/{app['id']}?$select=keyCredentials").json()
    assert selected["keyCredentials"][0]["key"] == cert.b64

    response = _token(
        login,
        emu,
        client_id=app["appId"],
        client_assertion_type=JWT_BEARER,
        client_assertion=_assertion(emu, app["appId"], cert),
    )

    assert response.status_code == 200, response.text


def test_patch_key_credentials_replaces_the_certificates(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    first, second = Cert(emu), Cert(emu)
    app = _register(admin, keyCredentials=[first.credential()])
    _service_principal(admin, app)
    kept = {k: v for k, v in app["keyCredentials"][0].items() if k != "key"}
    body = {"keyCredentials": [kept, second.credential()]}

    assert admin.patch(f"/applications/{app['id']}", json=body).status_code == 204
    assert len(admin.get(f"/applications/{app['id']}").json()["keyCredentials"]) == 2
    assert (
        admin.patch(
            f"/applications/{app['id']}", json={"keyCredentials": [second.credential()]}
        ).status_code
        == 204
    )

    def sign_in(cert: Cert) -> int:
        assertion = _assertion(emu, app["appId"], cert)
        return _token(
            login,
            emu,
            client_id=app["appId"],
            client_assertion_type=JWT_BEARER,
            client_assertion=assertion,
        ).status_code

    assert (sign_in(first), sign_in(second)) == (401, 200)


def test_one_key_id_on_two_applications_keeps_their_certificates_apart(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    key_id = str(uuid.uuid4())
    first, second = Cert(emu), Cert(emu)
    one = _register(admin, "one", keyCredentials=[{**first.credential(), "keyId": key_id}])
    two = _register(admin, "two", keyCredentials=[{**second.credential(), "keyId": key_id}])
    for app in (one, two):
        _service_principal(admin, app)

    def sign_in(app: dict[str, Any], cert: Cert) -> int:
        return _token(
            login,
            emu,
            client_id=app["appId"],
            client_assertion_type=JWT_BEARER,
            client_assertion=_assertion(emu, app["appId"], cert),
        ).status_code

    assert (sign_in(one, first), sign_in(one, second)) == (200, 401)
    assert admin.delete(f"/applications/{two['id']}").status_code == 204
    assert sign_in(one, first) == 200


def test_a_pem_certificate_in_key_is_400(emu: Emulator, admin: httpx.Client) -> None:
    cert = Cert(emu)
    from cryptography import x509

    text = x509.load_der_x509_certificate(cert.der).public_bytes(serialization.Encoding.PEM)
    body = {"displayName": "pem", "keyCredentials": [{**cert.credential(), "key": text.decode()}]}
    answer = admin.post("/applications", json=body)
    assert answer.status_code == 400, answer.text
    assert "base64-encoded X.509 certificate" in error_of(answer)["message"]


def test_add_key_and_remove_key_need_a_proof(emu: Emulator, admin: httpx.Client) -> None:
    first, second = Cert(emu), Cert(emu)
    app = _register(admin, keyCredentials=[first.credential()])
    path = f"/applications/{app['id']}"

    missing = admin.post(f"{path}/addKey", json={"keyCredential": second.credential()})
    wrong_key = admin.post(
        f"{path}/addKey",
        json={"keyCredential": second.credential(), "proof": _proof(emu, app, second)},
    )
    wrong_audience = admin.post(
        f"{path}/addKey",
        json={"keyCredential": second.credential(), "proof": _proof(emu, app, first, aud="x")},
    )
    added = admin.post(
        f"{path}/addKey",
        json={
            "keyCredential": second.credential(),
            "passwordCredential": None,
            "proof": _proof(emu, app, first),
        },
    )

    for refused in (missing, wrong_key, wrong_audience):
        assert refused.status_code == 400, refused.text
        error_of(refused)
    assert added.status_code == 200, added.text
    assert_conforms("keyCredential", added.json())
    keys = admin.get(path).json()["keyCredentials"]
    assert [k["keyId"] for k in keys][-1] == added.json()["keyId"]
    removed = admin.post(
        f"{path}/removeKey",
        json={"keyId": keys[0]["keyId"], "proof": _proof(emu, app, second)},
    )
    assert removed.status_code == 204, removed.text
    assert [k["keyId"] for k in admin.get(path).json()["keyCredentials"]] == [added.json()["keyId"]]


# -- federated identity credentials --------------------------------------------------------


def _fic(name: str = "github", **body: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:contoso/infra:environment:prod",
        "audiences": [EXCHANGE],
        **body,
    }


def test_federated_credentials_crud(admin: httpx.Client) -> None:
    app = _register(admin)
    base = f"/applications/{app['id']}/federatedIdentityCredentials"

    created = admin.post(base, json=_fic(description="CI"))

    assert created.status_code == 201, created.text
    body = created.json()
    assert_conforms("federatedIdentityCredential", body)
    assert body["@odata.context"].endswith(
        f"applications('{app['id']}')/federatedIdentityCredentials/$entity"
    )
    listed = admin.get(base).json()
    assert [c["id"] for c in listed["value"]] == [body["id"]]
    for item in listed["value"]:
        assert_conforms("federatedIdentityCredential", item)
    by_app_id = admin.get(f"/applications(appId='{app['appId']}')/federatedIdentityCredentials")
    assert by_app_id.json()["value"] == listed["value"]
    for key in (body["id"], "github"):
        assert admin.get(f"{base}/{key}").json()["id"] == body["id"]
    assert admin.get(f"{base}(name='github')").status_code == 200
    assert admin.get(base, params={"$filter": "subject eq 'nope'"}).json()["value"] == []
    patched = admin.patch(
        f"{base}/{body['id']}", json={"subject": "repo:contoso/infra:pull_request"}
    )
    assert patched.status_code == 204
    assert admin.get(f"{base}/github").json()["subject"] == "repo:contoso/infra:pull_request"
    assert admin.patch(f"{base}/github", json={"name": "renamed"}).status_code == 400
    assert admin.delete(f"{base}/{body['id']}").status_code == 204
    assert admin.get(f"{base}/{body['id']}").status_code == 404


def test_upsert_a_federated_credential_by_name(admin: httpx.Client) -> None:
    app = _register(admin)
    path = f"/applications/{app['id']}/federatedIdentityCredentials(name='deploy')"
    body = {k: v for k, v in _fic().items() if k != "name"}

    missing = admin.patch(path, json=body)
    created = admin.patch(path, json=body, headers={"Prefer": "create-if-missing"})
    updated = admin.patch(
        path, json={**body, "subject": "s2"}, headers={"Prefer": "create-if-missing"}
    )

    assert missing.status_code == 404
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "deploy"
    assert updated.status_code == 204
    assert admin.get(path).json()["subject"] == "s2"


@pytest.mark.parametrize(
    "change",
    [
        {"name": "a"},
        {"name": "-starts-with-dash"},
        {"name": "has space"},
        {"name": "x" * 121},
        {"issuer": "not a url"},
        {"subject": ""},
        {"subject": "s" * 601},
        {"audiences": []},
        {"audiences": [EXCHANGE, "api://other"]},
        {"id": str(uuid.uuid4())},
    ],
)
def test_federated_credential_rules(admin: httpx.Client, change: dict[str, Any]) -> None:
    app = _register(admin)
    response = admin.post(
        f"/applications/{app['id']}/federatedIdentityCredentials", json=_fic(**change)
    )
    assert response.status_code == 400, response.text
    error_of(response)


def test_federated_credentials_are_unique_and_at_most_twenty(admin: httpx.Client) -> None:
    app = _register(admin)
    base = f"/applications/{app['id']}/federatedIdentityCredentials"
    assert admin.post(base, json=_fic()).status_code == 201

    same_pair = admin.post(base, json=_fic("other"))
    same_name = admin.post(base, json=_fic(subject="repo:contoso/infra:ref:refs/heads/main"))

    assert (same_pair.status_code, same_name.status_code) == (409, 409)
    for i in range(19):
        assert admin.post(base, json=_fic(f"fic{i:02}", subject=f"s{i}")).status_code == 201
    over = admin.post(base, json=_fic("twentyfirst", subject="s-last"))
    assert over.status_code == 400
    error_of(over)


def test_a_registered_app_signs_in_with_a_federated_token(
    emu: Emulator, admin: httpx.Client, login: httpx.Client
) -> None:
    app = _register(admin)
    _service_principal(admin, app)
    issuer = f"{ORIGIN}/_oidc"
    base = f"/applications/{app['id']}/federatedIdentityCredentials"
    assert admin.post(base, json=_fic(issuer=issuer)).status_code == 201
    minted = login.post(
        "/_emulator/oidc/token", json={"subject": "repo:contoso/infra:environment:prod"}
    ).json()["value"]

    response = _token(
        login,
        emu,
        client_id=app["appId"],
        client_assertion_type=JWT_BEARER,
        client_assertion=minted,
    )

    assert response.status_code == 200, response.text
    # Deleting the credential ends the trust.
    assert admin.delete(f"{base}/github").status_code == 204
    again = _token(
        login,
        emu,
        client_id=app["appId"],
        client_assertion_type=JWT_BEARER,
        client_assertion=minted,
    )
    _aadsts(again, 70021)
