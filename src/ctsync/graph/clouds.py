"""National clouds and explicit endpoints (the emulator, a proxy, a sovereign cloud).

A :class:`Cloud` says where Graph lives, where tokens come from, which scope to ask for and
which CA bundle to trust. The token is only ever sent to the origin of ``graph_url``.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ctsync.errors import ConfigError

__all__ = [
    "CLOUDS",
    "CLOUD_ENDPOINTS",
    "Cloud",
    "check_ca_bundle",
    "cloud_crossing",
    "origin_of",
    "resolve_cloud",
]


@dataclass(frozen=True)
class Cloud:
    """Where one Microsoft Graph deployment and its token authority live."""

    name: str
    graph_url: str
    """Version root, e.g. ``https://graph.microsoft.com/v1.0`` (no trailing slash)."""
    authority: str
    """Token authority host URL, e.g. ``https://login.microsoftonline.com``."""
    scope: str
    """The scope asked for in client-credential flows, e.g. ``https://graph.microsoft.com/.default``."""
    ca_bundle: str | None = None
    """A PEM file to trust instead of the system store (the emulator's local CA)."""
    custom: bool = False
    """True for explicit endpoints: azure-identity then skips authority instance discovery."""
    endpoint: str | None = None
    """The Microsoft cloud it belongs to, as the cross-tenant access policy's
    ``allowedCloudEndpoints`` names it (``microsoftonline.com``, ``microsoftonline.us``,
    ``partner.microsoftonline.cn``); None for explicit endpoints that do not say."""

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of ``graph_url``: the only place a token is sent."""
        return origin_of(self.graph_url)


def _named(name: str, graph_host: str, login_host: str, endpoint: str) -> Cloud:
    return Cloud(
        name=name,
        graph_url=f"https://{graph_host}/v1.0",
        authority=f"https://{login_host}",
        scope=f"https://{graph_host}/.default",
        endpoint=endpoint,
    )


#: The values of ``allowedCloudEndpoints`` (Graph v1.0 crossTenantAccessPolicy).
CLOUD_ENDPOINTS = ("microsoftonline.com", "microsoftonline.us", "partner.microsoftonline.cn")
_COM, _US, _CN = CLOUD_ENDPOINTS
#: The cloud pairs Microsoft supports for cross-cloud synchronization (source, target).
_SYNC_PAIRS = frozenset({(_COM, _US), (_US, _COM), (_COM, _CN)})


#: The national clouds, by the names a config file uses.
CLOUDS: Mapping[str, Cloud] = {
    "global": _named("global", "graph.microsoft.com", "login.microsoftonline.com", _COM),
    "usgov": _named("usgov", "graph.microsoft.us", "login.microsoftonline.us", _US),
    "usgovdod": _named("usgovdod", "dod-graph.microsoft.us", "login.microsoftonline.us", _US),
    "china": _named("china", "microsoftgraph.chinacloudapi.cn", "login.chinacloudapi.cn", _CN),
}

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_EXPLICIT_KEYS = frozenset({"name", "graph_url", "authority", "ca_bundle", "endpoint"})


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` with the default port dropped and the host lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in {("https", 443), ("http", 80)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def resolve_cloud(value: str | Mapping[str, Any] | Cloud) -> Cloud:
    """A :class:`Cloud` from a name (``global``, ``usgov``, ``usgovdod``, ``china``) or a mapping.

    A mapping gives explicit endpoints: ``graph_url`` (ending in ``/v1.0`` or ``/beta``),
    ``authority`` and optionally ``ca_bundle`` and ``name``. Both URLs must be https, except on a
    loopback host (``127.0.0.1``, ``localhost``, ``::1``) where http is allowed for tests. The
    scope becomes ``<origin of graph_url>/.default``.
    """
    if isinstance(value, Cloud):
        return value
    if isinstance(value, str):
        cloud = CLOUDS.get(value.strip().lower())
        if cloud is None:
            names = ", ".join(CLOUDS)
            msg = f"unknown cloud {value!r}; use one of {names} or give graph_url and authority"
            raise ConfigError(msg)
        return cloud
    unknown = sorted(set(value) - _EXPLICIT_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_EXPLICIT_KEYS))
        msg = f"unknown cloud setting(s) {', '.join(unknown)}; allowed: {allowed}"
        raise ConfigError(msg)
    graph_url = _check_url(value.get("graph_url"), "graph_url")
    if not graph_url.endswith(("/v1.0", "/beta")):
        msg = f"cloud graph_url {graph_url!r} must end with the API version, /v1.0 or /beta"
        raise ConfigError(msg)
    authority = _check_url(value.get("authority"), "authority")
    ca_bundle = value.get("ca_bundle")
    if ca_bundle is not None:
        if not isinstance(ca_bundle, str | Path):
            msg = f"cloud ca_bundle {ca_bundle!r} is not a readable file"
            raise ConfigError(msg)
        ca_bundle = str(ca_bundle)
        check_ca_bundle(ca_bundle)
    endpoint = value.get("endpoint")
    if endpoint is not None and endpoint not in CLOUD_ENDPOINTS:
        msg = f"cloud endpoint {endpoint!r} is not one of {', '.join(CLOUD_ENDPOINTS)}"
        raise ConfigError(msg)
    name = value.get("name") or "custom"
    return Cloud(
        name=str(name),
        graph_url=graph_url,
        authority=authority,
        scope=f"{origin_of(graph_url)}/.default",
        ca_bundle=ca_bundle,
        custom=True,
        endpoint=endpoint,
    )


def cloud_crossing(source: Cloud, target: Cloud) -> tuple[str, str] | None:
    """The (source, target) cloud endpoints when a link crosses Microsoft clouds, else None.

    Explicit endpoints that do not name their ``endpoint`` cannot be placed: the same
    definition on both sides (neither naming one) is the same cloud; anything else raises
    :class:`ConfigError`. So
    does a pair Microsoft does not support for cross-cloud synchronization.
    """
    if source.endpoint is None or target.endpoint is None:
        same = (source.graph_url, source.authority) == (target.graph_url, target.authority)
        if same and source.endpoint == target.endpoint:
            return None
        named = "source" if source.endpoint is None else "target"
        msg = (
            f"cannot tell whether the link crosses Microsoft clouds: the {named}'s cloud is "
            "explicit endpoints without `endpoint`; add `endpoint:` (one of "
            f"{', '.join(CLOUD_ENDPOINTS)}) to its cloud"
        )
        raise ConfigError(msg)
    if source.endpoint == target.endpoint:
        return None
    if (source.endpoint, target.endpoint) not in _SYNC_PAIRS:
        msg = (
            f"cross-tenant synchronization from {source.endpoint} to {target.endpoint} is not a "
            "cloud pair Microsoft supports (commercial ↔ US Government, commercial → China)"
        )
        raise ConfigError(msg)
    return source.endpoint, target.endpoint


#: CA bundles found good (path, inode, size, modification time): checked once per process.
_GOOD_BUNDLES: set[tuple[str, int, int, int]] = set()


def check_ca_bundle(path: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` is a readable PEM file of CA certificates.

    Loaded into a throw-away SSL context now, so that a wrong file is reported where the
    cloud is defined rather than as an ``ssl.SSLError`` when the first request is made.
    """
    import ssl

    try:
        info = Path(path).stat()
    except OSError as exc:
        msg = f"cloud ca_bundle {path!r} is not a readable file ({_reason(exc)})"
        raise ConfigError(msg) from None
    if not stat.S_ISREG(info.st_mode):
        # OpenSSL would block on a FIFO and read /dev/zero forever.
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
        msg = f"cloud ca_bundle {path!r} is not a readable file (it is {kind})"
        raise ConfigError(msg)
    seen = (path, info.st_ino, info.st_size, info.st_mtime_ns)
    if seen in _GOOD_BUNDLES:
        return  # the same file, unchanged: a fleet's tenants share one bundle
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        _GOOD_BUNDLES.add(seen)
    except ssl.SSLError as exc:
        detail = f" (OpenSSL: {exc.reason})" if exc.reason else ""
        msg = (
            f"cloud ca_bundle {path!r} is not a PEM file of CA certificates "
            f"(-----BEGIN CERTIFICATE----- blocks){detail}"
        )
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cloud ca_bundle {path!r} is not a readable file ({_reason(exc)})"
        raise ConfigError(msg) from None


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _check_url(raw: object, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        msg = f"cloud {key} is required when no cloud name is given"
        raise ConfigError(msg)
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        msg = f"cloud {key} {raw!r} is not an absolute URL"
        raise ConfigError(msg)
    if parts.query or parts.fragment or parts.username or parts.password:
        msg = f"cloud {key} {raw!r} must not carry a query, fragment or user info"
        raise ConfigError(msg)
    if parts.scheme == "http" and host not in _LOOPBACK:
        msg = f"cloud {key} {raw!r} must use https (http is only allowed on 127.0.0.1 or localhost)"
        raise ConfigError(msg)
    if parts.scheme not in {"http", "https"}:
        msg = f"cloud {key} {raw!r} must be an https URL"
        raise ConfigError(msg)
    return url
