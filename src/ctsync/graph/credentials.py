"""How ctsync gets tokens: auth specs, and the only place that touches azure-identity.

azure-identity is imported inside :func:`build_credential` and :class:`SafeCredential` only,
so ``import ctsync.graph`` (and ``ctsync --help``) stays fast.

Any object with azure-core's ``get_token(*scopes) -> AccessToken(token, expires_on)`` works as a
credential for :class:`~ctsync.graph.client.GraphClient`, sync or async; the emulator's tests
pass their own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from ctsync.errors import AuthenticationError, ConfigError

from .clouds import Cloud

__all__ = [
    "AUTH_METHODS",
    "AccessTokenLike",
    "AsyncTokenCredentialLike",
    "AuthSpec",
    "SafeCredential",
    "TokenCredentialLike",
    "build_credential",
    "check_certificate",
]

#: The ``auth.method`` values a config may use.
AUTH_METHODS: Final = (
    "client_secret",
    "certificate",
    "workload_identity",
    "managed_identity",
    "azure_cli",
    "device_code",
)


class AccessTokenLike(Protocol):
    """azure-core's ``AccessToken``: the bearer token and its expiry in epoch seconds."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


@runtime_checkable
class TokenCredentialLike(Protocol):
    """A synchronous azure-core ``TokenCredential`` (every azure.identity credential)."""

    def get_token(self, *scopes: str) -> AccessTokenLike: ...


@runtime_checkable
class AsyncTokenCredentialLike(Protocol):
    """An asynchronous credential (``azure.identity.aio`` style, or a test double)."""

    def get_token(self, *scopes: str) -> Awaitable[AccessTokenLike]: ...


