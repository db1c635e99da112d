"""Brownfield tenants: scenarios that seed cross-tenant sync as admins leave it (the default
policy, partners, portal- and MTO-made configurations with jobs that have run), and the
built-in ``brownfield`` scenario. Every seeded object must be what the API would hold: each
check compares what Graph answers with what the same calls made through the API leave, and
with Microsoft's v1.0 types."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport, FaultProfile
from ctsync.emulator.scenarios import ScenarioError
from ctsync.emulator.services import azure2azure as a2a
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import (
    CTS_TEMPLATE,
    GRAPH,
    PARTNERS,
    cts_secrets,
    instantiate,
    sync_root,
)
from tests.emulator.test_engine import without_details

CONTROL = "https://graph.microsoft.com/_emulator"
DEFAULT = "/policies/crossTenantAccessPolicy/default"
MICROSOFT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
POLICY_CODE = "AzureDirectoryB2BManagementPolicyCheckFailure"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

Graph = Callable[[str], httpx.Client]


@pytest.fixture
def graph_of() -> Iterator[Callable[[Emulator], Graph]]:
    """Graph clients signed in to an emulator's tenants (closed after the test)."""
    clients: list[httpx.Client] = []

    def of(emulator: Emulator) -> Graph:
        def make(tenant: str) -> httpx.Client:
            credential = EmulatorCredential(emulator, tenant)
            token = credential.get_token("https://graph.microsoft.com/.default").token
            client = httpx.Client(
                base_url=GRAPH,
                transport=EmulatorTransport(emulator),
                headers={"authorization": f"Bearer {token}"},
            )
            clients.append(client)
            return client

        return make

    yield of
    for client in clients:
        client.close()


@pytest.fixture
def brownfield() -> Emulator:
    return Emulator(scenario="brownfield")


@pytest.fixture
def graph(brownfield: Emulator, graph_of: Callable[[Emulator], Graph]) -> Graph:
    return graph_of(brownfield)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def anonymous(payload: Any) -> Any:
    """``payload`` with every GUID replaced, and without ``@odata.context`` (which names ids):
    what two emulators that drew different ids must agree on."""
    text = _GUID.sub("<id>", json.dumps(payload, sort_keys=True))
    out = json.loads(text)
    if isinstance(out, dict):
        out.pop("@odata.context", None)
    return out


def service_principal(graph: httpx.Client, name: str) -> dict[str, Any]:
    found = ok(graph.get("/servicePrincipals", params={"$filter": f"displayName eq '{name}'"}))
    assert len(found["value"]) == 1, found
    sp: dict[str, Any] = found["value"][0]
    return sp


def only_job(graph: httpx.Client, sp: dict[str, Any]) -> dict[str, Any]:
    jobs = ok(graph.get(f"{sync_root(sp['id'])}/jobs"))["value"]
    assert len(jobs) == 1
    job: dict[str, Any] = jobs[0]
    return job


def user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    rule = schema["synchronizationRules"][0]
    mapping: dict[str, Any] = next(
        m for m in rule["objectMappings"] if m["sourceObjectName"] == "User"
    )
    return mapping


# -- the built-in scenario -------------------------------------------------------------------


def test_brownfield_keeps_the_demo_tenants_users_groups_clients_and_ids(
    demo: Emulator, brownfield: Emulator
) -> None:
    assert [t.name for t in brownfield.tenants.values()] == ["contoso", "fabrikam", "tailspin"]
    for name in ("contoso", "fabrikam", "tailspin"):
        before, after = demo.tenant(name), brownfield.tenant(name)
        assert (after.id, after.domain, after.verified_domains) == (
            before.id,
            before.domain,
            before.verified_domains,
        )
        assert after.groups == before.groups
        assert after.group_members == before.group_members
        assert {uid: after.users[uid] for uid in before.users} == before.users
        assert [(c.client_id, c.client_secret, c.permissions) for c in after.clients.values()] == [
            (c.client_id, c.client_secret, c.permissions) for c in before.clients.values()
        ]
        assert after.conditional_access_policies == before.conditional_access_policies
    # The only users the demo does not have are the ones the job's history created.
    fabrikam = brownfield.tenant("fabrikam")
    extra = [u for uid, u in fabrikam.users.items() if uid not in demo.tenant("fabrikam").users]
    assert sorted(u["displayName"] for u in extra) == ["Adele Vance", "Alex Wilber"]


