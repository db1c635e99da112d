"""``ctsync bootstrap``: give ctsync its own app registration in one tenant, signed in as an
administrator — the app, its service principal, exactly the application permissions the
tenant's place in the config needs (admin consent), and a credential: a certificate made here
(the private key never leaves this machine) or a federated credential for a CI pipeline.

Idempotent: the app is found again by its name and ctsync's tag (or by the client id the
config already names), and every piece that is there is reused. Every write goes through the
session's Graph client, so the audit trail records it. Returns data; the CLI renders it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ctsync.config import TenantSpec
from ctsync.engine import Session
from ctsync.errors import CtsyncError
from ctsync.graph.apps import GRAPH_APP_ID, ApplicationsApi, odata_string
from ctsync.graph.replication import until_readable
from ctsync.permissions import (
    BOOTSTRAP_ROLES,
    ROLE_IDS,
    Side,
    application_permissions,
)

__all__ = [
    "BOOTSTRAP_TAG",
    "GITHUB_ISSUER",
    "BootstrapResult",
    "Federation",
    "bootstrap",
    "github_subject",
]

#: On every app registration ``ctsync bootstrap`` makes: how a re-run finds it again.
BOOTSTRAP_TAG: Final = "ctsync:bootstrap"
GITHUB_ISSUER: Final = "https://token.actions.githubusercontent.com"
EXCHANGE_AUDIENCE: Final = "api://AzureADTokenExchange"
#: A certificate made by bootstrap is valid this long (docs/guide.md: renewing it).
CERTIFICATE_DAYS: Final = 365
#: How long a new app or service principal may take to replicate before bootstrap gives up.
READY_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class Federation:
    """A federated credential: tokens from ``issuer`` with exactly ``subject``."""

    issuer: str
    subject: str
    name: str
    audiences: tuple[str, ...] = (EXCHANGE_AUDIENCE,)
    description: str = ""


def github_subject(
    repository: str,
    *,
    branch: str | None = None,
    environment: str | None = None,
    pull_requests: bool = False,
) -> str:
    """The ``sub`` of a GitHub Actions OIDC token: a job in an environment, a pull request's
    run, or a branch's pushes (GitHub's default subject claims)."""
    if environment:
        return f"repo:{repository}:environment:{environment}"
    if pull_requests:
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:refs/heads/{branch or 'main'}"


@dataclass
class BootstrapResult:
    tenant: str
    tenant_id: str
    app_name: str
    sides: tuple[Side, ...]
    permissions: tuple[str, ...]
    credential: Literal["certificate", "federated"]
    dry_run: bool
    app_id: str | None = None
    app_object_id: str | None = None
    service_principal_id: str | None = None
    certificate_path: str | None = None
    federation: Federation | None = None
    #: What this run created (or would, with --dry-run), and what it found and reused.
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    #: The tenant's ``auth`` block to write into the config (no secret in it).
    auth: dict[str, Any] = field(default_factory=dict)
    signed_in_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "tenant_id": self.tenant_id,
            "app_name": self.app_name,
            "app_id": self.app_id,
            "app_object_id": self.app_object_id,
            "service_principal_id": self.service_principal_id,
            "sides": list(self.sides),
            "permissions": list(self.permissions),
            "credential": self.credential,
            "certificate_path": self.certificate_path,
            "federation": None
            if self.federation is None
            else {"issuer": self.federation.issuer, "subject": self.federation.subject},
            "created": self.created,
            "reused": self.reused,
            "auth": self.auth,
            "dry_run": self.dry_run,
            "signed_in_as": self.signed_in_as,
        }


async def bootstrap(
    session: Session,
    tenant: TenantSpec,
    *,
    sides: Sequence[Side],
    app_name: str,
    certificate_path: Path | None,
    config_dir: Path,
    federation: Federation | None = None,
    admin: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> BootstrapResult:
    """Set ctsync's app registration up in ``tenant`` (see the module docstring).

    ``admin`` holds the signed-in administrator's token claims (``wids``, ``upn``): checked
    for a role that may grant Microsoft Graph application permissions before anything is
    written. ``certificate_path`` is where the certificate is (or will be) kept, unless
    ``federation`` is given.
    """
    permissions = application_permissions(sides)
    result = BootstrapResult(
        tenant=tenant.name,
        tenant_id=tenant.tenant_id,
        app_name=app_name,
        sides=tuple(sides),
        permissions=permissions,
        credential="federated" if federation else "certificate",
        dry_run=dry_run,
        federation=federation,
    )
    api = ApplicationsApi(session.client(tenant.name))
    # The first call signs the admin in; their roles are known from its token.
    graph_sp = await _graph_service_principal(api, tenant.name)
    if admin is not None:
        result.signed_in_as = _who(admin)
        _check_roles(admin, tenant.name)
    roles = _role_ids(graph_sp, permissions, tenant.name)
    app = await _find_app(api, tenant, app_name)
    verb = "would create" if dry_run else "created"
    if app is None:
        result.created.append(f"app registration {app_name!r}")
        if dry_run:
            result.created.extend(_planned_rest(permissions, federation, certificate_path))
            return result
        app = await api.create_application(_app_body(app_name, roles))
        # Entra replicates a new app before every replica knows it: creating its service
        # principal at once can answer "does not reference a valid application object".
        made = str(app["id"])
        await until_readable(
            api.client,
            lambda: api.get_application(made, select=["id"]),
            "the new app",
            timeout=READY_TIMEOUT,
        )
    else:
        result.reused.append(f"app registration {app_name!r} ({app['appId']})")
    result.app_id, result.app_object_id = str(app["appId"]), str(app["id"])
    sp = await _find_sp(api, result.app_id)
    if sp is None:
        result.created.append("its service principal")
        if dry_run:
            result.created.extend(_planned_rest(permissions, federation, certificate_path))
            return result
        sp = await api.create_service_principal(result.app_id)
        principal = str(sp["id"])
        await until_readable(
            api.client,
            lambda: api.get_service_principal(principal, select=["id"]),
            "the new service principal",
            timeout=READY_TIMEOUT,
        )
    else:
        result.reused.append("its service principal")
    result.service_principal_id = str(sp["id"])
    granted = {
        str(a.get("appRoleId"))
        for a in await api.list_assignments(str(graph_sp["id"]))
        if str(a.get("principalId")).lower() == result.service_principal_id.lower()
    }
    for name in permissions:
        if roles[name] in granted:
            result.reused.append(f"permission {name}")
            continue
        result.created.append(f"permission {name} (admin consent)")
        if not dry_run:
            await api.assign(
                str(graph_sp["id"]),
                principal_id=result.service_principal_id,
                app_role_id=roles[name],
            )
    if federation is not None:
        await _federate(api, result, federation, verb)
        result.auth = {"method": "workload_identity", "client_id": result.app_id}
    else:
        assert certificate_path is not None
        await _certificate(api, app, result, certificate_path, dry_run)
        result.auth = {
            "method": "certificate",
            "client_id": result.app_id,
            "certificate_path": _relative(certificate_path, config_dir),
        }
    return result


def _planned_rest(
    permissions: Sequence[str], federation: Federation | None, certificate: Path | None
) -> list[str]:
    out = ["its service principal", *(f"permission {p} (admin consent)" for p in permissions)]
    if federation is not None:
        out.append(f"federated credential for {federation.subject}")
    else:
        out.append(f"certificate {certificate} (its private key stays on this machine)")
    return list(dict.fromkeys(out))


async def _graph_service_principal(api: ApplicationsApi, tenant: str) -> dict[str, Any]:
    found = await api.find_service_principals(
        f"appId eq {odata_string(GRAPH_APP_ID)}", select=["id", "appId", "appRoles"]
    )
    if not found:
        msg = f"tenant {tenant} has no Microsoft Graph service principal to grant permissions on"
        raise CtsyncError(msg)
    return found[0]


def _role_ids(graph_sp: dict[str, Any], names: Sequence[str], tenant: str) -> dict[str, str]:
    by_value = {
        str(r.get("value")): str(r.get("id"))
        for r in graph_sp.get("appRoles") or []
        if r.get("allowedMemberTypes") is None or "Application" in r.get("allowedMemberTypes")
    }
    missing = [n for n in names if n not in by_value]
    if missing:
        msg = (
            f"Microsoft Graph in tenant {tenant} offers no application permission "
            f"{', '.join(missing)}"
        )
        raise CtsyncError(msg)
    return {n: by_value[n] for n in names}


def _check_roles(admin: dict[str, Any], tenant: str) -> None:
    held = {str(w).lower() for w in admin.get("wids") or []}
    if any(ROLE_IDS[role] in held for role in BOOTSTRAP_ROLES):
        return
    who = _who(admin) or "the signed-in account"
    msg = (
        f"tenant {tenant}: {who} may not grant Microsoft Graph application permissions (admin "
        f"consent): that takes {' or '.join(BOOTSTRAP_ROLES)}. Sign in with an account that "
        "holds one, or have one activate it (PIM) and run bootstrap again. Nothing was changed."
    )
    raise CtsyncError(msg)


def _who(claims: dict[str, Any]) -> str | None:
    for key in ("upn", "preferred_username", "unique_name", "name"):
        value = claims.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def _find_app(
    api: ApplicationsApi, tenant: TenantSpec, app_name: str
) -> dict[str, Any] | None:
    select = ["id", "appId", "displayName", "tags", "keyCredentials"]
    # An app-only credential the config already names is the app to complete (a re-run, or
    # one an admin made by hand); a delegated method's client is Microsoft's, not the tenant's.
    app_only = tenant.auth.method in ("client_secret", "certificate", "workload_identity")
    configured = tenant.auth.client_id if app_only else None
    if configured:
        by_id = await api.find_applications(f"appId eq {odata_string(configured)}", select=select)
        if by_id:
            return by_id[0]
    named = [
        app
        for app in await api.find_applications(
            f"displayName eq {odata_string(app_name)}", select=select
        )
        if BOOTSTRAP_TAG in (app.get("tags") or [])
    ]
    if len(named) > 1:
        ids = ", ".join(str(a.get("appId")) for a in named)
        msg = (
            f"tenant {tenant.name} has {len(named)} app registrations named {app_name!r} made by "
            f"ctsync bootstrap ({ids}): put the one to use as auth.client_id in the config, "
            "then run bootstrap again"
        )
        raise CtsyncError(msg)
    return named[0] if named else None


async def _find_sp(api: ApplicationsApi, app_id: str) -> dict[str, Any] | None:
    found = await api.find_service_principals(
        f"appId eq {odata_string(app_id)}", select=["id", "appId"]
    )
    return found[0] if found else None


def _app_body(name: str, roles: dict[str, str]) -> dict[str, Any]:
    return {
        "displayName": name,
        "signInAudience": "AzureADMyOrg",
        "tags": [BOOTSTRAP_TAG],
        "notes": "Made by `ctsync bootstrap`: ctsync's app-only identity in this tenant.",
        "requiredResourceAccess": [
            {
                "resourceAppId": GRAPH_APP_ID,
                "resourceAccess": [{"id": role, "type": "Role"} for role in roles.values()],
            }
        ],
    }


async def _federate(
    api: ApplicationsApi, result: BootstrapResult, federation: Federation, verb: str
) -> None:
    assert result.app_object_id is not None
    existing = await api.federated_credentials(result.app_object_id)
    for credential in existing:
        if (credential.get("issuer"), credential.get("subject")) == (
            federation.issuer,
            federation.subject,
        ):
            result.reused.append(f"federated credential for {federation.subject}")
            return
    result.created.append(f"federated credential for {federation.subject}")
    if verb == "created":
        await api.add_federated_credential(
            result.app_object_id,
            {
                "name": federation.name,
                "issuer": federation.issuer,
                "subject": federation.subject,
                "audiences": list(federation.audiences),
                "description": federation.description or "ctsync bootstrap",
            },
        )


async def _certificate(
    api: ApplicationsApi,
    app: dict[str, Any],
    result: BootstrapResult,
    path: Path,
    dry_run: bool,
) -> None:
    """Reuse the certificate at ``path`` if the app knows it; else make one and register it."""
    registered = {_key_thumbprint(k) for k in app.get("keyCredentials") or []}
    result.certificate_path = str(path)
    if path.exists():
        thumbprint = _thumbprint(path)
        if thumbprint in registered:
            result.reused.append(f"certificate {path}")
            return
    if registered and not dry_run:
        msg = (
            f"app {result.app_id} in tenant {result.tenant} already has certificates this "
            f"machine does not hold (no private key for them at {path}); ctsync will not replace "
            "them. Remove them from the app (Certificates & secrets) and run bootstrap again, or "
            "give --certificate the file that holds one"
        )
        raise CtsyncError(msg)
    result.created.append(f"certificate {path} (its private key stays on this machine)")
    if dry_run:
        return
    pem, der, _thumbprint_hex = _new_certificate(result.app_name)
    _write_private(path, pem)
    assert result.app_object_id is not None
    # The key credential's dates must lie within the certificate's (Entra refuses others):
    # taken from the certificate itself, whose times are whole seconds.
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    await api.update_application(
        result.app_object_id,
        {
            "keyCredentials": [
                {
                    "type": "AsymmetricX509Cert",
                    "usage": "Verify",
                    "key": base64.b64encode(der).decode(),
                    "displayName": f"CN={result.app_name}",
                    "startDateTime": start.isoformat().replace("+00:00", "Z"),
                    "endDateTime": end.isoformat().replace("+00:00", "Z"),
                }
            ]
        },
    )


def _new_certificate(name: str) -> tuple[bytes, bytes, str]:
    """A self-signed RSA certificate: (PEM with key and certificate, DER certificate, SHA-1
    thumbprint in upper-case hex, as Entra shows it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "ctsync")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + certificate.public_bytes(serialization.Encoding.PEM)
    der = certificate.public_bytes(serialization.Encoding.DER)
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t
    return pem, der, thumbprint


def _key_thumbprint(credential: dict[str, Any]) -> str:
    """A key credential's certificate thumbprint (upper-case hex): Graph keeps it, base64, in
    ``customKeyIdentifier`` (Edm.Binary) unless whoever added the key chose another."""
    value = credential.get("customKeyIdentifier")
    if not isinstance(value, str) or not value:
        return f"key {credential.get('keyId')}"
    try:
        return base64.b64decode(value, validate=True).hex().upper()
    except ValueError:
        return value.upper()


def _thumbprint(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        msg = f"{path} is not a PEM certificate ctsync can read: {exc}"
        raise CtsyncError(msg) from None
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only, from the first byte (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    tmp.replace(path)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
