"""Who may sign in to a tenant: one view of every client, seeded or registered through Graph.

The token endpoint (``core/oauth.py``) and Graph's token check look clients up here, whatever
grant or credential they use. A client is either

- a seeded :class:`~ctsync.emulator.state.ClientApp` (scenarios; ``Tenant.clients``), whose
  secret, certificates and federated credentials the scenario or ``ctsync emulator serve``
  registered, or
- an application in ``Tenant.applications`` together with its service principal in the same
  tenant (matched on ``appId``): ``passwordCredentials`` (plaintext kept apart in
  ``Tenant.credential_secrets``), ``keyCredentials`` (certificates kept apart in
  ``Tenant.credential_keys``) and ``federatedIdentityCredentials``
  (``Tenant.federated_credentials``). Without a service principal in the tenant an application
  cannot sign in there (Entra answers AADSTS700016).

A client's ``roles`` are the application permissions granted to it: a seeded client's
``permissions`` plus every ``appRoleAssignment`` on the tenant's Microsoft Graph service
principal whose ``principalId`` is the client's service principal, as permission values.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsync.emulator.core.first_party import graph_role_values, microsoft_graph_service_principal
from ctsync.emulator.state import key_slot

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

    from ctsync.emulator.state import ClientApp, Tenant

__all__ = [
    "DEFAULT_FEDERATED_AUDIENCE",
    "ClientCertificate",
    "ClientSecret",
    "ClientView",
    "FederatedCredential",
    "certificate_thumbprints",
    "find_client",
    "parse_certificate",
]

#: The audience a federated identity credential trusts unless it names others.
DEFAULT_FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class ClientSecret:
    """A client secret: its value (compare only; never log it) and its validity."""

    value: str = field(repr=False)
    key_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate registered on a client (a ``keyCredential`` with ``usage`` ``Verify``)."""

    key_id: str
    public_key: CertificatePublicKeyTypes = field(repr=False)
    #: base64url (no padding) SHA-1 of the DER certificate: the ``x5t`` a client assertion names.
    x5t: str
    #: base64url (no padding) SHA-256 of the DER certificate: ``x5t#S256``.
    x5t_s256: str
    start: datetime | None = None
    end: datetime | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class FederatedCredential:
    """A ``federatedIdentityCredential``: whose external tokens the client accepts."""

    id: str
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = (DEFAULT_FEDERATED_AUDIENCE,)


