"""Provisioning cycles on the emulator clock.

A started job (schedule ``Active``) runs a cycle at ``next_cycle_at``: right after ``start``
or ``restart``, then every 40 minutes (graph-limits §4.1), or on the quarantine ladder
(§4.4). A cycle takes time: it lists the users to evaluate when it begins (every user on an
initial cycle, the users whose fingerprint changed since the watermark on an incremental one,
plus escrows), then handles one user after another, each taking 0.6-2.4 s of emulator time
(a create twice that), and completes after the last. Nothing sleeps: :func:`run_due` (called
before each request and after every clock advance) handles every event whose time has come,
in time order, each stamped with its own time. :func:`run_now` (control ``POST
cycles/run``) runs a whole cycle of every started job at the current instant.

A cycle that begins when the clock stands exactly at its due time waits until the clock moves
(due times are strict), so a frozen clock shows ``NotRun`` right after ``start``.

With the schema's group mapping enabled (group provisioning, :mod:`.groups`), the cycle lists
its groups once the last user is done (their members must exist first) and handles them one
after another the same way, before it completes.
"""

from __future__ import annotations

import contextlib
import gc
import random
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctsync.emulator.engine import groups, logs
from ctsync.emulator.engine.policy_check import GROUP_SYNC_CODE, LEGACY_CODE
from ctsync.emulator.engine.provisioner import (
    Decision,
    ExportError,
    JobContext,
    TargetIndex,
    apply,
    fingerprint,
    job_context,
    plan,
)
from ctsync.emulator.engine.queue import CycleQueue, JobRef, iter_jobs
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import SyncJobRecord

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["CycleRun", "JobRef", "engine_pass", "iter_jobs", "run_due", "run_now", "schedule_now"]

JsonObject = dict[str, Any]


@dataclass
class CycleRun:
    """A cycle in progress."""

    cycle_id: str
    began: datetime
    initial: bool
    #: Source user ids to evaluate, in order, and how far the cycle got.
    queue: list[str]
    position: int = 0
    #: When the next user's turn comes (after the last one: when the cycle ends).
    next_at: datetime = field(default_factory=lambda: datetime.min)
    #: The connection test at the start failed: (code, message).
    connection_error: tuple[str, str] | None = None
    #: Deletions and disables exceed the accidental-deletion threshold: they are staged.
    staged_deletes: bool = False
    forced_deletes: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    first_error: tuple[str, str] | None = None
    seed: int = 0
    simulated_seconds: float = 0.0
    #: How many full-sync reasons were pending when the cycle began (a restart or schema
    #: change while it runs asks for another full cycle).
    full_reasons: int = 0
    #: What the cycle decided for its users when it began, to count deletions against the
    #: accidental-deletion threshold: each user's turn takes its decision from here while
    #: nothing it depends on changed (``plans_mark``), instead of planning it again.
    plans: dict[str, Decision | None] | None = None
    #: (``Emulator.generation``, writes into the target index) that keep ``plans`` valid.
    plans_mark: tuple[int, int] = (0, 0)
    #: What the cycle's records share, and the job context it was made from.
    rows: tuple[JobContext, logs.RowContext] | None = None
    #: Writes that could have changed a source user when the cycle began (``_queue``).
    scan_mark: tuple[int, int] = (0, 0)
    #: Users whose last-seen fingerprint may still differ from their current one: the queue
    #: (and users gone from the source) until each is evaluated and seen.
    unsettled: set[str] = field(default_factory=set)
    #: Source group ids to evaluate after the users (``None`` until the users are done), how
    #: far the cycle got, and the target users the job manages as members (``groups.py``).
    groups: list[str] | None = None
    group_position: int = 0
    managed: frozenset[str] = frozenset()

    @property
    def done(self) -> bool:
        """Every user is done (the groups come next)."""
        return self.position >= len(self.queue)

    @property
    def completed_units(self) -> int:
        return self.position + self.group_position

    @property
    def total_units(self) -> int:
        return len(self.queue) + len(self.groups or ())


# -- scheduling ------------------------------------------------------------------------------


def schedule_now(record: SyncJobRecord, now: datetime, cycles: CycleQueue) -> None:
    """Make a cycle due now (``start``, ``restart``, a changed schema on a running job)."""
    if record.next_cycle_at is None or record.next_cycle_at > now:
        record.next_cycle_at = now
    cycles.watch_record(record)