def test_contoso_default_policy_is_what_a_patch_leaves(graph: Graph, http_for: HttpFor) -> None:
    seeded = ok(graph("contoso").get(DEFAULT))
    api = http_for("contoso")
    assert api.patch(DEFAULT, json={"inboundTrust": {"isMfaAccepted": True}}).status_code == 204
    assert seeded == ok(api.get(DEFAULT))
    assert seeded["isServiceDefault"] is False
    assert seeded["inboundTrust"]["isMfaAccepted"] is True
    assert_conforms("crossTenantAccessPolicyConfigurationDefault", seeded)
    # The other tenants keep the service default.
    assert ok(graph("fabrikam").get(DEFAULT))["isServiceDefault"] is True


def _api_partners(demo: Emulator, http_for: HttpFor, tenant: str) -> None:
    """The brownfield partners of ``tenant``, made through the API of the demo tenants."""
    text = resources.files("ctsync.emulator.scenarios").joinpath("brownfield.json").read_text()
    scenario = json.loads(text)
    spec = next(t for t in scenario["tenants"] if t["name"] == tenant)
    api = http_for(tenant)
    for raw in spec["partners"]:
        body = copy.deepcopy(raw)
        identity_sync = body.pop("identitySynchronization", None)
        ref = body["tenantId"]
        body["tenantId"] = ref if _GUID.fullmatch(ref) else demo.tenant(ref).id
        ok(api.post(PARTNERS, json=body), 201)
        if identity_sync is not None:
            put = api.put(
                f"{PARTNERS}/{body['tenantId']}/identitySynchronization", json=identity_sync
            )
            assert put.status_code == 204, put.text


@pytest.mark.parametrize("tenant", ["contoso", "fabrikam", "tailspin"])
def test_partners_and_identity_synchronization_are_what_the_api_holds(
    tenant: str, demo: Emulator, graph: Graph, http_for: HttpFor
) -> None:
    _api_partners(demo, http_for, tenant)
    api = http_for(tenant)
    seeded = ok(graph(tenant).get(PARTNERS))
    assert seeded == ok(api.get(PARTNERS))
    for partner in seeded["value"]:
        assert_conforms("crossTenantAccessPolicyConfigurationPartner", partner)
        path = f"{PARTNERS}/{partner['tenantId']}/identitySynchronization"
        mine, theirs = graph(tenant).get(path), api.get(path)
        assert mine.status_code == theirs.status_code
        if mine.status_code == 200:
            assert mine.json() == theirs.json()
            assert_conforms("crossTenantIdentitySyncPolicyPartner", mine.json())
        else:
            assert mine.json()["error"]["message"] == theirs.json()["error"]["message"]


def test_brownfield_partners_hold_what_ctsync_does_not_model(
    brownfield: Emulator, graph: Graph
) -> None:
    contoso, fabrikam, tailspin = (
        brownfield.tenant(n).id for n in ("contoso", "fabrikam", "tailspin")
    )
    partners = {p["tenantId"]: p for p in ok(graph("contoso").get(PARTNERS))["value"]}
    assert set(partners) == {fabrikam, tailspin}
    assert partners[fabrikam]["automaticUserConsentSettings"]["outboundAllowed"] is True
    assert partners[fabrikam]["b2bDirectConnectOutbound"]["usersAndGroups"]["accessType"] == (
        "allowed"
    )
    assert partners[fabrikam]["isInMultiTenantOrganization"] is False
    assert partners[tailspin]["isInMultiTenantOrganization"] is True
    assert partners[tailspin]["automaticUserConsentSettings"]["outboundAllowed"] is True

    partners = {p["tenantId"]: p for p in ok(graph("fabrikam").get(PARTNERS))["value"]}
    assert set(partners) == {contoso, MICROSOFT}
    from_contoso = partners[contoso]
    assert from_contoso["automaticUserConsentSettings"]["inboundAllowed"] is True
    assert from_contoso["inboundTrust"]["isMfaAccepted"] is True
    assert from_contoso["inboundTrust"]["isCompliantDeviceAccepted"] is True
    direct = from_contoso["b2bDirectConnectInbound"]
    assert direct["usersAndGroups"]["targets"] == [{"target": "AllUsers", "targetType": "user"}]
    assert direct["applications"]["accessType"] == "allowed"
    assert from_contoso["tenantRestrictions"]["applications"]["targets"][0]["target"] == (
        "Office365"
    )
    assert partners[MICROSOFT]["isServiceProvider"] is True
    sync = ok(graph("fabrikam").get(f"{PARTNERS}/{contoso}/identitySynchronization"))
    assert sync["userSyncInbound"] == {"isSyncAllowed": True}

    mto = ok(graph("tailspin").get(f"{PARTNERS}/{contoso}"))
    assert mto["isInMultiTenantOrganization"] is True
    assert mto["automaticUserConsentSettings"]["inboundAllowed"] is True
    sync = ok(graph("tailspin").get(f"{PARTNERS}/{contoso}/identitySynchronization"))
    assert sync["userSyncInbound"] == {"isSyncAllowed": True}


