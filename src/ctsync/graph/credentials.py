"""How ctsync gets tokens: auth specs, and the only place that touches azure-identity.

azure-identity is imported inside :func:`build_credential` and :class:`SafeCredential` only,
so ``import ctsync.graph`` (and ``ctsync --help``) stays fast.

Any object with azure-core's ``get_token(*scopes) -> AccessToken(token, expires_on)`` works as a
credential for :class:`~ctsync.graph.client.GraphClient`, sync or async; the emulator's tests
pass their own.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import re
import stat
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

from ctsync.errors import AuthenticationError, ConfigError

from .clouds import Cloud

logger = logging.getLogger("ctsync.auth")

__all__ = [
    "AUTH_METHODS",
    "DELEGATED_METHODS",
    "GRAPH_CLI_CLIENT_ID",
    "TOKEN_CACHES",
    "AccessTokenLike",
    "AsyncTokenCredentialLike",
    "AuthSpec",
    "SafeCredential",
    "TokenCredentialLike",
    "TokenTransports",
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
    "interactive_browser",
)

#: Methods that sign a person in (their tokens carry delegated scopes and directory roles).
DELEGATED_METHODS: Final = ("azure_cli", "device_code", "interactive_browser")

#: "Microsoft Graph Command Line Tools" (the app Graph PowerShell signs in with): a public
#: client that may ask for any Microsoft Graph delegated scope. The default client of
#: ``device_code`` and ``interactive_browser``, which ask it for exactly ctsync's scopes.
GRAPH_CLI_CLIENT_ID: Final = "14d82eec-204b-4c2f-b7e8-296a70dab67e"

#: Where a signed-in admin's tokens are kept between runs: the OS keyring (encrypted), a
#: plain file (``~/.IdentityService``, mode 0600), or nowhere (sign in on every run).
TOKEN_CACHES: Final = ("keyring", "file", "none")

#: GitHub Actions' OIDC request variables, and the audience Entra's federated credentials
#: expect by default.
GITHUB_URL_ENV: Final = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN_ENV: Final = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
EXCHANGE_AUDIENCE: Final = "api://AzureADTokenExchange"


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
    (what AKS injects) when ``client_id`` or ``token_file`` is not given; without a token file
    it uses an Azure Pipelines service connection (``service_connection_id``) or, inside
    GitHub Actions, the job's OIDC token.
    """

    method: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_password: str | None = field(default=None, repr=False)
    token_file: str | None = None
    managed_identity_client_id: str | None = None
    #: Azure Pipelines: the service connection whose workload identity federation to use.
    service_connection_id: str | None = None
    #: Delegated methods: where tokens are kept between runs (:data:`TOKEN_CACHES`).
    token_cache: str = "keyring"
    #: Delegated methods: the Microsoft Graph scopes to ask for (instead of ``.default``).
    scopes: tuple[str, ...] = ()

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
            if self.federation() is None:
                missing.append(
                    "token_file (or $AZURE_FEDERATED_TOKEN_FILE, a service_connection_id with "
                    "$SYSTEM_ACCESSTOKEN in Azure Pipelines, or GitHub Actions' "
                    "id-token: write permission)"
                )
        return missing

    def federation(self) -> str | None:
        """Where a ``workload_identity`` gets its federated token: ``file``,
        ``azure_pipelines``, ``github`` (the job's OIDC endpoint), or None (nowhere)."""
        if self.token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
            return "file"
        if self.service_connection_id and os.environ.get("SYSTEM_ACCESSTOKEN"):
            return "azure_pipelines"
        if os.environ.get(GITHUB_URL_ENV) and os.environ.get(GITHUB_TOKEN_ENV):
            return "github"
        return None

    def secrets(self) -> tuple[str, ...]:
        """The secret values, so error text can be scrubbed of them."""
        return tuple(s for s in (self.client_secret, self.certificate_password) if s)


