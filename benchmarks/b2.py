"""B2 — fleet onboarding under quota (graph-limits §9).

A hub pushing to N spokes (k = 1), 100 ms latency, documented quotas; the hub's write bucket
starts full and, separately, drained. Time: first call → all N jobs started. ctsync: read +
plan, then apply. Naive: the walkthrough per partner, one call at a time. Floors: §6.3 with the
minimal call set (reference) and with ctsync's own plan and writes (plan floor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .b1 import Depth, L, measure_depth
from .common import census, run_tool
from .floor import (
    MINIMAL_HUB_CALLS_PER_LINK,
    MINIMAL_HUB_WRITES_PER_LINK,
    REF_DEPTH_MINIMAL,
    TENANT_CONCURRENCY,
    Floor,
    efficiency,
    hub_write_scope,
)
from .naive import naive_setup
from .report import naive_row, tool_row
from .world import build_world

__all__ = ["EFFICIENCY_TARGET", "HUB_CONCURRENCY", "run", "run_one"]

EFFICIENCY_TARGET = 0.7
#: ``ExecuteOptions().per_tenant``, imported: the concurrency ctsync allows itself in one tenant.
HUB_CONCURRENCY = TENANT_CONCURRENCY


def run_one(n: int, *, drained: bool, depth: Depth) -> dict[str, Any]:
    world = build_world(n)
    tool = world.run(lambda: run_tool(world, drained=drained))
    tool_census = census(world, world.spokes)

    base = build_world(n)
    naive = base.run(lambda: naive_setup(base, base.spokes, drained=drained))
    naive_census = census(base, base.spokes, naive=True)

    ref_writes = MINIMAL_HUB_WRITES_PER_LINK * n
    reference = Floor(
        depth=REF_DEPTH_MINIMAL,
        latency=L,
        calls=MINIMAL_HUB_CALLS_PER_LINK * n,
        concurrency=HUB_CONCURRENCY,
        scopes=(hub_write_scope(ref_writes, drained=drained),),
    )
    physical = Floor(
        depth=REF_DEPTH_MINIMAL,
        latency=L,
        calls=MINIMAL_HUB_CALLS_PER_LINK * n,
        concurrency=math.inf,
        scopes=(hub_write_scope(ref_writes, drained=drained),),
    )
    plan = Floor(
        depth=depth.total,
        latency=L,
        calls=tool.hub.http,
        concurrency=HUB_CONCURRENCY,
        scopes=(hub_write_scope(tool.hub.writes, drained=drained),),
    )
    t = tool.seconds
    row: dict[str, Any] = {
        "benchmark": "B2",
        "links": n,
        "hub_bucket": "drained" if drained else "full",
        "tool": tool_row(tool, tool_census),
        "naive": naive_row(naive, naive_census, base),
        "hub_writes_per_link": tool.hub.writes / n,
        "hub_http_per_link": tool.hub.http / n,
        "floor_reference": reference.as_dict(),
        "floor_reference_unbounded_concurrency": physical.as_dict(),
        "floor_plan": plan.as_dict(),
        "speedup": naive.same_work / t,
        "speedup_vs_walkthrough_with_on_demand": naive.to_start / t,
        "efficiency_reference": efficiency(reference, t, f"B2 N={n} reference floor"),
        "efficiency_reference_unbounded_concurrency": efficiency(
            physical, t, f"B2 N={n} unbounded floor"
        ),
        "efficiency_plan": efficiency(plan, t, f"B2 N={n} plan floor"),
    }
    early = tool.emulator.early_retries
    row["targets"] = {
        "efficiency >= 0.7 (reference floor)": {
            "value": row["efficiency_reference"],
            "met": row["efficiency_reference"] >= EFFICIENCY_TARGET,
        },
        "zero duplicates": {"value": tool_census.duplicates, "met": tool_census.duplicates == 0},
        "all links complete": {
            "value": tool_census.complete,
            "met": tool_census.complete == n,
        },
        "zero early retries": {"value": early, "met": early == 0},
        "zero 429s": {
            "value": tool.emulator.throttled_429,
            "met": tool.emulator.throttled_429 == 0,
        },
    }
    return row


def run(sizes: Sequence[int]) -> dict[str, Any]:
    depth = measure_depth()
    rows = [run_one(n, drained=drained, depth=depth) for n in sizes for drained in (False, True)]
    return {"benchmark": "B2", "sizes": list(sizes), "depth_round_trips": depth.total, "rows": rows}
