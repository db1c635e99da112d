"""ctsync changes only what it manages and deletes only what it made: partner configurations
and identitySynchronization someone else made keep every setting ctsync does not manage, and
get ctsync's own fields back as they were before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.ownership import Ledger
from ctsync.graph import WriteRecord
from tests.engine.conftest import Bench, make_bench

POLICY = "/policies/crossTenantAccessPolicy"
#: Settings ctsync has no config for: B2B direct connect and tenant restrictions.
DIRECT_CONNECT = {
    "b2bDirectConnectInbound": {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }
}


def _apply(bench: Bench, **kwargs: Any) -> Plan:
    async def go(session: Session) -> Plan:
        plan = await make_plan(session.desired, session)
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]
        return plan

    return bench.run(go, **kwargs)


def _destroy(bench: Bench, **kwargs: Any) -> Plan:
    async def go(session: Session) -> Plan:
        plan = await make_destroy_plan(session.desired, session, keep_users=True)
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]
        return plan

    return bench.run(go, **kwargs)


def _raw(bench: Bench, tenant: str, path: str) -> dict[str, Any]:
    async def go(session: Session) -> dict[str, Any]:
        return (await session.client(tenant).get(path)).json_object()

    return bench.run(go)


def _seed(bench: Bench, tenant: str, method: str, path: str, body: dict[str, Any]) -> None:
    async def go(session: Session) -> None:
        await session.client(tenant).request(method, path, json=body)

    bench.run(go)


def test_a_partner_someone_else_made_keeps_its_settings_and_gets_ctsyncs_fields_back(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    contoso = bench.emulator.tenant("contoso").id
    partner = f"{POLICY}/partners/{contoso}"
    # Fabrikam's admin set up direct connect with Contoso, and an inbound trust of their own.
    _seed(
        bench,
        "fabrikam",
        "POST",
        f"{POLICY}/partners",
        {
            "tenantId": contoso,
            **DIRECT_CONNECT,
            "inboundTrust": {
                "isMfaAccepted": False,
                "isCompliantDeviceAccepted": True,
                "isHybridAzureADJoinedDeviceAccepted": False,
            },
        },
    )
    original = _raw(bench, "fabrikam", partner)

    writes: list[WriteRecord] = []
    plan = _apply(bench, observers=[writes.append])
    step = next(s for s in plan.steps if s.id == "fabrikam/partner/contoso")
    assert step.action == "update"
    assert "not created by ctsync" in step.summary
    [patch] = [w for w in writes if w.method == "PATCH" and w.path.endswith(contoso)]
    # Only ctsync's fields are sent; direct connect is never sent, never reset.
    assert set(patch.body) == {"automaticUserConsentSettings", "inboundTrust"}

    teardown = _destroy(bench)
    revert = next(s for s in teardown.steps if s.tenant == "fabrikam" and s.resource == "partner")
    assert revert.action == "update"
    assert "the configuration stays" in revert.summary
    assert "b2bDirectConnectInbound" in revert.summary
    assert _raw(bench, "fabrikam", partner) == original


def test_a_partner_ctsync_made_is_deleted_and_one_someone_then_changed_is_not(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    contoso = bench.emulator.tenant("contoso").id
    fabrikam = bench.emulator.tenant("fabrikam").id
    _apply(bench)
    # Someone adds tenant restrictions to the partner configuration ctsync made in Contoso.
    _seed(bench, "contoso", "PATCH", f"{POLICY}/partners/{fabrikam}", DIRECT_CONNECT)

    teardown = _destroy(bench)
    kinds = {(s.tenant, s.resource, s.action) for s in teardown.steps}
    assert ("fabrikam", "partner", "delete") in kinds  # ctsync's, nothing else on it
    assert ("contoso", "partner", "update") in kinds  # ctsync's, but someone added to it
    assert contoso not in bench.emulator.tenant("fabrikam").access_policy.partners
    kept = _raw(bench, "contoso", f"{POLICY}/partners/{fabrikam}")
    assert kept["b2bDirectConnectInbound"] == DIRECT_CONNECT["b2bDirectConnectInbound"]
    assert kept["automaticUserConsentSettings"]["outboundAllowed"] is None


def test_an_identity_sync_setting_someone_else_made_is_set_back_not_deleted(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    contoso = bench.emulator.tenant("contoso").id
    sync = f"{POLICY}/partners/{contoso}/identitySynchronization"
    _seed(bench, "fabrikam", "POST", f"{POLICY}/partners", {"tenantId": contoso})
    _seed(
        bench,
        "fabrikam",
        "PUT",
        sync,
        {"displayName": "set by hand", "userSyncInbound": {"isSyncAllowed": False}},
    )
    _apply(bench)
    assert _raw(bench, "fabrikam", sync)["userSyncInbound"]["isSyncAllowed"] is True
    _destroy(bench)
    after = _raw(bench, "fabrikam", sync)
    assert after["displayName"] == "set by hand"
    assert after["userSyncInbound"]["isSyncAllowed"] is False
    # The partner configuration someone made with it stays too.
    assert contoso in bench.emulator.tenant("fabrikam").access_policy.partners


def test_without_its_ledger_ctsync_deletes_and_resets_no_partner_setting(tmp_path: Path) -> None:
    """With no record of what it made or changed, ctsync cannot tell its settings from an
    admin's: the partner configurations and their settings stay, and the plan says so."""
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    _apply(bench)
    (tmp_path / ".ctsync" / "ownership.json").unlink()
    teardown = _destroy(bench, ledger=Ledger(tmp_path / ".ctsync" / "ownership.json"))
    assert not [s for s in teardown.steps if s.resource in ("partner", "identitySynchronization")]
    contoso = bench.emulator.tenant("contoso").id
    fabrikam = bench.emulator.tenant("fabrikam")
    assert contoso in fabrikam.access_policy.partners
    auto = fabrikam.access_policy.partners[contoso]["automaticUserConsentSettings"]
    assert auto["inboundAllowed"] is True
    assert any(
        "fabrikam: automaticUserConsentSettings.inboundAllowed, inboundTrust on the partner for "
        "contoso stay as they are" in note
        for note in teardown.notes
    ), teardown.notes


def test_destroy_leaves_a_setting_ctsync_found_as_the_config_wants_it(tmp_path: Path) -> None:
    """An MTO partner already allowed user sync in and redemption: ctsync changed neither, so
    destroy gives nothing "back" (resetting them would break the MTO's own sync)."""
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    contoso = bench.emulator.tenant("contoso").id
    _seed(
        bench,
        "fabrikam",
        "POST",
        f"{POLICY}/partners",
        {"tenantId": contoso, "automaticUserConsentSettings": {"inboundAllowed": True}},
    )
    _seed(
        bench,
        "fabrikam",
        "PUT",
        f"{POLICY}/partners/{contoso}/identitySynchronization",
        {"displayName": "contoso", "userSyncInbound": {"isSyncAllowed": True}},
    )
    _apply(bench)
    teardown = _destroy(bench)
    touched = [
        c.field
        for s in teardown.steps
        if s.tenant == "fabrikam" and s.resource in ("partner", "identitySynchronization")
        for c in s.changes
    ]
    assert touched == ["inboundTrust"]  # the one field ctsync changed
    sync = _raw(bench, "fabrikam", f"{POLICY}/partners/{contoso}/identitySynchronization")
    assert sync["userSyncInbound"]["isSyncAllowed"] is True
    partner = _raw(bench, "fabrikam", f"{POLICY}/partners/{contoso}")
    assert partner["automaticUserConsentSettings"]["inboundAllowed"] is True