class TokenTransports:
    """One HTTP session (a pool of connections to the authority) per CA bundle, for every
    credential of a run.

    Left alone, azure-identity gives each credential its own ``requests`` session: a run over a
    fleet opened one TLS connection to the authority per tenant (a handshake, a thread's worth
    of CPU, each), although every tenant's token comes from the same host. Credentials built
    with :meth:`get` share one ``RequestsTransport`` over one session, sized for the token
    threads (:data:`ctsync.graph.client.TOKEN_THREADS`); closing a credential leaves it open
    (``session_owner=False``), :meth:`close` ends it.
    """

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self._made: dict[str | None, Any] = {}
        self._async: dict[str | None, Any] = {}

    def get_async(self, ca_bundle: str | None) -> Any:
        """The async transport (ctsync's httpx pools, per CA bundle) of azure-identity's
        ``aio`` credentials: see :func:`_authority_transport`."""
        transport = self._async.get(ca_bundle)
        if transport is None:
            from ._http import shared_pools, shared_tls

            pools = shared_pools(shared_tls(ca_bundle or True), size=self.pool_size)
            transport = _authority_transport()(pools)
            self._async[ca_bundle] = transport
        return transport

    def get(self, ca_bundle: str | None) -> Any:
        transport = self._made.get(ca_bundle)
        if transport is None:
            import requests
            from azure.core.pipeline.transport import RequestsTransport
            from urllib3.util.retry import Retry

            session = _session_reading_env_once(requests)
            # As azure-core sets up a session it owns: its retry policy retries, not urllib3.
            retries = Retry(total=False, redirect=False, raise_on_status=False)
            adapter = requests.adapters.HTTPAdapter(
                pool_maxsize=self.pool_size, max_retries=retries
            )
            for scheme in ("http://", "https://"):
                session.mount(scheme, adapter)
            transport = RequestsTransport(
                session=session, session_owner=False, connection_verify=ca_bundle or True
            )
            self._made[ca_bundle] = transport
        return transport

    def connections(self) -> int:
        """Connections to authorities: those the async pools hold open, and those the
        ``requests`` sessions opened so far (every credential's)."""
        opened: int = sum(transport.connections() for transport in self._async.values())
        for transport in self._made.values():
            adapters = {id(a): a for a in transport.session.adapters.values()}
            for adapter in adapters.values():
                for key in list(adapter.poolmanager.pools.keys()):
                    opened += adapter.poolmanager.pools[key].num_connections
        return opened

    def close(self) -> None:
        for transport in self._made.values():
            transport.session.close()
        self._made.clear()

    async def aclose(self) -> None:
        self.close()
        for transport in self._async.values():
            await transport.aclose()
        self._async.clear()


