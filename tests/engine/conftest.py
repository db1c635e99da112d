"""The engine against the in-process emulator: config → plan → apply → both tenants."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ctsync.cli._inprocess import EmulatorTimeClock
from ctsync.config import DesiredState, TenantSpec, init_from_emulator, load
from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from ctsync.emulator.server import ServerAddress, info_document
from ctsync.engine import Session
from ctsync.engine.ownership import Ledger
from ctsync.graph import Pacer, VirtualClock

T = TypeVar("T")

GRAPH_URL = "https://graph.microsoft.com/v1.0"


class _OnTheLoop:
    """A synchronous credential called on the event loop (an async ``get_token``)."""

    def __init__(self, inner: EmulatorCredential) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._inner.get_token(*scopes, **kwargs)


@dataclass
class Bench:
    """An emulator, a config for it, and sessions whose clock drives the emulator's."""

    emulator: Emulator
    config: Path
    clock: VirtualClock

    def desired(self) -> DesiredState:
        return load(self.config)

    def session(self, *, async_tokens: bool = False, **kwargs: Any) -> Session:
        """``async_tokens``: tokens on the event loop, not on a thread, so that the emulator's
        clock cannot move while one is minted (round-trip counts stay exact under load)."""

        def credential(tenant: TenantSpec) -> Any:
            made = EmulatorCredential(self.emulator, tenant.name)
            return _OnTheLoop(made) if async_tokens else made

        transport = EmulatorTransport(self.emulator, async_sleep=self.clock.sleep)
        # The ownership ledger the CLI keeps beside the config: which objects ctsync made.
        kwargs.setdefault("ledger", Ledger(self.config.parent / ".ctsync" / "ownership.json"))
        return Session(
            self.desired(),
            transport=transport,
            credentials=credential,
            clock=self.clock,
            pacer=Pacer(clock=self.clock),
            **kwargs,
        )

    def run(self, make: Callable[[Session], Coroutine[Any, Any, T]], **kwargs: Any) -> T:
        async def main() -> T:
            async with self.session(**kwargs) as session:
                return await make(session)

        return asyncio.run(main())


def make_bench(
    tmp_path: Path,
    *,
    links: list[tuple[str, str]] | None = None,
    edit: Callable[[str], str] | None = None,
    **emulator_args: Any,
) -> Bench:
    emulator = Emulator(scenario="demo", **emulator_args)
    address = ServerAddress(
        authority="https://login.microsoftonline.com",
        graph_url=GRAPH_URL,
        control_url="https://graph.microsoft.com/_emulator",
        ca_cert=None,
        info_file=None,
    )
    info = info_document(emulator, address)
    path = tmp_path / "ctsync.yaml"
    text = init_from_emulator(info, links=links, path=path)
    path.write_text(edit(text) if edit else text)
    return Bench(emulator, path, EmulatorTimeClock(emulator))


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return make_bench(tmp_path, links=[("contoso", "fabrikam")])
