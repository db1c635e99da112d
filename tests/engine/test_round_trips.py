"""How many round trips a user waits for: counted on the emulator's clock with a fixed latency,
so the figure is exact (one round trip = one latency), not a timing.

Preflight's reads of the tenant pair go out beside the live read, in its round (they do not
depend on the plan); apply's critical path after that read is five round trips — instantiate,
the job, the job's schema (its ids are the job's own), the schema's PUT, the start.
"""

from __future__ import annotations

from pathlib import Path

from ctsync.emulator.core.traffic import FaultProfile
from ctsync.engine import Session, execute
from ctsync.ops import preflight

from .conftest import make_bench

LATENCY = 0.1


def _rounds(seconds: float) -> float:
    return round(seconds / LATENCY, 1)


def test_preflight_reads_in_one_round_and_apply_takes_six(tmp_path: Path) -> None:
    bench = make_bench(
        tmp_path, links=[("contoso", "fabrikam")], faults=FaultProfile(latency_ms=LATENCY * 1000)
    )

    async def run(session: Session) -> tuple[float, float, int]:
        began = session.clock.monotonic()
        report = await preflight(session, blocking_only=True)
        checked = session.clock.monotonic()
        assert report.plan is not None
        assert not [f for f in report.findings if f.severity == "error"]
        applied = await execute(report.plan, session)
        assert {o.status for o in applied.outcomes} == {"done"}
        return checked - began, session.clock.monotonic() - checked, len(report.plan.steps)

    read, write, steps = bench.run(run)
    assert steps == 10
    assert _rounds(read) == 1.0
    assert _rounds(write) == 5.0