@functools.cache
def _authority_transport() -> Any:
    """azure-core's async transport interface over ctsync's own HTTP pools (the class is made
    on first use: azure-core is imported only then).

    azure-identity's ``aio`` credentials ask the authority through it: token requests run on
    the event loop beside the Graph calls — no thread each, no ``requests`` session — and the
    secret and certificate credentials post straight to ``{authority}/{tenant}/oauth2/v2.0/
    token`` (no OpenID discovery document first, which MSAL fetches per tenant). The pools are
    shared by every tenant's credential: a credential closing its transport leaves them open,
    :meth:`aclose` ends them."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    from azure.core.pipeline.transport import AsyncHttpTransport
    from azure.core.rest import AsyncHttpResponse
    from azure.core.utils import CaseInsensitiveDict

    from ._http import POOL_CONNECTIONS, HttpTransport, NoResponseError, RawResponse

    class Answer(AsyncHttpResponse):
        """A whole answer, already read, behind azure-core's response interface."""

        def __init__(self, request: Any, raw: RawResponse) -> None:
            self._request = request
            self._raw = raw
            self._headers = CaseInsensitiveDict(raw.headers)
            self._encoding: str | None = None

        @property
        def request(self) -> Any:
            return self._request

        @property
        def status_code(self) -> int:
            return self._raw.status

        @property
        def headers(self) -> Any:
            return self._headers

        @property
        def reason(self) -> str:
            try:
                return HTTPStatus(self._raw.status).phrase
            except ValueError:
                return ""

        @property
        def content_type(self) -> str | None:
            return self._raw.headers.get("content-type")

        @property
        def is_closed(self) -> bool:
            return True

        @property
        def is_stream_consumed(self) -> bool:
            return True

        @property
        def encoding(self) -> str | None:
            return self._encoding

        @encoding.setter
        def encoding(self, value: str | None) -> None:
            self._encoding = value

        @property
        def url(self) -> str:
            return str(self._request.url)

        @property
        def content(self) -> bytes:
            return self._raw.body

        def text(self, encoding: str | None = None) -> str:
            return self._raw.body.decode(encoding or self._encoding or "utf-8", "replace")

        def json(self) -> Any:
            return json.loads(self._raw.body)

        def raise_for_status(self) -> None:
            if self._raw.status >= 400:
                raise HttpResponseError(response=self)

        async def read(self) -> bytes:
            return self._raw.body

        async def iter_raw(self, **kwargs: Any) -> AsyncIterator[bytes]:
            yield self._raw.body

        async def iter_bytes(self, **kwargs: Any) -> AsyncIterator[bytes]:
            yield self._raw.body

        async def close(self) -> None:
            return None

        async def __aexit__(self, *args: object) -> None:
            return None

    class Transport(AsyncHttpTransport[Any, Any]):
        def __init__(self, pools: list[HttpTransport]) -> None:
            self._pools = pools
            self._busy = [0] * len(pools)

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *args: object) -> None:
            return None  # shared: aclose() ends it

        async def open(self) -> None:
            return None

        async def close(self) -> None:
            return None

        async def aclose(self) -> None:
            for pool in self._pools:
                await pool.aclose()

        def connections(self) -> int:
            """Connections open to the authority now (every pool's)."""
            return sum(pool.connections() for pool in self._pools)

        async def send(self, request: Any, **kwargs: Any) -> Any:
            body = request.content
            if isinstance(body, Mapping):  # a form (azure-core keeps it as a dict)
                content: bytes | None = urlencode(dict(body)).encode("ascii")
            elif isinstance(body, str):
                content = body.encode()
            else:
                content = body
            # The first pool with a free connection: one after another, tokens share one.
            turn = next(
                (i for i, n in enumerate(self._busy) if n < POOL_CONNECTIONS),
                min(range(len(self._busy)), key=self._busy.__getitem__),
            )
            self._busy[turn] += 1
            try:
                raw = await self._pools[turn].send(
                    request.method, request.url, headers=dict(request.headers), content=content
                )
            except NoResponseError as exc:
                error = ServiceResponseError if exc.sent else ServiceRequestError
                raise error(str(exc), error=exc) from None
            finally:
                self._busy[turn] -= 1
            return Answer(request, raw)

    return Transport


