from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport

GRAPH = "https://graph.microsoft.com/v1.0"

HttpFor = Callable[[str], httpx.Client]


@pytest.fixture
def demo() -> Emulator:
    return Emulator(scenario="demo")


@pytest.fixture
def http_for(demo: Emulator) -> Iterator[HttpFor]:
    """An httpx client signed in to a demo tenant, answered in-process by the emulator."""
    clients: list[httpx.Client] = []

    def make(tenant: str) -> httpx.Client:
        token = EmulatorCredential(demo, tenant).get_token("https://graph.microsoft.com/.default")
        client = httpx.Client(
            base_url=GRAPH,
            transport=EmulatorTransport(demo),
            headers={"authorization": f"Bearer {token.token}"},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
