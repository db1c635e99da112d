"""Cross-cloud links: each managed tenant's cross-tenant access policy is made to allow the
other's Microsoft cloud (allowedCloudEndpoints) before its partner settings; destroy takes out
only what ctsync added; a read-only tenant without it fails preflight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.errors import ConfigError
from ctsync.graph.clouds import CLOUDS, cloud_crossing
from ctsync.ops import preflight
from ctsync.render.powershell import plan_powershell
from tests.engine.conftest import Bench, make_bench

POLICY = "/policies/crossTenantAccessPolicy"
US, COM, CN = "microsoftonline.us", "microsoftonline.com", "partner.microsoftonline.cn"
ANCHOR = (
    '    cloud: &emulator\n      graph_url: "https://graph.microsoft.com/v1.0"\n'
    '      authority: "https://login.microsoftonline.com"\n'
)


def _cross_cloud(text: str, *, read_only: bool = False) -> str:
    """Contoso in the commercial cloud, Fabrikam in US Government (both reached through the
    emulator: explicit endpoints that say which cloud they stand for)."""
    text = text.replace(ANCHOR, ANCHOR + f"      endpoint: {COM}\n", 1)
    gov = (
        ANCHOR.replace("&emulator", "").replace("cloud: \n", "cloud:\n") + f"      endpoint: {US}\n"
    )
    head, _, rest = text.partition("  fabrikam:\n")
    rest = rest.replace("    cloud: *emulator\n", gov, 1)
    if read_only:
        rest = rest.replace("    auth:", "    managed: false\n    auth:", 1)
    return f"{head}  fabrikam:\n{rest}"


def _bench(tmp_path: Path, **kwargs: Any) -> Bench:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")], **kwargs)
    bench.emulator.tenant("fabrikam").cloud = "usgov"
    return bench


def _clouds(bench: Bench, tenant: str) -> list[str]:
    return list(bench.emulator.tenant(tenant).access_policy.allowed_cloud_endpoints)


def _plan(bench: Bench) -> Plan:
    async def go(session: Session) -> Plan:
        return await make_plan(session.desired, session)

    return bench.run(go)


def _run(bench: Bench, *, destroy: bool = False) -> Plan:
    async def go(session: Session) -> Plan:
        if destroy:
            plan = await make_destroy_plan(session.desired, session, keep_users=True)
        else:
            plan = await make_plan(session.desired, session)
        report = await execute(plan, session)
        assert report.ok, [o.to_dict() for o in report.outcomes if o.status != "done"]
        return plan

    return bench.run(go)


def test_cross_cloud_link_applies_replans_empty_and_destroys_back(tmp_path: Path) -> None:
    bench = _bench(tmp_path, edit=_cross_cloud)
    # Contoso already collaborated with China: that value is not ctsync's and stays.
    bench.emulator.tenant("contoso").access_policy.allowed_cloud_endpoints = [CN]
    plan = _plan(bench)
    steps = {s.id: s for s in plan.steps}
    contoso, fabrikam = steps["contoso/cloudEndpoints"], steps["fabrikam/cloudEndpoints"]
    assert contoso.params["add"] == [US]
    assert contoso.changes[0].new == [CN, US]
    assert fabrikam.params["add"] == [COM]
    # Each tenant's partner settings for the other wait for its cloud step.
    assert "contoso/cloudEndpoints" in steps["contoso/partner/fabrikam"].depends_on
    assert "fabrikam/cloudEndpoints" in steps["fabrikam/partner/contoso"].depends_on
    assert {"contoso/cloudEndpoints", "fabrikam/cloudEndpoints"} <= set(
        steps["contoso:fabrikam/validate"].depends_on
    )

    script = plan_powershell(plan, tenant_ids={"contoso": "c", "fabrikam": "f"})
    assert "Update-MgPolicyCrossTenantAccessPolicy" in script
    assert "'microsoftonline.us'" in script

    async def check(session: Session) -> Any:
        return await preflight(session, None, blocking_only=True)

    # The cloud steps need Policy.ReadWrite.CrossTenantAccess, which the demo client holds.
    assert not [f for f in bench.run(check).findings if f.severity == "error"]

    _run(bench)
    assert _clouds(bench, "contoso") == [CN, US]
    assert _clouds(bench, "fabrikam") == [COM]
    assert bench.emulator.tenant("fabrikam").access_policy.partners
    assert '"policy"' in (tmp_path / ".ctsync" / "ownership.json").read_text()
    assert _plan(bench).steps == ()

    # Someone adds another cloud after apply: destroy leaves it too.
    bench.emulator.tenant("fabrikam").access_policy.allowed_cloud_endpoints.append(CN)
    destroyed = _run(bench, destroy=True)
    revert = next(s for s in destroyed.steps if s.id == "contoso/cloudEndpoints/revert")
    assert "contoso:fabrikam/app/delete" in revert.depends_on
    assert _clouds(bench, "contoso") == [CN]
    assert _clouds(bench, "fabrikam") == [CN]
    ledger = (tmp_path / ".ctsync" / "ownership.json").read_text()
    assert '"policy"' not in ledger  # nothing of the policy is ctsync's any more


def test_a_cloud_the_tenant_allowed_before_is_never_taken_out(tmp_path: Path) -> None:
    bench = _bench(tmp_path, edit=_cross_cloud)
    bench.emulator.tenant("fabrikam").access_policy.allowed_cloud_endpoints = [COM]
    plan = _plan(bench)
    assert [s.id for s in plan.steps if s.resource == "crossTenantAccessPolicy"] == [
        "contoso/cloudEndpoints"
    ]
    _run(bench)
    _run(bench, destroy=True)
    assert _clouds(bench, "fabrikam") == [COM]
    assert _clouds(bench, "contoso") == []


def test_read_only_tenant_without_the_cloud_fails_preflight(tmp_path: Path) -> None:
    bench = _bench(tmp_path, edit=lambda t: _cross_cloud(t, read_only=True))

    async def go(session: Session) -> Any:
        return await preflight(session, None, blocking_only=True)

    report = bench.run(go)
    found = [f for f in report.findings if f.code == "clouds.not-allowed"]
    assert len(found) == 1
    assert (found[0].severity, found[0].tenant) == ("error", "fabrikam")
    assert COM in found[0].fix
    assert "allowedCloudEndpoints" in found[0].fix
    plan = _plan(bench)
    assert not any(s.tenant == "fabrikam" for s in plan.steps)
    assert any("allowedCloudEndpoints" in n for n in plan.notes)
    assert _clouds(bench, "fabrikam") == []

    # Once the partner's administrator allows it, the finding is gone.
    bench.emulator.tenant("fabrikam").access_policy.allowed_cloud_endpoints = [COM]
    assert not [f for f in bench.run(go).findings if f.code == "clouds.not-allowed"]


def test_same_cloud_link_plans_no_cloud_step(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    assert not [s for s in _plan(bench).steps if s.resource == "crossTenantAccessPolicy"]


def test_a_custom_cloud_without_endpoint_is_refused_at_load(tmp_path: Path) -> None:
    def edit(text: str) -> str:
        return _cross_cloud(text).replace(f"      endpoint: {COM}\n", "", 1)

    with pytest.raises(ConfigError, match="endpoint"):
        make_bench(tmp_path, links=[("contoso", "fabrikam")], edit=edit).desired()


def test_cloud_pairs() -> None:
    assert cloud_crossing(CLOUDS["global"], CLOUDS["usgov"]) == (COM, US)
    assert cloud_crossing(CLOUDS["usgovdod"], CLOUDS["global"]) == (US, COM)
    assert cloud_crossing(CLOUDS["global"], CLOUDS["china"]) == (COM, CN)
    assert cloud_crossing(CLOUDS["usgov"], CLOUDS["usgovdod"]) is None
    for source, target in (("china", "global"), ("usgov", "china"), ("china", "usgov")):
        with pytest.raises(ConfigError, match="not a cloud pair"):
            cloud_crossing(CLOUDS[source], CLOUDS[target])
