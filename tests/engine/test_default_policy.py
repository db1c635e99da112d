"""A tenant's default cross-tenant access policy as code (``default_access``): planned like a
partner configuration, only the settings the config names; destroy never deletes the singleton
and gives ctsync's settings back, or resets the whole policy only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.desired import b2b_setting
from ctsync.graph import WriteRecord
from ctsync.render.powershell import plan_powershell
from tests.conformance import assert_conforms
from tests.engine.conftest import Bench, make_bench

DEFAULT = "/policies/crossTenantAccessPolicy/default"
#: What the tenant's own admin set on Fabrikam's default policy before ctsync: B2B direct
#: connect (ctsync has no setting for it) and blocked B2B collaboration out.
DIRECT_CONNECT_OUT = {"b2bDirectConnectOutbound": b2b_setting("allowed")}

DEFAULT_ACCESS = """    default_access:
      inbound_trust: {mfa: true}
      automatic_redemption: {inbound: true}
"""


def _with_default(text: str, *, tenant: str = "fabrikam", block: str = DEFAULT_ACCESS) -> str:
    """The config with ``default_access`` under ``tenant`` (after its tenant_id line)."""
    head, _, rest = text.partition(f"  {tenant}:\n")
    first, _, tail = rest.partition("\n")
    return f"{head}  {tenant}:\n{first}\n{block}{tail}"


def _bench(tmp_path: Path, **kwargs: Any) -> Bench:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")], edit=_with_default, **kwargs)
    bench.run(lambda s: s.client("fabrikam").patch(DEFAULT, json=DIRECT_CONNECT_OUT))
    return bench


def _plan(bench: Bench) -> Plan:
    async def go(session: Session) -> Plan:
        return await make_plan(session.desired, session)

    return bench.run(go)


def _run(
    bench: Bench,
    *,
    destroy: bool = False,
    writes: list[WriteRecord] | None = None,
    **destroy_args: Any,
) -> Plan:
    async def go(session: Session) -> Plan:
        if destroy:
            plan = await make_destroy_plan(
                session.desired, session, keep_users=True, **destroy_args
            )
        else:
            plan = await make_plan(session.desired, session)
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]
        return plan

    return bench.run(go, observers=[writes.append] if writes is not None else [])


def _default(bench: Bench) -> dict[str, Any]:
    async def go(session: Session) -> dict[str, Any]:
        return (await session.client("fabrikam").get(DEFAULT)).json_object()

    return bench.run(go)


def test_apply_writes_only_the_default_settings_the_config_names(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    before = _default(bench)
    plan = _plan(bench)
    step = next(s for s in plan.steps if s.resource == "defaultPolicy")
    assert (step.tenant, step.action) == ("fabrikam", "update")
    assert [c.field for c in step.changes] == [
        "automaticUserConsentSettings.inboundAllowed",
        "inboundTrust",
    ]
    # The PATCH carries those settings alone: direct connect is never sent.
    assert step.params["patch"] == {
        "automaticUserConsentSettings": {"inboundAllowed": True},
        "inboundTrust": {
            "isMfaAccepted": True,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
    }
    script = plan_powershell(plan, tenant_ids={"contoso": "c", "fabrikam": "f"})
    assert "Update-MgPolicyCrossTenantAccessPolicyDefault -BodyParameter" in script
    assert "no PowerShell rendering" not in script
    writes: list[WriteRecord] = []
    _run(bench, writes=writes)
    [patch] = [w for w in writes if w.path.endswith("/default")]
    assert_conforms("crossTenantAccessPolicyConfigurationDefault", patch.body)
    after = _default(bench)
    assert_conforms("crossTenantAccessPolicyConfigurationDefault", after)
    assert after["inboundTrust"]["isMfaAccepted"] is True
    assert after["automaticUserConsentSettings"] == {
        "inboundAllowed": True,
        "outboundAllowed": before["automaticUserConsentSettings"]["outboundAllowed"],
    }
    for member in (
        "b2bDirectConnectOutbound",
        "b2bCollaborationInbound",
        "b2bDirectConnectInbound",
    ):
        assert after[member] == before[member]
    assert [s.id for s in _plan(bench).steps if s.resource == "defaultPolicy"] == []


def test_one_hand_change_to_a_managed_default_setting_is_one_drifted_field(
    tmp_path: Path,
) -> None:
    bench = _bench(tmp_path)
    _run(bench)
    # In the portal: automatic redemption in switched off again; direct connect changed too
    # (not ctsync's: no drift).
    bench.run(
        lambda s: s.client("fabrikam").patch(
            DEFAULT,
            json={
                "automaticUserConsentSettings": {"inboundAllowed": False},
                "b2bDirectConnectInbound": DIRECT_CONNECT_OUT["b2bDirectConnectOutbound"],
            },
        )
    )
    steps = [s for s in _plan(bench).steps if s.resource == "defaultPolicy"]
    assert [[(c.field, c.old, c.new) for c in s.changes] for s in steps] == [
        [("automaticUserConsentSettings.inboundAllowed", False, True)]
    ]


def test_destroy_gives_the_default_settings_back_and_never_deletes_the_policy(
    tmp_path: Path,
) -> None:
    bench = _bench(tmp_path)
    before = _default(bench)
    _run(bench)
    writes: list[WriteRecord] = []
    plan = _run(bench, destroy=True, writes=writes)
    for write in writes:
        if write.path.endswith("/default"):
            assert_conforms("crossTenantAccessPolicyConfigurationDefault", write.body)
    revert = next(s for s in plan.steps if s.resource == "defaultPolicy")
    assert (revert.action, revert.destructive) == ("update", True)
    assert not any(s.resource == "defaultPolicy" and s.action == "delete" for s in plan.steps)
    assert _default(bench) == before
    assert [s for s in _plan(bench).steps if s.resource == "defaultPolicy"] != []


def test_reset_default_policy_resets_the_whole_policy_only_when_asked(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _run(bench)
    plan = _run(bench, destroy=True, reset_default=True)
    reset = next(s for s in plan.steps if s.resource == "defaultPolicy")
    assert (reset.action, reset.destructive) == ("action", True)
    script = plan_powershell(plan, tenant_ids={"contoso": "c", "fabrikam": "f"})
    assert "Reset-MgPolicyCrossTenantAccessPolicyDefaultToSystemDefault" in script
    after = _default(bench)
    assert after["isServiceDefault"] is True
    assert after["b2bDirectConnectOutbound"] != DIRECT_CONNECT_OUT["b2bDirectConnectOutbound"]


def test_destroying_one_link_leaves_a_default_another_link_still_needs(tmp_path: Path) -> None:
    bench = make_bench(
        tmp_path, links=[("contoso", "fabrikam"), ("tailspin", "fabrikam")], edit=_with_default
    )
    _run(bench)
    plan = _run(bench, destroy=True, links=["contoso:fabrikam"])
    assert [s for s in plan.steps if s.resource == "defaultPolicy"] == []
    assert _default(bench)["inboundTrust"]["isMfaAccepted"] is True


def test_a_read_only_tenant_gets_a_note_not_a_step(tmp_path: Path) -> None:
    def edit(text: str) -> str:
        text = _with_default(text)
        return text.replace("  fabrikam:\n", "  fabrikam:\n    managed: false\n", 1)

    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")], edit=edit)
    plan = _plan(bench)
    assert [s for s in plan.steps if s.resource == "defaultPolicy"] == []
    assert any("default_access" in n and "fabrikam" in n for n in plan.notes)
