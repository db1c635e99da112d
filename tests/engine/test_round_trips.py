"""How many round trips a user waits for: counted on the emulator's clock with a fixed latency,
so the figure is exact (one round trip = one latency), not a timing.

Preflight's reads of the tenant pair go out beside the live read, in its round (they do not
depend on the plan); apply's critical path after that read is three round trips — instantiate;
the job with its schema read in the same ``$batch`` (at the id Graph gives a new job); the
schema's PUT with the start in one ``$batch`` (the start ``dependsOn`` the PUT). Beside them
the connection test travels with the secrets, and the target's identitySynchronization with
its partner configuration.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ctsync.audit import current_step
from ctsync.cli._common import step_scope
from ctsync.emulator.core.traffic import FaultProfile
from ctsync.engine import ExecuteOptions, Session, execute, make_plan
from ctsync.graph import WriteRecord
from ctsync.ops import preflight

from .conftest import make_bench

LATENCY = 0.1


def _rounds(seconds: float) -> float:
    return round(seconds / LATENCY, 1)


def _in_batch_after(log: list[tuple[str, str, bool]], first: tuple[str, str], then: str) -> None:
    """``then`` (a path's end) travelled in a ``$batch``, after ``first`` (method, path end)."""
    rider = next(i for i, r in enumerate(log) if r[1].endswith(then))
    assert log[rider][2], f"{then} was not in a batch"
    lead = [i for i, r in enumerate(log[:rider]) if r[0] == first[0] and r[1].endswith(first[1])]
    assert lead, f"{then} did not follow {first}"
    assert log[lead[-1]][2], f"{first} was not in a batch"


def test_preflight_reads_in_one_round_and_apply_takes_four(tmp_path: Path) -> None:
    bench = make_bench(
        tmp_path, links=[("contoso", "fabrikam")], faults=FaultProfile(latency_ms=LATENCY * 1000)
    )
    writes: list[tuple[str | None, str, str]] = []

    def seen(record: WriteRecord) -> None:
        writes.append((current_step().step, record.method, record.path))

    async def run(session: Session) -> tuple[float, float, int]:
        began = session.clock.monotonic()
        report = await preflight(session, blocking_only=True)
        checked = session.clock.monotonic()
        assert report.plan is not None
        assert not [f for f in report.findings if f.severity == "error"]
        applied = await execute(report.plan, session, scope=step_scope)
        assert {o.status for o in applied.outcomes} == {"done"}
        return checked - began, session.clock.monotonic() - checked, len(report.plan.steps)

    read, write, steps = bench.run(run, observers=[seen], async_tokens=True)
    assert steps == 10
    assert _rounds(read) == 1.0
    assert _rounds(write) == 3.0
    log = [(r["method"], r["path"], r["in_batch"]) for r in bench.emulator.request_log]
    # Each read once: the job's schema and the template with the job's creation.
    assert sum(1 for m, p, _ in log if m == "GET" and p.endswith("/schema")) == 1
    assert sum(1 for m, p, _ in log if m == "GET" and p.endswith("/templates")) == 1
    _in_batch_after(log, ("POST", "/synchronization/jobs"), "/schema")
    _in_batch_after(log, ("PUT", "/schema"), "/start")
    _in_batch_after(log, ("PUT", "/secrets"), "/validateCredentials")
    _in_batch_after(log, ("POST", "/crossTenantAccessPolicy/partners"), "/identitySynchronization")
    # A write that travelled with another step's is recorded as its own step's.
    by_step = {path.rsplit("/", 1)[1]: step for step, _, path in writes}
    assert by_step["start"] == "contoso:fabrikam/start"
    assert by_step["schema"] == "contoso:fabrikam/schema"
    assert by_step["validateCredentials"] == "contoso:fabrikam/validate"
    assert by_step["secrets"] == "contoso:fabrikam/secrets"
    assert by_step["identitySynchronization"] == "fabrikam/identitySynchronization/contoso"


def test_a_wrong_guess_of_the_job_id_costs_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graph calls job ids opaque: when the id guessed for the schema read is not the new
    job's, the schema step reads it at the real id (one more round trip), and all is done."""
    module = sys.modules["ctsync.engine.execute"]  # the package exports its function
    monkeypatch.setattr(module, "guess_job_id", lambda tenant, app: f"Azure2Azure.{tenant}.no")
    bench = make_bench(
        tmp_path, links=[("contoso", "fabrikam")], faults=FaultProfile(latency_ms=LATENCY * 1000)
    )

    async def run(session: Session) -> tuple[float, set[str]]:
        plan = await make_plan(session.desired, session)
        began = session.clock.monotonic()
        applied = await execute(plan, session)
        return session.clock.monotonic() - began, {o.status for o in applied.outcomes}

    write, statuses = bench.run(run, async_tokens=True)
    assert statuses == {"done"}
    assert _rounds(write) == 4.0
    schema_reads = [
        r
        for r in bench.emulator.request_log
        if r["method"] == "GET" and r["path"].endswith("/schema")
    ]
    assert [r["status"] for r in schema_reads] == [404, 200]


def test_the_schema_step_never_waits_for_a_step_that_has_not_started(tmp_path: Path) -> None:
    """One place per tenant: the schema step holds it, the connection test cannot start; the
    PUT goes alone (waiting would deadlock: it did for a 1,000-link apply, and waiting behind
    steps not yet started kept every link's schemas in memory at once)."""
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])

    async def run(session: Session) -> set[str]:
        plan = await make_plan(session.desired, session)
        options = ExecuteOptions(per_tenant=1)
        # A real-time guard only: a deadlock would otherwise hang the suite.
        applied = await asyncio.wait_for(execute(plan, session, options=options), timeout=60)
        return {o.status for o in applied.outcomes}

    assert bench.run(run) == {"done"}
    starts = [r for r in bench.emulator.request_log if r["path"].endswith("/start")]
    assert len(starts) == 2  # each job started once
