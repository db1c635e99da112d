"""``ctsync emulator serve`` as a real process: azure-identity over HTTPS with the emulator's
CA, Graph policy CRUD with httpx, clean shutdown on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.identity import ClientSecretCredential

from tests.e2e.served import Served, start

pytestmark = pytest.mark.e2e

POLICY = "/policies/crossTenantAccessPolicy"


def _credential(served: Served, name: str, **kwargs: Any) -> ClientSecretCredential:
    tenant = served.tenant(name)
    kwargs.setdefault("connection_verify", served.info["ca_cert"])
    return ClientSecretCredential(
        tenant["tenant_id"],
        tenant["client_id"],
        kwargs.pop("client_secret", tenant["client_secret"]),
        authority=served.info["authority"],
        disable_instance_discovery=True,
        **kwargs,
    )


def _start(tmp: Path, *extra: str) -> Served:
    return start(tmp, *extra)


def _stop(served: Served, sig: int) -> tuple[int, str]:
    served.process.send_signal(sig)
    try:
        _, err = served.process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        _, err = served.process.communicate()
    return served.process.returncode, err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # These tests drive Graph by hand, a create and its use back to back: no replication lag.
    served = _start(tmp_path_factory.mktemp("serve"), "--replication-lag", "0")
    yield served
    if served.process.poll() is None:
        _stop(served, signal.SIGTERM)


def _graph(served: Served, name: str) -> httpx.Client:
    token = _credential(served, name).get_token("https://graph.microsoft.com/.default").token
    return httpx.Client(
        base_url=served.info["graph_url"],
        verify=ssl.create_default_context(cafile=served.info["ca_cert"]),
        headers={"authorization": f"Bearer {token}"},
    )


def test_info_file_describes_the_server(served: Served) -> None:
    info = served.info
    port = info["authority"].rsplit(":", 1)[1]
    assert set(info) == {
        "graph_url",
        "authority",
        "ca_cert",
        "control_url",
        "oidc_issuer",
        "tenants",
    }
    assert info["oidc_issuer"] == f"https://127.0.0.1:{port}/_oidc"
    assert info["authority"] == f"https://127.0.0.1:{port}"
    assert info["graph_url"] == f"https://127.0.0.1:{port}/v1.0"
    assert info["control_url"] == f"https://127.0.0.1:{port}/_emulator"
    assert Path(info["ca_cert"]).is_absolute()
    assert Path(info["ca_cert"]).is_file()
    assert {"contoso", "fabrikam"} <= {t["name"] for t in info["tenants"]}
    for tenant in info["tenants"]:
        assert set(tenant) == {
            "name",
            "tenant_id",
            "domain",
            "client_id",
            "client_secret",
            "permissions",
            "certificate_path",
            "federated_token_file",
        }
        assert Path(tenant["certificate_path"]).is_file()
        assert Path(tenant["federated_token_file"]).is_file()
    assert served.info_file.stat().st_mode & 0o777 == 0o600


def test_azure_identity_gets_tokens_over_tls(served: Served) -> None:
    tenant = served.tenant("contoso")
    with _credential(served, "contoso") as credential:
        own = credential.get_token(f"{served.info['authority']}/.default")
        graph = credential.get_token("https://graph.microsoft.com/.default")

    for access, audience in (
        (own, served.info["authority"]),
        (graph, "https://graph.microsoft.com"),
    ):
        claims = jwt.decode(access.token, options={"verify_signature": False})
        assert claims["tid"] == tenant["tenant_id"]
        assert claims["appid"] == tenant["client_id"]
        assert claims["aud"] == audience
        assert access.expires_on > time.time() + 3000


def test_azure_identity_reports_entra_errors(served: Served) -> None:
    with (
        _credential(served, "contoso", client_secret="wrong") as credential,
        pytest.raises(ClientAuthenticationError, match="AADSTS7000215"),
    ):
        credential.get_token("https://graph.microsoft.com/.default")


def test_the_emulator_ca_is_what_makes_tls_trusted(served: Served) -> None:
    with (
        _credential(served, "contoso", connection_verify=True, retry_total=0) as credential,
        pytest.raises(AzureError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        credential.get_token("https://graph.microsoft.com/.default")


def test_policy_crud_over_https(served: Served) -> None:
    fabrikam = served.tenant("fabrikam")["tenant_id"]
    partners = f"{POLICY}/partners"
    sync = f"{partners}/{fabrikam}/identitySynchronization"
    errors: list[tuple[httpx.Response, str]] = []

    with _graph(served, "contoso") as graph:
        created = graph.post(partners, json={"tenantId": fabrikam})
        assert created.status_code == 201, created.text
        assert created.json()["tenantId"] == fabrikam

        duplicate = graph.post(
            partners, json={"tenantId": fabrikam}, headers={"client-request-id": "dup-1"}
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"
        errors.append((duplicate, "dup-1"))

        body = {"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": True}}
        assert graph.put(sync, json=body).status_code == 204
        again = graph.put(sync, json=body, headers={"client-request-id": "dup-2"})
        assert again.status_code == 409
        errors.append((again, "dup-2"))
        assert graph.get(sync).json()["userSyncInbound"] == {"isSyncAllowed": True}

        unknown = "11111111-2222-4333-8444-555555555555"
        missing = graph.get(f"{partners}/{unknown}", headers={"client-request-id": "nf-1"})
        assert missing.status_code == 404
        errors.append((missing, "nf-1"))

    for response, client_request_id in errors:
        inner = response.json()["error"]["innerError"]
        assert inner["client-request-id"] == client_request_id
        assert response.headers["client-request-id"] == client_request_id
        assert inner["request-id"] == response.headers["request-id"]


def test_ctsync_graph_client_over_https(served: Served) -> None:
    """ctsync's own stack end to end: AuthSpec → azure-identity → GraphClient → HTTPS."""
    from ctsync.graph import (
        AuthSpec,
        CrossTenantAccessPolicyApi,
        GraphClient,
        build_credential,
        resolve_cloud,
    )

    info = served.info
    tailspin, contoso = served.tenant("tailspin"), served.tenant("contoso")
    cloud = resolve_cloud(
        {
            "graph_url": info["graph_url"],
            "authority": info["authority"],
            "ca_bundle": info["ca_cert"],
        }
    )
    spec = AuthSpec(
        method="client_secret",
        client_id=tailspin["client_id"],
        client_secret=tailspin["client_secret"],
    )
    credential = build_credential(spec, tenant_id=tailspin["tenant_id"], cloud=cloud)

    async def walk() -> None:
        async with GraphClient(
            tenant_id=tailspin["tenant_id"], credential=credential, cloud=cloud
        ) as graph:
            policy = CrossTenantAccessPolicyApi(graph)
            await policy.create_partner(
                contoso["tenant_id"], automatic_user_consent_settings={"inboundAllowed": True}
            )
            await policy.put_identity_sync(contoso["tenant_id"], display_name="Contoso")
            partner = await policy.get_partner(contoso["tenant_id"])
            assert partner.automatic_user_consent_settings is not None
            assert partner.automatic_user_consent_settings.inbound_allowed is True
            await policy.delete_identity_sync(contoso["tenant_id"])
            await policy.delete_partner(contoso["tenant_id"])

    asyncio.run(walk())


