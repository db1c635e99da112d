"""The simulated provisioning engine, driven over HTTP the way ctsync drives Graph: the demo
scenario's Contoso -> Fabrikam link set up with Microsoft's walkthrough, then cycles run with
the control API (``POST /_emulator/cycles/run``) or by moving the emulator clock. Every answer
is checked against Microsoft's v1.0 types."""

from __future__ import annotations

import copy
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from ctsync.emulator.engine.settings import ProvisioningSettings
from ctsync.emulator.state import SyncJobRecord, Tenant
from tests.conformance import assert_conforms
from tests.emulator.cts_helpers import (
    GRAPH,
    PARTNERS,
    allow_sync,
    cts_secrets,
    instantiate,
    sync_root,
)

CONTROL = "https://graph.microsoft.com/_emulator"
POLICY_CODE = "AzureDirectoryB2BManagementPolicyCheckFailure"
IN_SCOPE = ("adele", "alex", "megan", "diego")


class _FreshToken(httpx.Auth):
    """A token per request, so tests may move the clock past a token's lifetime."""

    def __init__(self, emulator: Emulator, tenant: str, client_id: str | None = None) -> None:
        self.credential = EmulatorCredential(emulator, tenant, client_id=client_id)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.credential.get_token("https://graph.microsoft.com/.default")
        request.headers["authorization"] = f"Bearer {token.token}"
        yield request


def graph_client(emulator: Emulator, tenant: str, client_id: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=GRAPH,
        transport=EmulatorTransport(emulator),
        auth=_FreshToken(emulator, tenant, client_id),
    )


def without_details(record: dict[str, Any]) -> dict[str, Any]:
    """A log record minus the open-typed ``details`` members (``detailsInfo`` is an open type,
    which the conformance checker does not model)."""
    out = copy.deepcopy(record)
    for name in ("sourceSystem", "targetSystem", "sourceIdentity", "targetIdentity"):
        if isinstance(out.get(name), dict):
            out[name].pop("details", None)
    for step in out.get("provisioningSteps") or []:
        step.pop("details", None)
    return out


@dataclass
class Link:
    """Contoso -> Fabrikam, configured as Microsoft's walkthrough does, ready to run."""

    demo: Emulator
    source: httpx.Client
    target: httpx.Client
    control: httpx.Client
    sp: dict[str, Any] = field(default_factory=dict)
    job_id: str = ""
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return sync_root(self.sp["id"])

    @property
    def job_path(self) -> str:
        return f"{self.root}/jobs/{self.job_id}"

    @property
    def contoso(self) -> Tenant:
        return self.demo.tenant("contoso")

    @property
    def fabrikam(self) -> Tenant:
        return self.demo.tenant("fabrikam")

    def record(self) -> SyncJobRecord:
        record = self.contoso.synchronization[self.sp["id"]].job(self.job_id)
        assert record is not None
        return record

    def uid(self, alias: str) -> str:
        return self.aliases[alias]

    def group_id(self, name: str) -> str:
        return next(g for g, v in self.contoso.groups.items() if v["displayName"] == name)

    def assign(self, principal_id: str) -> dict[str, Any]:
        body = {
            "appRoleId": self.sp["appRoles"][0]["id"],
            "resourceId": self.sp["id"],
            "principalId": principal_id,
        }
        response = self.source.post(
            f"/servicePrincipals/{self.sp['id']}/appRoleAssignedTo", json=body
        )
        assert response.status_code == 201, response.text
        assignment: dict[str, Any] = response.json()
        return assignment

    def unassign(self, assignment: dict[str, Any]) -> None:
        path = f"/servicePrincipals/{self.sp['id']}/appRoleAssignedTo/{assignment['id']}"
        assert self.source.delete(path).status_code == 204

    def start(self) -> None:
        assert self.source.post(f"{self.job_path}/start").status_code == 204

    def run_cycle(self) -> dict[str, Any]:
        response = self.control.post("/cycles/run", json={"jobs": [self.job_id]})
        assert response.status_code == 200, response.text
        [summary] = response.json()["cycles"]
        assert isinstance(summary, dict)
        return summary

    def job(self) -> dict[str, Any]:
        response = self.source.get(self.job_path)
        assert response.status_code == 200
        job: dict[str, Any] = response.json()
        assert_conforms("synchronizationJob", job)
        return job

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.job()["status"]
        return status

    def put_schema(self, edit: Any) -> None:
        schema = self.source.get(f"{self.job_path}/schema").json()
        edit(user_mapping(schema))
        assert self.source.put(f"{self.job_path}/schema", json=schema).status_code == 204

    def set_secrets(self, **changes: str) -> None:
        secrets = cts_secrets(self.fabrikam.id)
        for pair in secrets["value"]:
            if pair["key"] in changes:
                pair["value"] = changes.pop(pair["key"])
        secrets["value"].extend({"key": k, "value": v} for k, v in changes.items())
        assert self.source.put(f"{self.root}/secrets", json=secrets).status_code == 204

    def target_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self.target.get("/users", params={"$select": "*"}).json()[
            "value"
        ]
        return users

    def synced(self) -> dict[str, dict[str, Any]]:
        """Target B2B users by their source alias (from the UPN)."""
        out: dict[str, dict[str, Any]] = {}
        for user in self.target_users():
            upn = user["userPrincipalName"]
            if "#EXT#" in upn:
                alias = upn.split("_", 1)[0]
                assert alias not in out, f"{alias} exists twice in the target"
                out[alias] = user
        return out

    def logs(self, **params: str) -> list[dict[str, Any]]:
        response = self.source.get("/auditLogs/provisioning", params=params)
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()["value"]
        for record in records:
            assert_conforms("provisioningObjectSummary", without_details(record))
        return records

    def logs_for(self, alias: str) -> list[dict[str, Any]]:
        uid = self.uid(alias)
        return [r for r in self.logs() if r["sourceIdentity"]["id"] == uid]

    def patch_user(self, alias: str, body: dict[str, Any]) -> None:
        response = self.writer.patch(f"/users/{self.uid(alias)}", json=body)
        assert response.status_code == 204, response.text

    @property
    def writer(self) -> httpx.Client:
        app = next((c for c in self.contoso.clients.values() if c.display_name == "writer"), None)
        if app is None:
            app = self.demo.add_client(
                self.contoso, permissions=["User.ReadWrite.All"], display_name="writer"
            )
        return graph_client(self.demo, "contoso", app.client_id)


