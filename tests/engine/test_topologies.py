"""A mesh shares partner objects between the two directions of a pair; destroy respects that."""

from __future__ import annotations

from pathlib import Path

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from tests.engine.conftest import Bench, make_bench

MESH = [
    ("contoso", "fabrikam"),
    ("fabrikam", "contoso"),
]


def _plan(bench: Bench, links: list[str] | None = None) -> Plan:
    async def go(session: Session) -> Plan:
        return await make_plan(session.desired, session, links=links)

    return bench.run(go)


def _apply(bench: Bench, plan: Plan) -> None:
    async def go(session: Session) -> None:
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]

    bench.run(go)


def test_both_directions_share_one_partner_object_per_tenant(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=MESH)
    plan = _plan(bench)
    partner_steps = [s for s in plan.steps if s.resource == "partner"]
    # One partner configuration per tenant, serving both links.
    assert sorted((s.tenant, s.links) for s in partner_steps) == [
        ("contoso", ("contoso:fabrikam", "fabrikam:contoso")),
        ("fabrikam", ("contoso:fabrikam", "fabrikam:contoso")),
    ]
    _apply(bench, plan)
    assert _plan(bench).empty
    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    both = {"inboundAllowed": True, "outboundAllowed": True}
    assert contoso.access_policy.partners[fabrikam.id]["automaticUserConsentSettings"] == both
    assert fabrikam.access_policy.partners[contoso.id]["automaticUserConsentSettings"] == both


def test_destroying_one_direction_keeps_what_the_other_needs(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=MESH)
    _apply(bench, _plan(bench))

    async def destroy(session: Session) -> Plan:
        return await make_destroy_plan(
            session.desired, session, links=["contoso:fabrikam"], keep_users=True
        )

    teardown = bench.run(destroy)
    assert {(s.tenant, s.resource, s.action) for s in teardown.steps} == {
        ("contoso", "synchronizationJob", "delete"),
        ("contoso", "application", "delete"),
        ("contoso", "partner", "update"),  # trimmed: outbound only
        ("fabrikam", "identitySynchronization", "delete"),
        ("fabrikam", "partner", "update"),  # trimmed: inbound only
    }
    assert all(s.destructive for s in teardown.steps)
    _apply(bench, teardown)

    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    assert contoso.access_policy.partners[fabrikam.id]["automaticUserConsentSettings"] == {
        "inboundAllowed": True,
        "outboundAllowed": None,
    }
    assert contoso.id not in fabrikam.access_policy.identity_sync
    assert fabrikam.id in contoso.access_policy.identity_sync
    # The other direction still plans nothing: it is intact.
    assert _plan(bench, ["fabrikam:contoso"]).empty
    # ... and the destroyed one would be rebuilt from scratch.
    assert any(s.resource == "application" for s in _plan(bench, ["contoso:fabrikam"]).steps)


def test_drift_is_planned_back(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    _apply(bench, _plan(bench))
    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    # Someone turns inbound sync off in the portal and drops the pilot assignment.
    fabrikam.access_policy.identity_sync[contoso.id]["userSyncInbound"]["isSyncAllowed"] = False
    for assignments in contoso.app_role_assignments.values():
        assignments.clear()
    plan = _plan(bench)
    assert {(s.resource, s.action) for s in plan.steps} == {
        ("identitySynchronization", "update"),
        ("appRoleAssignments", "create"),
    }
    _apply(bench, plan)
    assert _plan(bench).empty
