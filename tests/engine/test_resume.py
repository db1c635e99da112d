"""Kill apply anywhere, re-run: it converges with no duplicate objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctsync.engine import Plan, Session, execute, make_plan
from ctsync.graph import WriteRecord
from ctsync.graph.apps import ApplicationsApi
from tests.engine.conftest import Bench, make_bench


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way catches it."""


def _count_objects(bench: Bench) -> dict[str, int]:
    emu = bench.emulator
    contoso = emu.tenant("contoso")
    return {
        "service_principals": len(contoso.service_principals),
        "applications": len(contoso.applications),
        "jobs": sum(len(s.jobs) for s in contoso.synchronization.values()),
        "assignments": sum(len(a) for a in contoso.app_role_assignments.values()),
        "source_partners": len(contoso.access_policy.partners),
        "target_partners": sum(
            len(emu.tenant(n).access_policy.partners) for n in ("fabrikam", "tailspin")
        ),
    }


def _apply_once(bench: Bench, *, kill_after: int | None = None) -> None:
    writes = 0

    def observer(record: WriteRecord) -> None:
        nonlocal writes
        writes += 1
        if kill_after is not None and writes >= kill_after:
            raise Killed

    async def go(session: Session) -> None:
        plan = await make_plan(session.desired, session)
        await execute(plan, session)

    bench.run(go, observers=[observer])


def _plan(bench: Bench) -> Plan:
    async def go(session: Session) -> Plan:
        return await make_plan(session.desired, session)

    return bench.run(go)


TWO_LINKS = [("contoso", "fabrikam"), ("contoso", "tailspin")]


def _total_writes(tmp_path: Path) -> int:
    bench = make_bench(tmp_path / "probe", links=TWO_LINKS)
    seen: list[WriteRecord] = []

    async def go(session: Session) -> None:
        await execute(await make_plan(session.desired, session), session)

    bench.run(go, observers=[seen.append])
    return len(seen)


def test_a_full_apply_writes_a_known_number_of_times(tmp_path: Path) -> None:
    # Per link: 2 partners, 1 sync policy, instantiate, job, secrets, tags, schema,
    # assignment, validate, start = 11 writes; the kill points below walk all of them.
    assert _total_writes(tmp_path) == 22


@pytest.mark.parametrize("kill_after", range(1, 23))
def test_killed_anywhere_a_rerun_converges_without_duplicates(
    tmp_path: Path, kill_after: int
) -> None:
    bench = make_bench(tmp_path, links=TWO_LINKS)
    with pytest.raises(Killed):
        _apply_once(bench, kill_after=kill_after)
    _apply_once(bench)
    assert _plan(bench).steps == ()
    assert _count_objects(bench) == {
        "service_principals": 2,
        "applications": 2,
        "jobs": 2,
        "assignments": 2,
        "source_partners": 2,
        "target_partners": 2,
    }


def test_killed_twice_in_a_row(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=TWO_LINKS)
    for kill_after in (3, 5):
        with pytest.raises(Killed):
            _apply_once(bench, kill_after=kill_after)
    _apply_once(bench)
    assert _plan(bench).steps == ()
    assert _count_objects(bench)["service_principals"] == 2


def test_killed_right_after_creating_the_app_while_it_replicates(tmp_path: Path) -> None:
    """Entra replicates asynchronously: seconds after instantiate, no list shows the new app.
    A run killed right then and re-run at once must wait for that app, not create another."""
    from ctsync.emulator import FaultProfile
    from ctsync.engine.journal import Journal

    bench = make_bench(
        tmp_path,
        links=[("contoso", "fabrikam")],
        faults=FaultProfile(replication_lag=20.0),
    )
    journal = Journal(tmp_path / ".ctsync" / "journal.json")

    def kill_after_instantiate(record: WriteRecord) -> None:
        if record.path.endswith("/instantiate"):
            raise Killed

    async def go(session: Session) -> None:
        await execute(await make_plan(session.desired, session), session)

    with pytest.raises(Killed):
        bench.run(go, observers=[kill_after_instantiate], journal=journal)
    assert list(journal.created_apps())
    bench.run(go, journal=journal)
    contoso = bench.emulator.tenant("contoso")
    assert len(contoso.service_principals) == 1
    assert len(contoso.applications) == 1
    assert journal.created_apps() == {}
    bench.emulator.clock.advance(30)
    assert bench.run(lambda s: make_plan(s.desired, s), journal=journal).empty