def test_plain_http_to_the_https_port_fails(served: Served) -> None:
    plain = served.info["authority"].replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/v1.0/policies/crossTenantAccessPolicy/default", timeout=5)


def test_sigterm_stops_the_server_cleanly(served: Served) -> None:
    returncode, err = _stop(served, signal.SIGTERM)

    assert returncode == 0, err
    assert not served.info_file.exists()
    assert served.info["authority"] in err  # the ready line
    assert "Traceback" not in err
    for tenant in served.info["tenants"]:
        assert tenant["client_secret"] not in err


def test_no_tls_smoke(tmp_path: Path) -> None:
    served = _start(tmp_path, "--no-tls", "--scenario", "demo")
    try:
        info = served.info
        assert info["ca_cert"] is None
        assert info["authority"].startswith("http://127.0.0.1:")
        tenant = served.tenant("fabrikam")
        with httpx.Client(base_url=info["authority"]) as http:
            token = http.post(
                f"/{tenant['domain']}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": tenant["client_id"],
                    "client_secret": tenant["client_secret"],
                    "scope": f"{info['authority']}/.default",
                },
            )
            assert token.status_code == 200, token.text
            policy = http.get(
                "/v1.0/policies/crossTenantAccessPolicy/default",
                headers={"authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert policy.status_code == 200, policy.text
    finally:
        returncode, err = _stop(served, signal.SIGINT)
    assert returncode == 0, err
    assert not served.info_file.exists()
