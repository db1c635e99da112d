"""How many round trips a user waits for: counted on the emulator's clock with a fixed latency,
so the figure is exact (one round trip = one latency), not a timing.

Preflight's reads of the tenant pair go out beside the live read, in its round (they do not
depend on the plan); apply's critical path after that read is four round trips — instantiate,
the job, the job's schema (its ids are the job's own), and the schema's PUT with the start in
one ``$batch`` (the start ``dependsOn`` the PUT).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

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


def test_preflight_reads_in_one_round_and_apply_takes_five(tmp_path: Path) -> None:
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
    assert _rounds(write) == 4.0
    # The start went in the schema PUT's batch, after it, and is recorded as the start step's.
    log = [(r["method"], r["path"], r["in_batch"]) for r in bench.emulator.request_log]
    starts = [r for r in log if r[1].endswith("/start")]
    assert [in_batch for _, _, in_batch in starts] == [True]
    put = next(i for i, r in enumerate(log) if r[0] == "PUT" and r[1].endswith("/schema"))
    assert log.index(starts[0]) > put
    by_step = {path.rsplit("/", 1)[1]: step for step, _, path in writes}
    assert by_step["start"] == "contoso:fabrikam/start"
    assert by_step["schema"] == "contoso:fabrikam/schema"


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
