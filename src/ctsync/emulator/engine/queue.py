"""Due provisioning events in time order: a heap keyed by due time, not a scan of every job.

Each started job has at most one next event (``engine/cycles.py``): the start of its next cycle
(``SyncJobRecord.next_cycle_at``, due strictly after its time) or the next step of the cycle it
runs (``CycleRun.next_at``, due at its time). The queue holds one entry per job for that event.
Whatever changes a job's next event tells the queue (:meth:`CycleQueue.watch`): ``start``,
``restart`` and a new schema through ``schedule_now``, the engine after every step, a seed after
it added jobs. Entries are checked when they come up, so a job paused, deleted or rescheduled
meanwhile needs no bookkeeping: a stale entry is dropped. Asking whether anything is due costs
one look at the heap's top, whatever the number of jobs.

Events due at the same instant run steps of running cycles first, then cycle starts; within each,
in the order the jobs were created within their tenant, the tenants in the order they were
added (as a scan of ``Emulator.tenants`` would meet them).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ctsync.emulator.state import ServicePrincipalSync, SyncJobRecord, Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["CycleQueue", "JobRef", "iter_jobs", "next_event"]


@dataclass(frozen=True)
class JobRef:
    source: Tenant
    sp_id: str
    sync: ServicePrincipalSync
    record: SyncJobRecord


def iter_jobs(emulator: Emulator) -> list[JobRef]:
    """Every job of every tenant: a full scan, for control ``cycles/run`` and seeding only
    (counted in ``Emulator.engine_stats["jobs_visited"]``)."""
    jobs = [
        JobRef(tenant, sp_id, sync, record)
        for tenant in list(emulator.tenants.values())
        for sp_id, sync in list(tenant.synchronization.items())
        for record in list(sync.jobs.values())
    ]
    emulator.engine_stats["jobs_visited"] += len(jobs)
    return jobs


def next_event(record: SyncJobRecord) -> tuple[datetime, bool] | None:
    """The job's next event and whether it is a cycle start (due strictly after its time)."""
    run = record.running_cycle
    if run is not None:
        return run.next_at, False
    if record.job["schedule"]["state"] == "Active" and record.next_cycle_at is not None:
        return record.next_cycle_at, True
    return None


#: (due time, is a cycle start, tenant order, job order, push order, job).
_Entry = tuple[datetime, bool, int, int, int, JobRef]


class CycleQueue:
    """The emulator's pending provisioning events."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._heap: list[_Entry] = []
        #: The due time of each job's live entry, by the job's ordinal.
        self._queued: dict[int, datetime] = {}
        self._pushes = itertools.count()
        self._tenant_order: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._queued)

    def clear(self) -> None:
        self._heap.clear()
        self._queued.clear()
        self._tenant_order.clear()

    def rebuild(self) -> None:
        """Queue every job's next event afresh (after a seed added jobs outside any request)."""
        self.clear()
        for job in iter_jobs(self._emulator):
            self.watch(job)

    def watch(self, job: JobRef) -> None:
        """Queue the job's next event (it may have changed); nothing when it has none."""
        event = next_event(job.record)
        ordinal = job.record.ordinal
        if event is None:
            self._queued.pop(ordinal, None)
            return
        when, is_start = event
        if self._queued.get(ordinal) == when:
            return
        self._queued[ordinal] = when
        entry = (when, is_start, self._order(job.source), ordinal, next(self._pushes), job)
        heapq.heappush(self._heap, entry)

    def watch_record(self, record: SyncJobRecord) -> None:
        """:meth:`watch` for a record that knows where it lives (``new_job_record`` sets it);
        one that does not (made some other way) has every job queued afresh."""
        tenant = self._emulator.tenants.get(record.tenant_id)
        sync = tenant.synchronization.get(record.sp_id) if tenant is not None else None
        if tenant is None or sync is None or sync.jobs.get(record.id) is not record:
            self.rebuild()
            return
        self.watch(JobRef(tenant, record.sp_id, sync, record))

    def next_due_time(self) -> datetime | None:
        """When the earliest queued event falls due (it may turn out stale)."""
        return self._heap[0][0] if self._heap else None

    def any_due(self, now: datetime) -> bool:
        """Whether the earliest queued event is due by ``now`` (it may turn out stale)."""
        if not self._heap:
            return False
        when, is_start = self._heap[0][:2]
        return when < now or (when == now and not is_start)

    def pop_due(self, now: datetime) -> tuple[datetime, JobRef] | None:
        """The earliest event due by ``now`` and its job, taken off the queue; ``None`` when
        nothing is due."""
        while self.any_due(now):
            when, _, _, ordinal, _, job = heapq.heappop(self._heap)
            self._emulator.engine_stats["jobs_visited"] += 1
            if self._queued.get(ordinal) != when:
                continue  # superseded by a later watch
            if not self._alive(job):
                del self._queued[ordinal]
                continue
            del self._queued[ordinal]
            event = next_event(job.record)
            if event is None or event[0] != when:
                # Paused or rescheduled without a watch: queue what it has now.
                self.watch(job)
                continue
            return when, job
        return None

    def _alive(self, job: JobRef) -> bool:
        tenants = self._emulator.tenants
        return (
            tenants.get(job.source.id) is job.source
            and job.source.synchronization.get(job.sp_id) is job.sync
            and job.sync.jobs.get(job.record.id) is job.record
        )

    def _order(self, tenant: Tenant) -> int:
        order = self._tenant_order.get(tenant.id)
        if order is None:
            self._tenant_order = {tid: i for i, tid in enumerate(self._emulator.tenants)}
            order = self._tenant_order.get(tenant.id, len(self._tenant_order))
        return order
