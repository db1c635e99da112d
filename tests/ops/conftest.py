"""Preflight in-process: the real client against the demo emulator, a config per test."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ctsync.config import TenantSpec
from ctsync.emulator import EmulatorCredential, EmulatorTransport
from ctsync.engine import Session, execute, make_plan
from ctsync.graph import Pacer, WriteRecord
from ctsync.ops import PreflightReport, TokenRoles, preflight
from tests.engine.conftest import Bench, make_bench

__all__ = ["Checker", "checker", "snapshot"]

T = TypeVar("T")


class _Recording(EmulatorTransport):
    """The emulator transport, noting every request (method and URL) it carries."""

    def __init__(self, *args: Any, seen: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen = seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self._seen.append((request.method, str(request.url)))
        if request.url.path.endswith("/$batch"):
            for item in json.loads(body).get("requests", []):
                self._seen.append((f"batch:{item['method']}", str(item["url"])))
        return await super().handle_async_request(request)


@dataclass
class Checker:
    """A bench whose sessions sign in with the client the config names (so a test can point
    the config at a client with fewer permissions) and record requests and writes."""

    bench: Bench
    requests: list[tuple[str, str]] = field(default_factory=list)
    writes: list[WriteRecord] = field(default_factory=list)

    @property
    def emulator(self) -> Any:
        return self.bench.emulator

    @property
    def config(self) -> Path:
        return self.bench.config

    def session(self, **kwargs: Any) -> Session:
        emulator, clock = self.bench.emulator, self.bench.clock

        def credential(tenant: TenantSpec) -> EmulatorCredential:
            return EmulatorCredential(emulator, tenant.name, client_id=tenant.auth.client_id)

        observers = [self.writes.append, *kwargs.pop("observers", ())]
        return Session(
            self.bench.desired(),
            transport=_Recording(emulator, async_sleep=clock.sleep, seen=self.requests),
            credentials=credential,
            clock=clock,
            pacer=Pacer(clock=clock),
            observers=observers,
            **kwargs,
        )

    def run(self, make: Callable[[Session], Coroutine[Any, Any, T]], **kwargs: Any) -> T:
        async def main() -> T:
            async with self.session(**kwargs) as session:
                return await make(session)

        return asyncio.run(main())

    def check(
        self, links: Sequence[str] | None = None, *, blocking_only: bool = False, **kwargs: Any
    ) -> PreflightReport:
        roles = TokenRoles()
        return self.run(
            lambda s: preflight(s, links, roles=roles, blocking_only=blocking_only),
            on_token=roles,
            **kwargs,
        )

    def apply(self) -> None:
        async def go(session: Session) -> None:
            plan = await make_plan(session.desired, session)
            report = await execute(plan, session)
            assert report.ok, report.to_dict()

        self.run(go)

    def edit(self, change: Callable[[str], str]) -> None:
        self.config.write_text(change(self.config.read_text()))


def checker(
    tmp_path: Path,
    *,
    links: list[tuple[str, str]] | None = None,
    edit: Callable[[str], str] | None = None,
) -> Checker:
    return Checker(make_bench(tmp_path, links=links or [("contoso", "fabrikam")], edit=edit))


def snapshot(emulator: Any) -> str:
    """Everything every tenant of the emulator holds, as one comparable text."""
    return json.dumps(
        {name: dataclasses.asdict(t) for name, t in emulator.tenants.items()},
        sort_keys=True,
        default=str,
    )
