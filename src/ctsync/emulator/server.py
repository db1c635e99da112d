"""Serving the emulator over HTTP(S): an ASGI adapter and a uvicorn runner.

:func:`make_app` turns any ASGI server into a front end for :meth:`Emulator.handle`.
:func:`serve` binds the socket first (port 0 picks a free port), writes a local CA and server
certificate, starts uvicorn on the bound socket, and once it accepts connections writes the
*info file*: the one JSON document telling clients where the emulator is, which CA to trust,
and the tenants with their client credentials. SIGINT and SIGTERM shut it down gracefully;
the info file is removed on the way out, since it describes a server that no longer runs.

The served app answers only requests whose ``Host`` header names a loopback address, the bind
address or a name allowed explicitly (``allow_hosts``): a web page that rebinds its own DNS
name to 127.0.0.1 sends its own name as ``Host`` and gets ``403``. (The in-process transport
has no socket and no such check.) A dropped connection (the ``drop`` fault) is a response
start followed by an aborted connection, which the client sees as an incomplete response.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response
from ctsync.emulator.identities import ClientIdentityFiles, issue_client_identities
from ctsync.emulator.tls import generate_tls, write_private
from ctsync.emulator.transport import handle_locked

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = [
    "LOOPBACK_HOSTS",
    "ASGIApp",
    "DroppedConnection",
    "ServerAddress",
    "allowed_hosts_for",
    "bind_socket",
    "bind_warnings",
    "info_document",
    "is_loopback",
    "make_app",
    "serve",
]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Seconds uvicorn waits for in-flight requests (some held by injected latency) on shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 5

#: ``Host`` names a served emulator always answers to (any port).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


# -- who may call ----------------------------------------------------------------------------


def host_name(value: str) -> str:
    """The name in a ``Host`` header or a bind address: no port, lower case, no trailing dot,
    an IPv6 address in brackets (``[::1]:8443`` and ``::1`` both give ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[: end + 1] if end != -1 else value
    elif value.count(":") > 1:  # a bare IPv6 address: a bind host, never a valid Host header
        name = f"[{value}]"
    else:
        name = value.partition(":")[0]
    return name.removesuffix(".")


def is_loopback(host: str) -> bool:
    """Whether a bind address (or host name) is loopback only: ``localhost``, 127.0.0.0/8,
    ``::1``. A wildcard (``0.0.0.0``, ``::``, ``""``) or any other name is not."""
    name = host_name(host).strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The ``Host`` names a server bound to ``bind_host`` answers to: :data:`LOOPBACK_HOSTS`,
    the bind address itself and ``extra`` (``--allow-host``); ``None`` (any Host, no DNS
    rebinding protection) when ``extra`` holds ``*``."""
    extra = [name.strip() for name in extra]
    if "*" in extra:
        return None
    names = set(LOOPBACK_HOSTS)
    names.update(host_name(name) for name in [bind_host, *extra] if name)
    return frozenset(names)


def bind_warnings(host: str, allow_hosts: Iterable[str] = ()) -> list[str]:
    """What ``ctsync emulator serve`` must shout before it serves on ``host``: nothing for a
    loopback bind that checks ``Host``."""
    warnings = []
    if not is_loopback(host):
        warnings.append(
            f"WARNING: the emulator binds {host or 'every interface'!r}, which is not a loopback "
            "address. Its control API (/_emulator) has no authentication and the client "
            "secrets in the info file are valid there: anyone who can reach this port can "
            "reset, reseed or read the emulator and get tokens for its tenants. Bind "
            "127.0.0.1 (the default) unless that is what you want."
        )
    if any(name.strip() == "*" for name in allow_hosts):
        warnings.append(
            "WARNING: --allow-host '*' turns the Host check off: a web page that rebinds its "
            "DNS name to this address can call the emulator, control API included."
        )
    return warnings


def _forbidden_host(host: str | None, allowed: frozenset[str]) -> EmuResponse | None:
    """``403`` unless the ``Host`` header names one of ``allowed``."""
    if host is not None and host_name(host) in allowed:
        return None
    shown = "no Host header" if host is None else f"Host {host!r}"
    message = (
        f"The emulator does not answer requests with {shown}: it answers "
        f"{', '.join(sorted(allowed))} (any port). This protects it from DNS rebinding; "
        "ctsync emulator serve --allow-host NAME adds a name."
    )
    return json_response(403, {"error": {"code": "Forbidden", "message": message}})


# -- the ASGI adapter ------------------------------------------------------------------------


class DroppedConnection(Exception):  # noqa: N818 - what happened, not an error of the emulator
    """Raised by the ASGI app after a response start to make the server abort the connection:
    the emulator's ``drop`` fault. Its log records are filtered out of ``uvicorn.error``."""


class _QuietDrops(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" record for an injected drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_QUIET_DROPS = _QuietDrops()


def make_app(
    emulator: Emulator,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
) -> ASGIApp:
    """An ASGI 3 application answering every HTTP request from ``emulator``.

    Requests are handled one at a time under the emulator's lock; injected latency is awaited
    afterwards with ``sleep``, outside the lock, so a slow response holds up no other.

    ``allowed_hosts`` are the names (no port; IPv6 in brackets) a request's ``Host`` header
    may carry, else ``403`` before the emulator sees the request; ``None`` accepts any Host.
    The default is loopback only (see :func:`allowed_hosts_for`).
    """
    allowed = None if allowed_hosts is None else frozenset(map(host_name, allowed_hosts))
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _QUIET_DROPS not in uvicorn_log.filters:
        uvicorn_log.addFilter(_QUIET_DROPS)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            msg = f"the emulator serves HTTP only, not {scope['type']}"
            raise RuntimeError(msg)
        request = await _read_request(scope, receive)
        refusal = None if allowed is None else _forbidden_host(_host_header(scope), allowed)
        if refusal is not None:
            await _send_response(send, refusal, head=request.method == "HEAD")
            return
        try:
            response = handle_locked(emulator, request)
        except Exception:
            logger.exception("emulator error on %s %s", request.method, scope.get("path", ""))
            response = json_response(
                500,
                {"error": {"code": "InternalServerError", "message": "The emulator failed."}},
            )
        if response.delay > 0:
            await sleep(response.delay)
        if response.drop:
            await _send_start(send, _unfinishable(response))
            logger.info("dropped the connection of %s %s (fault)", request.method, scope["path"])
            msg = "the emulator's drop fault: connection aborted after the response start"
            raise DroppedConnection(msg)
        await _send_response(send, response, head=request.method == "HEAD")

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _host_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"host":
            return str(value.decode("latin-1"))
    return None


async def _read_request(scope: Scope, receive: Receive) -> EmuRequest:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    host = headers.get("host")
    if not host:
        server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
        host = (
            f"[{server_host}]:{server_port}"
            if ":" in server_host
            else f"{server_host}:{server_port}"
        )
    path = scope.get("raw_path") or quote(scope.get("path", "/")).encode()
    query = scope.get("query_string", b"")
    url = f"{scope.get('scheme', 'http')}://{host}{path.decode('latin-1')}"
    if query:
        url += "?" + query.decode("latin-1")
    return EmuRequest(method=scope["method"], url=url, headers=headers, body=b"".join(chunks))


def _unfinishable(response: EmuResponse) -> EmuResponse:
    """``response`` re-framed so that its start alone is never a complete HTTP/1.1 response:
    without ``content-length`` the server frames the body chunked, and a status that carries
    no body (204, 304) becomes 200 (the client never gets to see it)."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    status = 200 if response.status in {204, 304} else response.status
    return EmuResponse(status=status, headers=headers, body=response.body)


async def _send_start(send: Send, response: EmuResponse) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})


async def _send_response(send: Send, response: EmuResponse, *, head: bool) -> None:
    headers = dict(response.headers)
    if not any(k.lower() == "content-length" for k in headers):
        headers["content-length"] = str(len(response.body))
    await _send_start(send, EmuResponse(status=response.status, headers=headers))
    await send({"type": "http.response.body", "body": b"" if head else response.body})


# -- the info file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerAddress:
    """Where a served emulator answers; what :func:`serve` hands its ``ready`` callback."""

    #: ``https://127.0.0.1:PORT``: the OAuth authority host and the Graph origin.
    authority: str
    graph_url: str
    control_url: str
    ca_cert: Path | None
    info_file: Path | None


def info_document(
    emulator: Emulator,
    address: ServerAddress,
    identities: Mapping[str, ClientIdentityFiles] | None = None,
) -> dict[str, Any]:
    """The info file's JSON: URLs, the CA to trust, the built-in OIDC issuer, one entry per
    client app of each tenant (with its certificate and federated token files when
    ``identities`` has them, see :func:`ctsync.emulator.identities.issue_client_identities`)."""
    tenants = emulator.client_directory()
    for entry in tenants:
        files = (identities or {}).get(entry["client_id"])
        if files is not None:
            entry["certificate_path"] = str(files.certificate_path)
            entry["federated_token_file"] = str(files.federated_token_file)
    return {
        "graph_url": address.graph_url,
        "authority": address.authority,
        "ca_cert": str(address.ca_cert) if address.ca_cert else None,
        "control_url": address.control_url,
        "oidc_issuer": emulator.oidc.issuer_url(address.authority),
        "tenants": tenants,
    }


# -- serving ---------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``; port 0 picks a free port."""
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":  # there SO_REUSEADDR would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _client_host(host: str) -> str:
    """The host clients dial: a wildcard bind address becomes loopback."""
    if host in {"", "0.0.0.0"}:  # noqa: S104 - mapping a wildcard bind, not binding one
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def serve(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: bool = True,
    state_dir: Path,
    info_file: Path | None = None,
    ready: Callable[[ServerAddress], None] | None = None,
    access_log: bool = False,
    log_level: str = "warning",
    allow_hosts: Iterable[str] = (),
) -> None:
    """Serve ``emulator`` until SIGINT or SIGTERM (or until uvicorn stops).

    Requests must name a loopback host, ``host`` or one of ``allow_hosts`` in their ``Host``
    header (``*`` accepts any; see :func:`allowed_hosts_for`); the TLS certificate covers the
    same names. TLS material goes to ``state_dir/tls``. ``info_file`` (see
    :func:`info_document`) and ``ready`` happen once the server accepts connections; the info
    file is written atomically with mode 0600, as it holds client secrets.
    """
    import uvicorn

    info_path = info_file.resolve() if info_file else None
    wrote_info = False
    allow_hosts = [name.strip() for name in allow_hosts if name.strip()]
    allowed = allowed_hosts_for(host, allow_hosts)
    cert_hosts = [host, *(host_name(name).strip("[]") for name in allow_hosts if name != "*")]

    identities: dict[str, ClientIdentityFiles] = {}

    def started(address: ServerAddress) -> None:
        nonlocal wrote_info
        if info_path is not None:
            document = info_document(emulator, address, identities)
            write_private(info_path, json.dumps(document, indent=2).encode())
            wrote_info = True
        if ready is not None:
            ready(address)

    with _stop_on_signals():
        sock = bind_socket(host, port)
        try:
            files = generate_tls(state_dir / "tls", hosts=cert_hosts) if tls else None
            scheme = "https" if tls else "http"
            authority = f"{scheme}://{_client_host(host)}:{sock.getsockname()[1]}"
            address = ServerAddress(
                authority=authority,
                graph_url=f"{authority}/v1.0",
                control_url=f"{authority}/_emulator",
                ca_cert=files.ca_cert if files else None,
                info_file=info_path,
            )
            identities.update(
                issue_client_identities(emulator, state_dir / "clients", origin=authority)
            )
            config = uvicorn.Config(
                make_app(emulator, allowed_hosts=allowed),
                log_level=log_level,
                access_log=access_log,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                ssl_certfile=str(files.server_cert) if files else None,
                ssl_keyfile=str(files.server_key) if files else None,
            )
            server = _server_class(uvicorn)(config, on_started=lambda: started(address))
            server.run(sockets=[sock])
        finally:
            sock.close()
            if wrote_info and info_path is not None:
                info_path.unlink(missing_ok=True)


def _server_class(uvicorn: Any) -> Any:
    class _Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn's server, calling back once it accepts connections."""

        def __init__(self, config: Any, *, on_started: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_started = on_started

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                self._on_started()

    return _Server


class _Stopped(BaseException):
    """Raised by the SIGINT/SIGTERM handler to unwind :func:`serve` from wherever it is."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a clean return.

    While uvicorn runs it handles both signals itself (a graceful shutdown), then re-raises
    the signal to the handler it found, which is this one; before uvicorn is up, this handler
    interrupts start-up. Either way :func:`serve` returns normally, so the process exits 0.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped:
        logger.info("emulator stopped by signal")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
