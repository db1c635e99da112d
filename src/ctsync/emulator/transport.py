"""Plugging the emulator into httpx and azure-core in-process, without a socket.

:class:`EmulatorTransport` is one class serving both ``httpx.Client(transport=...)`` and
``httpx.AsyncClient(transport=...)``: each request becomes an :class:`EmuRequest`, goes through
:meth:`Emulator.handle`, and comes back as an ``httpx.Response``. Injected latency
(``EmuResponse.delay``) is applied only through the ``sleep``/``async_sleep`` functions the
caller passes; without them it is ignored, so in-process tests never wait. A dropped
connection (the ``drop`` fault) raises ``httpx.RemoteProtocolError`` once the emulator has
handled the request (``drop``) or without handling it (``drop-before``), as httpx does when a
server closes the connection before the response is complete.

:class:`EmulatorCredential` mints tokens directly (no token endpoint round trip) for code that
wants an azure-core ``TokenCredential``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

from ctsync.emulator.core.http import EmuRequest, EmuResponse
from ctsync.emulator.core.oauth import OAuthError, find_tenant, resource_for_scope

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import ClientApp, Tenant

__all__ = ["AccessToken", "EmulatorCredential", "EmulatorTransport", "handle_locked"]

Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]

# The emulator is not thread-safe. Every in-process entry (transports in any thread, the ASGI
# app) takes the one lock of its emulator, so two transports over one emulator cannot race.
_locks: weakref.WeakKeyDictionary[Emulator, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def handle_locked(emulator: Emulator, request: EmuRequest) -> EmuResponse:
    """``emulator.handle(request)`` under the emulator's lock."""
    with _locks_guard:
        lock = _locks.setdefault(emulator, threading.Lock())
    with lock:
        return emulator.handle(request)


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) answering from an :class:`Emulator` in-process.

    ``sleep`` (sync clients) and ``async_sleep`` (async clients) receive the injected latency
    of each response in seconds; when not given, latency is not applied. A response the
    emulator marks ``drop`` raises :class:`httpx.RemoteProtocolError` instead of arriving.
    """

    def __init__(
        self,
        emulator: Emulator,
        *,
        sleep: Sleep | None = None,
        async_sleep: AsyncSleep | None = None,
    ) -> None:
        self.emulator = emulator
        self._sleep = sleep
        self._async_sleep = async_sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = handle_locked(self.emulator, _to_emu(request, request.read()))
        if response.delay > 0 and self._sleep is not None:
            self._sleep(response.delay)
        if response.drop:
            raise _dropped_connection(request)
        return _to_httpx(request, response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = handle_locked(self.emulator, _to_emu(request, await request.aread()))
        if response.delay > 0 and self._async_sleep is not None:
            await self._async_sleep(response.delay)
        if response.drop:
            raise _dropped_connection(request)
        return _to_httpx(request, response)


def _dropped_connection(request: httpx.Request) -> httpx.RemoteProtocolError:
    """The error httpx raises when the server closes the connection mid-response."""
    return httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body "
        "(the emulator's injected 'drop' fault)",
        request=request,
    )


def _to_emu(request: httpx.Request, body: bytes) -> EmuRequest:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return EmuRequest(method=request.method, url=str(request.url), headers=headers, body=body)


def _to_httpx(request: httpx.Request, response: EmuResponse) -> httpx.Response:
    return httpx.Response(
        response.status,
        headers=list(response.headers.items()),
        content=response.body,
        request=request,
    )


class AccessToken(NamedTuple):
    """Field for field azure-core's ``AccessToken``, without importing azure."""

    token: str
    expires_on: int


class EmulatorCredential:
    """An azure-core compatible ``TokenCredential`` minting emulator tokens in-process.

    ``tenant`` is a tenant id, domain or name; ``client_id`` picks one of its client apps
    (default: the first). The token's audience follows the scope, as at the token endpoint;
    since the credential cannot know the URL its client calls, any ``https://host/.default``
    is accepted besides Microsoft Graph's. Errors raise :class:`OAuthError`.
    """

    def __init__(self, emulator: Emulator, tenant: str, client_id: str | None = None) -> None:
        self.emulator = emulator
        self.tenant_key = tenant
        self.client_id = client_id
        self._resolve()  # fail on a wrong tenant or client now, not at the first request

    def _resolve(self) -> tuple[Tenant, ClientApp]:
        tenant = find_tenant(self.emulator, self.tenant_key)
        if tenant is None:
            msg = f"Tenant '{self.tenant_key}' not found."
            raise OAuthError(400, "invalid_request", 90002, msg)
        if self.client_id is None:
            client = next(iter(tenant.clients.values()), None)
        else:
            client = tenant.clients.get(self.client_id)
        if client is None:
            wanted = self.client_id or "any client"
            msg = f"Application with identifier '{wanted}' was not found in the directory."
            raise OAuthError(400, "unauthorized_client", 700016, msg)
        return tenant, client

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        **kwargs: Any,
    ) -> AccessToken:
        tenant, client = self._resolve()
        if tenant_id is not None and find_tenant(self.emulator, tenant_id) is not tenant:
            msg = f"this credential serves tenant {tenant.id}, not {tenant_id}"
            raise OAuthError(400, "invalid_request", 90002, msg)
        audience = resource_for_scope(" ".join(scopes))
        token, expires_on = self.emulator.issue_token(tenant, client, audience=audience)
        return AccessToken(token, int(expires_on))

    def close(self) -> None:
        """Nothing to release; present because azure-core credentials have it."""

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()
