"""Import: describe a portal-made setup as a link that adopts it; the plan right after shows
nothing (the round trip is the test), and nothing was written to any tenant."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ctsync.config import loads, merge_links
from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.schema import user_mapping
from ctsync.graph import WriteRecord
from ctsync.graph.apps import ApplicationsApi
from ctsync.graph.sync import SynchronizationApi
from ctsync.ops.importer import ImportReport, config_entries, discover, note_adopted
from tests.engine.conftest import Bench, make_bench

POLICY = "/policies/crossTenantAccessPolicy"
DIRECT_CONNECT = {
    "usersAndGroups": {
        "accessType": "allowed",
        "targets": [{"target": "AllUsers", "targetType": "user"}],
    },
    "applications": {
        "accessType": "allowed",
        "targets": [{"target": "AllApplications", "targetType": "application"}],
    },
}


async def _portal_setup(session: Session) -> str:
    """What an admin clicks together in the Entra admin center, in Graph calls."""
    contoso, fabrikam = session.client("contoso"), session.client("fabrikam")
    ids = {n: t.tenant_id for n, t in session.desired.tenants.items()}
    await fabrikam.post(
        f"{POLICY}/partners",
        json={
            "tenantId": ids["contoso"],
            "automaticUserConsentSettings": {"inboundAllowed": True},
            "inboundTrust": {
                "isMfaAccepted": True,
                "isCompliantDeviceAccepted": True,
                "isHybridAzureADJoinedDeviceAccepted": False,
            },
            "b2bDirectConnectInbound": DIRECT_CONNECT,
        },
    )
    await fabrikam.put(
        f"{POLICY}/partners/{ids['contoso']}/identitySynchronization",
        json={"displayName": "contoso", "userSyncInbound": {"isSyncAllowed": True}},
    )
    await contoso.post(
        f"{POLICY}/partners",
        json={
            "tenantId": ids["fabrikam"],
            "automaticUserConsentSettings": {"outboundAllowed": True},
        },
    )
    created = await ApplicationsApi(contoso).instantiate("Sync to Fabrikam")
    sp_id = created["servicePrincipal"]["id"]
    role = created["servicePrincipal"]["appRoles"][0]["id"]
    sync = SynchronizationApi(contoso)
    job = await sync.create_job(sp_id)
    await sync.put_secrets(
        sp_id,
        {
            "AuthenticationType": "SyncPolicy",
            "CompanyId": ids["fabrikam"],
            "SyncNotificationSettings": '{"Enabled":false,"DeleteThresholdEnabled":true,'
            '"HumanResourcesLookaheadQueryEnabled":false,"DeleteThresholdValue":500}',
            "SyncAll": "false",
        },
    )
    pilot = (await contoso.list_all("/groups", filter="displayName eq 'CTS-Pilot'"))[0]
    await ApplicationsApi(contoso).assign(sp_id, principal_id=pilot["id"], app_role_id=role)
    schema = await sync.get_schema(sp_id, job["id"])
    edited = copy.deepcopy(schema)
    mapping = user_mapping(edited)
    for rule in edited["synchronizationRules"]:
        for obj in rule["objectMappings"]:
            if obj.get("name") != mapping.get("name"):
                continue
            for attr in obj["attributeMappings"]:
                if attr["targetAttributeName"] == "employeeId":
                    attr["source"] = {
                        "type": "Constant",
                        "name": "N/A",
                        "expression": '"N/A"',
                        "parameters": [],
                    }
            obj["scope"]["groups"] = [
                {
                    "name": "Sales only",
                    "clauses": [
                        {
                            "sourceOperandName": "department",
                            "operatorName": "EQUALS",
                            "targetOperand": {"values": ["Sales"]},
                        }
                    ],
                }
            ]
    await sync.put_schema(sp_id, job["id"], edited)
    await sync.validate_credentials(sp_id, job_id=job["id"])
    await sync.start(sp_id, job["id"])
    return str(sp_id)


def _import(bench: Bench) -> tuple[ImportReport, str, list[WriteRecord]]:
    writes: list[WriteRecord] = []
    report: ImportReport = bench.run(discover, observers=[writes.append])
    templates, entries = config_entries(report.links)
    text = merge_links(
        bench.config.read_text(),
        name=str(bench.config),
        templates=templates,
        links=entries,
        beta=["group_sync"] if any(link.sync.get("groups") for link in report.links) else [],
    )
    return report, text, writes


async def _portal_setup_with_groups(session: Session) -> str:
    """The portal setup, and then the admin turns group sync on: the schema's group mapping
    (with a scoping filter, the user mapping's flow types) and, in the target, the beta
    ``groupSyncInbound``."""
    sp_id = await _portal_setup(session)
    contoso, fabrikam = session.client("contoso"), session.client("fabrikam")
    sync = SynchronizationApi(contoso)
    [job] = await sync.list_jobs(sp_id)
    schema = await sync.get_schema(sp_id, job["id"])
    flows = user_mapping(schema)["flowTypes"]
    for rule in schema["synchronizationRules"]:
        for obj in rule["objectMappings"]:
            if obj.get("sourceObjectName") == "Group":
                obj["enabled"] = True
                obj["flowTypes"] = flows
                obj["scope"] = {
                    "groups": [
                        {
                            "name": "Pilots",
                            "clauses": [
                                {
                                    "sourceOperandName": "displayName",
                                    "operatorName": "REGEX MATCH",
                                    "targetOperand": {"values": ["^CTS"]},
                                }
                            ],
                        }
                    ],
                    "inputFilterGroups": [],
                    "categoryFilterGroups": [],
                }
    await sync.put_schema(sp_id, job["id"], schema)
    contoso_id = session.desired.tenants["contoso"].tenant_id
    policy = f"{POLICY}/partners/{contoso_id}/identitySynchronization"
    await fabrikam.patch(
        fabrikam.beta_url(policy), json={"groupSyncInbound": {"isSyncAllowed": True}}
    )
    return sp_id


def test_a_setup_that_syncs_groups_imports_with_group_sync_and_plans_nothing(
    tmp_path: Path,
) -> None:
    """Left out, the next apply would turn the job's group sync off."""
    bench = make_bench(tmp_path, links=[])
    bench.run(_portal_setup_with_groups)
    [sync] = bench.emulator.tenant("contoso").synchronization.values()
    bench.emulator.run_cycles([j.id for j in sync.jobs.values()])  # logs name the target
    report, text, writes = _import(bench)
    assert writes == []
    [link] = report.links
    assert link.sync["groups"] is True
    assert link.sync["group_filter"] == [
        {"name": "Pilots", "filter": "displayName REGEX MATCH '^CTS'"}
    ]
    assert any("beta: [group_sync]" in note for note in link.notes)
    assert "beta: [group_sync]" in text
    bench.config.write_text(text)
    written = loads(text, path=bench.config)
    assert written.beta == frozenset({"group_sync"})
    note_adopted(written, {"contoso:fabrikam"}, _ledger(bench), report)
    plan: Plan = bench.run(lambda s: make_plan(s.desired, s))
    assert plan.problems == ()
    assert plan.steps == (), [(s.id, [c.field for c in s.changes]) for s in plan.steps]


def test_a_portal_setup_imports_as_a_link_that_plans_nothing(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[])
    sp_id = bench.run(_portal_setup)
    [sync] = bench.emulator.tenant("contoso").synchronization.values()
    bench.emulator.run_cycles([j.id for j in sync.jobs.values()])  # it has run: logs exist

    report, text, writes = _import(bench)
    assert writes == []  # import writes nothing to any tenant
    [found] = report.found
    assert (found.tenant, found.name, found.target, found.how) == (
        "contoso",
        "Sync to Fabrikam",
        "fabrikam",
        "provisioning logs",
    )
    assert found.link == "contoso:fabrikam"
    [link] = report.links
    assert link.adopt == sp_id
    assert link.access == {
        "automatic_redemption": True,
        "inbound_trust": {"mfa": True, "compliant_device": True, "hybrid_joined_device": False},
    }
    assert link.sync["mappings"] == {"employeeId": '"N/A"'}
    assert link.sync["scope"] == {
        "assigned": [{"group": "CTS-Pilot"}],
        "filter": [{"name": "Sales only", "filter": "department EQUALS 'Sales'"}],
    }
    assert "adopt: " + sp_id in text
    assert "# ctsync config for the emulator" in text  # the admin's comments stay
    # ... and their way of writing things: a one-key mapping in a list keeps its braces.
    assert "assigned: [{group: CTS-Pilot}]" in bench.config.read_text()
    assert "assigned: [{group: CTS-Pilot}]" in text
    assert "inbound_trust: {mfa: true, compliant_device: true, hybrid_joined_device: false}" in text

    bench.config.write_text(text)
    written = loads(text, path=bench.config)
    note_adopted(written, {"contoso:fabrikam"}, _ledger(bench), report)
    plan: Plan = bench.run(lambda s: make_plan(s.desired, s))
    assert plan.problems == ()
    assert plan.steps == (), [(s.id, [c.field for c in s.changes]) for s in plan.steps]


def test_without_the_import_the_same_setup_stops_a_plan(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    bench.run(_portal_setup)
    [sync] = bench.emulator.tenant("contoso").synchronization.values()
    bench.emulator.run_cycles([j.id for j in sync.jobs.values()])
    plan: Plan = bench.run(lambda s: make_plan(s.desired, s))
    assert [p.code for p in plan.blockers] == ["existing-configuration"]


def _ledger(bench: Bench) -> Any:
    from ctsync.engine.ownership import Ledger

    return Ledger(bench.config.parent / ".ctsync" / "ownership.json")


def test_destroy_after_import_gives_every_partner_setting_back_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    bench = make_bench(tmp_path, links=[])
    sp_id = bench.run(_portal_setup)
    [sync] = bench.emulator.tenant("contoso").synchronization.values()
    bench.emulator.run_cycles([j.id for j in sync.jobs.values()])
    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    before = {
        "fabrikam": copy.deepcopy(fabrikam.access_policy.partners[contoso.id]),
        "contoso": copy.deepcopy(contoso.access_policy.partners[fabrikam.id]),
        "sync": copy.deepcopy(fabrikam.access_policy.identity_sync[contoso.id]),
    }
    report, text, _ = _import(bench)
    bench.config.write_text(text)
    note_adopted(loads(text, path=bench.config), {"contoso:fabrikam"}, _ledger(bench), report)

    async def destroy(session: Session) -> bool:
        teardown = await make_destroy_plan(session.desired, session, keep_users=True)
        return (await execute(teardown, session)).ok

    assert bench.run(destroy)
    assert fabrikam.access_policy.partners[contoso.id] == before["fabrikam"]
    assert contoso.access_policy.partners[fabrikam.id] == before["contoso"]
    assert fabrikam.access_policy.identity_sync[contoso.id] == before["sync"]
    assert sp_id in contoso.service_principals  # released, not deleted