def test_a_partner_created_elsewhere_moments_ago_is_updated_once_it_replicates(
    tmp_path: Path,
) -> None:
    """The create answers 409 (the object exists) while a read still answers 404 (it has not
    replicated yet): the fallback update waits for it instead of failing the step."""
    from ctsync.emulator import FaultProfile

    bench = make_bench(
        tmp_path, links=[("contoso", "fabrikam")], faults=FaultProfile(replication_lag=20.0)
    )

    async def go(session: Session) -> tuple[Plan, bool]:
        contoso_id = session.desired.tenants["contoso"].tenant_id
        await session.client("fabrikam").post(
            "/policies/crossTenantAccessPolicy/partners", json={"tenantId": contoso_id}
        )
        plan = await make_plan(session.desired, session)
        report = await execute(plan, session)
        return plan, report.ok

    plan, ok = bench.run(go)
    assert "create" in [s.action for s in plan.steps if s.id == "fabrikam/partner/contoso"]
    assert ok
    bench.emulator.clock.advance(30)
    assert _plan(bench).steps == ()


def test_a_plan_right_after_an_apply_waits_for_its_writes_to_show(tmp_path: Path) -> None:
    """Reads lag behind writes: a plan made at once after an apply must not offer the changes
    that apply just made (CI runs `plan --detailed-exitcode` right after `apply`).

    The apply runs without lag (an apply under lag waits for each object it created to show
    before using it, so by its end they all show); the lag is switched on as it ends, so what
    it created is unseen again — as when the next read lands on a replica that lags."""
    from ctsync.emulator import FaultProfile
    from ctsync.engine.journal import Journal

    async def apply(session: Session) -> bool:
        return (await execute(await make_plan(session.desired, session), session)).ok

    def applied_then_lagging(bench: Bench, **kwargs: Any) -> None:
        assert bench.run(apply, **kwargs)
        bench.emulator.traffic.configure(FaultProfile(replication_lag=20.0))

    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    journal = Journal(tmp_path / ".ctsync" / "journal.json")
    applied_then_lagging(bench, journal=journal)
    began = bench.clock.monotonic()
    assert bench.run(lambda s: make_plan(s.desired, s), journal=journal).steps == ()
    assert 0 < bench.clock.monotonic() - began <= 30  # it waited, for the lag only

    # Without the journal's note the same read would have shown the changes again.
    control = make_bench(tmp_path / "control", links=[("contoso", "fabrikam")])
    applied_then_lagging(control)
    assert control.run(lambda s: make_plan(s.desired, s)).steps != ()


def test_a_changed_config_right_after_an_apply_is_planned_without_waiting(
    tmp_path: Path,
) -> None:
    from ctsync.engine.journal import Journal

    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    journal = Journal(tmp_path / ".ctsync" / "journal.json")

    async def apply(session: Session) -> bool:
        return (await execute(await make_plan(session.desired, session), session)).ok

    assert bench.run(apply, journal=journal)
    text = bench.config.read_text()
    bench.config.write_text(text.replace("inbound_trust: {mfa: true", "inbound_trust: {mfa: false"))
    began = bench.clock.monotonic()
    plan = bench.run(lambda s: make_plan(s.desired, s), journal=journal)
    assert bench.clock.monotonic() == began
    assert [s.id for s in plan.steps] == ["fabrikam/partner/contoso"]


def test_several_untagged_look_alikes_plan_nothing_for_the_link(tmp_path: Path) -> None:
    """Two untagged apps with the link's name and the CTS template (two interrupted runs, or
    someone's copies): ctsync cannot tell which is its own, so it adopts none, creates none,
    and says why."""
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])

    async def copies_then_plan(session: Session) -> Plan:
        apps = ApplicationsApi(session.client("contoso"))
        for _ in range(2):
            await apps.instantiate("fabrikam (ctsync)")
        return await make_plan(session.desired, session)

    plan = bench.run(copies_then_plan)
    [problem] = plan.problems
    assert problem.code == "ambiguous-apps"
    assert len(problem.objects) == 2
    assert not [
        s
        for s in plan.steps
        if s.links == ("contoso:fabrikam",)
        and s.tenant == "contoso"
        and s.resource in {"application", "synchronizationJob"}
    ]
    assert len(bench.emulator.tenant("contoso").service_principals) == 2
