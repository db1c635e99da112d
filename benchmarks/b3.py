"""B3 (graph-limits §9): setup under the faults real Graph brings.

The B2 world (a hub and N spokes, 100 ms latency, the documented quotas) with, on top, 20 % of
calls answered 429 (``Retry-After`` 1–3 s), 5 % answered 503 or 500, 2 % of connections reset
after the service handled the request, and a 2 s replication lag on every new object. ctsync
runs ``apply`` (plan, then execute) until a run succeeds — a POST a 5xx or a reset fails is not
retried (it may have happened), so a run can fail and the next one picks up from what is there —
and then ``plan`` must be empty.

Judged: every link complete, **zero duplicates** (no second app, job, assignment or partner for a
link, whatever a reset hid), **zero early retries** (no request before its ``Retry-After``
ended). Reported: runs needed, simulated seconds against the fault-free B2 figure for the same
N, and wasted requests — the calls answered with an injected fault, a 429, or a 404 while an
object replicated, as a share of all calls.
"""

from __future__ import annotations

from typing import Any

from ctsync.engine import make_plan

from .common import census, emulator_counts, run_tool
from .naive import quiet_retries
from .world import World, build_world

__all__ = ["FAULTS", "run"]

FAULTS: dict[str, Any] = {
    "rate_429": 0.20,
    "rate_503": 0.03,
    "rate_500": 0.02,
    "rate_drop": 0.02,
    "retry_after": [1, 3],
    "replication_lag": 2.0,
}
MAX_RUNS = 6


async def _empty_plan(world: World) -> int:
    async with world.session() as session:
        plan = await make_plan(world.desired, session)
    return len(plan.steps)


def _injected(world: World) -> int:
    """Injected 5xx answers and reset connections (the random 429s count as 429s)."""
    faults = world.emulator.traffic.stats()["random_faults"]
    return sum(int(v) for k, v in faults.items() if k != "429")


def run(n: int) -> dict[str, Any]:
    with quiet_retries():
        return _run(n)


def _run(n: int) -> dict[str, Any]:
    calm = build_world(n)
    baseline = calm.run(lambda: run_tool(calm))

    world = build_world(n)
    emulator = world.emulator
    emulator.traffic.configure(emulator.faults.merged(FAULTS))
    before = emulator_counts(world)
    faults_before = _injected(world)
    missing_before = int(emulator.stats.get("status_404", 0))
    runs: list[dict[str, Any]] = []
    seconds = 0.0
    for _ in range(MAX_RUNS):
        tool = world.run(lambda: run_tool(world))
        seconds += tool.plan_seconds + tool.apply_seconds
        runs.append(
            {
                "ok": tool.ok,
                "seconds": tool.plan_seconds + tool.apply_seconds,
                "steps": tool.steps,
                "failed": tool.failed[:3],
            }
        )
        if tool.ok:
            break
    counts = emulator_counts(world).minus(before)
    injected = _injected(world) - faults_before
    # The plan after the last run, with faults still on (a drift check in the same weather).
    leftover = world.run(lambda: _empty_plan(world))
    tally = census(world, world.spokes)
    not_found = int(emulator.stats.get("status_404", 0)) - missing_before
    wasted = counts.throttled_429 + injected + not_found
    ok = bool(runs) and runs[-1]["ok"]
    return {
        "benchmark": "B3",
        "links": n,
        "faults": FAULTS,
        "runs": runs,
        "runs_needed": len(runs) if ok else None,
        "sim_seconds": seconds,
        "sim_seconds_fault_free": baseline.plan_seconds + baseline.apply_seconds,
        "requests": counts.requests,
        "throttled_429": counts.throttled_429,
        "injected_faults": injected,
        "not_found_404": not_found,
        "wasted_requests": wasted,
        "wasted_share": wasted / counts.requests if counts.requests else 0.0,
        "early_retries": counts.early_retries,
        "census": tally.as_dict(),
        "plan_steps_after": leftover,
        "targets": {
            "completes (every link, then an empty plan)": {
                "value": tally.complete,
                "met": ok and tally.complete == n and leftover == 0,
            },
            "zero duplicates": {"value": tally.duplicates, "met": tally.duplicates == 0},
            "zero early retries": {
                "value": counts.early_retries,
                "met": counts.early_retries == 0,
            },
        },
    }
