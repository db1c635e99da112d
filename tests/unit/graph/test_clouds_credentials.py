from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ctsync.emulator.tls import generate_tls
from ctsync.errors import AuthenticationError, ConfigError
from ctsync.graph import CLOUDS, AuthSpec, SafeCredential, build_credential, resolve_cloud

TENANT = "11111111-1111-1111-1111-111111111111"

# -- clouds -----------------------------------------------------------------------------------


def test_national_clouds() -> None:
    assert set(CLOUDS) == {"global", "usgov", "usgovdod", "china"}
    assert CLOUDS["global"].graph_url == "https://graph.microsoft.com/v1.0"
    assert CLOUDS["global"].scope == "https://graph.microsoft.com/.default"
    assert CLOUDS["usgov"].graph_url == "https://graph.microsoft.us/v1.0"
    assert CLOUDS["usgovdod"].graph_url == "https://dod-graph.microsoft.us/v1.0"
    assert CLOUDS["usgovdod"].authority == "https://login.microsoftonline.us"
    assert CLOUDS["china"].authority == "https://login.chinacloudapi.cn"
    assert CLOUDS["china"].scope == "https://microsoftgraph.chinacloudapi.cn/.default"
    assert not any(c.custom for c in CLOUDS.values())
    assert resolve_cloud(" USGov ") is CLOUDS["usgov"]


