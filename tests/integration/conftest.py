"""The real client against the in-process emulator: GraphClient → httpx → EmulatorTransport.

Time is simulated: the client's :class:`VirtualClock` drives the emulator's clock, so a
``Retry-After: 7`` costs no real time, and the emulator enforces it against the same time line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from ctsync.graph import GraphClient, Pacer, RetryPolicy, VirtualClock

T = TypeVar("T")

GRAPH_URL = "https://graph.microsoft.com/v1.0"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the emulator and keeps each (method, path, JSON body) sent."""

    def __init__(self, inner: EmulatorTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        parsed = json.loads(body) if body else None
        self.sent.append((request.method, request.url.path, parsed))
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    """An emulator, a virtual clock both sides share, and clients signed in to its tenants."""

    emulator: Emulator
    clock: VirtualClock
    pacer: Pacer
    transport: RecordingTransport
    clients: list[GraphClient] = field(default_factory=list)

    def client(
        self,
        tenant: str,
        *,
        client_id: str | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
    ) -> GraphClient:
        t = self.emulator.tenant(tenant)
        client = GraphClient(
            tenant_id=t.id,
            credential=EmulatorCredential(self.emulator, tenant, client_id=client_id),
            cloud={"graph_url": GRAPH_URL, "authority": "https://login.microsoftonline.com"},
            transport=self.transport,
            pacer=pacer or self.pacer,
            retry=retry or RetryPolicy(seed=7),
            clock=self.clock,
        )
        self.clients.append(client)
        return client

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async def main() -> T:
            try:
                return await make()
            finally:
                for client in self.clients:
                    await client.aclose()
                self.clients.clear()

        return asyncio.run(main())


def make_world(scenario: str = "demo", **emulator_args: Any) -> World:
    emulator = Emulator(scenario=scenario, **emulator_args)
    start = emulator.clock.now()
    clock = VirtualClock(start=start, on_advance=emulator.clock.advance)
    transport = RecordingTransport(EmulatorTransport(emulator, async_sleep=clock.sleep))
    return World(emulator, clock, Pacer(clock=clock), transport)


@pytest.fixture
def world() -> World:
    return make_world()


Awaitable_ = Awaitable  # re-exported for type hints in tests