def test_configurations_are_what_instantiate_creates(
    brownfield: Emulator, graph: Graph, http_for: HttpFor
) -> None:
    contoso = graph("contoso")
    tailspin_id = brownfield.tenant("tailspin").id
    portal = service_principal(contoso, "Sync to Fabrikam")
    mto = service_principal(contoso, f"MTO_Sync_{tailspin_id}")
    made = instantiate(http_for("contoso"), "Sync to Fabrikam")
    assert anonymous(portal) == anonymous(made["servicePrincipal"])
    assert portal["applicationTemplateId"] == CTS_TEMPLATE
    assert [r["displayName"] for r in portal["appRoles"]] == ["msiam_access"]
    assert portal["tags"] == ["WindowsAzureActiveDirectoryIntegratedApp"]
    assert portal["notes"] is None
    for sp in (portal, mto):
        assert_conforms("servicePrincipal", sp)
        app = ok(contoso.get(f"/applications(appId='{sp['appId']}')"))
        assert_conforms("application", app)
        # Portal and MTO configurations carry no tags or notes (ctsync tags its own).
        assert (app["tags"], app["notes"]) == ([], None)
        assert app["displayName"] == sp["displayName"]
        # Nobody ctsync knows owns them: an OwnedBy client cannot reach them.
        assert brownfield.tenant("contoso").owners.get(sp["id"]) is None
    seeded_app = ok(contoso.get(f"/applications(appId='{portal['appId']}')"))
    api_app = made["application"]
    for app in (seeded_app, api_app):
        app.pop("createdDateTime")
    assert anonymous(seeded_app) == anonymous(api_app)