def test_explicit_cloud(tmp_path: Path) -> None:
    ca = generate_tls(tmp_path).ca_cert
    cloud = resolve_cloud(
        {
            "graph_url": "https://127.0.0.1:8443/v1.0/",
            "authority": "https://127.0.0.1:8443",
            "ca_bundle": str(ca),
        }
    )
    assert cloud.graph_url == "https://127.0.0.1:8443/v1.0"
    assert cloud.scope == "https://127.0.0.1:8443/.default"
    assert cloud.origin == "https://127.0.0.1:8443"
    assert cloud.ca_bundle == str(ca)
    assert cloud.custom
    local = resolve_cloud(
        {"graph_url": "http://localhost:8080/beta", "authority": "http://localhost:8080"}
    )
    assert local.scope == "http://localhost:8080/.default"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("mars", "unknown cloud 'mars'"),
        ({"graph_url": "https://graph.example/v1.0"}, "authority is required"),
        ({"authority": "https://login.example"}, "graph_url is required"),
        ({"graph_url": "http://graph.example/v1.0", "authority": "https://l"}, "must use https"),
        ({"graph_url": "https://graph.example", "authority": "https://l"}, "/v1.0 or /beta"),
        ({"graph_url": "ftp://graph.example/v1.0", "authority": "https://l"}, "https URL"),
        ({"graph_url": "graph.example/v1.0", "authority": "https://l"}, "not an absolute URL"),
        (
            {
                "graph_url": "https://g.example/v1.0",
                "authority": "https://l",
                "ca_bundle": "/nope.pem",
            },
            "not a readable file",
        ),
        (
            {"graph_url": "https://g.example/v1.0", "authority": "https://l", "verify": False},
            "verify",
        ),
    ],
)
def test_bad_clouds_are_config_errors(value: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        resolve_cloud(value)


# -- auth specs -------------------------------------------------------------------------------


def test_auth_spec_repr_hides_secrets() -> None:
    spec = AuthSpec(
        "client_secret", client_id="app", client_secret="hunter2", certificate_password="pw"
    )
    assert "hunter2" not in repr(spec)
    assert "pw'" not in repr(spec)
    assert "app" in repr(spec)


@pytest.mark.parametrize(
    ("spec", "missing"),
    [
        (AuthSpec("client_secret"), "auth.client_id and auth.client_secret"),
        (AuthSpec("client_secret", client_id="a"), "auth.client_secret"),
        (AuthSpec("certificate", client_id="a"), "auth.certificate_path"),
        (AuthSpec("workload_identity", client_id="a"), "auth.token_file"),
    ],
)
def test_missing_fields_are_config_errors(
    spec: AuthSpec, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigError, match=f"needs {missing}( \\(or |$)"):
        build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"])


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown auth method 'password'"):
        AuthSpec("password")


def _certificate(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ctsync-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_each_method_builds_its_azure_identity_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    pem = _certificate(tmp_path / "cert.pem")
    specs = {
        "ClientSecretCredential": AuthSpec("client_secret", client_id="a", client_secret="s"),
        "CertificateCredential": AuthSpec("certificate", client_id="a", certificate_path=str(pem)),
        "WorkloadIdentityCredential": AuthSpec(
            "workload_identity", client_id="a", token_file=str(token_file)
        ),
        "ManagedIdentityCredential": AuthSpec("managed_identity", managed_identity_client_id="m"),
        "AzureCliCredential": AuthSpec("azure_cli"),
        "DeviceCodeCredential": AuthSpec("device_code", client_id="a"),
    }
    for expected, spec in specs.items():
        for cloud in (CLOUDS["global"], CLOUDS["usgov"]):
            credential = build_credential(spec, tenant_id=TENANT, cloud=cloud)
            assert isinstance(credential, SafeCredential)
            assert type(credential.inner).__name__ == expected
    # AKS injects these for workload identity
    monkeypatch.setenv("AZURE_CLIENT_ID", "from-env")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    credential = build_credential(
        AuthSpec("workload_identity"), tenant_id=TENANT, cloud=CLOUDS["global"]
    )
    assert type(credential.inner).__name__ == "WorkloadIdentityCredential"


def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    spec = AuthSpec("certificate", client_id="a", certificate_path=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="not a readable file"):
        build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    spec = AuthSpec(
        "certificate", client_id="a", certificate_path=str(garbage), certificate_password="pw9"
    )
    with pytest.raises(ConfigError) as info:
        build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"])
    assert "pw9" not in str(info.value)


def _find(obj: Any, attribute: str, depth: int = 0, seen: set[int] | None = None) -> list[Any]:
    """Every value of ``attribute`` reachable from ``obj`` through instance attributes."""
    seen = seen if seen is not None else set()
    if depth > 8 or id(obj) in seen or not hasattr(obj, "__dict__"):
        return []
    seen.add(id(obj))
    found = [getattr(obj, attribute)] if attribute in vars(obj) else []
    for value in vars(obj).values():
        found += _find(value, attribute, depth + 1, seen)
    return found


def test_custom_cloud_reaches_the_azure_identity_transport(tmp_path: Path) -> None:
    ca = generate_tls(tmp_path).ca_cert
    cloud = resolve_cloud(
        {
            "graph_url": "https://127.0.0.1:8443/v1.0",
            "authority": "https://127.0.0.1:8443",
            "ca_bundle": str(ca),
        }
    )
    spec = AuthSpec("client_secret", client_id="a", client_secret="s")
    inner = build_credential(spec, tenant_id=TENANT, cloud=cloud).inner
    # azure-core's RequestsTransport verifies TLS against connection_config.verify
    assert [c.verify for c in _find(inner, "connection_config")] == [str(ca)]
    assert _find(inner, "_authority") == ["https://127.0.0.1:8443"]
    assert _find(inner, "_instance_discovery") == [False]

    default = build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"]).inner
    assert [c.verify for c in _find(default, "connection_config")] == [True]
    assert _find(default, "_instance_discovery") == [None]


# -- SafeCredential ---------------------------------------------------------------------------


class _Failing:
    def get_token(self, *scopes: str) -> AccessToken:
        msg = "AADSTS7000215: Invalid client secret provided: 'hunter2' is wrong"
        raise ClientAuthenticationError(message=msg)


class _Working:
    def get_token(self, *scopes: str) -> AccessToken:
        return AccessToken("tok", 123)


def test_safe_credential_wraps_failures_without_the_secret() -> None:
    credential = SafeCredential(
        _Failing(), tenant_id=TENANT, method="client_secret", secrets=("hunter2",)
    )
    with pytest.raises(AuthenticationError) as info:
        credential.get_token("scope")
    text = str(info.value)
    assert "AADSTS7000215" in text
    assert TENANT in text
    assert "hunter2" not in text
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert SafeCredential(_Working(), tenant_id=TENANT, method="x").get_token("s").token == "tok"


# -- files that are not what they claim -------------------------------------------------------


def test_a_garbage_ca_bundle_is_a_config_error_not_an_ssl_error(tmp_path: Path) -> None:
    from ctsync.graph._http import HttpTransport

    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    endpoints = {"graph_url": "https://127.0.0.1:1/v1.0", "authority": "https://127.0.0.1:1"}
    with pytest.raises(ConfigError, match="is not a PEM file of CA certificates"):
        resolve_cloud({**endpoints, "ca_bundle": str(garbage)})
    with pytest.raises(ConfigError, match="is not a PEM file of CA certificates"):
        HttpTransport(verify=str(garbage))
    with pytest.raises(ConfigError, match="is a directory"):
        HttpTransport(verify=str(tmp_path))
    HttpTransport(verify=str(generate_tls(tmp_path / "tls").ca_cert))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is not a certificate"),
        (b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", "lacks the"),
        (b"\x30\x82\x01\x00", None),  # PKCS#12 is DER: a SEQUENCE; azure-identity opens it
    ],
)
def test_certificate_files_are_checked_for_their_shape(
    tmp_path: Path, content: bytes, problem: str | None
) -> None:
    path = tmp_path / "cert"
    path.write_bytes(content)
    spec = AuthSpec("certificate", client_id="a", certificate_path=str(path))
    with pytest.raises(ConfigError, match=problem or "cannot build a certificate credential"):
        build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"])


def test_a_certificate_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    spec = AuthSpec("certificate", client_id="a", certificate_path=str(tmp_path))
    with pytest.raises(ConfigError, match="it is a directory"):
        build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"])


def test_one_tls_context_per_trust_store_and_a_rewritten_bundle_is_read_again(
    tmp_path: Path,
) -> None:
    """Graph's pools and the sign-ins share one context per CA bundle (each loads its store);
    a bundle rewritten in place — a rotated CA — is loaded again, never served stale."""
    import shutil

    from ctsync.graph._http import shared_tls

    first = generate_tls(tmp_path / "one").ca_cert
    bundle = tmp_path / "ca.pem"
    shutil.copyfile(first, bundle)
    context = shared_tls(str(bundle))
    assert shared_tls(str(bundle)) is context
    shutil.copyfile(generate_tls(tmp_path / "two").ca_cert, bundle)
    os.utime(bundle, ns=(bundle.stat().st_atime_ns, bundle.stat().st_mtime_ns + 1_000_000))
    rotated = shared_tls(str(bundle))
    assert rotated is not context
    assert rotated.get_ca_certs() != context.get_ca_certs()  # type: ignore[union-attr]
    assert shared_tls(False) is False
