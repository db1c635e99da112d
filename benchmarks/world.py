"""The benchmark world: a hub tenant with N spokes in the emulator, its config, its sessions.

One :class:`World` holds a fresh :class:`~ctsync.emulator.Emulator` (100 ms latency, the
documented quotas on), the YAML config of the hub → spokes topology, and a
:class:`~ctsync.graph.VirtualClock` whose ``on_advance`` keeps the emulator's clock in step, so
concurrent requests overlap in simulated time exactly as they would in real time.

Size class: the hub holds one user, so the emulator classes it ``S`` (< 50 users); the config
says ``size: S`` for every tenant and the pacer defaults to ``S`` too, so both sides budget the
same 3,500 RU per 10 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ctsync.config import DesiredState, TenantSpec, loads
from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from ctsync.emulator.core.traffic import FaultProfile
from ctsync.emulator.scenarios import CTSYNC_PERMISSIONS
from ctsync.engine import Session
from ctsync.graph import GraphClient, Pacer, VirtualClock
from ctsync.graph.pacing import SizeClass

from .meter import Meter, MeteredTransport

__all__ = [
    "GROUP_NAME",
    "HUB",
    "LATENCY_MS",
    "AsyncCredential",
    "World",
    "build_custom_world",
    "build_world",
    "spoke_name",
    "tenant_lines",
]

T = TypeVar("T")

HUB = "hub"
GROUP_NAME = "CTS-Pilot"
LATENCY_MS = 100.0
SIZE_CLASS: SizeClass = "S"
#: Never read: the benchmarks hand every client an in-process emulator credential.
_SECRET_ENV = "CTSYNC_BENCH_UNUSED_SECRET"


def spoke_name(index: int) -> str:
    return f"spoke{index:04d}"


def scenario(n: int) -> dict[str, Any]:
    """Emulator seed: the hub (one user in ``CTS-Pilot``) and ``n`` empty spokes."""
    clients = [{"display_name": "ctsync", "permissions": list(CTSYNC_PERMISSIONS)}]
    hub = {
        "name": HUB,
        "clients": clients,
        "users": [{"alias": "pilot1", "displayName": "Pilot One", "department": "Sales"}],
        "groups": [{"alias": "pilot", "displayName": GROUP_NAME, "members": ["pilot1"]}],
    }
    spokes = [{"name": spoke_name(i), "clients": clients} for i in range(1, n + 1)]
    return {"tenants": [hub, *spokes]}


def tenant_lines(emulator: Emulator, names: list[str]) -> list[str]:
    """The config's ``version`` and ``tenants`` sections for the emulator's ``names``."""
    lines = ["version: 1", "tenants:"]
    for name in names:
        tenant = emulator.tenant(name)
        client_id = next(iter(tenant.clients))
        lines += [
            f"  {name}:",
            f"    tenant_id: {tenant.id}",
            f"    size: {SIZE_CLASS}",
            "    auth: {method: client_secret, "
            f"client_id: {client_id}, client_secret_env: {_SECRET_ENV}}}",
        ]
    return lines


def config_text(emulator: Emulator, spokes: list[str], *, start: bool = True) -> str:
    """hub → every spoke, one template: assigned members of CTS-Pilot, create and update
    (``start=False``: apply leaves the jobs unstarted)."""
    lines = tenant_lines(emulator, [HUB, *spokes])
    lines += [
        "templates:",
        "  member-sync:",
        "    access: {automatic_redemption: true}",
        "    sync:",
        f"      scope: {{assigned: [{{group: {GROUP_NAME}}}]}}",
        "      actions: [create, update]",
        *([] if start else ["      start: false"]),
        "topologies:",
        f"  - hub: {HUB}",
        "    direction: out",
        "    template: member-sync",
        "    spokes:",
    ]
    lines += [f"      - {name}" for name in spokes]
    return "\n".join(lines) + "\n"


class AsyncCredential:
    """:class:`EmulatorCredential` behind an ``async get_token``.

    Tokens are minted in-process and cost no latency. A synchronous credential would be run in
    a worker thread by the client (``asyncio.to_thread``), and the virtual clock may move on
    while that thread runs; awaiting it directly keeps simulated time deterministic.
    """

    def __init__(self, inner: EmulatorCredential) -> None:
        self.inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self.inner.get_token(*scopes, **kwargs)


@dataclass
class World:
    emulator: Emulator
    desired: DesiredState
    clock: VirtualClock
    spokes: list[str]
    meter: Meter = field(default_factory=Meter)

    @property
    def hub_id(self) -> str:
        return self.emulator.tenant(HUB).id

    def hub_app_id(self) -> str:
        return next(iter(self.emulator.tenant(HUB).clients))

    def credential(self, tenant: TenantSpec | str) -> AsyncCredential:
        name = tenant if isinstance(tenant, str) else tenant.name
        return AsyncCredential(EmulatorCredential(self.emulator, name))

    def transport(self, meter: Meter | None = None) -> MeteredTransport:
        """The in-process emulator, latency applied on the virtual clock, traffic metered
        (into ``meter``, the world's own by default)."""
        inner = EmulatorTransport(self.emulator, async_sleep=self.clock.sleep)
        return MeteredTransport(inner, meter or self.meter)

    def pacer(self, *, enabled: bool = True) -> Pacer:
        return Pacer(clock=self.clock, enabled=enabled, size_class=SIZE_CLASS)

    def session(self, pacer: Pacer | None = None, meter: Meter | None = None) -> Session:
        """ctsync's session: one client per tenant, one shared pacer (pacing on)."""
        return Session(
            self.desired,
            transport=self.transport(meter),
            credentials=self.credential,
            clock=self.clock,
            pacer=pacer or self.pacer(),
        )

    def client(self, name: str, pacer: Pacer) -> GraphClient:
        """A bare client for the naive baseline."""
        tenant = self.desired.tenants[name]
        return GraphClient(
            tenant_id=tenant.tenant_id,
            credential=self.credential(name),
            transport=self.transport(),
            pacer=pacer,
            clock=self.clock,
        )

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        async def wrapped() -> T:
            return await main()

        return asyncio.run(wrapped())


def build_world(n: int, *, seed: int = 7, latency_ms: float = LATENCY_MS) -> World:
    """A fresh emulator with the hub and ``n`` spokes, documented quotas on."""
    spokes = [spoke_name(i) for i in range(1, n + 1)]
    return build_custom_world(
        scenario(n), spokes, lambda emu: config_text(emu, spokes), seed=seed, latency_ms=latency_ms
    )


def build_custom_world(
    spec: dict[str, Any],
    spokes: list[str],
    config: Callable[[Emulator], str],
    *,
    seed: int = 7,
    latency_ms: float = LATENCY_MS,
) -> World:
    """A fresh emulator seeded with ``spec`` (documented quotas on, every tenant size class
    S), the config ``config(emulator)`` and a virtual clock in step with the emulator's."""
    emulator = Emulator(
        scenario=spec,
        faults=FaultProfile(latency_ms=latency_ms, quotas=True, size_class=SIZE_CLASS),
        seed=seed,
    )
    desired = loads(config(emulator), path="benchmark.yaml")
    clock = VirtualClock(start=emulator.clock.now(), on_advance=emulator.clock.advance)
    return World(emulator=emulator, desired=desired, clock=clock, spokes=spokes)