@dataclass(frozen=True)
class ClientView:
    """Everything the identity platform needs to know about one client in one tenant."""

    client_id: str
    display_name: str
    #: The client's service principal in the tenant: a token's ``oid`` and ``sub``.
    object_id: str
    secrets: tuple[ClientSecret, ...] = ()
    certificates: tuple[ClientCertificate, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()
    #: Application permission values granted (a token's ``roles``).
    roles: frozenset[str] = frozenset()
    #: ``False`` when its service principal is disabled (``accountEnabled`` false).
    enabled: bool = True
    #: The application object's id; ``None`` for a seeded client.
    application_object_id: str | None = None

    @property
    def seeded(self) -> bool:
        return self.application_object_id is None

    def certificate(
        self, *, x5t: str | None = None, x5t_s256: str | None = None
    ) -> ClientCertificate | None:
        """The registered certificate a client assertion's header names, if any."""
        for cert in self.certificates:
            if x5t_s256 is not None and cert.x5t_s256 == x5t_s256.rstrip("="):
                return cert
            if x5t is not None and cert.x5t == x5t.rstrip("="):
                return cert
        return None


# -- lookup ----------------------------------------------------------------------------------


def find_client(tenant: Tenant, client_id: str) -> ClientView | None:
    """The client ``client_id`` (case-insensitive) in ``tenant``, or ``None``.

    A seeded client wins over an application with the same appId (they never share one unless
    a scenario says so).
    """
    wanted = client_id.lower()
    for client in tenant.clients.values():
        if client.client_id.lower() == wanted:
            return _seeded_view(tenant, client)
    app = next(
        (a for a in tenant.applications.values() if str(a.get("appId", "")).lower() == wanted),
        None,
    )
    if app is None:
        return None
    sp = next(
        (
            s
            for s in tenant.service_principals.values()
            if str(s.get("appId", "")).lower() == wanted
        ),
        None,
    )
    if sp is None:
        return None
    return _registered_view(tenant, app, sp)


def _seeded_view(tenant: Tenant, client: ClientApp) -> ClientView:
    return ClientView(
        client_id=client.client_id,
        display_name=client.display_name,
        object_id=client.object_id,
        secrets=(ClientSecret(client.client_secret),) if client.client_secret else (),
        certificates=tuple(_certificates(client.key_credentials, {})),
        federated_credentials=tuple(_federated(client.federated_credentials)),
        roles=frozenset(client.permissions) | _granted_roles(tenant, client.object_id),
    )


def _registered_view(tenant: Tenant, app: Mapping[str, Any], sp: Mapping[str, Any]) -> ClientView:
    secrets = []
    for cred in app.get("passwordCredentials") or []:
        key_id = str(cred.get("keyId") or "").lower()
        value = tenant.credential_secrets.get(key_id)
        if value is not None:
            secrets.append(
                ClientSecret(
                    value,
                    key_id=key_id,
                    start=_when(cred.get("startDateTime")),
                    end=_when(cred.get("endDateTime")),
                )
            )
    federated = tenant.federated_credentials.get(str(app["id"]), {}).values()
    return ClientView(
        client_id=str(app["appId"]),
        display_name=str(sp.get("displayName") or app.get("displayName") or ""),
        object_id=str(sp["id"]),
        secrets=tuple(secrets),
        certificates=tuple(
            _certificates(
                app.get("keyCredentials") or [],
                {
                    str(cred.get("keyId") or "").lower(): tenant.credential_keys[slot]
                    for cred in app.get("keyCredentials") or []
                    if (slot := key_slot(app, cred.get("keyId"))) in tenant.credential_keys
                },
            )
        ),
        federated_credentials=tuple(_federated(federated)),
        roles=_granted_roles(tenant, str(sp["id"])),
        enabled=sp.get("accountEnabled") is not False,
        application_object_id=str(app["id"]),
    )


def _granted_roles(tenant: Tenant, principal_id: str) -> frozenset[str]:
    graph = microsoft_graph_service_principal(tenant)
    values = graph_role_values()
    wanted = principal_id.lower()
    return frozenset(
        values[str(a["appRoleId"]).lower()]
        for a in tenant.app_role_assignments.get(graph["id"], {}).values()
        if str(a.get("principalId", "")).lower() == wanted
        and str(a.get("appRoleId", "")).lower() in values
    )


def _certificates(
    credentials: Iterable[Mapping[str, Any]], keys: Mapping[str, str]
) -> list[ClientCertificate]:
    out = []
    for cred in credentials:
        if str(cred.get("usage") or "Verify") != "Verify":
            continue
        key_id = str(cred.get("keyId") or "").lower()
        key = cred.get("key") or keys.get(key_id)
        if not isinstance(key, str):
            continue
        parsed = parse_certificate(key)
        if parsed is None:
            continue
        public_key, x5t, x5t_s256 = parsed
        out.append(
            ClientCertificate(
                key_id=key_id,
                public_key=public_key,
                x5t=x5t,
                x5t_s256=x5t_s256,
                start=_when(cred.get("startDateTime")),
                end=_when(cred.get("endDateTime")),
                display_name=cred.get("displayName"),
            )
        )
    return out


def _federated(credentials: Iterable[Mapping[str, Any]]) -> list[FederatedCredential]:
    return [
        FederatedCredential(
            id=str(cred.get("id") or ""),
            name=str(cred.get("name") or ""),
            issuer=str(cred.get("issuer") or ""),
            subject=str(cred.get("subject") or ""),
            audiences=tuple(str(a) for a in cred.get("audiences") or ())
            or (DEFAULT_FEDERATED_AUDIENCE,),
        )
        for cred in credentials
    ]


# -- certificates ----------------------------------------------------------------------------


def certificate_thumbprints(der: bytes) -> tuple[str, str]:
    """``(x5t, x5t#S256)`` of a DER certificate: base64url SHA-1 and SHA-256, no padding."""
    sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
    sha256 = hashlib.sha256(der).digest()
    return _b64url(sha1), _b64url(sha256)


@functools.lru_cache(maxsize=256)
def parse_certificate(key: str) -> tuple[CertificatePublicKeyTypes, str, str] | None:
    """Public key and thumbprints of a base64 DER (or PEM) certificate, or ``None``."""
    try:
        if key.lstrip().startswith("-----BEGIN"):
            cert = x509.load_pem_x509_certificate(key.encode())
        else:
            cert = x509.load_der_x509_certificate(base64.b64decode(key, validate=True))
    except (ValueError, binascii.Error):
        return None
    der = cert.public_bytes(serialization.Encoding.DER)
    x5t, x5t_s256 = certificate_thumbprints(der)
    return cert.public_key(), x5t, x5t_s256


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