def _session_reading_env_once(requests: Any) -> Any:
    """A ``requests`` session that reads the environment's proxy and CA settings once per
    authority, not on every token request.

    ``requests`` merges them per request (``trust_env``): ``HTTPS_PROXY``/``NO_PROXY`` and
    ``REQUESTS_CA_BUNDLE`` looked up by walking the whole environment, a tenth of a token
    request's CPU — a fleet asks for a thousand tokens from one host. Same answers, kept.
    """

    class Session(requests.Session):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._merged: dict[tuple[str, ...], dict[str, Any]] = {}

        def merge_environment_settings(
            self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> dict[str, Any]:
            parts = urlsplit(url)
            key = (parts.scheme, parts.netloc, *map(repr, (proxies, stream, verify, cert)))
            merged = self._merged.get(key)
            if merged is None:
                merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
                self._merged[key] = merged
            out = dict(merged)
            out["proxies"] = dict(merged.get("proxies") or {})
            return out

    return Session()


def build_credential(
    spec: AuthSpec,
    *,
    tenant_id: str,
    cloud: Cloud,
    name: str | None = None,
    record_dir: Path | None = None,
    prompt: Callable[[str], None] | None = None,
    transport: Any = None,
    async_transport: Any = None,
) -> SafeCredential:
    """Construct the azure.identity credential ``spec`` describes, for ``tenant_id`` in ``cloud``.

    ``name`` is the tenant's name in the config (what errors call it); ``record_dir`` is where
    a signed-in admin's account record is kept between runs (delegated methods; the record
    names the account, it holds no token); ``prompt`` shows a device code sign-in's
    instructions (default: standard error); ``transport`` is the authority's HTTP transport to
    share (:meth:`TokenTransports.get`; default: the credential's own). With
    ``async_transport`` (:meth:`TokenTransports.get_async`), a client secret or certificate
    also gets azure-identity's async credential, used by :meth:`SafeCredential.aget_token`:
    one token request on the event loop instead of a discovery and a token request on a thread.

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
    label = name or tenant_id
    spec.check()
    record_path = record_dir / f"{_safe_name(label)}.json" if record_dir else None
    context = _Context(
        spec=spec,
        tenant_id=tenant_id,
        cloud=cloud,
        label=label,
        record_path=record_path,
        prompt=prompt or _stderr_prompt(label),
        transport=transport,
        async_transport=async_transport,
    )
    # An app signing in on the event loop needs its synchronous credential only if something
    # asks for a token synchronously: it is built then (a fleet's thousand would cost memory).
    ready = context.async_ready
    safe = SafeCredential(
        None if ready else context.construct(),
        tenant_id=tenant_id,
        method=spec.method,
        secrets=spec.secrets(),
        name=label,
        context=context,
    )
    if ready:
        safe.use_async(context.construct(asynchronous=True))
    return safe


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label) or "tenant"


def _stderr_prompt(label: str) -> Callable[[str], None]:
    def show(message: str) -> None:
        import sys

        print(f"[{label}] {message}", file=sys.stderr, flush=True)

    return show


@dataclass
class _Context:
    """What a credential is built from, kept so it can be rebuilt (without a token cache)."""

    spec: AuthSpec
    tenant_id: str
    cloud: Cloud
    label: str
    record_path: Path | None
    prompt: Callable[[str], None]
    persistent: bool = True
    transport: Any = None
    async_transport: Any = None

    #: The methods azure-identity's ``aio`` flavour serves without MSAL (straight to the
    #: token endpoint): an app-only secret or certificate, what a fleet signs in with.
    ASYNC_METHODS = frozenset({"client_secret", "certificate"})

    @property
    def async_ready(self) -> bool:
        return self.async_transport is not None and self.spec.method in self.ASYNC_METHODS

    @property
    def delegated(self) -> bool:
        return self.spec.method in ("device_code", "interactive_browser")

    def network(self) -> dict[str, Any]:
        out: dict[str, Any] = {"authority": self.cloud.authority}
        if self.cloud.custom:
            out["disable_instance_discovery"] = True
        if self.cloud.ca_bundle:
            out["connection_verify"] = self.cloud.ca_bundle
        if self.transport is not None:
            out["transport"] = self.transport
        return out

    def construct(self, *, asynchronous: bool = False) -> Any:
        try:
            return self._construct_async() if asynchronous else self._construct()
        except ValueError as exc:
            # azure-identity validates its arguments (tenant id characters, certificate file,
            # https authority) with ValueError; its messages name the argument, not the secret.
            detail = _scrub(str(exc), self.spec)
            msg = f"cannot build a {self.spec.method} credential for tenant {self.label}: {detail}"
            raise ConfigError(msg) from None
        except OSError as exc:
            # A file it reads (the certificate) became unreadable after check_certificate.
            file = f" {exc.filename}" if exc.filename else ""
            reason = exc.strerror or type(exc).__name__
            msg = (
                f"cannot build a {self.spec.method} credential for tenant {self.label}: "
                f"cannot read{file}: {reason}"
            )
            raise ConfigError(msg) from None

    def _construct(self) -> Any:
        from azure import identity

        spec, tenant_id, network = self.spec, self.tenant_id, self.network()
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
                return self._workload(identity, network)
            case "managed_identity":
                return identity.ManagedIdentityCredential(client_id=spec.managed_identity_client_id)
            case "azure_cli":
                return identity.AzureCliCredential(tenant_id=tenant_id)
            case "device_code":
                return identity.DeviceCodeCredential(
                    client_id or GRAPH_CLI_CLIENT_ID,
                    tenant_id=tenant_id,
                    prompt_callback=self._device_prompt,
                    **self._interactive(identity, network),
                )
            case "interactive_browser":
                return identity.InteractiveBrowserCredential(
                    client_id=client_id or GRAPH_CLI_CLIENT_ID,
                    tenant_id=tenant_id,
                    **self._interactive(identity, network),
                )
        msg = f"unknown auth method {spec.method!r}"  # pragma: no cover - AuthSpec checks this
        raise ConfigError(msg)

    def _construct_async(self) -> Any:
        from azure.identity import aio

        spec, tenant_id = self.spec, self.tenant_id
        network = {"authority": self.cloud.authority, "transport": self.async_transport}
        if spec.method == "certificate":
            check_certificate(spec.certificate_path or "")
            return aio.CertificateCredential(
                tenant_id,
                spec.client_id or "",
                spec.certificate_path,
                password=spec.certificate_password,
                **network,
            )
        return aio.ClientSecretCredential(
            tenant_id, spec.client_id or "", spec.client_secret or "", **network
        )

    def _workload(self, identity: Any, network: dict[str, Any]) -> Any:
        spec = self.spec
        client_id = spec.client_id or os.environ.get("AZURE_CLIENT_ID") or ""
        match spec.federation():
            case "azure_pipelines":
                return identity.AzurePipelinesCredential(
                    tenant_id=self.tenant_id,
                    client_id=client_id,
                    service_connection_id=spec.service_connection_id,
                    system_access_token=os.environ.get("SYSTEM_ACCESSTOKEN", ""),
                    **network,
                )
            case "github":
                return identity.ClientAssertionCredential(
                    self.tenant_id, client_id, self._github_assertion, **network
                )
        return identity.WorkloadIdentityCredential(
            tenant_id=self.tenant_id,
            client_id=spec.client_id,
            token_file_path=spec.token_file,
            **network,
        )

    def _github_assertion(self) -> str:
        """A fresh OIDC token of the GitHub Actions job (each call: they live minutes)."""
        from ._http import NoResponseError, fetch_oidc_token

        try:
            return fetch_oidc_token(
                os.environ[GITHUB_URL_ENV],
                bearer=os.environ[GITHUB_TOKEN_ENV],
                audience=EXCHANGE_AUDIENCE,
                ca_bundle=self.cloud.ca_bundle,
            )
        except (NoResponseError, ValueError, KeyError) as exc:
            from azure.core.exceptions import ClientAuthenticationError

            msg = f"cannot get the GitHub Actions OIDC token: {exc}"
            raise ClientAuthenticationError(message=msg) from None

    def _interactive(self, identity: Any, network: dict[str, Any]) -> dict[str, Any]:
        """``network`` with a signed-in admin's token cache and account record (one sign-in
        lasts). With a record, azure-identity takes the authority from it: it must not be
        given twice."""
        out: dict[str, Any] = dict(network)
        if self.persistent and self.spec.token_cache != "none":
            out["cache_persistence_options"] = identity.TokenCachePersistenceOptions(
                name="ctsync", allow_unencrypted_storage=self.spec.token_cache == "file"
            )
        record = self.load_record(identity)
        if record is not None:
            out["authentication_record"] = record
            out.pop("authority", None)
        return out

    def _device_prompt(self, verification_uri: str, user_code: str, expires_on: Any) -> None:
        self.prompt(
            f"to sign in to tenant {self.label} ({self.tenant_id}), open {verification_uri} "
            f"and enter the code {user_code}"
        )

    def load_record(self, identity: Any) -> Any:
        if self.record_path is None or not self.persistent or self.spec.token_cache == "none":
            return None
        try:
            return identity.AuthenticationRecord.deserialize(self.record_path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: sign in again

    def save_record(self, record: Any) -> None:
        if self.record_path is None or self.spec.token_cache == "none":
            return
        try:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.record_path.with_suffix(".tmp")
            tmp.write_text(record.serialize())
            tmp.chmod(0o600)
            tmp.replace(self.record_path)
        except OSError as exc:
            logger.warning(
                "could not keep the sign-in for tenant %s (%s): the next run asks again",
                self.label,
                exc.strerror or type(exc).__name__,
            )


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
    """Wraps an azure.identity credential: failures become one clear :class:`AuthenticationError`.

    azure-core raises ``ClientAuthenticationError`` (and ``CredentialUnavailableError``) with
    Entra's whole answer (``AADSTS7000215: Invalid client secret provided... Trace ID: ...``).
    The error ctsync shows names the tenant (by its config name), the method, what Entra said
    (its first sentence and code, any configured secret masked) and what to do about it.

    Delegated methods ask for ctsync's scopes by name instead of ``.default``, sign in once
    and keep the account record (``AuthenticationRecord``) so later runs are silent, and fall
    back to no token cache, saying so, where no OS keyring exists. Every token is checked to
    be for the configured tenant (a managed identity can only sign in to its home tenant).
    """

    def __init__(
        self,
        inner: Any,
        *,
        tenant_id: str,
        method: str,
        secrets: tuple[str, ...] = (),
        name: str | None = None,
        context: _Context | None = None,
    ) -> None:
        self._inner = inner
        self.tenant_id = tenant_id
        self.method = method
        self.name = name or tenant_id
        self._secrets = secrets
        self._context = context
        self._lock = threading.Lock()
        self._async_inner: Any = None

    @property
    def inner(self) -> Any:
        """The azure-identity credential (built on first use when ``inner=None`` was given)."""
        if self._inner is None:
            if self._context is None:  # pragma: no cover - build_credential gives one
                msg = "SafeCredential(None) needs a context to build its credential"
                raise TypeError(msg)
            self._inner = self._context.construct()
        return self._inner

    @inner.setter
    def inner(self, value: Any) -> None:
        self._inner = value

    def __repr__(self) -> str:
        method = self.method if self._inner is None else type(self._inner).__name__
        return f"SafeCredential({method}, tenant_id={self.tenant_id!r})"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike:
        from azure.core.exceptions import ClientAuthenticationError

        wanted = self._scopes(scopes)
        try:
            with self._lock:  # one sign-in prompt at a time per tenant
                self._sign_in(wanted)
                token: AccessTokenLike = self._call(wanted, kwargs)
        except ClientAuthenticationError as exc:
            raise self._explain(exc) from None
        self._check_tenant(token.token)
        return token

    def use_async(self, credential: Any) -> None:
        """Serve :meth:`aget_token` with ``credential`` (an azure-identity ``aio`` one)."""
        self._async_inner = credential

    @property
    def async_capable(self) -> bool:
        """Whether :meth:`aget_token` serves this credential (see :func:`build_credential`)."""
        return self._async_inner is not None

    async def aget_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike:
        """:meth:`get_token` on the event loop, through azure-identity's async credential
        (only when :attr:`async_capable`); the same errors and tenant check."""
        from azure.core.exceptions import ClientAuthenticationError

        if self._async_inner is None:
            msg = f"{self!r} has no async credential"
            raise TypeError(msg)
        try:
            token: AccessTokenLike = await self._async_inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError as exc:
            raise self._explain(exc) from None
        self._check_tenant(token.token)
        return token

    async def aclose(self) -> None:
        """Close both credentials (the async one's transport is shared: it stays open)."""
        if self._async_inner is not None:
            await self._async_inner.close()
            self._async_inner = None
        self.close()

    def _scopes(self, scopes: tuple[str, ...]) -> tuple[str, ...]:
        spec = self._context.spec if self._context else None
        if spec is None or not spec.scopes or not self._context or not self._context.delegated:
            return scopes
        out: list[str] = []
        for scope in scopes:
            if scope.endswith("/.default"):
                resource = scope[: -len("/.default")]
                out.extend(f"{resource}/{name}" for name in spec.scopes)
            else:
                out.append(scope)
        return tuple(out)

    def _call(self, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> AccessTokenLike:
        try:
            token: AccessTokenLike = self.inner.get_token(*scopes, **kwargs)
        except Exception as exc:
            if not self._keyring_missing(exc):
                raise
            self._without_cache()
            token = self.inner.get_token(*scopes, **kwargs)
        return token

    def _sign_in(self, scopes: tuple[str, ...]) -> None:
        """First run of a delegated method: sign in and keep the account record."""
        context = self._context
        if context is None or not context.delegated or context.record_path is None:
            return
        if context.spec.token_cache == "none" or not context.persistent:
            return
        from azure import identity

        if context.load_record(identity) is not None:
            return
        try:
            record = self.inner.authenticate(scopes=list(scopes))
        except Exception as exc:
            if not self._keyring_missing(exc):
                raise
            self._without_cache()
            return
        context.save_record(record)

    @staticmethod
    def _keyring_missing(exc: BaseException) -> bool:
        """MSAL's "cache encryption is impossible" (no libsecret, no display), raised as is or
        wrapped by azure-identity's ``ClientAuthenticationError``."""
        seen: BaseException | None = exc
        for _ in range(8):
            if seen is None:
                return False
            if "allow_unencrypted_storage" in str(seen):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    def _without_cache(self) -> None:
        """No OS keyring here: sign in on every run rather than keep tokens unencrypted."""
        context = self._context
        if context is None:
            return
        logger.warning(
            "no OS keyring here to keep tenant %s's sign-in encrypted: this run signs in "
            "again and forgets it. Set auth.token_cache: file to keep it in an unencrypted "
            "file (~/.IdentityService, mode 0600), or install a keyring (libsecret)",
            self.name,
        )
        context.persistent = False
        self.close()
        self.inner = context.construct()

    def _check_tenant(self, token: str) -> None:
        claims = _claims(token)
        tid = claims.get("tid")
        if isinstance(tid, str) and tid and tid.lower() != self.tenant_id.lower():
            hint = (
                "a managed identity can only sign in to its home tenant: use certificate or "
                "workload_identity for this tenant"
                if self.method == "managed_identity"
                else "check tenant_id in the config, and which account or app signs in"
            )
            msg = (
                f"tenant {self.name}: the {self.method} credential got a token for tenant "
                f"{tid}, not {self.tenant_id}; {hint}"
            )
            raise AuthenticationError(msg, tenant=self.tenant_id)

    def _explain(self, exc: Exception) -> AuthenticationError:
        message = getattr(exc, "message", None) or str(exc)
        said = _scrub(_first_sentence(str(message)), self._secrets)
        code = _aadsts(str(message))
        fix = _fix(code, self.method, self.name, self._context)
        if code is None and type(exc).__name__ == "CredentialUnavailableError":
            fix = _unavailable_fix(self.method, self.name, self.tenant_id)
        text = f"tenant {self.name}: {self.method} sign-in failed: {said}"
        if fix:
            text += f"\n  fix: {fix}"
        return AuthenticationError(text, tenant=self.tenant_id)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


def _claims(token: str) -> dict[str, Any]:
    """A JWT's payload, read (never verified, never kept): only ``tid`` is looked at."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_AADSTS = re.compile(r"AADSTS(\d+)")


def _aadsts(text: str) -> int | None:
    match = _AADSTS.search(text)
    return int(match.group(1)) if match else None


def _first_sentence(text: str) -> str:
    """Entra's explanation without its trace ids, timestamps and the SDK's boilerplate."""
    text = re.sub(r"\s+", " ", text).strip()
    for cut in (" Trace ID:", " Correlation ID:", " Timestamp:", " To troubleshoot, visit"):
        text = text.split(cut, 1)[0]
    match = _AADSTS.search(text)
    if match:  # keep "AADSTS7000215: Invalid client secret provided."
        tail = text[match.start() :]
        end = re.search(r"(?<=[.!?])\s", tail)
        return tail[: end.start()] if end else tail
    return text[:400]


def _fix(code: int | None, method: str, name: str, context: _Context | None) -> str | None:
    spec = context.spec if context else None
    client = spec.client_id if spec and spec.client_id else "ctsync's app"
    bootstrap = f"`ctsync bootstrap {name}` sets one up"
    fixes: dict[int, str] = {
        7000215: f"the client secret is wrong: create a new one for app {client} and put it "
        "where auth.client_secret_env / client_secret_file point",
        7000222: f"the client secret has expired: create a new one for app {client}",
        700016: f"no app {client} in this tenant: check tenant_id and client_id ({bootstrap})",
        90002: "no such tenant in this cloud: check tenant_id and cloud",
        700027: f"the certificate is not one of app {client}'s credentials: upload its public "
        f"certificate to the app, or run `ctsync bootstrap {name}` to add a new one",
        700024: "the federated token has expired (or is not valid yet): refresh the token file; "
        "in GitHub Actions or Azure Pipelines leave token_file out and ctsync fetches a fresh one",
        70021: f"no federated credential on app {client} matches this token's issuer, subject "
        f"and audience: add one for this pipeline (`ctsync bootstrap {name} --github ...`)",
        700211: f"no federated credential on app {client} trusts this token's issuer",
        700212: f"no federated credential on app {client} accepts this token's audience "
        f"(expected {EXCHANGE_AUDIENCE})",
        700213: f"no federated credential on app {client} matches this token's subject",
        7000112: f"app {client} is disabled in this tenant: enable it",
        65001: "admin consent is missing: an administrator must consent to ctsync's "
        f"permissions ({bootstrap})",
        90094: "this account may not consent to the permissions ctsync asks for: sign in as "
        "a Global Administrator or Privileged Role Administrator, or have one grant tenant-wide "
        "consent to the sign-in app (Enterprise applications > Permissions)",
        65004: "the sign-in was declined: run again and accept the permissions asked for",
        50057: "this account is disabled: sign in with another, or have it enabled",
        70019: "the code expired before the sign-in was completed: run again and enter the "
        "new code within 15 minutes",
        50076: "multi-factor authentication is required: sign in again interactively",
        50079: "multi-factor authentication registration is required for this account",
        50020: "this account is not a member of the tenant: sign in with an account of it",
        50034: "no such account in this tenant",
        500011: "Microsoft Graph is not available to this app in the tenant: check the cloud",
    }
    if code in fixes:
        return fixes[code]
    if method == "device_code" and code == 70016:
        return "the sign-in was not completed in time: run again and enter the code"
    return None


def _unavailable_fix(method: str, name: str, tenant_id: str) -> str | None:
    return {
        "azure_cli": f"sign in with `az login --tenant {tenant_id}` (or install the Azure CLI)",
        "managed_identity": "no managed identity here: it works only on an Azure VM, App "
        "Service, Functions, Container Apps or AKS with an identity assigned",
        "interactive_browser": "no browser here: use method device_code for tenant " + name,
        "workload_identity": "no federated token: give auth.token_file, or run in GitHub "
        "Actions with `permissions: id-token: write`, or in Azure Pipelines with "
        "service_connection_id and SYSTEM_ACCESSTOKEN",
    }.get(method)


def _scrub(text: str, secrets: AuthSpec | tuple[str, ...]) -> str:
    values = secrets.secrets() if isinstance(secrets, AuthSpec) else secrets
    for value in values:
        text = text.replace(value, "***")
    return text
