"""B4 — provisioning-log audit at scale (graph-limits §6.4, §9).

T source tenants (each with one link into the hub, ``spokeNNNN → hub``), M entries in all in
their ``/auditLogs/provisioning``, 100 ms latency, the documented reports buckets (5 requests per
10 s per app and tenant, 122 per 10 s per app) in the emulator and in ctsync's pacer.

- ctsync: ``read_logs`` over every link at once (full audit, page size P, summary built), then,
  after ~1 % new entries, the same call with the watermarks of the full run (incremental).
- naive: tenant after tenant, page after page, no client pacing, ``Retry-After`` honoured.
- floor: :func:`~benchmarks.floor.audit_floor` (the reports buckets with their burst, and the
  ``@odata.nextLink`` chain).

The log entries are written straight into the emulator's store (``Tenant.provisioning_log``,
the shape :mod:`ctsync.emulator.engine.logs` builds, oldest first, spread over the last seven
days): 10^5 provisioning actions through the engine would cost minutes of wall time and
measure nothing B4 is about. The source tenants hold no users, so the started jobs add none.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from ctsync.emulator.engine import logs as emu_logs
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import Tenant
from ctsync.ops import Watermarks, read_logs

from .b1 import L
from .common import EmulatorCounts, client_stats, emulator_counts, run_tool
from .floor import Floor, audit_floor, efficiency
from .meter import TenantMeter
from .naive import NaiveAudit, naive_audit
from .world import (
    GROUP_NAME,
    HUB,
    World,
    build_custom_world,
    spoke_name,
    tenant_lines,
)

__all__ = ["EFFICIENCY_TARGET", "INCREMENTAL_TARGET", "run", "run_one"]

EFFICIENCY_TARGET = 0.8
INCREMENTAL_TARGET = 0.05
#: Simulated seconds between two timed runs: every reports bucket is full again (10 s windows).
SETTLE = 60.0
#: The full audit's entries are spread over this many seconds before the first run.
LOG_SPAN = 7 * 24 * 3600.0
#: New entries before the incremental run, as a fraction of the full run's.
NEW_FRACTION = 0.01
#: Simulated seconds between the full audit and the incremental one (the new entries in it).
INCREMENTAL_GAP = 3600.0
#: The reports-quota operation, as :func:`benchmarks.meter.operation` names it.
REPORTS_OP = "GET /auditLogs/provisioning"
#: ``locate``: the tagged service principal, then its jobs (round trips before the first page).
LOCATE_DEPTH = 2
CLIENT = {"display_name": "ctsync", "permissions": "ctsync"}


# -- the world -------------------------------------------------------------------------------


def scenario(t: int) -> dict[str, Any]:
    """The hub (the target) and ``t`` source tenants, each with an empty ``CTS-Pilot``."""
    sources = [
        {
            "name": spoke_name(i),
            "clients": [CLIENT],
            "groups": [{"alias": "pilot", "displayName": GROUP_NAME, "members": []}],
        }
        for i in range(1, t + 1)
    ]
    return {"tenants": [{"name": HUB, "clients": [CLIENT]}, *sources]}


def config(emulator: Any, sources: list[str]) -> str:
    lines = tenant_lines(emulator, [HUB, *sources])
    lines += [
        "templates:",
        "  member-sync:",
        "    access: {automatic_redemption: true}",
        "    sync:",
        f"      scope: {{assigned: [{{group: {GROUP_NAME}}}]}}",
        "      actions: [create, update]",
        "links:",
    ]
    for name in sources:
        lines += [f"  - {{source: {name}, target: {HUB}, template: member-sync}}"]
    return "\n".join(lines) + "\n"


def applied_world(t: int) -> World:
    sources = [spoke_name(i) for i in range(1, t + 1)]
    world = build_custom_world(scenario(t), sources, lambda emu: config(emu, sources))
    setup = world.run(lambda: run_tool(world))
    if not setup.ok:
        msg = f"B4 setup: apply failed: {setup.failed}"
        raise RuntimeError(msg)
    return world


def job_ids(world: World) -> dict[str, str]:
    """Source tenant name → its link's job id (what the naive script pasted in)."""
    out = {}
    for name in world.spokes:
        sync = next(iter(world.emulator.tenant(name).synchronization.values()))
        out[name] = next(iter(sync.jobs))
    return out


# -- synthetic log entries -------------------------------------------------------------------

