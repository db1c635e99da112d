"""The one module that imports httpx: a thin async HTTP layer the client drives.

Everything above this sees :class:`RawResponse` and :class:`NoResponseError`, never httpx types,
except :data:`AsyncTransport`, which lets callers inject a transport (``httpx.MockTransport``
in unit tests, the emulator's in-process transport elsewhere).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ctsync.errors import ConfigError

from .clouds import check_ca_bundle

__all__ = [
    "AsyncTransport",
    "HttpTransport",
    "NoResponseError",
    "RawResponse",
    "fetch_oidc_token",
    "shared_pools",
    "shared_tls",
]

AsyncTransport = httpx.AsyncBaseTransport
"""What ``transport=`` accepts: any httpx async transport."""

#: Requests one pool has in flight at once (its connections, all kept alive).
MAX_IN_FLIGHT = 64
#: Connections per pool where many pools share the load (see :func:`shared_pools`).
POOL_CONNECTIONS = 8


@dataclass(frozen=True)
class RawResponse:
    """An HTTP answer: status, lower-cased headers (repeats joined by ``, ``) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class NoResponseError(Exception):
    """The request got no HTTP answer.

    ``sent`` says whether the request may have reached the server (a read timeout, a dropped
    connection) or certainly did not (connection refused, connect timeout, pool timeout).
    ``retryable`` is False for failures that will not heal by waiting (bad URL, TLS
    certificate verification).
    """

    def __init__(self, message: str, *, kind: str, sent: bool, retryable: bool = True) -> None:
        self.kind = kind
        self.sent = sent
        self.retryable = retryable
        super().__init__(message)


