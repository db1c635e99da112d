"""B1 — single-partner onboarding latency (graph-limits §9).

One hub, one spoke, k = 1, 100 ms latency, documented quotas, no faults. Time: first call →
the job's ``start`` accepted. ctsync: read + plan, then apply. Naive: the walkthrough's calls
one by one. Floors: the real plan's critical path (plan floor) and §9's 3 round trips (reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import ToolRun, census, run_tool
from .floor import (
    MINIMAL_HUB_CALLS_PER_LINK,
    MINIMAL_HUB_WRITES_PER_LINK,
    REF_DEPTH_MINIMAL,
    REF_DEPTH_VALIDATED,
    TENANT_CONCURRENCY,
    Floor,
    critical_path,
    efficiency,
    hub_write_scope,
    step_weights,
)
from .naive import naive_setup
from .report import naive_row, tool_row
from .world import LATENCY_MS, build_world

__all__ = ["Depth", "measure_depth", "run"]

L = LATENCY_MS / 1000
SPEEDUP_TARGET = 3.0
FLOOR_FACTOR_TARGET = 1.3


@dataclass(frozen=True)
class Depth:
    """Round trips ctsync needs in sequence for one fresh link, from an unthrottled run."""

    read: float
    apply: float
    weights: dict[tuple[str, str], float]

    @property
    def total(self) -> float:
        return self.read + self.apply


def depth_of(run: ToolRun) -> Depth:
    assert run.plan is not None
    weights = step_weights(run.timeline, L)
    return Depth(
        read=round(run.plan_seconds / L), apply=critical_path(run.plan, weights), weights=weights
    )


def measure_depth() -> Depth:
    world = build_world(1)
    return depth_of(world.run(lambda: run_tool(world)))


def run() -> dict[str, Any]:
    world = build_world(1)
    tool = world.run(lambda: run_tool(world))
    tool_census = census(world, world.spokes)
    depth = depth_of(tool)

    base = build_world(1)
    naive = base.run(lambda: naive_setup(base, base.spokes))
    naive_census = census(base, base.spokes, naive=True)

    hub_writes = tool.hub.writes
    plan_floor = Floor(
        depth=depth.total,
        latency=L,
        calls=tool.hub.http,
        concurrency=TENANT_CONCURRENCY,
        scopes=(hub_write_scope(hub_writes, drained=False),),
    )
    ref_floor = Floor(
        depth=REF_DEPTH_MINIMAL,
        latency=L,
        calls=MINIMAL_HUB_CALLS_PER_LINK,
        concurrency=TENANT_CONCURRENCY,
        scopes=(hub_write_scope(MINIMAL_HUB_WRITES_PER_LINK, drained=False),),
    )
    t = tool.seconds
    result: dict[str, Any] = {
        "benchmark": "B1",
        "links": 1,
        "tool": tool_row(tool, tool_census),
        "naive": naive_row(naive, naive_census, base),
        "depth_round_trips": {
            "read": depth.read,
            "apply_critical_path": depth.apply,
            "total": depth.total,
            "per_step": {f"{r}/{a}": w for (r, a), w in sorted(depth.weights.items())},
            "reference_minimal": REF_DEPTH_MINIMAL,
            "reference_validate_on_demand": REF_DEPTH_VALIDATED,
        },
        "floor_plan": plan_floor.as_dict(),
        "floor_reference": ref_floor.as_dict(),
        "speedup": naive.same_work / t,
        "speedup_vs_walkthrough_with_on_demand": naive.to_start / t,
        "speedup_apply_only": naive.same_work / tool.apply_seconds,
        "speedup_vs_full_walkthrough": naive.total / t,
        "efficiency_plan": efficiency(plan_floor, t, "B1 plan floor"),
        "efficiency_reference": efficiency(ref_floor, t, "B1 reference floor"),
    }
    result["targets"] = {
        "speedup >= 3x naive": {
            "value": result["speedup"],
            "met": result["speedup"] >= SPEEDUP_TARGET,
        },
        "time <= 1.3x plan floor": {
            "value": t / plan_floor.seconds,
            "met": t <= FLOOR_FACTOR_TARGET * plan_floor.seconds + 1e-9,
        },
        "time <= 1.3x reference floor (3 RT)": {
            "value": t / ref_floor.seconds,
            "met": t <= FLOOR_FACTOR_TARGET * ref_floor.seconds + 1e-9,
        },
        "zero duplicates": {"value": tool_census.duplicates, "met": tool_census.duplicates == 0},
        "zero early retries": {
            "value": tool.emulator.early_retries,
            "met": tool.emulator.early_retries == 0,
        },
    }
    return result