class _Pass:
    """Job contexts and target indexes, built once and reused while nothing outside the engine
    changes (``Emulator.generation``): the engine keeps the indexes current as it writes."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.generation = emulator.generation
        self.indexes: dict[str, TargetIndex] = {}
        self.contexts: dict[int, JobContext] = {}
        self.touched_logs: set[str] = set()

    def context(self, job: JobRef) -> JobContext:
        key = job.record.ordinal
        ctx = self.contexts.get(key)
        if ctx is None or ctx.record is not job.record:
            ctx = job_context(
                self.emulator,
                source=job.source,
                sp_id=job.sp_id,
                sync=job.sync,
                record=job.record,
                indexes=self.indexes,
            )
            self.contexts[key] = ctx
            self.emulator.engine_stats["contexts_built"] += 1
        return ctx

    def source_changed(self, tenant_id: str) -> None:
        """The engine changed a tenant's groups (as a target): the contexts of jobs reading it
        as their source hold stale assignments' members."""
        stale = [k for k, ctx in self.contexts.items() if ctx.source.id == tenant_id]
        for key in stale:
            del self.contexts[key]

    def finish(self, now: datetime) -> None:
        retention = self.emulator.provisioning.log_retention
        for tenant_id in self.touched_logs:
            tenant = self.emulator.tenants.get(tenant_id)
            if tenant is not None:
                logs.prune(tenant, now, retention)
        self.touched_logs.clear()


def engine_pass(emulator: Emulator) -> _Pass:
    """The engine's current pass: the cached one unless something changed since it was made."""
    cached = emulator.engine_cache
    if not isinstance(cached, _Pass) or cached.generation != emulator.generation:
        cached = _Pass(emulator)
        emulator.engine_cache = cached
    return cached


def run_due(emulator: Emulator, now: datetime | None = None) -> int:
    """Handle every cycle event due by ``now`` in time order; the number handled. Asking
    costs a look at the queue's earliest event, whatever the number of jobs."""
    now = now or emulator.clock.now()
    queue = emulator.cycle_queue
    if not queue.any_due(now):
        return 0
    engine = engine_pass(emulator)
    handled = 0
    with _collector_paused():
        while (event := queue.pop_due(now)) is not None:
            when, job = event
            _step(engine, job, when)
            queue.watch(job)
            handled += 1
    engine.finish(now)
    emulator.engine_stats["events"] += handled
    return handled


def run_now(
    emulator: Emulator, job_ids: list[str] | None = None, *, now: datetime | None = None
) -> list[JsonObject]:
    """Run one whole cycle of every started job (or of ``job_ids``) at the current instant
    (or at ``now``: scenarios run a seeded job's history at past instants).

    A job with a cycle in progress finishes that one. Answers each job's cycle summary.
    """
    now = now if now is not None else emulator.clock.now()
    run_due(emulator, now)
    wanted = {j.lower() for j in job_ids} if job_ids is not None else None
    engine = engine_pass(emulator)
    summaries: list[JsonObject] = []
    with _collector_paused():
        for job in iter_jobs(emulator):
            if wanted is not None and job.record.id.lower() not in wanted:
                continue
            running = job.record.running_cycle is not None
            if not running and job.record.job["schedule"]["state"] != "Active":
                continue
            if not running:
                _begin(engine, job, now)
            run = job.record.running_cycle
            assert run is not None
            while job.record.running_cycle is run:
                _step(engine, job, min(run.next_at, now), clamp=now)
            emulator.cycle_queue.watch(job)
            summaries.append(dict(job.record.last_cycle or {}))
    engine.finish(now)
    return summaries


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while the engine runs a batch of events: what
    a cycle makes (target users, log records) is long-lived and holds no cycles, so collecting
    meanwhile only walks the growing heap again and again (a tenth of a 100,000-user cycle).
    It runs as before once the batch is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _step(engine: _Pass, job: JobRef, at: datetime, *, clamp: datetime | None = None) -> None:
    record = job.record
    run = record.running_cycle
    if run is None:
        _begin(engine, job, at)
        return
    if not run.done:
        _process_one(engine, job, run, at, clamp=clamp)
        return
    if run.groups is None:
        ctx = engine.context(job)
        run.groups = groups.queue(ctx, initial=run.initial)
        run.managed = groups.managed_members(ctx) if run.groups else frozenset()
    if run.group_position < len(run.groups):
        _process_group(engine, job, run, at, clamp=clamp)
        return
    _finalize(engine, job, run, min(run.next_at, clamp) if clamp else run.next_at)