class HttpTransport:
    """Sends one request at a time through an httpx transport (a connection pool).

    The transport is driven directly, not through ``httpx.AsyncClient``: the client's layers
    (cookie jar, auth and redirect flows, URL merging, event hooks) do nothing ctsync wants —
    a cookie kept between Graph calls would be a surprise, a redirect would carry the bearer
    token elsewhere — and they were a tenth of a fleet run's CPU.
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: str | bool | ssl.SSLContext = True,
        timeout: float = 60.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        # A CA bundle path becomes an SSL context: httpx deprecates `verify=<path>`.
        tls: ssl.SSLContext | bool = _tls_context(verify) if isinstance(verify, str) else verify
        # Every connection the pool may open is kept alive (httpx's default keeps 20: a busy
        # fleet run closed and re-opened connections, a TLS handshake each).
        self._routes = _Routes(transport, tls, max_in_flight)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0)).as_dict()
        #: Requests in flight through this pool (``slots``: shared with sibling pools, a cap
        #: across them): the rest wait here, in order, instead of in httpcore's queue, which
        #: rescans every waiting request against every connection each time one frees up.
        self._slots = slots or asyncio.Semaphore(max(1, max_in_flight))

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
    ) -> RawResponse:
        """Send and read the whole response, or raise :class:`NoResponseError`."""
        try:
            request = httpx.Request(
                method,
                url,
                headers={**_DEFAULT_HEADERS, **headers},
                content=content,
                extensions={"timeout": self._timeout},
            )
            async with self._slots:
                response = await self._routes.to(request.url).handle_async_request(request)
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            cert_failure = isinstance(exc.__context__, ssl.SSLCertVerificationError) or (
                "CERTIFICATE_VERIFY_FAILED" in str(exc)
            )
            kind = "tls" if cert_failure else type(exc).__name__
            raise NoResponseError(
                _describe(exc), kind=kind, sent=False, retryable=not cert_failure
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            raise NoResponseError(
                _describe(exc), kind=type(exc).__name__, sent=False, retryable=False
            ) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise NoResponseError(_describe(exc), kind=type(exc).__name__, sent=True) from exc
        return RawResponse(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
        )

    def connections(self) -> int:
        """Connections this pool holds open now."""
        return self._routes.connections()

    async def aclose(self) -> None:
        await self._routes.aclose()


class _Routes:
    """The connection pools of one :class:`HttpTransport`: direct, or through the proxy the
    environment names for a host (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
    ``NO_PROXY``, read as ``requests`` and curl read them), decided once per host.

    An injected transport (the in-process emulator, a test's) takes every request."""

    def __init__(
        self, injected: httpx.AsyncBaseTransport | None, tls: ssl.SSLContext | bool, size: int
    ) -> None:
        self._injected = injected
        self._tls = tls
        self._size = size
        self._pools: dict[str | None, httpx.AsyncBaseTransport] = {}
        self._hosts: dict[tuple[str, str], str | None] = {}

    def to(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if self._injected is not None:
            return self._injected
        key = (url.scheme, url.host)
        if key not in self._hosts:
            self._hosts[key] = environment_proxy(url.scheme, url.host)
        proxy = self._hosts[key]
        pool = self._pools.get(proxy)
        if pool is None:
            limits = httpx.Limits(max_connections=self._size, max_keepalive_connections=self._size)
            pool = httpx.AsyncHTTPTransport(verify=self._tls, limits=limits, proxy=proxy)
            self._pools[proxy] = pool
        return pool

    def connections(self) -> int:
        # httpx keeps its httpcore pool (whose ``connections`` is public) as ``_pool``.
        return sum(
            len(getattr(getattr(p, "_pool", None), "connections", ())) for p in self._pools.values()
        )

    async def aclose(self) -> None:
        if self._injected is not None:
            await self._injected.aclose()
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


def environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy URL the environment names for ``scheme://host``, or None (direct)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


#: What ``httpx.AsyncClient`` would add: compressed answers (Graph gzips large ones).
_DEFAULT_HEADERS: Mapping[str, str] = {"Accept-Encoding": "gzip, deflate"}


def fetch_oidc_token(
    url: str, *, bearer: str, audience: str, ca_bundle: str | None = None, timeout: float = 30.0
) -> str:
    """A CI system's OIDC token for ``audience``, as GitHub Actions hands it out: ``GET
    {url}&audience=...`` with the job's request token as bearer, answering ``{"value": jwt}``.

    Synchronous (azure-identity calls it from its own thread). Raises :class:`NoResponseError`
    without an answer and ``ValueError`` (its message safe to show) for a bad one; neither
    carries the bearer or the token.
    """
    verify: ssl.SSLContext | bool = _tls_context(ca_bundle) if ca_bundle else True
    try:
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            response = client.get(
                url,
                params={"audience": audience},
                headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise NoResponseError(_describe(exc), kind=type(exc).__name__, sent=True) from None
    if response.status_code != 200:
        msg = f"the OIDC token request answered HTTP {response.status_code}"
        raise ValueError(msg)
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or value.count(".") != 2:
        msg = "the OIDC token request answered without a token (no JWT in 'value')"
        raise ValueError(msg)
    return value


def shared_pools(verify: str | bool | ssl.SSLContext, *, size: int) -> list[HttpTransport]:
    """Pools of :data:`POOL_CONNECTIONS` connections each, ``size`` in all and one cap on the
    requests in flight across them, for one host many clients share (the authority): httpcore
    looks at every connection of a pool (twice over, a syscall each) for every request it
    places, so a few small pools cost less than a big one."""
    tls: ssl.SSLContext | bool = _tls_context(verify) if isinstance(verify, str) else verify
    slots = asyncio.Semaphore(max(1, size))
    return [
        HttpTransport(verify=tls, max_in_flight=POOL_CONNECTIONS, slots=slots)
        for _ in range(max(1, -(-size // POOL_CONNECTIONS)))
    ]


def shared_tls(verify: str | bool) -> ssl.SSLContext | bool:
    """One TLS context for many pools (``verify``: a CA bundle path, or True for the system's
    trust): each context loads its trust store, a few MB and ~25 ms (the system's) a piece.
    Made once per process and trust store — Graph's pools and the sign-ins' share it — and
    made again if the bundle file changed."""
    if not verify:
        return False
    key = _bundle_key(verify) if isinstance(verify, str) else None
    with _TLS_LOCK:
        found = _TLS.get(key)
        if found is None:
            found = _TLS[key] = (
                _tls_context(verify) if isinstance(verify, str) else httpx.create_ssl_context()
            )
    return found


#: TLS contexts by trust store (None: the system's), for :func:`shared_tls`.
_TLS: dict[tuple[str, int, int] | None, ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def _bundle_key(ca_bundle: str) -> tuple[str, int, int]:
    """A CA bundle by path and by its file's state: a rewritten bundle is another one."""
    path = Path(ca_bundle)
    try:
        stat = path.stat()
    except OSError:
        return (ca_bundle, -1, -1)  # _tls_context says what is wrong with it
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """A client context trusting ``ca_bundle``; a bad bundle is a ConfigError, not SSLError."""
    # Checked first: OpenSSL would block on a FIFO or read /dev/zero forever.
    check_ca_bundle(ca_bundle)
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (ssl.SSLError, OSError) as exc:  # changed since the check
        msg = f"cloud ca_bundle {ca_bundle!r} cannot be used: {exc}"
        raise ConfigError(msg) from None


def _describe(exc: Exception) -> str:
    # httpx messages name the host and the OS error; they never include request headers.
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
