"""ctsync never plans a second cross-tenant sync configuration beside one it does not manage:
it names the existing one and says how to bring it under management — and with `adopt:` it
manages that one, releasing (not deleting) it on destroy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.graph.apps import ApplicationsApi
from ctsync.graph.sync import SynchronizationApi
from tests.engine.conftest import Bench, make_bench


def _portal_made(bench: Bench, name: str, *, target: str, start: bool = True) -> dict[str, Any]:
    """A configuration made by hand in the Entra admin center: no ctsync tags."""

    async def go(session: Session) -> dict[str, Any]:
        client = session.client("contoso")
        created = await ApplicationsApi(client).instantiate(name)
        sp = created["servicePrincipal"]
        sync = SynchronizationApi(client)
        job = await sync.create_job(sp["id"])
        target_id = session.desired.tenants[target].tenant_id
        await sync.put_secrets(
            sp["id"],
            {"AuthenticationType": "SyncPolicy", "CompanyId": target_id, "SyncAll": "true"},
        )
        if start:
            await sync.start(sp["id"], job["id"])
        return {"sp": sp, "job": job}

    made: dict[str, Any] = bench.run(go)
    return made


def _adopt(bench: Bench, sp_id: str) -> None:
    text = bench.config.read_text()
    link = "template: member-sync}"
    bench.config.write_text(text.replace(link, f"template: member-sync, adopt: {sp_id}}}", 1))


def _plan(bench: Bench) -> Plan:
    return bench.run(lambda s: make_plan(s.desired, s))


def _codes(plan: Plan) -> list[tuple[str, str]]:
    return [(p.code, p.severity) for p in plan.problems]


def test_an_mto_configuration_for_the_target_stops_the_plan(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    fabrikam = bench.emulator.tenant("fabrikam").id
    made = _portal_made(bench, f"MTO_Sync_{fabrikam}", target="fabrikam", start=False)
    plan = _plan(bench)
    assert _codes(plan) == [("existing-configuration", "error")]
    [problem] = plan.blockers
    assert made["sp"]["id"] in problem.message
    assert "MTO name" in problem.message
    assert f"adopt: {made['sp']['id']}" in problem.remedy
    # No second configuration is planned (and apply refuses the plan as a whole).
    assert not [s for s in plan.steps if s.resource in {"application", "synchronizationJob"}]


def test_a_portal_configuration_is_unidentified_until_its_logs_name_the_target(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    made = _portal_made(bench, "Sync to Fabrikam", target="fabrikam")
    assert _codes(_plan(bench)) == [("unidentified-configuration", "error")]
    bench.emulator.run_cycles([made["job"]["id"]])  # it provisions: the logs say where
    plan = _plan(bench)
    assert _codes(plan) == [("existing-configuration", "error")]
    assert "provisioning logs" in plan.blockers[0].message


def test_a_configuration_the_config_says_serves_another_tenant_is_left_alone(
    tmp_path: Path,
) -> None:
    holder: dict[str, Any] = {}

    def declare(text: str) -> str:
        return text.replace(
            "  contoso:\n",
            "  contoso:\n    unmanaged_configurations: {" + holder["id"] + ": tailspin}\n",
            1,
        )

    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    holder["id"] = _portal_made(bench, "Sync to Tailspin", target="tailspin")["sp"]["id"]
    bench.config.write_text(declare(bench.config.read_text()))
    plan = _plan(bench)
    assert plan.problems == ()
    assert any(s.resource == "application" and s.action == "create" for s in plan.steps)


def test_an_adopted_configuration_is_managed_then_released_not_deleted(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    made = _portal_made(bench, "Sync to Fabrikam", target="fabrikam")
    sp_id = made["sp"]["id"]
    _adopt(bench, sp_id)
    plan = _plan(bench)
    assert plan.problems == ()
    assert not [s for s in plan.steps if s.resource in {"application", "synchronizationJob"}]
    # Every step on the configuration says whose it is.
    on_app = [s for s in plan.steps if s.id.startswith("contoso:fabrikam/")]
    assert {s.resource for s in on_app} >= {"synchronizationSecrets"}
    for step in on_app:
        assert step.summary.endswith(
            "(adopted configuration 'Sync to Fabrikam': not created by ctsync)"
        ), step.summary

    async def apply(session: Session) -> bool:
        return (await execute(await make_plan(session.desired, session), session)).ok

    assert bench.run(apply)
    contoso = bench.emulator.tenant("contoso")
    assert "ctsync:adopted" in contoso.service_principals[sp_id]["tags"]
    assert len(contoso.service_principals) == 1
    assert _plan(bench).steps == ()

    async def destroy(session: Session) -> Plan:
        teardown = await make_destroy_plan(session.desired, session, keep_users=True)
        assert (await execute(teardown, session)).ok
        return teardown

    teardown = bench.run(destroy)
    assert {(s.resource, s.action) for s in teardown.steps if s.tenant == "contoso"} >= {
        ("synchronizationJob", "update"),
        ("servicePrincipal", "update"),
    }
    assert sp_id in contoso.service_principals  # released, not deleted
    assert not [t for t in contoso.service_principals[sp_id]["tags"] if t.startswith("ctsync:")]
    job = next(iter(contoso.synchronization[sp_id].jobs.values()))
    assert job.job["schedule"]["state"] == "Paused"


def test_adopting_something_that_is_not_there_stops_the_plan(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    missing = "00000000-0000-4000-8000-000000000001"
    _adopt(bench, missing)
    assert _codes(_plan(bench)) == [("adopt-missing", "error")]
