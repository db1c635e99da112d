"""Staged rollout: apply assigns the pilot only; promote widens the scope after a clean
stage, and refuses — saying why — while the gate does not hold."""

from __future__ import annotations

from pathlib import Path

from ctsync.engine import Plan, Session, execute, make_plan
from ctsync.ops.rollout import Gate, check_gate, promotion_plan
from tests.engine.conftest import Bench, make_bench

ROLLOUT = (
    "rollout: {pilot: CTS-Pilot, then: [Sales, all_members],"
    " gate: {max_failure_rate: 0.0, min_cycles: 1}}"
)


def _bench(tmp_path: Path) -> Bench:
    def edit(text: str) -> str:
        assert "assigned: [{group: CTS-Pilot}]" in text
        return text.replace("assigned: [{group: CTS-Pilot}]", ROLLOUT)

    return make_bench(tmp_path, links=[("contoso", "fabrikam")], edit=edit)


def _apply(bench: Bench) -> Plan:
    async def go(session: Session) -> Plan:
        plan = await make_plan(session.desired, session)
        assert (await execute(plan, session)).ok
        return plan

    return bench.run(go)


def _assigned(bench: Bench) -> set[str]:
    contoso = bench.emulator.tenant("contoso")
    names = {str(g["id"]): str(g["displayName"]) for g in contoso.groups.values()}
    return {
        names.get(str(a["principalId"]), str(a["principalId"]))
        for assignments in contoso.app_role_assignments.values()
        for a in assignments.values()
    }


def _gate(bench: Bench) -> Gate:
    link = bench.desired().links[0]
    return bench.run(lambda s: check_gate(s, link))


def _promote(bench: Bench) -> tuple[Gate, Plan | None]:
    link = bench.desired().links[0]

    async def go(session: Session) -> tuple[Gate, Plan | None]:
        gate, plan = await promotion_plan(session, link)
        if plan is not None:
            assert (await execute(plan, session)).ok
        return gate, plan

    return bench.run(go)


def test_apply_assigns_only_the_pilot_and_records_stage_zero(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench)
    assert _assigned(bench) == {"CTS-Pilot"}
    sp = next(iter(bench.emulator.tenant("contoso").service_principals.values()))
    assert any(t.startswith("ctsync:stage:0:") for t in sp["tags"])
    # A re-plan keeps the stage: nothing to do.
    assert bench.run(lambda s: make_plan(s.desired, s)).empty


def test_promote_waits_for_a_cycle_then_widens_stage_by_stage(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench)

    closed = _gate(bench)
    assert not closed.open
    assert closed.cycles == 0
    assert "provisioning cycle" in closed.reasons[0]
    gate, plan = _promote(bench)
    assert plan is None
    assert _assigned(bench) == {"CTS-Pilot"}

    bench.emulator.run_cycles()
    bench.emulator.clock.advance(5 * 60)  # the admin looks at the pilot a few minutes later
    gate, plan = _promote(bench)
    assert gate.open
    assert gate.next_scope == "CTS-Pilot, Sales"
    assert plan is not None
    assert {s.resource for s in plan.steps} == {"appRoleAssignments", "servicePrincipal"}
    assert _assigned(bench) == {"CTS-Pilot", "Sales"}
    # The new stage starts a new wait: no cycle yet since it began.
    assert not _gate(bench).open
    assert bench.run(lambda s: make_plan(s.desired, s)).empty

    bench.emulator.clock.advance(41 * 60)
    gate, plan = _promote(bench)
    assert gate.open
    assert gate.next_scope == "all members"
    assert plan is not None
    secrets = next(s for s in plan.steps if s.resource == "synchronizationSecrets")
    assert secrets.params["secrets"]["SyncAll"] == "true"

    bench.emulator.clock.advance(41 * 60)
    last = _gate(bench)
    assert not last.open
    assert "already at the last stage" in last.reasons[0]


def test_promote_refuses_while_the_pilot_has_failures(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench)
    fabrikam = bench.emulator.tenant("fabrikam")
    fabrikam.object_quota = len(fabrikam.users)  # every create fails with the quota error
    bench.emulator.run_cycles()
    gate = _gate(bench)
    assert not gate.open
    assert gate.failures > 0
    assert any("failed" in reason for reason in gate.reasons)
    assert _promote(bench)[1] is None
    assert _assigned(bench) == {"CTS-Pilot"}
