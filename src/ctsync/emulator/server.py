"""Serving the emulator over HTTP(S): an ASGI adapter and a uvicorn runner.

:func:`make_app` turns any ASGI server into a front end for :meth:`Emulator.handle`.
:func:`serve` binds the socket first (port 0 picks a free port), writes a local CA and server
certificate, starts uvicorn on the bound socket, and once it accepts connections writes the
*info file*: the one JSON document telling clients where the emulator is, which CA to trust,
and the tenants with their client credentials. SIGINT and SIGTERM shut it down gracefully;
the info file is removed on the way out, since it describes a server that no longer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response
from ctsync.emulator.tls import generate_tls, write_private
from ctsync.emulator.transport import handle_locked

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["ASGIApp", "ServerAddress", "bind_socket", "info_document", "make_app", "serve"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Seconds uvicorn waits for in-flight requests (some held by injected latency) on shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 5


# -- the ASGI adapter ------------------------------------------------------------------------


def make_app(
    emulator: Emulator, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> ASGIApp:
    """An ASGI 3 application answering every HTTP request from ``emulator``.

    Requests are handled one at a time under the emulator's lock; injected latency is awaited
    afterwards with ``sleep``, outside the lock, so a slow response holds up no other.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            msg = f"the emulator serves HTTP only, not {scope['type']}"
            raise RuntimeError(msg)
        request = await _read_request(scope, receive)
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


async def _send_response(send: Send, response: EmuResponse, *, head: bool) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    if not any(name == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
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


def info_document(emulator: Emulator, address: ServerAddress) -> dict[str, Any]:
    """The info file's JSON: URLs, the CA to trust, one entry per client app of each tenant."""
    return {
        "graph_url": address.graph_url,
        "authority": address.authority,
        "ca_cert": str(address.ca_cert) if address.ca_cert else None,
        "control_url": address.control_url,
        "tenants": [
            {
                "name": tenant.name,
                "tenant_id": tenant.id,
                "domain": tenant.domain,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "permissions": list(client.permissions),
            }
            for tenant in emulator.tenants.values()
            for client in tenant.clients.values()
        ],
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
) -> None:
    """Serve ``emulator`` until SIGINT or SIGTERM (or until uvicorn stops).

    TLS material goes to ``state_dir/tls``. ``info_file`` (see :func:`info_document`) and
    ``ready`` happen once the server accepts connections; the info file is written atomically
    with mode 0600, as it holds client secrets.
    """
    import uvicorn

    info_path = info_file.resolve() if info_file else None
    wrote_info = False

    def started(address: ServerAddress) -> None:
        nonlocal wrote_info
        if info_path is not None:
            document = info_document(emulator, address)
            write_private(info_path, json.dumps(document, indent=2).encode())
            wrote_info = True
        if ready is not None:
            ready(address)

    with _stop_on_signals():
        sock = bind_socket(host, port)
        try:
            files = generate_tls(state_dir / "tls", hosts=[host]) if tls else None
            scheme = "https" if tls else "http"
            authority = f"{scheme}://{_client_host(host)}:{sock.getsockname()[1]}"
            address = ServerAddress(
                authority=authority,
                graph_url=f"{authority}/v1.0",
                control_url=f"{authority}/_emulator",
                ca_cert=files.ca_cert if files else None,
                info_file=info_path,
            )
            config = uvicorn.Config(
                make_app(emulator),
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