@dataclass(frozen=True)
class AuthSpec:
    """How to authenticate to one tenant. Secrets are resolved values and never shown by ``repr``.

    ``workload_identity`` falls back to ``AZURE_CLIENT_ID`` and ``AZURE_FEDERATED_TOKEN_FILE``
    (what AKS injects) when ``client_id`` or ``token_file`` is not given.
    """

    method: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_password: str | None = field(default=None, repr=False)
    token_file: str | None = None
    managed_identity_client_id: str | None = None

    def __post_init__(self) -> None:
        if self.method not in AUTH_METHODS:
            msg = f"unknown auth method {self.method!r}; use one of {', '.join(AUTH_METHODS)}"
            raise ConfigError(msg)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming every field this method needs but lacks."""
        missing = [f"auth.{name}" for name in self._missing()]
        if missing:
            msg = f"auth method {self.method} needs {' and '.join(missing)}"
            raise ConfigError(msg)

    def _missing(self) -> list[str]:
        required: dict[str, tuple[str, ...]] = {
            "client_secret": ("client_id", "client_secret"),
            "certificate": ("client_id", "certificate_path"),
        }
        missing = [name for name in required.get(self.method, ()) if not getattr(self, name)]
        if self.method == "workload_identity":
            if not (self.client_id or os.environ.get("AZURE_CLIENT_ID")):
                missing.append("client_id")
            if not (self.token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")):
                missing.append("token_file")
        return missing

    def secrets(self) -> tuple[str, ...]:
        """The secret values, so error text can be scrubbed of them."""
        return tuple(s for s in (self.client_secret, self.certificate_password) if s)


def build_credential(spec: AuthSpec, *, tenant_id: str, cloud: Cloud) -> SafeCredential:
    """Construct the azure.identity credential ``spec`` describes, for ``tenant_id`` in ``cloud``.

    No network call happens here. Every credential that talks to an authority gets
    ``authority=cloud.authority``; for explicit (custom) clouds also
    ``disable_instance_discovery=True`` (azure-identity would otherwise ask
    login.microsoftonline.com whether the authority is known), and ``connection_verify`` when
    the cloud has a CA bundle. azure-identity hands its keyword arguments to
    ``azure.identity._internal.pipeline.build_pipeline``, which passes them to
    ``RequestsTransport(**kwargs)``; its ``ConnectionConfiguration(connection_verify=...)`` is what
    ``requests`` verifies TLS against (``azure/core/pipeline/transport/_requests_basic.py``).
    MSAL-based credentials (secret, certificate, device code) reach the network through the same
    pipeline (``MsalClient``), so the bundle covers authority discovery and the token call.

    ``azure_cli`` runs ``az`` and uses whatever cloud and CA ``az`` is configured with
    (``az cloud set``, ``REQUESTS_CA_BUNDLE``); ``managed_identity`` talks to the local identity
    endpoint, which needs neither.
    """
    spec.check()
    try:
        credential = _construct(spec, tenant_id=tenant_id, cloud=cloud)
    except ValueError as exc:
        # azure-identity validates its arguments (tenant id characters, certificate file,
        # https authority) with ValueError; its messages name the argument, not the secret.
        detail = _scrub(str(exc), spec)
        msg = f"cannot build a {spec.method} credential for tenant {tenant_id}: {detail}"
        raise ConfigError(msg) from None
    except OSError as exc:
        # A file it reads (the certificate) became unreadable after check_certificate.
        name = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or type(exc).__name__
        msg = (
            f"cannot build a {spec.method} credential for tenant {tenant_id}: "
            f"cannot read{name}: {reason}"
        )
        raise ConfigError(msg) from None
    return SafeCredential(
        credential, tenant_id=tenant_id, method=spec.method, secrets=spec.secrets()
    )


def _construct(spec: AuthSpec, *, tenant_id: str, cloud: Cloud) -> Any:
    from azure import identity

    network: dict[str, Any] = {"authority": cloud.authority}
    if cloud.custom:
        network["disable_instance_discovery"] = True
    if cloud.ca_bundle:
        network["connection_verify"] = cloud.ca_bundle

    # check() has run: the fields each method needs are set.
    client_id = spec.client_id or ""
    match spec.method:
        case "client_secret":
            return identity.ClientSecretCredential(
                tenant_id, client_id, spec.client_secret or "", **network
            )
        case "certificate":
            check_certificate(spec.certificate_path or "")
            return identity.CertificateCredential(
                tenant_id,
                client_id,
                spec.certificate_path,
                password=spec.certificate_password,
                **network,
            )
        case "workload_identity":
            return identity.WorkloadIdentityCredential(
                tenant_id=tenant_id,
                client_id=spec.client_id,
                token_file_path=spec.token_file,
                **network,
            )
        case "managed_identity":
            return identity.ManagedIdentityCredential(client_id=spec.managed_identity_client_id)
        case "azure_cli":
            return identity.AzureCliCredential(tenant_id=tenant_id)
        case "device_code":
            if spec.client_id:
                return identity.DeviceCodeCredential(spec.client_id, tenant_id=tenant_id, **network)
            return identity.DeviceCodeCredential(tenant_id=tenant_id, **network)
    msg = f"unknown auth method {spec.method!r}"  # pragma: no cover - AuthSpec checks this
    raise ConfigError(msg)


#: A certificate with its chain and private key is a few KB, PEM or PKCS#12; a larger file is
#: the wrong one, and is refused before anything reads it whole.
MAX_CERTIFICATE_BYTES: Final = 1024 * 1024


def check_certificate(path: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` is a readable file shaped like a certificate
    with its private key: PEM with both blocks, or PKCS#12 (DER).

    Only the shape: a PKCS#12 file may need the password to open, which is a secret read
    later. azure-identity parses the file when the credential is built.
    """
    label = f"auth.certificate_path {path!r}"
    try:
        info = Path(path).stat()
    except OSError as exc:
        msg = f"{label} is not a readable file ({exc.strerror or type(exc).__name__})"
        raise ConfigError(msg) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
        msg = f"{label} is not a readable file (it is {kind})"
        raise ConfigError(msg)
    if info.st_size > MAX_CERTIFICATE_BYTES:
        msg = f"{label} is too large for a certificate ({info.st_size:,} bytes)"
        raise ConfigError(msg)
    try:
        with Path(path).open("rb") as file:
            head = file.read(MAX_CERTIFICATE_BYTES)
    except OSError as exc:
        msg = f"{label} is not a readable file ({exc.strerror or type(exc).__name__})"
        raise ConfigError(msg) from None
    if b"-----BEGIN" in head:
        if b"CERTIFICATE-----" not in head or b"PRIVATE KEY-----" not in head:
            msg = f"{label} is PEM but lacks the certificate or its private key; put both in it"
            raise ConfigError(msg)
    elif not head.startswith(b"\x30"):  # an ASN.1 SEQUENCE: PKCS#12 in DER
        msg = (
            f"{label} is not a certificate: expected PEM (-----BEGIN CERTIFICATE----- and "
            "its -----BEGIN PRIVATE KEY-----) or PKCS#12"
        )
        raise ConfigError(msg)


class SafeCredential:
    """Wraps an azure.identity credential so failures surface as :class:`AuthenticationError`.

    azure-core raises ``ClientAuthenticationError`` (and ``CredentialUnavailableError``) with
    Entra's explanation (``AADSTS7000215: Invalid client secret provided...``). That text is kept,
    with any configured secret value masked, so the user learns what to fix.
    """

    def __init__(
        self, inner: Any, *, tenant_id: str, method: str, secrets: tuple[str, ...] = ()
    ) -> None:
        self.inner = inner
        self.tenant_id = tenant_id
        self.method = method
        self._secrets = secrets

    def __repr__(self) -> str:
        return f"SafeCredential({type(self.inner).__name__}, tenant_id={self.tenant_id!r})"

    def get_token(self, *scopes: str) -> AccessTokenLike:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            token: AccessTokenLike = self.inner.get_token(*scopes)
        except ClientAuthenticationError as exc:
            detail = _scrub(str(exc.message or exc), self._secrets)
            msg = (
                f"{self.method} credential could not get a token "
                f"for tenant {self.tenant_id}: {detail}"
            )
            raise AuthenticationError(msg, tenant=self.tenant_id) from None
        return token

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def _scrub(text: str, secrets: AuthSpec | tuple[str, ...]) -> str:
    values = secrets.secrets() if isinstance(secrets, AuthSpec) else secrets
    for value in values:
        text = text.replace(value, "***")
    return text