# -- one cycle -------------------------------------------------------------------------------


def _begin(engine: _Pass, job: JobRef, at: datetime) -> None:
    record = job.record
    ctx = engine.context(job)
    initial = record.full_sync_due or record.watermark is None
    emulator = engine.emulator
    mark = (emulator.unattributed_changes, emulator.tenant_writes[job.source.id])
    queue = _queue(ctx, initial=initial, mark=mark)
    run = CycleRun(
        cycle_id=emulator.ids.guid(),
        began=at,
        initial=initial,
        queue=queue,
        next_at=at,
        seed=zlib.crc32(f"{emulator.seed_value}/{record.id}/{record.completed_cycles}".encode()),
        full_reasons=len(record.full_sync_reasons),
        scan_mark=mark,
    )
    users = ctx.source.users
    run.unsettled = set(queue)
    run.unsettled.update(uid for uid in record.seen if uid not in users)
    policy = ctx.policy
    if ctx.target is None or policy is None:
        run.connection_error = (
            LEGACY_CODE,
            f"The target tenant '{ctx.target_tenant_id or '(no CompanyId)'}' could not be "
            "reached with the saved credentials.",
        )
    elif not policy.ok:
        run.connection_error = (policy.code, policy.message)
    threshold = ctx.delete_threshold
    if (
        threshold is not None
        and run.connection_error is None
        and _deprovision_bound(ctx, run.queue) > threshold
    ):
        planned = {sid: plan(ctx, sid) for sid in run.queue}
        deprovisions = sum(1 for d in planned.values() if d is not None and d.deprovisions)
        if deprovisions > threshold:
            if record.force_deletes:
                run.forced_deletes = True
            else:
                run.staged_deletes = True
        run.plans = {sid: d.slim() if d is not None else None for sid, d in planned.items()}
        run.plans_mark = (engine.generation, _index_writes(ctx))
    record.running_cycle = run
    record.next_cycle_at = None
    status = record.job["status"]
    status["progress"] = [_progress(run, at)]


def _queue(ctx: JobContext, *, initial: bool, mark: tuple[int, int]) -> list[str]:
    record = ctx.record
    source = ctx.source
    order: dict[str, None] = {}
    if initial:
        order.update(dict.fromkeys(source.users))
        for sid, tid in record.connector_data_store.items():
            gone = sid not in source.users
            if gone and ctx.target is not None and tid in ctx.target.users:
                order[sid] = None
    else:
        # Users whose fingerprint differs from the one last seen. When nothing was written
        # into the source tenant since the last cycle compared them all (``record.scan``),
        # only the users that cycle left unsettled can differ: only they are compared.
        scan = record.scan
        maybe = scan[1] if scan is not None and scan[0] == mark else None
        if maybe is None or maybe:
            for uid in source.users:
                if (maybe is None or uid in maybe) and record.seen.get(uid) != fingerprint(
                    ctx, uid
                ):
                    order[uid] = None
        for uid in record.seen:
            if uid not in source.users:
                order[uid] = None
    order.update(dict.fromkeys(record.escrows))
    return list(order)


def _deprovision_bound(ctx: JobContext, queue: list[str]) -> int:
    """At most how many of ``queue`` a cycle could delete or disable: only a user matched to a
    live target user can be, through the job's cache or a stamp. Under the threshold no user
    needs planning before its turn."""
    target = ctx.target
    if target is None:
        return 0
    cache = ctx.record.connector_data_store
    users = target.users
    linked = sum(1 for sid in queue if cache.get(sid) in users)
    return min(len(queue), linked + len(target.alternative_security_ids))


def _index_writes(ctx: JobContext) -> int:
    return ctx.target_index.writes if ctx.target_index is not None else 0


_UNPLANNED = object()


def _decide(engine: _Pass, ctx: JobContext, run: CycleRun, source_id: str) -> Decision | None:
    """The user's decision: the one the cycle made when it began, unless something it depends
    on changed since (a write outside the engine, or another job writing into the target)."""
    plans = run.plans
    if plans is not None:
        planned = plans.pop(source_id, _UNPLANNED)
        if run.plans_mark == (engine.generation, _index_writes(ctx)):
            if planned is None or (isinstance(planned, Decision) and _still_holds(ctx, planned)):
                return planned
        else:
            run.plans = None
    return plan(ctx, source_id)


