"""Sign-in material for a served emulator's clients beyond their secrets.

``ctsync emulator serve`` gives every seeded client two more ways to sign in, and lists both
in its info file:

- a **certificate**: an RSA key and a self-signed certificate, written together as one PEM file
  (mode 0600) under the state directory, registered on the client as a ``keyCredential``
  (``usage`` ``Verify``) — what azure-identity's ``CertificateCredential`` reads;
- a **federated token file**: a token of the built-in OIDC issuer (``core/oidc.py``) for the
  subject ``repo:ctsync/emulator:environment:<tenant>`` and audience
  ``api://AzureADTokenExchange``, with a federated identity credential on the client trusting
  exactly that issuer and subject — what ``WorkloadIdentityCredential`` reads from
  ``AZURE_FEDERATED_TOKEN_FILE``. It lives a year of emulator time; refresh it with control
  ``POST oidc/token`` (see ``docs/emulator.md``).

Both are registered as the emulator's *standing* credentials of the client id, so a client
reseeded after a control reset gets them again.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ctsync.emulator.core.clients import DEFAULT_FEDERATED_AUDIENCE
from ctsync.emulator.core.oidc import ActionsRun
from ctsync.emulator.tls import write_private

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = [
    "FEDERATED_CREDENTIAL_NAME",
    "ClientIdentityFiles",
    "federated_subject",
    "issue_client_identities",
    "key_credential",
    "self_signed_certificate",
]

#: The name of the federated identity credential ``serve`` registers on each client.
FEDERATED_CREDENTIAL_NAME = "ctsync-emulator-serve"
#: The pretend repository whose (per-tenant) environment the federated tokens are for.
FEDERATED_REPOSITORY = "ctsync/emulator"
CERTIFICATE_VALIDITY = timedelta(days=365)
FEDERATED_TOKEN_LIFETIME = timedelta(days=365)
#: Certificates start a day early, so a client whose clock lags still finds them valid.
BACKDATE = timedelta(days=1)


@dataclass(frozen=True)
class ClientIdentityFiles:
    """Where one client's certificate and federated token are (absolute paths)."""

    certificate_path: Path
    federated_token_file: Path


def federated_subject(tenant_name: str) -> str:
    """The ``sub`` of the federated tokens ``serve`` writes for a tenant's client."""
    return f"repo:{FEDERATED_REPOSITORY}:environment:{tenant_name}"


def self_signed_certificate(
    common_name: str, *, now: datetime, validity: timedelta = CERTIFICATE_VALIDITY
) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed certificate: ``(PEM of key and certificate, DER)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return key_pem + cert_pem, cert.public_bytes(serialization.Encoding.DER)


def key_credential(der: bytes, *, key_id: str, display_name: str | None = None) -> dict[str, Any]:
    """The ``keyCredential`` (wire shape, ``key`` included) registering a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    thumbprint = cert.fingerprint(hashes.SHA1())  # noqa: S303 - the thumbprint Entra shows
    return {
        "customKeyIdentifier": base64.b64encode(thumbprint).decode(),
        "displayName": display_name or cert.subject.rfc4514_string(),
        "endDateTime": _iso(cert.not_valid_after_utc),
        "key": base64.b64encode(der).decode(),
        "keyId": key_id,
        "startDateTime": _iso(cert.not_valid_before_utc),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def issue_client_identities(
    emulator: Emulator, directory: Path, *, origin: str
) -> dict[str, ClientIdentityFiles]:
    """Write a certificate and a federated token for every seeded client into ``directory``
    (mode 0700; files 0600), register both on the client, keep them as the client id's
    standing credentials; the files by client id."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    now = emulator.clock.now()
    issuer = emulator.oidc.issuer_url(origin)
    out: dict[str, ClientIdentityFiles] = {}
    for tenant in emulator.tenants.values():
        for client in tenant.clients.values():
            stem = _file_stem(f"{tenant.name}-{client.client_id}")
            pem, der = self_signed_certificate(f"ctsync emulator {tenant.name}", now=now)
            certificate_path = directory / f"{stem}.pem"
            write_private(certificate_path, pem)
            key_credentials = [
                key_credential(der, key_id=emulator.ids.guid(), display_name=f"CN={stem}")
            ]
            subject = federated_subject(tenant.name)
            federated = [
                {
                    "id": emulator.ids.guid(),
                    "name": FEDERATED_CREDENTIAL_NAME,
                    "issuer": issuer,
                    "subject": subject,
                    "audiences": [DEFAULT_FEDERATED_AUDIENCE],
                    "description": "The federated token file of ctsync emulator serve.",
                }
            ]
            run = ActionsRun(repository=FEDERATED_REPOSITORY, environment=tenant.name)
            claims = run.claims()
            claims.pop("sub")
            token, _ = emulator.oidc.mint(
                origin=origin,
                subject=subject,
                audience=DEFAULT_FEDERATED_AUDIENCE,
                now=now,
                token_id=emulator.ids.guid(),
                lifetime=FEDERATED_TOKEN_LIFETIME,
                claims=claims,
            )
            token_path = directory / f"{stem}.token"
            write_private(token_path, token.encode())
            client.key_credentials = key_credentials
            client.federated_credentials = federated
            emulator.standing_client_credentials[client.client_id.lower()] = (
                key_credentials,
                federated,
            )
            out[client.client_id] = ClientIdentityFiles(certificate_path, token_path)
            emulator.client_files[client.client_id.lower()] = {
                "certificate_path": str(certificate_path),
                "federated_token_file": str(token_path),
            }
    return out


def _file_stem(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
