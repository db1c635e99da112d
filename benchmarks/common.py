"""Running ctsync and the baseline on a world, and what every benchmark records."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctsync.emulator.core.traffic import _Bucket
from ctsync.engine import ExecuteOptions, Plan, Step, StepOutcome, execute, make_plan
from ctsync.engine.desired import link_tag
from ctsync.graph import Pacer

from .meter import TenantMeter
from .world import HUB, World

__all__ = [
    "Census",
    "EmulatorCounts",
    "ToolRun",
    "census",
    "client_stats",
    "drain_emulator_hub_writes",
    "drain_hub_writes",
    "emulator_counts",
    "run_tool",
]


@dataclass
class EmulatorCounts:
    """The emulator's own counters (``emu.stats`` and ``emu.traffic.stats()``)."""

    requests: int = 0
    admitted: int = 0
    throttled_429: int = 0
    requests_while_blocked: int = 0
    early_retries: int = 0

    def minus(self, before: EmulatorCounts) -> EmulatorCounts:
        return EmulatorCounts(
            **{k: getattr(self, k) - getattr(before, k) for k in self.__dataclass_fields__}
        )

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def emulator_counts(world: World) -> EmulatorCounts:
    traffic = world.emulator.traffic.stats()
    return EmulatorCounts(
        requests=world.emulator.stats["requests"],
        admitted=int(traffic["admitted"]),
        throttled_429=int(traffic["throttled_429_total"]),
        requests_while_blocked=int(traffic["requests_while_blocked"]),
        early_retries=int(traffic["early_retries"]),
    )


def drain_emulator_hub_writes(world: World) -> None:
    """Start the emulator's hub app+tenant write bucket empty.

    The emulator has no public hook for one bucket's level, and sending 3,000 writes would
    also drain the hub's RU bucket (every write costs 1 RU); so the bucket is set empty
    directly in ``TrafficControl._buckets`` (see the README: a hook in src would be cleaner).
    """
    traffic = world.emulator.traffic
    quota, window = traffic.limits.app_tenant_writes
    key = ("writes", world.hub_app_id(), world.hub_id.lower())
    now = world.emulator.clock.now().timestamp()
    traffic._buckets[key] = _Bucket(quota, window, traffic.profile.quota_mode, 0.0, now)


async def drain_hub_writes(world: World, pacer: Pacer) -> None:
    """Start the hub's write bucket empty in the emulator and in ctsync's pacer (the pacer's
    through the public :meth:`TokenBucket.acquire` of its whole capacity)."""
    bucket = pacer.bucket(world.hub_id, "writes")
    await bucket.acquire(bucket.capacity)
    drain_emulator_hub_writes(world)


def client_stats(session: Any, names: list[str]) -> dict[str, int]:
    """The clients' own counters, summed over tenants."""
    out: Counter[str] = Counter()
    for name in names:
        for key, value in session.client(name).stats.as_dict().items():
            if isinstance(value, int):
                out[key] += value
    return dict(out)


@dataclass
class ToolRun:
    plan_seconds: float = 0.0
    apply_seconds: float = 0.0
    wall_seconds: float = 0.0
    steps: int = 0
    ok: bool = False
    failed: list[str] = field(default_factory=list)
    plan: Plan | None = None
    #: (resource, action, simulated seconds) per step, unthrottled runs give round trips.
    timeline: list[tuple[str, str, float]] = field(default_factory=list)
    client: dict[str, int] = field(default_factory=dict)
    emulator: EmulatorCounts = field(default_factory=EmulatorCounts)
    hub: TenantMeter = field(default_factory=TenantMeter)
    spokes: TenantMeter = field(default_factory=TenantMeter)
    pacer_waited: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.plan_seconds + self.apply_seconds