def _still_holds(ctx: JobContext, decision: Decision) -> bool:
    """The target user the decision matched is still where it was, and no user this cycle
    created since carries the stamp a create would match on (two users mapped to one stamp)."""
    target = ctx.target
    if target is None:
        return True
    if decision.target_id is not None:
        store = target.deleted_users if decision.target_soft_deleted else target.users
        return store.get(decision.target_id) is decision.target_user
    index = ctx.target_index
    if decision.stamp and index is not None:
        return index.by_stamp.get(decision.stamp) is None
    return True


def _duration(settings_range: tuple[float, float], rng: random.Random, factor: float) -> float:
    low, high = settings_range
    return rng.uniform(low, high) * factor


def _process_one(
    engine: _Pass, job: JobRef, run: CycleRun, at: datetime, *, clamp: datetime | None
) -> None:
    record = job.record
    ctx = engine.context(job)
    source_id = run.queue[run.position]
    run.position += 1
    decision = _decide(engine, ctx, run, source_id)
    if decision is None:
        record.seen.pop(source_id, None)
        record.escrows.pop(source_id, None)
        run.unsettled.discard(source_id)
        return
    rng = random.Random(run.seed * 1_000_003 + run.position)
    factor = 2.0 if decision.action == "create" else 1.0
    seconds = _duration(engine.emulator.provisioning.object_seconds, rng, factor)
    duration_ms = max(int(seconds * 1000), 1)
    rows = _row_context(ctx, run)
    staged = run.staged_deletes and decision.deprovisions
    outcome = apply(
        ctx,
        decision,
        at=at,
        rows=rows,
        duration_ms=duration_ms,
        initial=run.initial,
        staged=staged,
    )
    if outcome.exported and run.plans is not None:
        # This cycle's own write into the target does not invalidate its plans.
        run.plans_mark = (run.plans_mark[0], run.plans_mark[1] + 1)
    logs.append(ctx.source, outcome.records)
    engine.touched_logs.add(ctx.source.id)
    _account(run, record.escrows, decision, outcome.error, at, staged=staged)
    if outcome.error is None and not staged:
        fp = fingerprint(ctx, source_id)
        if fp is None:
            record.seen.pop(source_id, None)
        else:
            record.seen[source_id] = fp
        run.unsettled.discard(source_id)
    run.simulated_seconds += seconds
    step_end = at + timedelta(seconds=seconds)
    run.next_at = min(step_end, clamp) if clamp is not None else step_end
    job.record.job["status"]["progress"] = [_progress(run, at)]


def _process_group(
    engine: _Pass, job: JobRef, run: CycleRun, at: datetime, *, clamp: datetime | None
) -> None:
    record = job.record
    ctx = engine.context(job)
    assert run.groups is not None
    group_id = run.groups[run.group_position]
    run.group_position += 1
    decision = groups.plan(ctx, group_id, managed=run.managed)
    if decision is None:
        record.seen_groups.pop(group_id, None)
        record.group_escrows.pop(group_id, None)
        return
    rng = random.Random(run.seed * 1_000_003 + len(run.queue) + run.group_position)
    factor = 2.0 if decision.action == "create" else 1.0
    seconds = _duration(engine.emulator.provisioning.object_seconds, rng, factor)
    outcome = groups.apply(
        ctx,
        decision,
        at=at,
        rows=_row_context(ctx, run),
        duration_ms=max(int(seconds * 1000), 1),
        initial=run.initial,
    )
    if outcome.exported and ctx.target is not None:
        engine.source_changed(ctx.target.id)
    logs.append(ctx.source, outcome.records)
    engine.touched_logs.add(ctx.source.id)
    _account(run, record.group_escrows, decision, outcome.error, at, staged=False)
    fp = groups.fingerprint(ctx, group_id) if outcome.error is None else None
    if fp is None:
        # Gone from the source, or failed: the next cycle evaluates it again.
        record.seen_groups.pop(group_id, None)
    else:
        record.seen_groups[group_id] = fp
    run.simulated_seconds += seconds
    step_end = at + timedelta(seconds=seconds)
    run.next_at = min(step_end, clamp) if clamp is not None else step_end
    record.job["status"]["progress"] = [_progress(run, at)]