def test_the_portal_configuration_has_a_job_secrets_and_an_assignment(
    brownfield: Emulator, graph: Graph
) -> None:
    contoso = graph("contoso")
    tenant = brownfield.tenant("contoso")
    fabrikam_id = brownfield.tenant("fabrikam").id
    sp = service_principal(contoso, "Sync to Fabrikam")
    root = sync_root(sp["id"])
    job = only_job(contoso, sp)
    assert job["id"] == a2a.job_id(tenant.id, sp["appId"])
    assert job["templateId"] == "Azure2Azure"
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Active"}
    assert job["status"]["code"] == "Active"
    assert job["synchronizationJobSettings"] == a2a.new_job("x")["synchronizationJobSettings"]
    assert_conforms("synchronizationJob", job)
    assert ok(contoso.get(f"{root}/secrets"))["value"] == cts_secrets(fabrikam_id)["value"]

    assignments = ok(contoso.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"))["value"]
    pilot = next(g for g in tenant.groups.values() if g["displayName"] == "CTS-Pilot")
    assert len(assignments) == 1
    assignment = assignments[0]
    assert (assignment["principalId"], assignment["principalType"]) == (pilot["id"], "Group")
    assert assignment["principalDisplayName"] == "CTS-Pilot"
    assert assignment["appRoleId"] == sp["appRoles"][0]["id"]
    assert (assignment["resourceId"], assignment["resourceDisplayName"]) == (
        sp["id"],
        "Sync to Fabrikam",
    )
    assert_conforms("appRoleAssignment", assignment)


def test_the_mto_configuration_has_no_job_and_no_secrets(
    brownfield: Emulator, graph: Graph
) -> None:
    contoso = graph("contoso")
    sp = service_principal(contoso, f"MTO_Sync_{brownfield.tenant('tailspin').id}")
    root = sync_root(sp["id"])
    assert ok(contoso.get(f"{root}/jobs"))["value"] == []
    assert ok(contoso.get(f"{root}/secrets"))["value"] == []
    assert ok(contoso.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"))["value"] == []
    # The Azure2Azure template is there for ctsync (or an admin) to make the job.
    assert [t["id"] for t in ok(contoso.get(f"{root}/templates"))["value"]] == ["Azure2Azure"]


def test_the_schema_holds_the_scoping_filter_and_the_edited_mapping(
    graph: Graph, http_for: HttpFor
) -> None:
    contoso = graph("contoso")
    sp = service_principal(contoso, "Sync to Fabrikam")
    job = only_job(contoso, sp)
    seeded = ok(contoso.get(f"{sync_root(sp['id'])}/jobs/{job['id']}/schema"))
    assert_conforms("synchronizationSchema", seeded)
    mapping = user_mapping(seeded)
    assert mapping["scope"]["groups"] == [
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
    employee_id = next(
        m for m in mapping["attributeMappings"] if m["targetAttributeName"] == "employeeId"
    )
    assert employee_id["source"] == {
        "type": "Constant",
        "name": "N/A",
        "expression": '"N/A"',
        "parameters": [],
    }

    # The same edits made the way a client makes them: GET the schema, change it, PUT it.
    api = http_for("contoso")
    made = instantiate(api, "Sync to Fabrikam")["servicePrincipal"]
    root = sync_root(made["id"])
    api_job = ok(api.post(f"{root}/jobs", json={"templateId": "Azure2Azure"}), 201)
    schema = ok(api.get(f"{root}/jobs/{api_job['id']}/schema"))
    schema.pop("@odata.context")
    edited = user_mapping(schema)
    edited["scope"]["groups"] = copy.deepcopy(mapping["scope"]["groups"])
    for m in edited["attributeMappings"]:
        if m["targetAttributeName"] == "employeeId":
            m["source"] = {
                "type": "Constant",
                "name": "N/A",
                "expression": '"N/A"',
                "parameters": [],
            }
    put = api.put(f"{root}/jobs/{api_job['id']}/schema", json=schema)
    assert put.status_code == 204, put.text
    assert anonymous(seeded) == anonymous(ok(api.get(f"{root}/jobs/{api_job['id']}/schema")))


def test_the_history_provisioned_users_and_wrote_logs(brownfield: Emulator, graph: Graph) -> None:
    contoso, fabrikam = graph("contoso"), graph("fabrikam")
    sp = service_principal(contoso, "Sync to Fabrikam")
    job = only_job(contoso, sp)
    now = brownfield.clock.now()
    # Sales members of CTS-Pilot: Isaiah signs in by SMS and Jordan is a guest (both skipped).
    query = {
        "$filter": "creationType eq 'Invitation'",
        "$select": "displayName,userType,employeeId,department,userPrincipalName,createdDateTime",
    }
    b2b = ok(fabrikam.get("/users", params=query))["value"]
    assert sorted((u["displayName"], u["userType"], u["employeeId"]) for u in b2b) == [
        ("Adele Vance", "Member", "N/A"),
        ("Alex Wilber", "Member", "N/A"),
    ]
    assert all(u["userPrincipalName"].endswith("#EXT#@fabrikam.onmicrosoft.com") for u in b2b)

    logs = ok(contoso.get("/auditLogs/provisioning", params={"$filter": f"jobId eq '{job['id']}'"}))
    records = logs["value"]
    assert records
    assert {r["jobId"] for r in records} == {job["id"]}
    assert {r["servicePrincipal"]["id"] for r in records} == {sp["id"]}
    creates = [r for r in records if r["provisioningAction"] == "create"]
    assert sorted(r["sourceIdentity"]["displayName"] for r in creates) == [
        "Adele Vance",
        "Alex Wilber",
    ]
    for record in records:
        assert_conforms("provisioningObjectSummary", without_details(record))
    # Two cycles ran, the last half an interval ago; the first created the users.
    first = (now - timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {r["activityDateTime"] for r in creates} == {first}
    status = job["status"]
    last = (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["lastExecution"]["timeBegan"] == last
    assert status["lastExecution"]["state"] == "Succeeded"
    assert status["lastSuccessfulExecutionWithExports"]["timeBegan"] == first
    assert status["lastSuccessfulExecutionWithExports"]["countExported"] == 2
    assert status["synchronizedEntryCountByType"] == [{"key": "User to User", "value": 2}]
    assert status["steadyStateLastAchievedTime"] == last
    record = brownfield.tenant("contoso").synchronization[sp["id"]].job(job["id"])
    assert record is not None
    assert (record.completed_cycles, record.full_sync_due) == (2, False)


def test_the_seeded_job_keeps_running_on_the_emulator_clock(
    brownfield: Emulator, graph: Graph
) -> None:
    contoso = graph("contoso")
    sp = service_principal(contoso, "Sync to Fabrikam")
    job = only_job(contoso, sp)
    record = brownfield.tenant("contoso").synchronization[sp["id"]].job(job["id"])
    assert record is not None
    brownfield.clock.advance(19 * 60)
    assert record.completed_cycles == 2
    brownfield.clock.advance(60 + 5)  # the next cycle was due 20 minutes after seeding
    assert record.completed_cycles == 3
    assert record.last_cycle is not None
    assert (record.last_cycle["initial"], record.last_cycle["created"]) == (False, 0)
    fabrikam = brownfield.tenant("fabrikam")
    assert sum(1 for u in fabrikam.users.values() if u.get("creationType") == "Invitation") == 2


def test_seeded_objects_are_not_replicating(graph_of: Callable[[Emulator], Graph]) -> None:
    lagging = Emulator(scenario="brownfield", faults=FaultProfile.parse("lag=10m"))
    graph = graph_of(lagging)
    contoso, fabrikam = graph("contoso"), graph("fabrikam")
    fabrikam_id = lagging.tenant("fabrikam").id
    contoso_id = lagging.tenant("contoso").id
    sp = service_principal(contoso, "Sync to Fabrikam")
    ok(contoso.get(f"/servicePrincipals/{sp['id']}"))
    ok(contoso.get(f"/applications(appId='{sp['appId']}')"))
    assert len(ok(contoso.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"))["value"]) == 1
    ok(contoso.get(f"{PARTNERS}/{fabrikam_id}"))
    ok(fabrikam.get(f"{PARTNERS}/{contoso_id}/identitySynchronization"))
    b2b = ok(fabrikam.get("/users", params={"$filter": "creationType eq 'Invitation'"}))
    assert len(b2b["value"]) == 2
    for user in b2b["value"]:
        ok(fabrikam.get(f"/users/{user['id']}"))
    # What the API creates now still replicates.
    made = instantiate(contoso, "New configuration")["servicePrincipal"]
    assert contoso.get(f"/servicePrincipals/{made['id']}").status_code == 404


def test_state_shows_what_was_seeded(brownfield: Emulator) -> None:
    control = httpx.Client(base_url=CONTROL, transport=EmulatorTransport(brownfield))
    tenants = {t["name"]: t for t in ok(control.get("/state"))["tenants"]}
    contoso, fabrikam, tailspin = tenants["contoso"], tenants["fabrikam"], tenants["tailspin"]
    assert contoso["default_policy_customized"] is True
    assert contoso["partners"] == sorted([fabrikam["tenant_id"], tailspin["tenant_id"]])
    assert (contoso["applications"], contoso["service_principals"]) == (2, 2)
    assert contoso["app_role_assignments"] == 1
    [job] = contoso["synchronization_jobs"]
    assert (job["status"], job["schedule"], job["full_sync_due"]) == ("Active", "Active", False)
    [provisioning] = contoso["provisioning"]
    assert (provisioning["completed_cycles"], provisioning["linked_users"]) == (2, 2)
    assert contoso["provisioning_log_records"] > 0
    assert fabrikam["users"] == 5
    assert fabrikam["partners"] == sorted([contoso["tenant_id"], MICROSOFT])
    assert fabrikam["identity_synchronization"] == [contoso["tenant_id"]]
    assert tailspin["identity_synchronization"] == [contoso["tenant_id"]]


def test_control_seed_takes_the_brownfield_scenario() -> None:
    emulator = Emulator(scenario="empty")
    control = httpx.Client(base_url=CONTROL, transport=EmulatorTransport(emulator))
    answer = ok(control.post("/seed", json={"scenario": "brownfield"}))
    assert [t["name"] for t in answer["tenants"]] == ["contoso", "fabrikam", "tailspin"]
    state = ok(control.get("/state"))
    contoso = next(t for t in state["tenants"] if t["name"] == "contoso")
    assert contoso["provisioning"][0]["completed_cycles"] == 2
    # The seeded job is on the engine's schedule: a clock move past its next cycle runs it.
    ok(control.post("/clock/advance", json={"seconds": 21 * 60}))
    contoso = next(t for t in ok(control.get("/state"))["tenants"] if t["name"] == "contoso")
    assert contoso["provisioning"][0]["completed_cycles"] == 3


def test_serve_takes_the_brownfield_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    from ctsync.cli import cli
    from ctsync.emulator import server

    served: list[Emulator] = []
    monkeypatch.setattr(server, "serve", lambda emulator, **_: served.append(emulator))
    result = CliRunner().invoke(
        cli, ["emulator", "serve", "--port", "0", "--scenario", "brownfield"]
    )
    assert result.exit_code == 0, result.output
    [emulator] = served
    contoso = emulator.tenant("contoso")
    assert sorted(sp["displayName"] for sp in contoso.service_principals.values()) == [
        f"MTO_Sync_{emulator.tenant('tailspin').id}",
        "Sync to Fabrikam",
    ]
    [sync] = [s for s in contoso.synchronization.values() if s.jobs]
    [record] = sync.jobs.values()
    assert record.completed_cycles == 2


# -- scenarios a test builds -----------------------------------------------------------------


def two_tenants(a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tenant ``a`` (four users, a group) and tenant ``b``, with the keys given."""
    users = [
        {"alias": "ann", "displayName": "Ann", "department": "Sales", "jobTitle": "Rep"},
        {"alias": "bob", "displayName": "Bob", "department": "Sales", "jobTitle": "Lead"},
        {"alias": "cid", "displayName": "Cid", "department": "Legal"},
        {"alias": "dee", "displayName": "Dee", "department": "Marketing"},
    ]
    return {
        "tenants": [
            {
                "name": "a",
                "clients": [{"permissions": "ctsync"}],
                "users": users,
                "groups": [{"alias": "team", "displayName": "Team", "members": ["ann", "cid"]}],
                **(a or {}),
            },
            {"name": "b", "clients": [{"permissions": "ctsync"}], **(b or {})},
        ]
    }


def linked(config: dict[str, Any]) -> dict[str, Any]:
    """``a`` syncing into ``b`` with both sides' policies allowing it, and ``config``."""
    return two_tenants(
        {
            "partners": [
                {"tenantId": "b", "automaticUserConsentSettings": {"outboundAllowed": True}}
            ],
            "cts_configurations": [{"target": "b", "display_name": "To B", **config}],
        },
        {
            "partners": [
                {
                    "tenantId": "a",
                    "automaticUserConsentSettings": {"inboundAllowed": True},
                    "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": True}},
                }
            ]
        },
    )


def the_job(emulator: Emulator) -> tuple[dict[str, Any], Any]:
    tenant = emulator.tenant("a")
    [(sp_id, sync)] = tenant.synchronization.items()
    [record] = sync.jobs.values()
    return tenant.service_principals[sp_id], record


def test_a_test_builds_its_own_brownfield(graph_of: Callable[[Emulator], Graph]) -> None:
    scenario = linked(
        {
            "job": {"state": "Paused"},
            "history": 1,
            "assigned": ["team", "bob"],
            "secrets": {
                "SyncNotificationSettings": {
                    "Enabled": True,
                    "DeleteThresholdEnabled": True,
                    "DeleteThresholdValue": 50,
                },
                "SyncAll": True,
            },
            "scoping_filter": [
                "department EQUALS 'Sales', 'Legal'",
                {"name": "Leads", "clauses": ["jobTitle EQUALS 'Lead'", "department IS NOT NULL"]},
            ],
            "mapping_edits": [
                {"target": "jobTitle", "remove": True},
                {"target": "displayName", "expression": 'Join(" ", [displayName], "(A)")'},
                {"target": "userType", "flow_type": "Always"},
                {"target": "companyName", "constant": "Tenant A"},
                {"target": "city", "attribute": "department"},
            ],
        }
    )
    scenario["tenants"][1]["partners"].append({"tenantId": MICROSOFT, "isServiceProvider": True})
    emulator = Emulator(scenario=scenario)
    sp, record = the_job(emulator)
    graph = graph_of(emulator)("a")
    root = sync_root(sp["id"])
    job = ok(graph.get(f"{root}/jobs/{record.id}"))
    assert job["schedule"]["state"] == "Paused"
    assert job["status"]["code"] == "Paused"
    assert job["status"]["lastExecution"]["countExported"] > 0
    secrets = {p["key"]: p["value"] for p in ok(graph.get(f"{root}/secrets"))["value"]}
    assert secrets["SyncAll"] == "true"
    assert json.loads(secrets["SyncNotificationSettings"])["DeleteThresholdValue"] == 50
    assert list(secrets) == [
        "AuthenticationType",
        "CompanyId",
        "SyncNotificationSettings",
        "SyncAll",
    ]
    schema = ok(graph.get(f"{root}/jobs/{record.id}/schema"))
    mapping = user_mapping(schema)
    groups = mapping["scope"]["groups"]
    assert groups[0] == {
        "name": "Scoping filter 1",
        "clauses": [
            {
                "sourceOperandName": "department",
                "operatorName": "EQUALS",
                "targetOperand": {"values": ["Sales", "Legal"]},
            }
        ],
    }
    assert groups[1]["clauses"][1] == {
        "sourceOperandName": "department",
        "operatorName": "IS NOT NULL",
        "targetOperand": {"values": []},
    }
    by_target = {m["targetAttributeName"]: m for m in mapping["attributeMappings"]}
    assert "jobTitle" not in by_target
    assert by_target["displayName"]["source"] == {
        "type": "Function",
        "name": "Join",
        "expression": 'Join(" ", [displayName], "(A)")',
        "parameters": [],
    }
    assert by_target["userType"]["flowType"] == "Always"
    assert by_target["userType"]["source"]["name"] == "Member"
    assert by_target["companyName"] == a2a.attribute_mapping(
        "companyName", a2a.constant_source("Tenant A")
    )
    assert by_target["city"]["source"] == a2a.attribute_source("department")
    assert_conforms("synchronizationSchema", schema)
    # SyncAll: every user in scope of the filter got there, with the edited mappings.
    b2b = {u["mailNickname"]: u for u in emulator.tenant("b").users.values()}
    assert sorted(b2b) == ["ann", "bob", "cid"]
    assert b2b["ann"]["displayName"] == "Ann (A)"
    assert (b2b["ann"]["companyName"], b2b["ann"]["city"]) == ("Tenant A", "Sales")
    assert "jobTitle" not in b2b["bob"] or b2b["bob"]["jobTitle"] is None
    assignments = ok(graph.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"))["value"]
    assert sorted(a["principalType"] for a in assignments) == ["Group", "User"]
    partners = ok(graph_of(emulator)("b").get(PARTNERS))["value"]
    assert {p["tenantId"] for p in partners} == {emulator.tenant("a").id, MICROSOFT}


def test_a_job_without_history_is_as_posted_or_just_started() -> None:
    emulator = Emulator(scenario=linked({"job": {"state": "Disabled"}}))
    _, record = the_job(emulator)
    assert record.job == a2a.new_job(record.id)
    assert record.completed_cycles == 0
    assert (record.watermark, record.next_cycle_at) == (None, None)

    emulator = Emulator(scenario=linked({"job": {}}))
    _, record = the_job(emulator)
    assert record.job["schedule"]["state"] == "Active"
    assert record.job["status"]["code"] == "NotRun"
    assert record.next_cycle_at == emulator.clock.now()
    emulator.clock.advance(60)
    assert record.completed_cycles == 1
    assert record.job["status"]["code"] == "Active"


def test_history_without_the_policies_quarantines_the_job() -> None:
    scenario = two_tenants(
        {"cts_configurations": [{"target": "b", "display_name": "To B", "job": {}, "history": 2}]}
    )
    emulator = Emulator(scenario=scenario)
    _, record = the_job(emulator)
    assert record.completed_cycles == 2
    status = record.job["status"]
    assert status["code"] == "Quarantine"
    assert status["quarantine"]["reason"] == "EncounteredQuarantineException"
    assert status["quarantine"]["seriesCount"] == 2
    assert status["lastExecution"]["error"]["code"] == POLICY_CODE
    assert status["countSuccessiveCompleteFailures"] == 2
    assert emulator.tenant("b").users == {}


def test_a_target_outside_the_scenario_and_placeholder_names() -> None:
    first = Emulator(scenario=two_tenants())
    first.seed(
        {
            "tenants": [
                {
                    "name": "c",
                    "partners": [{"tenantId": "A"}],
                    "cts_configurations": [{"target": "b", "display_name": "MTO_Sync_{target}"}],
                }
            ]
        }
    )
    c = first.tenant("c")
    assert list(c.access_policy.partners) == [first.tenant("a").id]
    [sp] = c.service_principals.values()
    assert sp["displayName"] == f"MTO_Sync_{first.tenant('b').id}"
    assert c.synchronization[sp["id"]].secrets == []


MALFORMED: list[tuple[dict[str, Any], str]] = [
    (
        {
            "cts_configurations": [
                {"target": "b", "display_name": "ok"},
                {"target": "x", "display_name": "n"},
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[1\]\.target: unknown tenant 'x'$",
    ),
    (
        {"cts_configurations": [{"target": "a", "display_name": "self"}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.target: .*not its own",
    ),
    (
        {"cts_configurations": [{"target": "b"}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.display_name must be a str$",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "histroy": 2}]},
        r"^tenants\[0\]\.cts_configurations\[0\]: unknown key 'histroy'",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "job": {"state": "Running"}}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.job\.state must be one of Active, Paused, "
        r"Disabled",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "history": 2}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.history: only a started job has run cycles",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "job": {}, "history": True}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.history must be a whole number",
    ),
    (
        {
            "cts_configurations": [
                {"target": "b", "display_name": "n", "job": {"state": "Disabled"}, "history": 1}
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.history: only a started job",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "assigned": ["team", "zed"]}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.assigned\[1\]: unknown alias 'zed'$",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "assigned": ["ann", "ann"]}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.assigned\[1\]: Permission being assigned "
        r"already exists",
    ),
    (
        {
            "cts_configurations": [
                {"target": "b", "display_name": "n", "scoping_filter": "department EQUALS 'x'"}
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.scoping_filter: the schema belongs to the job",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "scoping_filter": ["department EQUAL 'x'"],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.scoping_filter\[0\]: .*operator among",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "scoping_filter": [{"clauses": ["x EQUALS"]}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.scoping_filter\[0\]\.clauses\[0\]: "
        r"EQUALS needs a value",
    ),
    (
        {
            "cts_configurations": [
                {"target": "b", "display_name": "n", "job": {}, "scoping_filter": "x IS NULL 'y'"}
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.scoping_filter: IS NULL takes no value",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "scoping_filter": [
                        {
                            "clauses": [
                                {
                                    "sourceOperandName": "x",
                                    "operatorName": "LIKE",
                                    "targetOperand": {"values": ["y"]},
                                }
                            ]
                        }
                    ],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]: .*unknown scoping filter operator 'LIKE'",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "mapping_edits": [{"target": "nope", "remove": True}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.mapping_edits\[0\]: 'nope' is not mapped$",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "mapping_edits": [{"target": "city", "constant": "x", "attribute": "y"}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.mapping_edits\[0\]: give one of",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "mapping_edits": [{"target": "city", "flow_type": "Sometimes"}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]: Requested value 'Sometimes' was not found",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "mapping_edits": [{"target": "alternativeSecurityIds", "remove": True}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]: .*matches on 'alternativeSecurityIds' only",
    ),
    (
        {
            "cts_configurations": [
                {
                    "target": "b",
                    "display_name": "n",
                    "job": {},
                    "mapping_edits": [{"target": "city", "expression": "[city]"}],
                }
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.mapping_edits\[0\]\.expression must be "
        r"a function call",
    ),
    (
        {
            "cts_configurations": [
                {"target": "b", "display_name": "n", "job": {}, "secrets": {"Color": "blue"}}
            ]
        },
        r"^tenants\[0\]\.cts_configurations\[0\]\.secrets: Requested value 'Color' was not found",
    ),
    (
        {"cts_configurations": [{"target": "b", "display_name": "n", "job": {}, "secrets": None}]},
        r"^tenants\[0\]\.cts_configurations\[0\]\.job: The job cannot run before its credentials",
    ),
    (
        {"partners": [{"tenantId": "b"}, {"tenantId": "nowhere"}]},
        r"^tenants\[0\]\.partners\[1\]\.tenantId: unknown tenant 'nowhere'$",
    ),
    (
        {"partners": [{"tenantId": "b", "bogus": 1}]},
        r"^tenants\[0\]\.partners\[0\]: The property 'bogus' does not exist",
    ),
    (
        {"partners": [{"tenantId": "a"}]},
        r"^tenants\[0\]\.partners\[0\]: A partner configuration cannot be created for your own",
    ),
    (
        {"partners": [{"tenantId": "b"}, {"tenantId": "B"}]},
        r"^tenants\[0\]\.partners\[1\]: Another object with the same value",
    ),
    (
        {
            "partners": [
                {
                    "tenantId": "b",
                    "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": "yes"}},
                }
            ]
        },
        r"^tenants\[0\]\.partners\[0\]\.identitySynchronization: Cannot convert the literal 'yes'",
    ),
    (
        {"default_policy": {"inboundTrust": {"isMfaAccepted": "yes"}}},
        r"^tenants\[0\]\.default_policy: Cannot convert the literal 'yes'",
    ),
    (
        {"default_policy": []},
        r"^tenants\[0\]\.default_policy must be an object$",
    ),
]


@pytest.mark.parametrize(("keys", "message"), MALFORMED)
def test_malformed_entries_name_where(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Emulator(scenario=two_tenants(keys))


def test_history_is_bounded() -> None:
    config = {"target": "b", "display_name": "n", "job": {}, "history": 1001}
    with pytest.raises(ScenarioError, match=r"history must be a whole number from 0 to 1000"):
        Emulator(scenario=two_tenants({"cts_configurations": [config]}))


def test_every_builtin_scenario_loads() -> None:
    from ctsync.emulator.scenarios import BUILTIN

    assert "brownfield" in BUILTIN
    for name in BUILTIN:
        Emulator(scenario=name)


def test_cts_template_id_is_the_seeded_one(brownfield: Emulator) -> None:
    contoso = brownfield.tenant("contoso")
    assert {a["applicationTemplateId"] for a in contoso.applications.values()} == {CTS_TEMPLATE}