async def run_tool(
    world: World, *, drained: bool = False, options: ExecuteOptions | None = None
) -> ToolRun:
    """ctsync: read and plan, then apply, on one session sharing one pacer."""
    pacer = world.pacer()
    if drained:
        await drain_hub_writes(world, pacer)
    world.meter.reset()
    before = emulator_counts(world)
    clock = world.clock
    run = ToolRun()
    began: dict[str, float] = {}

    def on_event(kind: str, step: Step, outcome: StepOutcome | str | None) -> None:
        if kind == "start":
            began[step.id] = clock.monotonic()
        elif kind == "end" and outcome is not None and step.id in began:
            run.timeline.append((step.resource, step.action, clock.monotonic() - began[step.id]))

    wall = time.perf_counter()
    async with world.session(pacer) as session:
        t0 = clock.monotonic()
        plan = await make_plan(world.desired, session)
        t1 = clock.monotonic()
        report = await execute(plan, session, options=options, on_event=on_event)
        t2 = clock.monotonic()
        run.client = client_stats(session, list(world.desired.tenants))
    run.wall_seconds = time.perf_counter() - wall
    run.plan_seconds, run.apply_seconds = t1 - t0, t2 - t1
    run.plan = plan
    run.steps = len(plan.steps)
    run.ok = report.ok
    run.failed = [f"{o.step_id}: {o.error}" for o in report.outcomes if o.status != "done"][:10]
    run.emulator = emulator_counts(world).minus(before)
    run.hub = world.meter.tenant(world.hub_id)
    run.spokes = world.meter.total(exclude=world.hub_id)
    run.pacer_waited = {k: round(v, 3) for k, v in pacer.waited.items()}
    return run


@dataclass
class Census:
    """What the emulator holds per link after a run: each object must exist exactly once."""

    links: int = 0
    complete: int = 0
    duplicates: int = 0
    missing: int = 0
    counts: dict[str, Counter[int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "links": self.links,
            "complete": self.complete,
            "duplicates": self.duplicates,
            "missing": self.missing,
            "objects_per_link": {
                kind: {str(k): v for k, v in sorted(c.items())} for kind, c in self.counts.items()
            },
        }


def census(world: World, spokes: list[str], *, naive: bool = False) -> Census:
    """Count, per link, the hub's apps, service principals, jobs (started), assignments and
    partner entry, and the spoke's partner entry and identitySynchronization."""
    emu = world.emulator
    hub = emu.tenant(HUB)
    out = Census(links=len(spokes))
    kinds = (
        "application",
        "servicePrincipal",
        "job",
        "started",
        "assignment",
        "hub partner",
        "spoke partner",
        "identitySynchronization",
    )
    out.counts = {k: Counter() for k in kinds}
    for spoke in spokes:
        target = emu.tenant(spoke)
        name = f"{spoke} ({'naive' if naive else 'ctsync'})"
        tag = link_tag(hub.id, target.id)
        sps = [
            sp
            for sp in hub.service_principals.values()
            if sp.get("displayName") == name or tag in (sp.get("tags") or [])
        ]
        apps = [a for a in hub.applications.values() if a.get("displayName") == name]
        jobs = [
            record
            for sp in sps
            if (sync := hub.synchronization.get(sp["id"])) is not None
            for record in sync.jobs.values()
        ]
        started = [r for r in jobs if r.job["schedule"]["state"] == "Active"]
        assignments = [a for sp in sps for a in hub.app_role_assignments.get(sp["id"], {}).values()]
        row = {
            "application": len(apps),
            "servicePrincipal": len(sps),
            "job": len(jobs),
            "started": len(started),
            "assignment": len(assignments),
            # Keyed by partner tenant id in the emulator (and in Graph): at most one each.
            "hub partner": int(target.id in hub.access_policy.partners),
            "spoke partner": int(hub.id in target.access_policy.partners),
            "identitySynchronization": int(hub.id in target.access_policy.identity_sync),
        }
        for kind, n in row.items():
            out.counts[kind][n] += 1
        out.duplicates += sum(max(0, n - 1) for n in row.values())
        out.missing += sum(1 for n in row.values() if n == 0)
        out.complete += int(all(n == 1 for n in row.values()))
    return out