def _account(
    run: CycleRun,
    escrows: dict[str, JsonObject],
    decision: Decision | groups.GroupDecision,
    error: ExportError | None,
    at: datetime,
    *,
    staged: bool,
) -> None:
    """Count one object's outcome and keep its escrow entry (failed exports wait for a
    retry): a user's in the job's ``escrows``, a group's in its ``group_escrows``."""
    source_id = decision.source_id
    counts = run.counts
    counts["imported"] += 1
    if not run.initial:
        counts["importedDeltas"] += 1
    if decision.assigned:
        counts["entitled"] += 1
    if decision.in_scope:
        counts["entitledForProvisioning"] += 1
    if staged:
        counts["staged"] += 1
    elif decision.exports:
        counts["exports"] += 1
        if error is not None:
            counts["failed"] += 1
            if run.first_error is None:
                run.first_error = (error.code, error.reason)
            entry = escrows.get(source_id) or {"attempts": 0, "firstFailure": at}
            entry.update(
                attempts=int(entry.get("attempts", 0)) + 1,
                code=error.code,
                reason=error.reason,
                lastFailure=at,
            )
            escrows[source_id] = entry
        else:
            counts["exported"] += 1
            counts[decision.action] += 1
            escrows.pop(source_id, None)
    else:
        counts["skipped"] += 1
        escrows.pop(source_id, None)


def _row_context(ctx: JobContext, run: CycleRun) -> logs.RowContext:
    """What the cycle's records share, made once per job context."""
    if run.rows is not None and run.rows[0] is ctx:
        return run.rows[1]
    rows = logs.RowContext(
        source=ctx.source,
        target_tenant_id=ctx.target_tenant_id,
        job_id=ctx.record.id,
        cycle_id=run.cycle_id,
        service_principal=ctx.sp,
        source_directory_id=ctx.source_directory_id,
        target_directory_id=ctx.target_directory_id,
        initiator=logs.system_initiator(),
    )
    run.rows = (ctx, rows)
    return rows


def _progress(run: CycleRun, at: datetime) -> JsonObject:
    return {
        "completedUnits": run.completed_units,
        "totalUnits": run.total_units,
        "units": "Objects",
        "progressObservationDateTime": logs.iso(at),
    }


# -- completion, status, quarantine ----------------------------------------------------------


def _execution(run: CycleRun, record: SyncJobRecord, ended: datetime, state: str) -> JsonObject:
    counts = run.counts
    error: JsonObject | None = None
    if run.connection_error is not None:
        error = {
            "code": run.connection_error[0],
            "message": run.connection_error[1],
            "tenantActionable": True,
        }
    elif run.staged_deletes and counts["staged"]:
        error = {
            "code": "TooManyDeletes",
            "message": (
                f"{counts['staged']} deletions and disables exceed the accidental-deletion "
                "threshold; they are staged until allowed (restart with ForceDeletes)."
            ),
            "tenantActionable": True,
        }
    elif state == "Failed" and run.first_error is not None:
        error = {
            "code": run.first_error[0],
            "message": run.first_error[1],
            "tenantActionable": True,
        }
    return {
        "activityIdentifier": run.cycle_id,
        "countEntitled": counts["entitled"],
        "countEntitledForProvisioning": counts["entitledForProvisioning"],
        "countEscrowed": _escrowed(record),
        "countEscrowedRaw": counts["failed"],
        "countExported": counts["exported"],
        "countExports": counts["exports"],
        "countImported": counts["imported"],
        "countImportedDeltas": counts["importedDeltas"],
        "countImportedReferenceDeltas": 0,
        "error": error,
        "state": state,
        "timeBegan": logs.iso(run.began),
        "timeEnded": logs.iso(ended),
    }


def _escrowed(record: SyncJobRecord) -> int:
    """Objects waiting for a retry: users and groups."""
    return len(record.escrows) + len(record.group_escrows)