def user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    rule = schema["synchronizationRules"][0]
    mapping: dict[str, Any] = next(
        m for m in rule["objectMappings"] if m["sourceObjectName"] == "User"
    )
    return mapping


def make_link(demo: Emulator, *, quotas: bool = False) -> Link:
    demo.traffic.configure(demo.faults.merged({"quotas": quotas}))
    source, target = graph_client(demo, "contoso"), graph_client(demo, "fabrikam")
    control = httpx.Client(base_url=CONTROL, transport=EmulatorTransport(demo))
    link = Link(demo, source, target, control)
    contoso, fabrikam = demo.tenant("contoso"), demo.tenant("fabrikam")
    allow_sync(source, target, contoso.id, fabrikam.id)
    link.sp = instantiate(source)["servicePrincipal"]
    job = source.post(f"{link.root}/jobs", json={"templateId": "Azure2Azure"}).json()
    link.job_id = job["id"]
    link.set_secrets()
    link.aliases = {u["mailNickname"]: uid for uid, u in contoso.users.items()}
    return link


@pytest.fixture
def link(demo: Emulator) -> Iterator[Link]:
    made = make_link(demo)
    yield made
    for client in (made.source, made.target, made.control):
        client.close()


@pytest.fixture
def pilot_link(link: Link) -> Link:
    """The walkthrough's scope: the CTS-Pilot group assigned, the job started."""
    link.assign(link.group_id("CTS-Pilot"))
    link.start()
    return link


def _skip_reason(record: dict[str, Any]) -> tuple[str, str]:
    info = record["provisioningStatusInfo"]
    assert (record["provisioningAction"], info["status"]) == ("other", "skipped")
    error = info["errorInformation"]
    return error["errorCode"], error["reason"]


# -- done when: the first cycle ----------------------------------------------------------------


def test_first_cycle_provisions_every_in_scope_member_exactly_once(pilot_link: Link) -> None:
    link = pilot_link
    summary = link.run_cycle()
    assert summary["initial"] is True
    assert (summary["created"], summary["failed"], summary["state"]) == (4, 0, "Succeeded")
    synced = link.synced()
    assert sorted(synced) == sorted(IN_SCOPE)
    for alias in IN_SCOPE:
        source = link.contoso.users[link.uid(alias)]
        user = synced[alias]
        assert_conforms("user", user)
        assert user["userPrincipalName"] == f"{alias}_contoso.com#EXT#@fabrikam.onmicrosoft.com"
        assert user["userType"] == "Member"
        assert user["creationType"] == "Invitation"
        assert user["externalUserState"] == "Accepted"
        assert user["showInAddressList"] is True
        assert user["accountEnabled"] is True
        assert user["mail"] == f"{alias}@contoso.com"
        assert user["otherMails"] == [f"{alias}@contoso.com"]
        for name in ("displayName", "givenName", "surname", "department", "jobTitle", "city"):
            assert user[name] == source[name], name
        assert {i["issuer"] for i in user["identities"]} == {
            "ExternalAzureAD",
            "fabrikam.onmicrosoft.com",
        }
    # The internal Fabrikam users are untouched.
    internal = [u for u in link.target_users() if "#EXT#" not in u["userPrincipalName"]]
    assert len(internal) == 3


