"""B5 — drift check of N configured links, read-only (graph-limits §9).

First every link is applied (not timed); then, with every bucket refilled (5 simulated minutes
later, as a separate run would be), a read-only ``make_plan`` must come back empty. Naive: per
link, five sequential GETs (target partner, identitySynchronization; source service principal,
job, schema). Floor: §6.3 with the hub's RU bucket (3,500 RU per 10 s for an S tenant) and
``$batch`` round trips at the client's batch concurrency.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ctsync.emulator.core.traffic import QuotaLimits
from ctsync.engine import make_plan

from .b1 import L
from .common import EmulatorCounts, census, client_stats, emulator_counts, run_tool
from .floor import READ_CONCURRENCY, Floor, QuotaScope, efficiency
from .meter import TenantMeter
from .naive import naive_read
from .world import SIZE_CLASS, World, build_world

__all__ = ["SPEEDUP_TARGET", "run"]

SPEEDUP_TARGET = 20.0
#: ``$batch`` round trips in flight per tenant in ctsync's live read (imported).
BATCH_CONCURRENCY = READ_CONCURRENCY
#: Simulated seconds between the apply and each timed read: every bucket is full again.
SETTLE = 300.0
#: The reads per link graph-limits §9 counts in the hub (service principal, job, schema).
REF_HUB_READS_PER_LINK = 3
#: Service principal → job → schema: each needs an id the previous one returns.
REF_READ_DEPTH = 3


@dataclass
class ReadRun:
    seconds: float = 0.0
    wall: float = 0.0
    steps: int = -1
    client: dict[str, int] = field(default_factory=dict)
    emulator: EmulatorCounts = field(default_factory=EmulatorCounts)
    hub: TenantMeter = field(default_factory=TenantMeter)
    spokes: TenantMeter = field(default_factory=TenantMeter)


async def read_only(world: World) -> ReadRun:
    world.meter.reset()
    before = emulator_counts(world)
    out = ReadRun()
    wall = time.perf_counter()
    async with world.session() as session:
        t0 = world.clock.monotonic()
        plan = await make_plan(world.desired, session)
        out.seconds = world.clock.monotonic() - t0
        out.client = client_stats(session, list(world.desired.tenants))
    out.wall = time.perf_counter() - wall
    out.steps = len(plan.steps)
    out.emulator = emulator_counts(world).minus(before)
    out.hub = world.meter.tenant(world.hub_id)
    out.spokes = world.meter.total(exclude=world.hub_id)
    return out


def _ru_scope(units: float) -> QuotaScope:
    limits = QuotaLimits()
    quota, window = limits.ru_for(SIZE_CLASS)
    return QuotaScope(
        name=f"hub app+tenant RU ({SIZE_CLASS})",
        units=units,
        capacity=quota,
        rate=quota / window,
        start_level=float(quota),
    )


def _applied(n: int) -> World:
    world = build_world(n)
    applied = world.run(lambda: run_tool(world))
    if not applied.ok:
        msg = f"B5 setup: apply failed: {applied.failed}"
        raise RuntimeError(msg)
    world.clock.advance(SETTLE)
    return world


def run(n: int) -> dict[str, Any]:
    world = _applied(n)
    setup_census = census(world, world.spokes)
    read = world.run(lambda: read_only(world))

    world.clock.advance(SETTLE)
    world.meter.reset()
    before = emulator_counts(world)
    naive = world.run(lambda: naive_read(world, world.spokes))
    naive_emulator = emulator_counts(world).minus(before)
    naive_hub = world.meter.tenant(world.hub_id)
    naive_spokes = world.meter.total(exclude=world.hub_id)

    one = _applied(1)
    depth = round(one.run(lambda: read_only(one)).seconds / L)

    plan_floor = Floor(
        depth=depth,
        latency=L,
        calls=read.hub.http,
        concurrency=BATCH_CONCURRENCY,
        scopes=(_ru_scope(read.hub.ru),),
    )
    ref_calls = math.ceil(REF_HUB_READS_PER_LINK * n / 20) + math.ceil(n / 999)
    ref_floor = Floor(
        depth=REF_READ_DEPTH,
        latency=L,
        calls=ref_calls,
        concurrency=BATCH_CONCURRENCY,
        scopes=(_ru_scope(REF_HUB_READS_PER_LINK * n),),
    )
    t = read.seconds
    tool_ru = read.hub.ru + read.spokes.ru
    naive_ru = naive_hub.ru + naive_spokes.ru
    result: dict[str, Any] = {
        "benchmark": "B5",
        "links": n,
        "setup_census": setup_census.as_dict(),
        "tool": {
            "sim_seconds": t,
            "wall_seconds": read.wall,
            "plan_steps": read.steps,
            "http_requests_client": read.client.get("attempts", 0),
            "http_requests_emulator": read.emulator.requests,
            "batch_subrequests": read.client.get("batch_items", 0),
            "throttled_429_received": read.client.get("throttled", 0),
            "early_retries": read.emulator.early_retries,
            "requests_while_blocked": read.emulator.requests_while_blocked,
            "token_fetches": read.client.get("token_fetches", 0),
            "hub": read.hub.as_dict(),
            "spokes": read.spokes.as_dict(),
            "ru_per_link": tool_ru / n,
        },
        "naive": {
            "sim_seconds": naive.seconds,
            "wall_seconds": naive.wall,
            "gets": naive.gets,
            "http_requests_client": naive.client_stats.get("attempts", 0),
            "http_requests_emulator": naive_emulator.requests,
            "throttled_429_received": naive.client_stats.get("throttled", 0),
            "early_retries": naive_emulator.early_retries,
            "requests_while_blocked": naive_emulator.requests_while_blocked,
            "hub": naive_hub.as_dict(),
            "spokes": naive_spokes.as_dict(),
            "ru_per_link": naive_ru / n,
        },
        "depth_round_trips": depth,
        "floor_plan": plan_floor.as_dict(),
        "floor_reference": ref_floor.as_dict(),
        "speedup": naive.seconds / t,
        "efficiency_plan": efficiency(plan_floor, t, "B5 plan floor"),
        "efficiency_reference": efficiency(ref_floor, t, "B5 reference floor"),
    }
    result["targets"] = {
        "speedup >= 20x naive": {
            "value": result["speedup"],
            "met": result["speedup"] >= SPEEDUP_TARGET,
        },
        "empty plan": {"value": read.steps, "met": read.steps == 0},
        "(§9 secondary) RU per link <= naive": {
            "value": tool_ru / n,
            "met": tool_ru <= naive_ru,
        },
        "zero early retries": {
            "value": read.emulator.early_retries,
            "met": read.emulator.early_retries == 0,
        },
    }
    return result