def _quarantine_reason(engine: _Pass, run: CycleRun, record: SyncJobRecord) -> str | None:
    settings = engine.emulator.provisioning
    if run.connection_error is not None:
        return "EncounteredQuarantineException"
    if run.staged_deletes and run.counts["staged"]:
        return "TooManyDeletes"
    failures = _escrowed(record)
    if failures >= settings.escrow_floor and failures > 0:
        if failures > settings.escrow_total_limit:
            return "EncounteredTotalEscrowThreshold"
        if failures > settings.escrow_base_limit:
            return "EncounteredBaseEscrowThreshold"
        exports = run.counts["exports"]
        if exports and run.counts["failed"] / exports > settings.escrow_proportion:
            return "EncounteredEscrowProportionThreshold"
    return None


#: Errors that refuse every object of a cycle because of a setting of the whole tenant.
_TENANT_WIDE = frozenset(
    {
        "AzureActiveDirectoryForbidden",
        "AzureActiveDirectoryQuotaLimitExceeded",
        "AzureDirectoryB2BManagementPolicyCheckFailure",
        "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure",
        GROUP_SYNC_CODE,
    }
)


def _finalize(engine: _Pass, job: JobRef, run: CycleRun, ended: datetime) -> None:
    record = job.record
    status = record.job["status"]
    settings = engine.emulator.provisioning
    counts = run.counts
    exports = counts["exports"]
    # A cycle fails as a whole when it cannot work at all: the connection or policy check, or
    # every export refused by a tenant-wide setting (invitations blocked, the object quota).
    # Objects that fail one by one are entry-level errors, even when every retried one fails
    # again: a cycle that only retries a few escrowed conflicts is not a broken job.
    tenant_wide = run.first_error is not None and run.first_error[0] in _TENANT_WIDE
    complete_failure = run.connection_error is not None or (
        exports > 0 and counts["failed"] == exports and tenant_wide
    )
    reason = _quarantine_reason(engine, run, record)
    if complete_failure or reason == "TooManyDeletes":
        state = "Failed"
    elif counts["failed"]:
        state = "EntryLevelErrors"
    else:
        state = "Succeeded"
    execution = _execution(run, record, ended, state)
    _record_execution(status, execution, exported=counts["exported"] > 0)
    if complete_failure:
        status["countSuccessiveCompleteFailures"] = (
            int(status["countSuccessiveCompleteFailures"]) + 1
        )
    else:
        status["countSuccessiveCompleteFailures"] = 0
    if reason is None and state == "Failed" and status.get("quarantine"):
        reason = status["quarantine"]["reason"]
    next_at = max(run.began + timedelta(seconds=settings.interval), ended)
    schedule = record.job["schedule"]
    if reason is not None:
        next_at = _quarantine(engine, record, reason, execution, ended)
    else:
        status["quarantine"] = None
    if state == "Succeeded" and not _escrowed(record) and status.get("quarantine") is None:
        iso_end = logs.iso(ended)
        if status["steadyStateFirstAchievedTime"] == a2a.NEVER:
            status["steadyStateFirstAchievedTime"] = iso_end
        status["steadyStateLastAchievedTime"] = iso_end
    ctx = engine.context(job)
    target = ctx.target
    linked = 0
    if target is not None:
        linked = sum(1 for tid in record.connector_data_store.values() if tid in target.users)
    entries: list[JsonObject] = [{"key": "User to User", "value": linked}]
    if groups.mapping(ctx) is not None:
        entries.append({"key": "Group to Group", "value": groups.linked_count(ctx)})
    status["synchronizedEntryCountByType"] = entries
    status["progress"] = [_progress(run, ended)]
    _update_code(status, schedule["state"])
    _close(record, run, ended)
    record.next_cycle_at = _next_start(record, next_at, ended, quarantined=reason is not None)
    record.last_cycle = _summary(run, record, state, execution, ended)


def _close(record: SyncJobRecord, run: CycleRun, ended: datetime) -> None:
    """The job's own bookkeeping at the end of a cycle."""
    record.completed_cycles += 1
    if run.initial:
        # Reasons added while the cycle ran (a restart, a new schema) still want a full one.
        record.full_sync_reasons = record.full_sync_reasons[run.full_reasons :]
        record.full_sync_due = bool(record.full_sync_reasons)
    record.watermark = f"{run.cycle_id}:{logs.iso(ended)}"
    if run.forced_deletes:
        record.force_deletes = False
    record.running_cycle = None
    record.scan = (run.scan_mark, frozenset(run.unsettled))


