"""plan → apply → plan again: both tenants hold everything the walkthrough creates."""

from __future__ import annotations

from ctsync.engine import Plan, Session, execute, make_plan
from tests.engine.conftest import Bench


def _plan(bench: Bench) -> Plan:
    async def go(session: Session) -> Plan:
        return await make_plan(session.desired, session)

    return bench.run(go)


def test_apply_creates_everything_then_plans_nothing(bench: Bench) -> None:
    plan = _plan(bench)
    kinds = [(s.tenant, s.resource, s.action) for s in plan.steps]
    assert ("fabrikam", "partner", "create") in kinds
    assert ("fabrikam", "identitySynchronization", "create") in kinds
    assert ("contoso", "partner", "create") in kinds
    assert ("contoso", "application", "create") in kinds
    assert ("contoso", "synchronizationJob", "action") in kinds  # start

    async def apply(session: Session) -> None:
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]

    bench.run(apply)
    assert _plan(bench).steps == ()

    emu = bench.emulator
    contoso, fabrikam = emu.tenant("contoso"), emu.tenant("fabrikam")
    inbound = fabrikam.access_policy.partners[contoso.id]
    assert inbound["automaticUserConsentSettings"]["inboundAllowed"] is True
    assert fabrikam.access_policy.identity_sync[contoso.id]["userSyncInbound"] == {
        "isSyncAllowed": True
    }
    outbound = contoso.access_policy.partners[fabrikam.id]
    assert outbound["automaticUserConsentSettings"]["outboundAllowed"] is True
    sps = [sp for sp in contoso.service_principals.values() if "ctsync:managed" in sp["tags"]]
    assert len(sps) == 1
