"""Every tenant's token comes over one connection to the authority, not one per tenant.

Against `ctsync emulator serve` (real TLS, real azure-identity credentials from the config): a
fleet's run opened a connection — a TLS handshake — per tenant before the credentials shared
their transport (``ctsync.graph.credentials.TokenTransports``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctsync.config import load
from ctsync.engine import Session

from .served import Served, init_config, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("token-transport"), "--replication-lag", "0") as running:
        yield running


def test_three_tenants_tokens_share_one_connection(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam,contoso:tailspin")
    desired = load(config)
    assert len(desired.tenants) == 3

    async def main() -> tuple[int, list[str]]:
        async with Session(desired) as session:
            names = []
            for name in desired.tenants:  # one after another: each can reuse the connection
                answer = await session.client(name).get("/organization")
                names.append(answer.json_object()["value"][0]["id"])
            return session.token_transports.connections(), names

    connections, ids = asyncio.run(main())
    assert ids == [t.tenant_id for t in desired.tenants.values()]
    assert connections == 1