def test_the_logs_say_why_each_user_was_not_provisioned(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    jordan_code, jordan_reason = _skip_reason(link.logs_for("jordan")[0])
    assert jordan_code == "EntrySynchronizationSkipped"
    assert "external user" in jordan_reason
    assert "Filter external users.alternativeSecurityIds EQUALS 'None'" in jordan_reason
    isaiah_code, isaiah_reason = _skip_reason(link.logs_for("isaiah")[0])
    assert isaiah_code == "EntrySynchronizationSkipped"
    assert "SMS sign-in is enabled" in isaiah_reason
    [isaiah] = link.logs_for("isaiah")
    scoping = next(s for s in isaiah["provisioningSteps"] if s["provisioningStepType"] == "scoping")
    assert scoping["status"] == "skipped"
    evaluation = json.loads(scoping["details"]["ScopeEvaluationResult"])
    assert evaluation["Filter external users.alternativeSecurityIds EQUALS 'None'"] is False
    for alias in ("lee", "nestor", "lynne", "patti"):
        code, reason = _skip_reason(link.logs_for(alias)[0])
        assert code == "NotEffectivelyEntitled", alias
        assert "not assigned to the application" in reason
    [_, adele_create] = link.logs_for("adele")  # newest first: the update, then the create
    assert adele_create["provisioningAction"] == "create"
    assert adele_create["provisioningStatusInfo"] == {"status": "success", "errorInformation": None}


def test_a_created_user_shows_a_create_then_an_update_record(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    update, create = link.logs_for("adele")
    assert create["activityDateTime"] == update["activityDateTime"]
    assert (create["provisioningAction"], update["provisioningAction"]) == ("create", "update")
    assert create["cycleId"] == update["cycleId"] != ""
    assert create["changeId"] != update["changeId"]
    assert create["tenantId"] == link.fabrikam.id  # the target, as in Microsoft's example
    assert create["jobId"] == link.job_id
    assert create["servicePrincipal"] == {"id": link.sp["id"], "displayName": "Fabrikam"}
    assert create["initiatedBy"] == {
        "id": "",
        "displayName": "Azure AD Provisioning Service",
        "initiatorType": "system",
    }
    assert create["sourceSystem"]["displayName"] == "Azure Active Directory"
    assert create["targetSystem"]["displayName"] == "Azure Active Directory (target tenant)"
    assert create["targetSystem"]["details"]["ServicePrincipalId"] == link.sp["id"]
    assert create["sourceIdentity"]["details"]["UserPrincipalName"] == "adele@contoso.com"
    assert create["targetIdentity"]["id"] == link.synced()["adele"]["id"]
    assert [s["name"] for s in create["provisioningSteps"]] == [
        "EntryImportAdd",
        "EntrySynchronizationScoping",
        "EntrySynchronizationAdd",
        "EntryExportAdd",
    ]
    assert [s["provisioningStepType"] for s in create["provisioningSteps"]] == [
        "import",
        "scoping",
        "matching",
        "export",
    ]
    import_details = create["provisioningSteps"][0]["details"]
    assert import_details["alternativeSecurityIds"] == "None"
    assert import_details["appRoleAssignments"] == "msiam_access"
    created = {p["displayName"]: p for p in create["modifiedProperties"]}
    assert created["userType"] == {
        "displayName": "userType",
        "oldValue": None,
        "newValue": "Member",
    }
    assert created["showInAddressList"]["newValue"] == "True"
    assert "mail" not in created
    rest = {p["displayName"] for p in update["modifiedProperties"]}
    assert {"mail", "givenName", "surname", "userPrincipalName", "department"} <= rest
    assert update["provisioningSteps"][-1]["name"] == "EntryExportUpdate"
    assert 1 <= create["durationInMilliseconds"] <= 4800


def test_nested_group_members_are_not_in_scope(link: Link) -> None:
    everyone = link.group_id("All Employees")
    # All Employees nests Engineering; leave Engineering's users members through it only.
    members = link.contoso.group_members[everyone]
    for alias in ("lee", "johanna", "grady"):
        members.remove(link.uid(alias))
    assert link.group_id("Engineering") in members
    link.assign(everyone)
    link.start()
    link.run_cycle()
    synced = link.synced()
    # Direct members only: Engineering is nested, so Lee, Johanna and Grady stay out.
    assert sorted(synced) == ["adele", "alex", "diego", "lynne", "megan", "nestor"]
    for alias in ("lee", "johanna", "grady"):
        assert _skip_reason(link.logs_for(alias)[0])[0] == "NotEffectivelyEntitled"
    # Patti is a direct member but disabled: a disabled user is not created.
    code, reason = _skip_reason(link.logs_for("patti")[0])
    assert code == "EntrySynchronizationSkipped"
    assert "disabled" in reason


def test_sync_all_takes_every_internal_member(link: Link) -> None:
    link.set_secrets(SyncAll="true")
    link.start()
    link.run_cycle()
    assert sorted(link.synced()) == sorted(
        ["adele", "alex", "megan", "diego", "lynne", "lee", "johanna", "grady", "nestor"]
    )
    scoping = link.logs_for("lee")[-1]["provisioningSteps"][1]
    assert scoping["details"]["Scope sync all"] == "True"


def test_a_scoping_filter_narrows_the_scope_case_sensitively(pilot_link: Link) -> None:
    link = pilot_link

    def sales_only(mapping: dict[str, Any]) -> None:
        clause = {
            "sourceOperandName": "department",
            "operatorName": "EQUALS",
            "targetOperand": {"values": ["Sales"]},
        }
        lowercase = {**clause, "targetOperand": {"values": ["finance"]}}
        mapping["scope"]["groups"] = [
            {"name": "Sales department filter", "clauses": [clause]},
            {"name": "finance", "clauses": [lowercase]},
        ]

    link.put_schema(sales_only)
    link.run_cycle()
    assert sorted(link.synced()) == ["adele", "alex"]
    code, reason = _skip_reason(link.logs_for("megan")[0])
    assert code == "EntrySynchronizationSkipped"
    assert "Sales department filter.department EQUALS 'Sales'" in reason
    scoping = link.logs_for("adele")[-1]["provisioningSteps"][1]["details"]
    result = json.loads(scoping["ScopeEvaluationResult"])
    assert result["Sales department filter.department EQUALS 'Sales'"] is True
    assert result["finance.department EQUALS 'finance'"] is False


# -- done when: deprovisioning, disabling, no-ops ---------------------------------------------


def test_unassigning_soft_deletes_in_the_target_and_reassigning_restores(link: Link) -> None:
    assignment = link.assign(link.uid("adele"))
    link.assign(link.group_id("CTS-Pilot"))
    link.start()
    link.run_cycle()
    adele = link.synced()["adele"]
    # Adele stays in scope through the pilot group until she leaves it too.
    link.unassign(assignment)
    link.contoso.group_members[link.group_id("CTS-Pilot")].remove(link.uid("adele"))
    summary = link.run_cycle()
    assert summary["initial"] is False
    assert summary["deleted"] == 1
    assert "adele" not in link.synced()
    assert link.target.get(f"/users/{adele['id']}").status_code == 404
    recycled = link.fabrikam.deleted_users[adele["id"]]
    assert recycled["deletedDateTime"] is not None
    [delete, *_] = link.logs_for("adele")
    assert delete["provisioningAction"] == "delete"
    assert delete["provisioningStatusInfo"]["status"] == "success"
    assert delete["provisioningSteps"][-1]["name"] == "EntryExportDelete"
    assert delete["modifiedProperties"] == [
        {"displayName": "IsSoftDeleted", "oldValue": "False", "newValue": "True"}
    ]
    # Back in scope within 30 days: the same user is restored, not created again.
    link.demo.clock.advance(3600)
    link.assign(link.uid("adele"))
    link.run_cycle()
    restored = link.synced()["adele"]
    assert restored["id"] == adele["id"]
    assert restored["deletedDateTime"] is None
    assert adele["id"] not in link.fabrikam.deleted_users
    assert link.logs_for("adele")[0]["provisioningAction"] == "update"


def test_with_deletes_disabled_an_unassigned_user_stays(link: Link) -> None:
    assignment = link.assign(link.uid("adele"))
    link.put_schema(lambda m: m.update(flowTypes="Add, Update"))
    link.start()
    link.run_cycle()
    link.unassign(assignment)
    link.run_cycle()
    assert "adele" in link.synced()
    code, reason = _skip_reason(link.logs_for("adele")[0])
    assert code == "EntrySynchronizationSkipped"
    assert "not deleted" in reason
    assert "deletes are disabled" in reason


def test_disabling_in_the_source_disables_in_the_target(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    link.patch_user("alex", {"accountEnabled": False})
    summary = link.run_cycle()
    assert summary["disabled"] == 1
    assert link.synced()["alex"]["accountEnabled"] is False
    [disable, *_] = link.logs_for("alex")
    assert disable["provisioningAction"] == "disable"
    assert disable["provisioningSteps"][-1]["name"] == "EntryExportUpdateSoftDelete"
    assert {
        "displayName": "accountEnabled",
        "oldValue": "True",
        "newValue": "False",
    } in disable["modifiedProperties"]
    # Enabled again in the source: enabled again in the target (an update).
    link.patch_user("alex", {"accountEnabled": True})
    link.run_cycle()
    assert link.synced()["alex"]["accountEnabled"] is True
    assert link.logs_for("alex")[0]["provisioningAction"] == "update"


def test_attribute_changes_flow_as_updates_with_old_and_new_values(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    link.patch_user("megan", {"jobTitle": "CMO", "mobilePhone": "+1 425 555 0100"})
    link.run_cycle()
    megan = link.synced()["megan"]
    assert megan["jobTitle"] == "CMO"
    assert megan["mobilePhone"] == "+1 425 555 0100"
    [update, *_] = link.logs_for("megan")
    assert update["provisioningAction"] == "update"
    assert update["provisioningSteps"][0]["name"] == "EntryImportUpdate"
    changed = {
        p["displayName"]: (p["oldValue"], p["newValue"]) for p in update["modifiedProperties"]
    }
    assert changed == {
        "jobTitle": ("Marketing Manager", "CMO"),
        "mobile": (None, "+1 425 555 0100"),
    }


def test_incremental_cycles_read_only_changes_and_a_no_op_is_redundant_export(
    pilot_link: Link,
) -> None:
    link = pilot_link
    link.run_cycle()
    before = len(link.logs())
    quiet = link.run_cycle()
    assert (quiet["initial"], quiet["evaluated"]) == (False, 0)
    assert len(link.logs()) == before
    # An attribute no mapping reads: the user is evaluated, and nothing needs exporting.
    link.patch_user("diego", {"officeLocation": "Building 4"})
    summary = link.run_cycle()
    assert summary["evaluated"] == 1
    assert len(link.logs()) == before + 1
    [record, *_] = link.logs_for("diego")
    code, reason = _skip_reason(record)
    assert code == "RedundantExport"
    assert reason == "The state of the user in both the source and target systems already match."
    skip = record["provisioningSteps"][-1]
    assert skip["name"] == "EntrySynchronizationSkip"
    assert skip["details"] == {"SkipReason": "RedundantExport"}


def test_user_type_is_only_set_on_creation(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()

    def guests(mapping: dict[str, Any]) -> None:
        for attribute in mapping["attributeMappings"]:
            if attribute["targetAttributeName"] == "userType":
                attribute["source"] = {
                    "type": "Constant",
                    "name": "Guest",
                    "expression": '"Guest"',
                    "parameters": [],
                }

    link.put_schema(guests)
    link.assign(link.uid("lee"))
    link.run_cycle()
    synced = link.synced()
    assert synced["lee"]["userType"] == "Guest"
    # ObjectAddOnly: existing users keep Member.
    assert synced["adele"]["userType"] == "Member"


def test_mapping_functions_and_an_unknown_function_warning(pilot_link: Link) -> None:
    link = pilot_link

    def custom(mapping: dict[str, Any]) -> None:
        for attribute in mapping["attributeMappings"]:
            if attribute["targetAttributeName"] == "displayName":
                attribute["source"] = {
                    "type": "Function",
                    "name": "Join",
                    "expression": 'Join(" ", ToUpper([surname]), "(Contoso)")',
                    "parameters": [],
                }
            if attribute["targetAttributeName"] == "jobTitle":
                attribute["source"] = {
                    "type": "Function",
                    "name": "RandomString",
                    "expression": "RandomString(8)",
                    "parameters": [],
                }

    link.put_schema(custom)
    link.run_cycle()
    adele = link.synced()["adele"]
    assert adele["displayName"] == "VANCE (Contoso)"
    assert adele["jobTitle"] is None
    create = link.logs_for("adele")[-1]
    warnings = [s for s in create["provisioningSteps"] if s["status"] == "warning"]
    assert len(warnings) == 1
    assert "RandomString" in warnings[0]["description"]
    assert warnings[0]["provisioningStepType"] == "processing"
    assert create["provisioningStatusInfo"]["status"] == "success"


# -- done when: errors, escrows and quarantine -------------------------------------------------


def test_automatic_redemption_off_fails_the_cycle_and_start_recovers(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    assert link.status()["code"] == "Active"
    off = {"automaticUserConsentSettings": {"inboundAllowed": False}}
    assert link.target.patch(f"{PARTNERS}/{link.contoso.id}", json=off).status_code == 204
    link.patch_user("megan", {"jobTitle": "CMO"})
    link.run_cycle()
    status = link.status()
    assert status["code"] == "Quarantine"
    assert status["countSuccessiveCompleteFailures"] == 1
    assert status["lastExecution"]["state"] == "Failed"
    assert status["lastExecution"]["error"]["code"] == POLICY_CODE
    quarantine = status["quarantine"]
    assert quarantine["reason"] == "EncounteredQuarantineException"
    assert quarantine["error"]["code"] == POLICY_CODE
    assert quarantine["seriesCount"] == 1
    began = quarantine["currentBegan"]
    assert quarantine["nextAttempt"] > began
    # The export itself failed with the same code, and waits in escrow.
    [failed, *_] = link.logs_for("megan")
    assert failed["provisioningStatusInfo"]["status"] == "failure"
    error = failed["provisioningStatusInfo"]["errorInformation"]
    assert error["errorCode"] == POLICY_CODE
    assert error["errorCategory"] == "nonServiceFailure"
    assert failed["provisioningSteps"][-1]["status"] == "failure"
    assert link.status()["lastExecution"]["countEscrowed"] == 1
    # Fixing the policy and starting the job clears the quarantine; the escrow is retried.
    on = {"automaticUserConsentSettings": {"inboundAllowed": True}}
    assert link.target.patch(f"{PARTNERS}/{link.contoso.id}", json=on).status_code == 204
    link.start()
    assert link.status()["quarantine"] is None
    link.run_cycle()
    status = link.status()
    assert (status["code"], status["countSuccessiveCompleteFailures"]) == ("Active", 0)
    assert link.synced()["megan"]["jobTitle"] == "CMO"
    assert status["lastExecution"]["countEscrowed"] == 0


def test_without_redemption_every_export_of_the_first_cycle_fails(link: Link) -> None:
    link.fabrikam.access_policy.partners[link.contoso.id]["automaticUserConsentSettings"] = {
        "inboundAllowed": None,
        "outboundAllowed": None,
    }
    link.assign(link.group_id("CTS-Pilot"))
    link.start()
    summary = link.run_cycle()
    assert summary["created"] == 0
    assert summary["failed"] == 4
    assert link.synced() == {}
    failures = [r for r in link.logs() if r["provisioningStatusInfo"]["status"] == "failure"]
    assert len(failures) == 4
    assert {f["provisioningStatusInfo"]["errorInformation"]["errorCode"] for f in failures} == {
        POLICY_CODE
    }
    reason = failures[0]["provisioningStatusInfo"]["errorInformation"]["reason"]
    assert "Policy permitting auto-redemption of invitations not configured." in reason
    status = link.status()
    assert status["quarantine"]["reason"] == "EncounteredQuarantineException"
    assert status["lastExecution"]["countExports"] == 4
    assert status["lastExecution"]["countExported"] == 0


def test_a_quarantined_job_retries_on_the_documented_ladder(pilot_link: Link) -> None:
    link = pilot_link
    link.fabrikam.access_policy.identity_sync[link.contoso.id]["userSyncInbound"] = {
        "isSyncAllowed": False
    }
    link.run_cycle()
    first = link.status()["quarantine"]
    assert first["reason"] == "EncounteredQuarantineException"
    record = link.record()
    assert record.next_cycle_at is not None
    waits = []
    for _ in range(4):
        assert record.next_cycle_at is not None
        due = record.next_cycle_at
        link.demo.clock.advance((due - link.demo.clock.now()).total_seconds() + 3600)
        quarantine = link.status()["quarantine"]
        waits.append(quarantine["seriesCount"])
    assert waits == [2, 3, 4, 5]
    series = link.status()["quarantine"]
    assert series["seriesBegan"] == first["seriesBegan"]
    assert link.status()["countSuccessiveCompleteFailures"] == 5


def test_invitations_blocked_in_the_target_are_forbidden(pilot_link: Link) -> None:
    link = pilot_link
    link.fabrikam.authorization_policy["allowInvitesFrom"] = "none"
    link.run_cycle()
    failures = [r for r in link.logs() if r["provisioningStatusInfo"]["status"] == "failure"]
    assert len(failures) == 4
    error = failures[0]["provisioningStatusInfo"]["errorInformation"]
    assert error["errorCode"] == "AzureActiveDirectoryForbidden"
    assert error["reason"].startswith("Guest invitations not allowed for your company.")
    # Not a policy failure: escrows, no immediate quarantine.
    status = link.status()
    assert status["quarantine"] is None
    assert status["lastExecution"]["state"] == "Failed"
    assert status["lastExecution"]["countEscrowed"] == 4


def test_b2b_collaboration_blocked_for_the_source_is_forbidden(pilot_link: Link) -> None:
    link = pilot_link
    blocked = {
        "b2bCollaborationInbound": {
            "usersAndGroups": {
                "accessType": "blocked",
                "targets": [{"target": "AllUsers", "targetType": "user"}],
            },
            "applications": {
                "accessType": "blocked",
                "targets": [{"target": "AllApplications", "targetType": "application"}],
            },
        }
    }
    assert link.target.patch(f"{PARTNERS}/{link.contoso.id}", json=blocked).status_code == 204
    link.run_cycle()
    codes = {
        r["provisioningStatusInfo"]["errorInformation"]["errorCode"]
        for r in link.logs()
        if r["provisioningStatusInfo"]["status"] == "failure"
    }
    assert codes == {"AzureActiveDirectoryForbidden"}


def test_the_target_object_quota_escrows_and_retries(pilot_link: Link) -> None:
    link = pilot_link
    fabrikam = link.fabrikam
    used = len(fabrikam.users) + len(fabrikam.groups)
    fabrikam.object_quota = used + 2
    summary = link.run_cycle()
    assert (summary["created"], summary["failed"], summary["escrowed"]) == (2, 2, 2)
    status = link.status()
    assert status["lastExecution"]["state"] == "EntryLevelErrors"
    assert status["lastExecution"]["countEscrowed"] == 2
    assert status["steadyStateFirstAchievedTime"] == "0001-01-01T00:00:00Z"
    failed = [r for r in link.logs() if r["provisioningStatusInfo"]["status"] == "failure"]
    assert {f["provisioningStatusInfo"]["errorInformation"]["errorCode"] for f in failed} == {
        "AzureActiveDirectoryQuotaLimitExceeded"
    }
    fabrikam.object_quota = 50_000
    retry = link.run_cycle()
    assert (retry["initial"], retry["evaluated"], retry["created"]) == (False, 2, 2)
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    status = link.status()
    assert status["lastExecution"]["state"] == "Succeeded"
    assert status["steadyStateFirstAchievedTime"] != "0001-01-01T00:00:00Z"


def test_an_internal_target_user_is_never_matched(pilot_link: Link) -> None:
    link = pilot_link
    fabrikam = link.fabrikam
    internal = dict(next(iter(fabrikam.users.values())))
    internal.update(
        id="0e9d9c8a-1111-4222-8333-444455556666",
        userPrincipalName="adele.vance@fabrikam.com",
        mail="adele@contoso.com",
    )
    fabrikam.users[internal["id"]] = internal
    link.run_cycle()
    assert "adele" not in link.synced()
    [failed] = [
        r for r in link.logs_for("adele") if r["provisioningStatusInfo"]["status"] == "failure"
    ]
    error = failed["provisioningStatusInfo"]["errorInformation"]
    assert error["errorCode"] == "InvitationCreationFailureAmbiguousUser"
    assert internal["id"] in error["reason"]
    assert link.record().escrows[link.uid("adele")]["code"] == error["errorCode"]


def test_too_many_deletes_are_staged_and_quarantine_the_job(link: Link) -> None:
    link.set_secrets(
        SyncNotificationSettings='{"Enabled":false,"DeleteThresholdEnabled":true,'
        '"DeleteThresholdValue":2}'
    )
    assignment = link.assign(link.group_id("CTS-Pilot"))
    link.start()
    link.run_cycle()
    link.unassign(assignment)
    summary = link.run_cycle()
    assert (summary["deleted"], summary["staged_deletes"]) == (0, 4)
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    staged = [r for r in link.logs() if r["provisioningAction"] == "stagedDelete"]
    assert len(staged) == 4
    assert {r["provisioningStatusInfo"]["status"] for r in staged} == {"skipped"}
    status = link.status()
    assert status["code"] == "Quarantine"
    assert status["quarantine"]["reason"] == "TooManyDeletes"
    assert status["lastExecution"]["error"]["code"] == "TooManyDeletes"
    # Allowing the deletions: restart with ForceDeletes.
    restart = {"criteria": {"resetScope": "ForceDeletes, QuarantineState"}}
    assert link.source.post(f"{link.job_path}/restart", json=restart).status_code == 204
    allowed = link.run_cycle()
    assert allowed["deleted"] == 4
    assert link.synced() == {}
    assert link.status()["code"] == "Active"
    assert link.record().force_deletes is False


def test_within_the_threshold_deletes_go_ahead(link: Link) -> None:
    link.set_secrets(
        SyncNotificationSettings='{"DeleteThresholdEnabled":true,"DeleteThresholdValue":5}'
    )
    assignment = link.assign(link.group_id("CTS-Pilot"))
    link.start()
    link.run_cycle()
    link.unassign(assignment)
    assert link.run_cycle()["deleted"] == 4


def test_escrow_thresholds_quarantine_with_lowered_settings(pilot_link: Link) -> None:
    link = pilot_link
    link.demo.provisioning.escrow_floor = 2
    link.fabrikam.object_quota = len(link.fabrikam.users) + len(link.fabrikam.groups) + 1
    link.run_cycle()
    status = link.status()
    assert status["code"] == "Quarantine"
    assert status["quarantine"]["reason"] == "EncounteredEscrowProportionThreshold"
    link.demo.provisioning.escrow_base_limit = 2
    link.start()
    link.run_cycle()
    assert link.status()["quarantine"]["reason"] == "EncounteredBaseEscrowThreshold"


def test_restart_resets_what_it_names(pilot_link: Link) -> None:
    link = pilot_link
    link.fabrikam.object_quota = 0
    link.run_cycle()
    record = link.record()
    assert len(record.escrows) == 4
    link.fabrikam.object_quota = 50_000
    restart = {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}
    assert link.source.post(f"{link.job_path}/restart", json=restart).status_code == 204
    assert record.escrows == {}
    assert record.watermark is None
    summary = link.run_cycle()
    assert summary["initial"] is True
    assert summary["evaluated"] == len(link.contoso.users)
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    # A full restart forgets the provisioning cache; users are matched again, not duplicated.
    full = {"criteria": {"resetScope": "Full"}}
    assert link.source.post(f"{link.job_path}/restart", json=full).status_code == 204
    assert record.connector_data_store == {}
    again = link.run_cycle()
    assert again["created"] == 0
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    assert len(record.connector_data_store) == 4


# -- the clock ---------------------------------------------------------------------------------


def test_cycles_run_on_the_emulator_clock(pilot_link: Link) -> None:
    link = pilot_link
    demo = link.demo
    started = demo.clock.now()
    # Right after start nothing has run: the clock has not moved.
    assert link.status()["code"] == "NotRun"
    demo.clock.advance(1)
    status = link.status()
    assert status["code"] == "NotRun"
    progress = status["progress"][0]
    assert 0 < progress["completedUnits"] < progress["totalUnits"] == 12
    assert len(link.logs()) >= 1
    demo.clock.advance(120)
    status = link.status()
    assert status["code"] == "Active"
    first = status["lastExecution"]
    assert first["timeBegan"].startswith(started.strftime("%Y-%m-%dT%H:%M:%S"))
    assert first["timeEnded"] > first["timeBegan"]
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    times = sorted(r["activityDateTime"] for r in link.logs())
    assert times[0] >= started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert times[-1] <= first["timeEnded"]
    # The next cycle starts 40 minutes after the first began, and reads nothing new.
    record = link.record()
    assert record.next_cycle_at is not None
    assert (record.next_cycle_at - started).total_seconds() == 2400
    link.patch_user("alex", {"jobTitle": "VP Sales"})
    demo.clock.advance(2400)
    second = link.status()["lastExecution"]
    assert second["activityIdentifier"] != first["activityIdentifier"]
    assert (second["countImported"], second["countImportedDeltas"]) == (1, 1)
    assert link.synced()["alex"]["jobTitle"] == "VP Sales"


def test_advancing_far_runs_every_cycle_in_time_order(pilot_link: Link) -> None:
    link = pilot_link
    link.demo.clock.advance(4 * 2400 + 60)
    record = link.record()
    assert record.completed_cycles == 5
    cycles = {r["cycleId"] for r in link.logs()}
    assert len(cycles) == 1  # only the initial cycle had anything to say


def test_a_paused_job_runs_no_cycles(pilot_link: Link) -> None:
    link = pilot_link
    assert link.source.post(f"{link.job_path}/pause").status_code == 204
    link.demo.clock.advance(3 * 2400)
    assert link.record().completed_cycles == 0
    assert link.control.post("/cycles/run", json={}).json()["cycles"] == []
    assert link.synced() == {}


def test_job_status_after_a_clean_cycle(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    status = link.status()
    assert status["code"] == "Active"
    assert status["quarantine"] is None
    execution = status["lastExecution"]
    assert execution["state"] == "Succeeded"
    assert execution["error"] is None
    assert execution["countImported"] == 12
    assert execution["countEntitled"] == 6  # the pilot's direct members
    assert execution["countEntitledForProvisioning"] == 4
    assert (execution["countExports"], execution["countExported"]) == (4, 4)
    assert execution["countEscrowed"] == 0
    assert status["lastSuccessfulExecution"] == execution
    assert status["lastSuccessfulExecutionWithExports"] == execution
    assert status["steadyStateFirstAchievedTime"] == execution["timeEnded"]
    assert status["steadyStateLastAchievedTime"] == execution["timeEnded"]
    assert status["synchronizedEntryCountByType"] == [{"key": "User to User", "value": 4}]
    assert status["progress"][0]["completedUnits"] == status["progress"][0]["totalUnits"] == 12
    assert status["troubleshootingUrl"] == ""
    link.demo.clock.advance(60)
    link.run_cycle()
    later = link.status()
    assert later["steadyStateFirstAchievedTime"] == execution["timeEnded"]
    assert later["steadyStateLastAchievedTime"] > execution["timeEnded"]
    assert later["lastSuccessfulExecutionWithExports"] == execution


# -- control API ---------------------------------------------------------------------------------


def test_control_runs_cycles_and_shows_the_last_one(pilot_link: Link) -> None:
    link = pilot_link
    everything = link.control.post("/cycles/run", json={})
    assert everything.status_code == 200
    [summary] = everything.json()["cycles"]
    assert summary["job_id"] == link.job_id
    state = link.control.get("/state").json()
    contoso = next(t for t in state["tenants"] if t["name"] == "contoso")
    [job] = contoso["provisioning"]
    assert job["last_cycle"]["cycle_id"] == summary["cycle_id"]
    assert job["linked_users"] == 4
    assert job["next_cycle_at"] is not None
    assert contoso["provisioning_log_records"] == len(link.logs())
    assert state["provisioning"]["on_demand_shape"] == "cts"
    assert link.control.post("/cycles/run", json={"jobs": "x"}).status_code == 400
    assert link.control.post("/cycles/run", json={"jobs": ["nope"]}).json()["cycles"] == []


def test_control_tunes_the_engine(demo: Emulator) -> None:
    with httpx.Client(base_url=CONTROL, transport=EmulatorTransport(demo)) as control:
        answer = control.post(
            "/provisioning", json={"escrow_floor": 3, "on_demand_shape": "reference"}
        )
        assert answer.status_code == 200
        assert answer.json()["escrow_floor"] == 3
        assert demo.provisioning.on_demand_shape == "reference"
        for bad in ({"on_demand_shape": "xml"}, {"nope": 1}, {"escrow_floor": -1}):
            assert control.post("/provisioning", json=bad).status_code == 400
        assert control.get("/provisioning").json()["interval"] == 2400.0
        control.post("/reset", json={})
    assert demo.provisioning == ProvisioningSettings()


def test_patch_user_needs_write_permission_and_checks_the_body(link: Link) -> None:
    uid = link.uid("adele")
    assert link.source.patch(f"/users/{uid}", json={"jobTitle": "x"}).status_code == 403
    writer = link.writer
    assert writer.patch(f"/users/{uid}", json={"jobTitle": "Lead"}).status_code == 204
    assert link.contoso.users[uid]["jobTitle"] == "Lead"
    assert writer.patch(f"/users/{uid}", json={"nope": 1}).status_code == 400
    assert writer.patch(f"/users/{uid}", json={"creationType": "x"}).status_code == 400
    taken = {"userPrincipalName": "alex@contoso.com"}
    assert writer.patch(f"/users/{uid}", json=taken).status_code == 400
    missing = "11111111-2222-4333-8444-555555555555"
    assert writer.patch(f"/users/{missing}", json={"jobTitle": "x"}).status_code == 404


def test_a_user_deleted_in_the_source_is_soft_deleted_in_the_target(pilot_link: Link) -> None:
    link = pilot_link
    link.run_cycle()
    diego = link.synced()["diego"]
    uid = link.uid("diego")
    gone = link.contoso.users.pop(uid)
    gone["deletedDateTime"] = "2026-01-05T09:05:00Z"
    link.contoso.deleted_users[uid] = gone
    summary = link.run_cycle()
    assert summary["deleted"] == 1
    assert diego["id"] in link.fabrikam.deleted_users
    [record, *_] = link.logs_for("diego")
    assert record["provisioningAction"] == "delete"
    assert record["provisioningSteps"][0]["name"] == "EntryImportDelete"
    scoping = record["provisioningSteps"][1]["details"]
    assert scoping["Active in the source system"] == "False"
    # Nothing more to do for it afterwards.
    assert link.run_cycle()["evaluated"] == 0


def test_a_user_whose_sms_sign_in_is_disabled_is_provisioned_next_cycle(
    pilot_link: Link,
) -> None:
    link = pilot_link
    link.run_cycle()
    assert "isaiah" not in link.synced()
    for method in link.contoso.auth_methods[link.uid("isaiah")]:
        if method.get("smsSignInState") == "ready":
            method["smsSignInState"] = "notEnabled"
    summary = link.run_cycle()
    assert (summary["evaluated"], summary["created"]) == (1, 1)
    assert "isaiah" in link.synced()


def test_control_clock_advance_runs_due_cycles(pilot_link: Link) -> None:
    link = pilot_link
    answer = link.control.post("/clock/advance", json={"seconds": 300})
    assert answer.status_code == 200
    # Nothing was read through Graph: the advance itself ran the cycle.
    assert link.record().completed_cycles == 1
    assert len(link.fabrikam.users) == 3 + len(IN_SCOPE)


def test_a_restart_while_a_cycle_runs_asks_for_another_full_cycle(pilot_link: Link) -> None:
    link = pilot_link
    link.demo.clock.advance(2)  # the initial cycle is under way
    record = link.record()
    assert record.running_cycle is not None
    restart = {"criteria": {"resetScope": "Watermark"}}
    assert link.source.post(f"{link.job_path}/restart", json=restart).status_code == 204
    link.demo.clock.advance(120)
    assert record.completed_cycles == 2  # the running one, then the full one asked for
    assert record.full_sync_due is False
    assert link.status()["lastExecution"]["countImported"] == len(link.contoso.users)
