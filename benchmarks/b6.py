"""B6 — engine-aware time to first user, and quarantine detection (graph-limits §4, §9).

A hub with 1,000 users, all direct members of ``CTS-Pilot``, synced into 10 spokes (10 jobs,
1,000 in-scope users each, the emulator's real provisioning engine on its clock: cycles due
at ``start``, then every 40 minutes, 0.6-2.4 s per object and twice that per create). In every
spoke 20 internal users (2 %) hold the mail of a hub user, so those creates fail with
``InvitationCreationFailureAmbiguousUser``; the last spoke's admin turns automatic redemption
off for the hub after setup, so that job's first cycle fails its connection test and the job is
quarantined.

The links are applied with ``start: false`` (not timed); the policy is broken through Graph;
then ``ctsync start`` (``control_jobs``) starts all ten at t0 and ``ctsync status``-style
pollers (``statuses``, a new session per poll, as ``status --watch`` does) run at 60 s (the
CLI's default) and 300 s. Measured on the emulator clock: the first user and 95 % of the users
the healthy jobs can create present in their targets, the quarantine's time, each poller's
detection delay, and the GETs and RU each poller spent in the hub.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ctsync.emulator.engine.logs import parse_iso
from ctsync.emulator.state import Tenant
from ctsync.graph.policy import CrossTenantAccessPolicyApi
from ctsync.ops import control_jobs, statuses

from .b1 import L
from .common import run_tool
from .meter import Meter
from .world import GROUP_NAME, HUB, SIZE_CLASS, World, build_custom_world, config_text, spoke_name

__all__ = ["DETECTION_TARGET", "RU_TARGET", "run"]

#: Quarantine detected within one poll interval; polling below 1 % of the hub's RU budget.
DETECTION_TARGET = 1.0
RU_TARGET = 0.01
JOBS = 10
FAIL_EVERY = 50  # one colliding user per 50 → 2 %
POLL_INTERVALS = (60.0, 300.0)
#: Stop polling after this many simulated seconds whatever happened.
HORIZON = 6 * 3600.0
SHARE = 0.95
#: Cycles every healthy job completes before polling stops (initial, then two incremental).
CYCLES = 3
CLIENT = {"display_name": "ctsync", "permissions": "ctsync"}


def _alias(i: int) -> str:
    return f"u{i:05d}"


def scenario(users: int, jobs: int) -> dict[str, Any]:
    hub = {
        "name": HUB,
        "clients": [CLIENT],
        "users": [
            {"alias": _alias(i), "displayName": f"User {i:05d}", "department": "Sales"}
            for i in range(users)
        ],
        "groups": [
            {
                "alias": "pilot",
                "displayName": GROUP_NAME,
                "members": [_alias(i) for i in range(users)],
            }
        ],
    }
    spokes = []
    for k in range(1, jobs + 1):
        # Internal users holding a hub user's mail, spread through the hub's user order.
        clashes = [
            {"alias": f"clash{j:04d}", "mail": f"{_alias(j + k % FAIL_EVERY)}@hub.onmicrosoft.com"}
            for j in range(0, users, FAIL_EVERY)
        ]
        spokes.append({"name": spoke_name(k), "clients": [CLIENT], "users": clashes})
    return {"tenants": [hub, *spokes]}


@dataclass
class Poller:
    interval: float
    meter: Meter = field(default_factory=Meter)
    polls: int = 0
    detected_at: float | None = None
    reason: str | None = None
    remedy: str | None = None
    #: Link reports (one per link and poll) that called a link with no policy problem
    #: unhealthy, and the first problem text each time it changed.
    false_alarms: int = 0
    false_alarm_problems: list[str] = field(default_factory=list)
    first_false_alarm_at: float | None = None
    elapsed: float = 0.0


@dataclass
class Timeline:
    t0: float = 0.0
    t0_wall: datetime | None = None
    cycle_began: dict[str, float] = field(default_factory=dict)
    start_seconds: float = 0.0


def _created(target: Tenant) -> list[datetime]:
    return sorted(
        at
        for key, at in target.created_at.items()
        if key.startswith("user:")
        and (target.users.get(key[5:]) or {}).get("creationType") == "Invitation"
    )


def _settled(world: World, broken: str) -> bool:
    """Every healthy job has completed ``CYCLES`` cycles (its initial one, then incremental
    ones that retry the escrowed users): the steady state is reached and has been polled."""
    hub = world.emulator.tenant(HUB)
    for sync in hub.synchronization.values():
        company = str(sync.secret("CompanyId") or "").lower()
        if world.emulator.tenant(company).name == broken:
            continue
        if any(record.completed_cycles < CYCLES for record in sync.jobs.values()):
            return False
    return True


async def _poll(world: World, poller: Poller, broken: str, t0: float) -> None:
    links = list(world.desired.links)
    broken_key = f"{HUB}:{broken}"
    clock = world.clock
    while True:
        pacer = world.pacer()
        async with world.session(pacer, poller.meter) as session:
            items = await statuses(session, links)
        poller.polls += 1
        now = clock.monotonic() - t0
        for item in items:
            if item.link == broken_key:
                if item.quarantine and poller.detected_at is None:
                    poller.detected_at = now
                    poller.reason = item.quarantine.get("reason")
                    poller.remedy = item.quarantine.get("remedy")
            elif not item.healthy:
                poller.false_alarms += 1
                if poller.first_false_alarm_at is None:
                    poller.first_false_alarm_at = now
                problem = f"{item.link}: {item.problems[0]}"
                if (
                    len(poller.false_alarm_problems) < 3
                    and problem not in poller.false_alarm_problems
                ):
                    poller.false_alarm_problems.append(problem)
        finished = poller.detected_at is not None and _settled(world, broken)
        if finished or now >= HORIZON:
            poller.elapsed = now
            return
        await clock.sleep(poller.interval)


async def _scenario(world: World, broken: str, healthy: list[str]) -> tuple[Timeline, list[Poller]]:
    clock = world.clock
    hub_id = world.hub_id
    # The broken spoke's admin turns automatic redemption off for the hub (after setup).
    admin = world.client(broken, world.pacer())
    await CrossTenantAccessPolicyApi(admin).update_partner(
        hub_id, {"automaticUserConsentSettings": {"inboundAllowed": False}}
    )
    await admin.aclose()
    await clock.sleep(60.0)

    line = Timeline(t0=clock.monotonic(), t0_wall=world.emulator.clock.now())
    async with world.session() as session:
        await control_jobs(session, list(world.desired.links), "start")
    line.start_seconds = clock.monotonic() - line.t0
    hub = world.emulator.tenant(HUB)
    for sync in hub.synchronization.values():
        for record in sync.jobs.values():
            company = str(sync.secret("CompanyId") or "").lower()
            name = world.emulator.tenant(company).name
            run = record.running_cycle
            if run is not None and line.t0_wall is not None:
                line.cycle_began[name] = (run.began - line.t0_wall).total_seconds()
    pollers = [Poller(interval) for interval in POLL_INTERVALS]
    await asyncio.gather(*(_poll(world, p, broken, line.t0) for p in pollers))
    return line, pollers


def run(users: int = 1000, jobs: int = JOBS) -> dict[str, Any]:
    spokes = [spoke_name(k) for k in range(1, jobs + 1)]
    world = build_custom_world(
        scenario(users, jobs), spokes, lambda emu: config_text(emu, spokes, start=False)
    )
    setup = world.run(lambda: run_tool(world))
    if not setup.ok:
        msg = f"B6 setup: apply failed: {setup.failed}"
        raise RuntimeError(msg)
    broken, healthy = spokes[-1], spokes[:-1]
    wall = time.perf_counter()
    line, pollers = world.run(lambda: _scenario(world, broken, healthy))
    wall = time.perf_counter() - wall
    assert line.t0_wall is not None
    t0 = line.t0_wall
    emu = world.emulator
    settings = emu.provisioning

    # Users in the targets (B2B users the engine created), on the emulator clock.
    created = {s: [(at - t0).total_seconds() for at in _created(emu.tenant(s))] for s in spokes}
    healthy_times = sorted(x for s in healthy for x in created[s])
    possible = users - users // FAIL_EVERY
    need = math.ceil(SHARE * users * len(healthy))
    t95 = healthy_times[need - 1] if len(healthy_times) >= need else None
    per_job_t95 = {
        s: created[s][math.ceil(SHARE * users) - 1] if len(created[s]) >= SHARE * users else None
        for s in healthy
    }
    first_user = min(healthy_times) if healthy_times else None

    # The quarantine, as the engine recorded it.
    hub = emu.tenant(HUB)
    quarantine: dict[str, Any] = {}
    escrow_codes: dict[str, dict[str, int]] = {}
    for sync in hub.synchronization.values():
        company = str(sync.secret("CompanyId") or "").lower()
        name = emu.tenant(company).name
        for record in sync.jobs.values():
            codes: dict[str, int] = {}
            for entry in record.escrows.values():
                codes[str(entry.get("code"))] = codes.get(str(entry.get("code")), 0) + 1
            escrow_codes[name] = codes
            q = record.job["status"].get("quarantine")
            if name == broken and q:
                quarantine = {
                    "reason": q.get("reason"),
                    "at": (parse_iso(q["currentBegan"]) - t0).total_seconds(),
                    "series_began": q.get("seriesBegan"),
                    "next_attempt": q.get("nextAttempt"),
                }

    cycle_due = max(line.cycle_began.values(), default=0.0)
    low, high = settings.object_seconds
    mean_create = low + high  # twice the mean object time
    objects_95 = math.ceil(SHARE * users)
    floor_doc = cycle_due + 0.6 * objects_95
    floor_doc_create = cycle_due + 2 * low * objects_95
    # The failing creates among them take a create's time too.
    objects_needed = math.ceil(objects_95 * FAIL_EVERY / (FAIL_EVERY - 1))
    expected_engine = cycle_due + mean_create * objects_needed

    budget_per_hour = _ru_budget_per_hour()
    poll_rows = []
    for p in pollers:
        hub_meter = p.meter.tenant(world.hub_id)
        hours = p.elapsed / 3600 if p.elapsed else float("nan")
        delay = (
            p.detected_at - quarantine["at"] if p.detected_at is not None and quarantine else None
        )
        # Polls are evenly spaced: per poll, times polls per hour (the first poll at t0 makes
        # the measured total over a short run look higher).
        per_hour = 3600 / p.interval
        ru_per_hour = hub_meter.ru / p.polls * per_hour
        poll_rows.append(
            {
                "interval_seconds": p.interval,
                "polls": p.polls,
                "elapsed_seconds": p.elapsed,
                "detected_at": p.detected_at,
                "detection_delay": delay,
                "detection_delay_in_intervals": None if delay is None else delay / p.interval,
                "reason": p.reason,
                "remedy": p.remedy,
                "false_alarms": p.false_alarms,
                "false_alarm_problems": p.false_alarm_problems,
                "first_false_alarm_at": p.first_false_alarm_at,
                "hub_gets": hub_meter.reads,
                "hub_http": hub_meter.http,
                "hub_ru": hub_meter.ru,
                "throttled_429": sum(m.throttled for m in p.meter.tenants.values()),
                "gets_per_poll": hub_meter.reads / p.polls,
                "gets_per_job_hour": hub_meter.reads / p.polls / len(spokes) * per_hour,
                "gets_per_job_hour_measured": hub_meter.reads / (len(spokes) * hours),
                "ru_per_hour": ru_per_hour,
                "ru_fraction_of_hub_budget": ru_per_hour / budget_per_hour,
                "ops": dict(sorted(hub_meter.ops.items())),
            }
        )

    result: dict[str, Any] = {
        "benchmark": "B6",
        "jobs": jobs,
        "users_per_job": users,
        "create_failures_per_job": users // FAIL_EVERY,
        "possible_per_healthy_job": possible,
        "broken_job": f"{HUB}:{broken}",
        "wall_seconds_engine_and_polls": wall,
        "start_command_seconds": line.start_seconds,
        "first_cycle_due_seconds": cycle_due,
        "first_user_seconds": first_user,
        "t95_seconds": t95,
        "t95_users": need,
        "t95_per_job_max_seconds": max(
            (v for v in per_job_t95.values() if v is not None), default=None
        ),
        "created_per_spoke": {s: len(created[s]) for s in spokes},
        "escrow_codes": escrow_codes,
        "floor_t95_doc": floor_doc,
        "floor_t95_doc_create": floor_doc_create,
        "expected_t95_engine_model": expected_engine,
        "engine_object_seconds": [low, high],
        "quarantine": quarantine,
        "pollers": poll_rows,
        "hub_ru_budget_per_hour": budget_per_hour,
        "hub_size_class": SIZE_CLASS,
        "latency": L,
    }
    result["targets"] = _targets(result, possible, healthy)
    return result


def _ru_budget_per_hour() -> float:
    from ctsync.emulator.core.traffic import QuotaLimits

    quota, window = QuotaLimits().ru_for(SIZE_CLASS)
    return quota / window * 3600


def _targets(r: dict[str, Any], possible: int, healthy: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in r["pollers"]:
        label = f"poll every {p['interval_seconds']:g} s"
        in_intervals = p["detection_delay_in_intervals"]
        out[f"{label}: quarantine detected within one poll interval"] = {
            "value": in_intervals if in_intervals is not None else "never",
            "met": in_intervals is not None and in_intervals <= DETECTION_TARGET + 1e-9,
        }
        out[f"{label}: polling < 1 % of the hub's RU budget (%)"] = {
            "value": 100 * p["ru_fraction_of_hub_budget"],
            "met": p["ru_fraction_of_hub_budget"] < RU_TARGET,
        }
        out[f"{label}: (secondary) no healthy link reported unhealthy"] = {
            "value": p["false_alarms"],
            "met": p["false_alarms"] == 0,
        }
    created = r["created_per_spoke"]
    broken = r["broken_job"].split(":")[1]
    exact = all(created[s] == possible for s in healthy) and created[broken] == 0
    out["every healthy job created exactly its possible users, the broken one none"] = {
        "value": sum(created.values()),
        "met": exact,
    }
    return out
