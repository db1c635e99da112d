"""A destroy that unassigns users waits for a provisioning cycle to deprovision them — up to 40
minutes — and says so while it waits: what for, how long so far, when it gives up."""

from __future__ import annotations

from pathlib import Path

from ctsync.engine import ExecuteOptions, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.model import Step, StepOutcome

from .conftest import make_bench


def test_destroy_tells_what_it_waits_for(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    waits: list[tuple[str, str]] = []

    def on_event(kind: str, step: Step, outcome: StepOutcome | str | None) -> None:
        if kind == "wait":
            assert isinstance(outcome, str)
            waits.append((step.id, outcome))

    async def run(session: Session) -> tuple[bool, bool]:
        applied = await execute(await make_plan(session.desired, session), session)
        plan = await make_destroy_plan(session.desired, session, keep_users=False)
        options = ExecuteOptions(deprovision_poll=60.0)
        done = await execute(plan, session, options=options, on_event=on_event)
        return applied.ok, done.ok

    assert bench.run(run) == (True, True)
    assert waits, "destroy waited for a cycle without a word"
    step_id, text = waits[0]
    assert step_id.startswith("contoso:fabrikam/")
    assert "contoso:fabrikam: waiting for the next provisioning cycle" in text
    assert "deprovision the unassigned users" in text
    assert "giving up in" in text