def _next_start(
    record: SyncJobRecord, planned: datetime, ended: datetime, *, quarantined: bool
) -> datetime | None:
    """When the next cycle begins: as planned, or sooner when ``start``, ``restart`` or a new
    schema asked for one while this cycle ran; never for a job that is not started."""
    if record.job["schedule"]["state"] != "Active":
        return None
    requested = record.next_cycle_at
    if requested is not None and not quarantined:
        return min(max(requested, ended), planned)
    return planned


def _record_execution(status: JsonObject, execution: JsonObject, *, exported: bool) -> None:
    status["lastExecution"] = execution
    if execution["state"] != "Failed":
        status["lastSuccessfulExecution"] = execution
        if exported:
            status["lastSuccessfulExecutionWithExports"] = execution


def _update_code(status: JsonObject, schedule_state: str) -> None:
    """``Active`` or ``Quarantine`` after a cycle; a job paused meanwhile stays ``Paused``."""
    if schedule_state == "Active":
        status["code"] = "Quarantine" if status.get("quarantine") else "Active"
    elif status.get("quarantine") and schedule_state != "Paused":
        status["code"] = "Quarantine"
    if status.get("troubleshootingUrl") is None:
        status["troubleshootingUrl"] = ""


def _summary(
    run: CycleRun, record: SyncJobRecord, state: str, execution: JsonObject, ended: datetime
) -> JsonObject:
    status = record.job["status"]
    counts = run.counts
    return {
        "job_id": record.id,
        "cycle_id": run.cycle_id,
        "initial": run.initial,
        "began": logs.iso(run.began),
        "ended": logs.iso(ended),
        "simulated_seconds": round(run.simulated_seconds, 3),
        "state": state,
        "status_code": status["code"],
        "quarantine_reason": (status.get("quarantine") or {}).get("reason"),
        "evaluated": counts["imported"],
        "created": counts["create"],
        "updated": counts["update"] + counts["restore"],
        "disabled": counts["disable"],
        "deleted": counts["delete"],
        "staged_deletes": counts["staged"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "escrowed": _escrowed(record),
        "error": (execution.get("error") or {}).get("code"),
        "next_cycle_at": logs.iso(record.next_cycle_at) if record.next_cycle_at else None,
    }


def _quarantine(
    engine: _Pass, record: SyncJobRecord, reason: str, execution: JsonObject, ended: datetime
) -> datetime:
    """Put the job in (or keep it in) quarantine; the time of its next attempt."""
    settings = engine.emulator.provisioning
    status = record.job["status"]
    current = status.get("quarantine")
    if current is None:
        series_began = ended
        count = 1
    else:
        series_began = logs.parse_iso(current["seriesBegan"])
        count = int(current["seriesCount"]) + 1
    ladder = settings.quarantine_ladder
    if count <= len(ladder):
        next_at = series_began + timedelta(seconds=ladder[count - 1])
    else:
        next_at = ended + timedelta(seconds=settings.quarantine_repeat)
    if next_at <= ended:
        next_at = ended + timedelta(seconds=settings.quarantine_repeat)
    error = execution.get("error") or {
        "code": reason,
        "message": "The job was quarantined.",
        "tenantActionable": True,
    }
    status["quarantine"] = {
        "currentBegan": logs.iso(ended),
        "nextAttempt": logs.iso(next_at),
        "reason": reason,
        "seriesBegan": logs.iso(series_began),
        "seriesCount": count,
        "error": error,
    }
    if (ended - series_began).total_seconds() >= settings.quarantine_give_up:
        # More than four weeks in quarantine: the job is disabled.
        record.job["schedule"]["state"] = "Disabled"
    return next_at


# -- target recycle bin ----------------------------------------------------------------------


def purge_soft_deleted(emulator: Emulator, now: datetime) -> datetime | None:
    """Hard-delete users that have been in a recycle bin longer than the retention; when the
    next of the others is due to go (``None``: the recycle bins are empty)."""
    retention = timedelta(seconds=emulator.provisioning.soft_delete_retention)
    earliest: datetime | None = None
    for tenant in emulator.tenants.values():
        if not tenant.deleted_users:
            continue
        for uid, user in list(tenant.deleted_users.items()):
            when = user.get("deletedDateTime")
            if not when:
                continue
            expires = logs.parse_iso(when) + retention
            if expires <= now:
                del tenant.deleted_users[uid]
                tenant.alternative_security_ids.pop(uid, None)
            elif earliest is None or expires < earliest:
                earliest = expires
    return earliest