#: (action, status, error code or None, share in percent): a plausible mix for steady-state CTS.
KINDS: tuple[tuple[str, str, str | None, int], ...] = (
    ("other", "skipped", "RedundantExport", 40),
    ("update", "success", None, 30),
    ("create", "success", None, 15),
    ("other", "skipped", "NotEffectivelyEntitled", 8),
    ("create", "failure", "InvitationCreationFailureAmbiguousUser", 5),
    ("disable", "success", None, 2),
)
USERS_PER_TENANT = 1000
ENTRIES_PER_CYCLE = 500


@dataclass
class _TenantLog:
    tenant: Tenant
    templates: list[dict[str, Any]]
    users: list[tuple[dict[str, Any], dict[str, Any]]]


class LogSeeder:
    """Writes provisioning-log records into the source tenants' stores, in the shape
    :class:`ctsync.emulator.engine.logs.RowContext` builds; nested parts are shared between
    records (they are serialized, never mutated) to keep 10^5 records small."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = random.Random(4)
        slots = [i for i, kind in enumerate(KINDS) for _ in range(kind[3])]
        self.rng.shuffle(slots)
        self.slots = slots
        self.logs = {name: self._tenant_log(name) for name in world.spokes}
        self.written: dict[str, int] = dict.fromkeys(world.spokes, 0)

    def _tenant_log(self, name: str) -> _TenantLog:
        emu = self.world.emulator
        tenant = emu.tenant(name)
        hub = emu.tenant(HUB)
        sp_id, sync = next(iter(tenant.synchronization.items()))
        record = next(iter(sync.jobs.values()))
        directories = record.schema.get("directories") or []
        rows = emu_logs.RowContext(
            source=tenant,
            target_tenant_id=hub.id,
            job_id=record.id,
            cycle_id="",
            service_principal=tenant.service_principals[sp_id],
            source_directory_id=(directories[0] or {}).get("id") if directories else None,
            target_directory_id=(directories[1] or {}).get("id") if len(directories) > 1 else None,
            initiator=emu_logs.system_initiator(),
        )
        placeholder = {"id": "", "displayName": "", "userPrincipalName": ""}
        templates = [
            rows.record(
                record_id="",
                change_id="",
                at=emu.clock.now(),
                duration_ms=1000 + 500 * i,
                action=action,
                status=status,
                error=_error(code),
                source_user=placeholder,
                target_id="",
                target_name="",
                steps=_steps(action, status, code),
                modified=[("displayName", None, "User")] if status == "success" else [],
            )
            for i, (action, status, code, _share) in enumerate(KINDS)
        ]
        users = []
        for k in range(USERS_PER_TENANT):
            upn = f"user{k:05d}@{tenant.domain}"
            uid = emu.ids.guid()
            source = {
                "id": uid,
                "displayName": f"User {k:05d}",
                "identityType": "User",
                "details": {
                    "id": uid,
                    "odatatype": "User",
                    "DisplayName": f"User {k:05d}",
                    "UserPrincipalName": upn,
                },
            }
            target = {
                "id": emu.ids.guid(),
                "displayName": f"User {k:05d}",
                "identityType": "User",
                "details": {},
            }
            users.append((source, target))
        return _TenantLog(tenant, templates, users)

    def write(self, name: str, count: int, start: datetime, end: datetime) -> None:
        """``count`` records for tenant ``name``, evenly spread over [start, end), oldest first."""
        log = self.logs[name]
        ids = self.world.emulator.ids
        span = (end - start).total_seconds()
        records = []
        cycle = ids.guid()
        first = self.written[name]
        for i in range(count):
            n = first + i
            if n % ENTRIES_PER_CYCLE == 0:
                cycle = ids.guid()
            kind = self.slots[n % len(self.slots)]
            source, target = log.users[n % len(log.users)]
            record = dict(log.templates[kind])
            record["id"] = ids.guid()
            record["changeId"] = ids.guid()
            record["cycleId"] = cycle
            record["activityDateTime"] = emu_logs.iso(
                start + timedelta(seconds=span * i / count), fraction=False
            )
            record["sourceIdentity"] = source
            if KINDS[kind][1] == "success":
                record["targetIdentity"] = target
            records.append(record)
        emu_logs.append(log.tenant, records)
        self.written[name] += count


def _error(code: str | None) -> dict[str, Any] | None:
    if code is None:
        return None
    return {
        "errorCode": code,
        "reason": f"({code})",
        "additionalDetails": None,
        "errorCategory": "nonServiceFailure" if code.startswith("Invitation") else None,
        "recommendedAction": None,
    }


def _steps(action: str, status: str, code: str | None) -> list[emu_logs.Step]:
    src, tgt = a2a.SOURCE_DIRECTORY, a2a.TARGET_DIRECTORY
    steps = [
        emu_logs.step("EntryImportUpdate", "import", "success", f"Received User from {src}"),
        emu_logs.step(
            "EntrySynchronizationScoping",
            "scoping",
            "skipped" if code == "NotEffectivelyEntitled" else "success",
            "Determine if User in scope by evaluating against each scoping filter",
            {"Assigned to the application": str(code != "NotEffectivelyEntitled")},
        ),
    ]
    if code == "NotEffectivelyEntitled":
        return steps
    steps.append(emu_logs.step("EntrySynchronizationUpdate", "matching", "success", f"{tgt}"))
    if action == "other":
        steps.append(
            emu_logs.step("EntrySynchronizationSkip", "export", "skipped", "", {"SkipReason": code})
        )
    else:
        steps.append(emu_logs.step("EntryExportUpdate", "export", status, f"{action} in {tgt}"))
    return steps


# -- the runs --------------------------------------------------------------------------------


@dataclass
class AuditRun:
    seconds: float = 0.0
    wall: float = 0.0
    entries: int = 0
    unique_changes: int = 0
    summary_rows: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    client: dict[str, int] = field(default_factory=dict)
    emulator: EmulatorCounts = field(default_factory=EmulatorCounts)
    meter: TenantMeter = field(default_factory=TenantMeter)
    pacer_waited: dict[str, float] = field(default_factory=dict)

    @property
    def reports_requests(self) -> int:
        """Requests charged to the reports quota (pages, 429s included)."""
        return self.meter.ops[REPORTS_OP] + self.meter.throttled

    @property
    def requests(self) -> int:
        return self.meter.http

    def row(self) -> dict[str, Any]:
        return {
            "sim_seconds": self.seconds,
            "wall_seconds": self.wall,
            "entries": self.entries,
            "unique_change_ids": self.unique_changes,
            "summary_rows": self.summary_rows,
            "pages": sum(self.pages.values()),
            "http_requests": self.requests,
            "reports_requests": self.reports_requests,
            "identity_requests": self.requests - self.reports_requests,
            "throttled_429": self.emulator.throttled_429,
            "early_retries": self.emulator.early_retries,
            "requests_while_blocked": self.emulator.requests_while_blocked,
            "retries": self.client.get("retries", 0),
            "pacer_waited_seconds": self.pacer_waited,
        }


async def tool_audit(world: World, *, page: int, watermarks: Watermarks | None) -> AuditRun:
    """``ctsync logs [--incremental] --summary [--page-size P]`` over every link: one session,
    one pacer."""
    pacer = world.pacer()
    world.meter.reset()
    before = emulator_counts(world)
    out = AuditRun()
    wall = time.perf_counter()
    async with world.session(pacer) as session:
        t0 = world.clock.monotonic()
        report = await read_logs(
            session, list(world.desired.links), watermarks=watermarks, page_size=page
        )
        out.summary_rows = len(report.summary())
        out.seconds = world.clock.monotonic() - t0
        out.client = client_stats(session, list(world.desired.tenants))
    out.wall = time.perf_counter() - wall
    out.entries = len(report.entries)
    out.unique_changes = len({e.change_id for e in report.entries})
    out.pages = dict(report.pages)
    out.emulator = emulator_counts(world).minus(before)
    out.meter = world.meter.total()
    out.pacer_waited = {k: round(v, 3) for k, v in pacer.waited.items()}
    return out


def run_one(t: int, m_total: int, page_sizes: Sequence[int]) -> dict[str, Any]:
    world = applied_world(t)
    per_tenant = m_total // t
    seeder = LogSeeder(world)
    now = world.emulator.clock.now()
    for name in world.spokes:
        seeder.write(name, per_tenant, now - timedelta(seconds=LOG_SPAN), now)
    jobs = job_ids(world)
    with tempfile.TemporaryDirectory() as tmp:
        marks = Watermarks(Path(tmp) / "logs-watermark.json")
        rows = []
        for page in page_sizes:
            world.clock.advance(SETTLE)
            # Only the first (ctsync's own page size) keeps watermarks for the incremental run.
            kept = marks if page == page_sizes[0] else None
            tool = world.run(partial(tool_audit, world, page=page, watermarks=kept))
            world.clock.advance(SETTLE)
            world.meter.reset()
            before = emulator_counts(world)
            naive = world.run(partial(naive_audit, world, jobs, page=page))
            naive_emu = emulator_counts(world).minus(before)
            rows.append(
                _row(t, m_total=m_total, page=page, tool=tool, naive=naive, naive_emu=naive_emu)
            )

        # ~1 % new entries during the next hour, then the incremental audit.
        world.clock.advance(INCREMENTAL_GAP)
        later = world.emulator.clock.now()
        new_per_tenant = max(1, round(per_tenant * NEW_FRACTION))
        for name in world.spokes:
            seeder.write(name, new_per_tenant, later - timedelta(seconds=INCREMENTAL_GAP), later)
        world.clock.advance(SETTLE)
        incremental = world.run(lambda: tool_audit(world, page=page_sizes[0], watermarks=marks))
    full = rows[0]["tool"]
    new_total = new_per_tenant * t
    full_pages = rows[0]["pages_per_tenant"]
    # What any incremental audit must send: one page per tenant (the new entries fit in one).
    min_pages = t * math.ceil(new_per_tenant / page_sizes[0])
    inc: dict[str, Any] = {
        **incremental.row(),
        "new_entries": new_total,
        "fraction_of_full_http": incremental.requests / full["http_requests"],
        "fraction_of_full_reports": incremental.reports_requests / full["reports_requests"],
        "floor_reports_requests": min_pages,
        "floor_fraction_of_full_reports": min_pages / (t * full_pages),
        "all_new_read_once": incremental.entries == new_total
        and incremental.unique_changes == new_total,
    }
    targets: dict[str, dict[str, Any]] = {}
    for row in rows:
        label = f"T = {t}, P = {row['page_size']:,}"
        if row["page_size"] == page_sizes[0]:
            targets[f"{label}: efficiency >= 0.8 (floor)"] = {
                "value": row["efficiency"],
                "met": row["efficiency"] >= EFFICIENCY_TARGET,
            }
        targets[f"{label}: every entry read once"] = {
            "value": row["tool"]["unique_change_ids"],
            "met": row["tool"]["entries"] == m_total
            and row["tool"]["unique_change_ids"] == m_total,
        }
        targets[f"{label}: zero early retries"] = {
            "value": row["tool"]["early_retries"],
            "met": row["tool"]["early_retries"] == 0,
        }
    targets[f"T = {t}: incremental <= 5 % of the full audit's requests (all HTTP, %)"] = {
        "value": 100 * inc["fraction_of_full_http"],
        "met": inc["fraction_of_full_http"] <= INCREMENTAL_TARGET,
    }
    targets[f"T = {t}: incremental <= 5 % of the full audit's reports requests (%)"] = {
        "value": 100 * inc["fraction_of_full_reports"],
        "met": inc["fraction_of_full_reports"] <= INCREMENTAL_TARGET,
    }
    targets[f"T = {t}: incremental reads every new entry once"] = {
        "value": inc["entries"],
        "met": inc["all_new_read_once"],
    }
    return {
        "tenants": t,
        "entries": m_total,
        "entries_per_tenant": per_tenant,
        "rows": rows,
        "incremental": inc,
        "targets": targets,
    }


def _row(
    t: int,
    *,
    m_total: int,
    page: int,
    tool: AuditRun,
    naive: NaiveAudit,
    naive_emu: EmulatorCounts,
) -> dict[str, Any]:
    pages = math.ceil(m_total // t / page)
    reference = audit_floor([pages] * t, latency=L)
    plan = audit_floor([pages] * t, latency=L, extra_depth=LOCATE_DEPTH)
    binding = _binding(reference)
    return {
        "tenants": t,
        "entries": m_total,
        "page_size": page,
        "pages_per_tenant": pages,
        "tool": tool.row(),
        "naive": {
            "sim_seconds": naive.seconds,
            "wall_seconds": naive.wall,
            "entries": naive.entries,
            "pages": sum(naive.pages.values()),
            "http_requests": naive.client_stats.get("attempts", 0),
            "throttled_429": naive_emu.throttled_429,
            "early_retries": naive_emu.early_retries,
            "requests_while_blocked": naive_emu.requests_while_blocked,
            "retries": naive.client_stats.get("retries", 0),
        },
        "floor": reference.as_dict(),
        "floor_binding": binding,
        "floor_with_locate": plan.as_dict(),
        "efficiency": efficiency(reference, tool.seconds, "B4 floor"),
        "efficiency_with_locate": efficiency(plan, tool.seconds, "B4 floor with locate"),
        "speedup": naive.seconds / tool.seconds,
    }


def _binding(floor: Floor) -> str:
    if floor.binding != "quota":
        return "nextLink chain"
    return max(floor.scopes, key=lambda s: s.seconds).name


def run(cases: Sequence[tuple[int, int, Sequence[int]]]) -> dict[str, Any]:
    """``cases``: (T, M_total, page sizes), ctsync's 500 first among the page sizes."""
    return {
        "benchmark": "B4",
        "cases": [run_one(t, m, pages) for t, m, pages in cases],
    }
