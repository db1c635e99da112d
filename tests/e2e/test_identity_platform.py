"""The served emulator's identity platform, driven by azure-identity itself: certificates and
federated token files from the info file, what goes wrong (Entra's AADSTS codes), `ctsync init
--auth` configs that plan and apply with no secret anywhere, and no secret, key or token where
it does not belong (info file, server output)."""

from __future__ import annotations

import re
import signal
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, WorkloadIdentityCredential

from tests.e2e.served import Served, start
from tests.reliability.harness import Lab

pytestmark = pytest.mark.e2e

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")
ENTRY_KEYS = {
    "name",
    "tenant_id",
    "domain",
    "client_id",
    "client_secret",
    "permissions",
    "certificate_path",
    "federated_token_file",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A served emulator with its access log on; once the module's tests ran, everything it
    printed is checked for secrets, keys and tokens (a failure there is an error at teardown)."""
    served = start(tmp_path_factory.mktemp("identity"), "--replication-lag", "0", "--access-log")
    secrets = [entry["client_secret"] for entry in served.info["tenants"]]
    tokens = [Path(e["federated_token_file"]).read_text() for e in served.info["tenants"]]
    yield served
    served.process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = served.process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        stdout, stderr = served.process.communicate()
    printed = stdout + stderr
    assert "ready at" in printed  # it did print, so the checks below mean something
    assert "POST /" in printed  # the access log was on
    assert "PRIVATE KEY" not in printed
    assert not JWT.search(printed)
    for value in (*secrets, *tokens):
        assert value not in printed


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.control("POST", "reset")
    made.control("POST", "seed", {"scenario": "demo"})
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        made.env[name] = ""
    return made


def _network(served: Served) -> dict[str, Any]:
    return {
        "authority": served.info["authority"],
        "disable_instance_discovery": True,
        "connection_verify": served.info["ca_cert"],
    }


def _organization(served: Served, token: str) -> httpx.Response:
    with httpx.Client(verify=ssl.create_default_context(cafile=served.info["ca_cert"])) as http:
        return http.get(
            f"{served.info['graph_url']}/organization",
            headers={"authorization": f"Bearer {token}"},
        )


# -- the info file ---------------------------------------------------------------------------


def test_the_info_file_names_each_clients_certificate_and_token_file(server: Served) -> None:
    info = server.info
    assert set(info) == {
        "graph_url",
        "authority",
        "ca_cert",
        "control_url",
        "oidc_issuer",
        "tenants",
    }
    assert info["oidc_issuer"] == f"{info['authority']}/_oidc"
    text = server.info_file.read_text()
    assert "PRIVATE KEY" not in text
    assert not JWT.search(text)
    for entry in info["tenants"]:
        assert set(entry) == ENTRY_KEYS
        pem = Path(entry["certificate_path"])
        token = Path(entry["federated_token_file"])
        for path in (pem, token):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(pem.parent.stat().st_mode) == 0o700
        assert b"PRIVATE KEY-----" in pem.read_bytes()
        assert b"CERTIFICATE-----" in pem.read_bytes()
        assert JWT.match(token.read_text())


# -- azure-identity ----------------------------------------------------------------------------


def test_azure_identity_certificate_credential_gets_a_graph_token(lab: Lab) -> None:
    served = lab.served
    contoso = served.tenant("contoso")
    credential = CertificateCredential(
        contoso["tenant_id"], contoso["client_id"], contoso["certificate_path"], **_network(served)
    )

    token = credential.get_token(GRAPH_SCOPE)

    assert _organization(served, token.token).status_code == 200


def test_azure_identity_workload_identity_credential_gets_a_graph_token(lab: Lab) -> None:
    served = lab.served
    fabrikam = served.tenant("fabrikam")
    credential = WorkloadIdentityCredential(
        tenant_id=fabrikam["tenant_id"],
        client_id=fabrikam["client_id"],
        token_file_path=fabrikam["federated_token_file"],
        **_network(served),
    )

    token = credential.get_token(GRAPH_SCOPE)

    organization = _organization(served, token.token)
    assert organization.status_code == 200
    assert organization.json()["value"][0]["id"] == fabrikam["tenant_id"]


def test_another_clients_certificate_is_700027(lab: Lab) -> None:
    served = lab.served
    contoso, fabrikam = served.tenant("contoso"), served.tenant("fabrikam")
    credential = CertificateCredential(
        contoso["tenant_id"],
        contoso["client_id"],
        fabrikam["certificate_path"],
        **_network(served),
    )

    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(GRAPH_SCOPE)


def _token_file(lab: Lab, tmp_path: Path, **body: Any) -> str:
    minted = lab.control("POST", "oidc/token", body)
    path = tmp_path / "federated.token"
    path.write_text(minted["value"])
    return str(path)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("another tenant's subject", "AADSTS700213"),
        ("another audience", "AADSTS700212"),
        ("expired", "AADSTS700024"),
    ],
)
def test_a_federated_token_that_does_not_fit_is_refused(
    lab: Lab, tmp_path: Path, case: str, code: str
) -> None:
    served = lab.served
    contoso = served.tenant("contoso")
    body: dict[str, Any] = {"subject": "repo:ctsync/emulator:environment:contoso"}
    if case == "another tenant's subject":
        body["subject"] = "repo:ctsync/emulator:environment:fabrikam"
    elif case == "another audience":
        body["audience"] = "api://somewhere-else"
    else:
        body["lifetime"] = 30
    token_file = _token_file(lab, tmp_path, **body)
    if case == "expired":
        lab.control("POST", "clock/advance", {"seconds": 31})
    credential = WorkloadIdentityCredential(
        tenant_id=contoso["tenant_id"],
        client_id=contoso["client_id"],
        token_file_path=token_file,
        **_network(served),
    )

    with pytest.raises(ClientAuthenticationError, match=code):
        credential.get_token(GRAPH_SCOPE)


def test_a_fresh_token_from_the_control_api_refreshes_the_token_file(
    lab: Lab, tmp_path: Path
) -> None:
    served = lab.served
    contoso = served.tenant("contoso")
    token_file = _token_file(lab, tmp_path, subject="repo:ctsync/emulator:environment:contoso")
    credential = WorkloadIdentityCredential(
        tenant_id=contoso["tenant_id"],
        client_id=contoso["client_id"],
        token_file_path=token_file,
        **_network(served),
    )

    assert _organization(served, credential.get_token(GRAPH_SCOPE).token).status_code == 200


# -- `ctsync init --auth`, then plan and apply with no secret ------------------------------


@pytest.mark.parametrize("auth", ["certificate", "workload_identity"])
def test_init_auth_plans_and_applies_with_no_secret(lab: Lab, auth: str) -> None:
    folder = lab.workdir / auth
    folder.mkdir()
    config = folder / "ctsync.yaml"
    made = lab.ctsync(
        "init",
        "--from-emulator",
        str(lab.served.info_file),
        "--links",
        "contoso:fabrikam",
        "--auth",
        auth,
        "-o",
        str(config),
    )
    assert made.returncode == 0, made.stderr
    text = config.read_text()
    assert f"method: {auth}" in text
    assert "secret" not in text.lower().replace("no secret anywhere", "")
    for entry in lab.served.info["tenants"]:
        assert entry["client_secret"] not in text
    assert not (folder / ".ctsync" / "secrets").exists()

    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve")

    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for run in (made, planned, applied):
        assert "Traceback" not in run.stderr
        assert not JWT.search(run.stdout + run.stderr)
