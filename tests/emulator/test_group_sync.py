"""Group provisioning: cross-tenant sync of security groups, driven over HTTP as ctsync drives
Graph — the demo's Contoso -> Fabrikam link with the schema's group mapping enabled and the
target's ``groupSyncInbound`` allowed (beta), cycles run with the control API. Every answer is
checked against Microsoft's v1.0 types."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.engine.policy_check import GROUP_SYNC_CODE
from ctsync.emulator.services.provisioning import STATUS_INFO_KEY
from tests.conformance import assert_conforms
from tests.emulator.cts_helpers import PARTNERS, client_with
from tests.emulator.test_engine import IN_SCOPE, Link, make_link

BETA = "https://graph.microsoft.com/beta"
GROUP_WRITE = ["GroupMember.ReadWrite.All", "Group.ReadWrite.All"]

MappingEdit = Callable[[dict[str, Any]], None]


def group_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    rule = schema["synchronizationRules"][0]
    mapping: dict[str, Any] = next(
        m for m in rule["objectMappings"] if m["sourceObjectName"] == "Group"
    )
    return mapping


def edit_group_mapping(link: Link, edit: MappingEdit) -> None:
    schema = link.source.get(f"{link.job_path}/schema").json()
    edit(group_mapping(schema))
    assert link.source.put(f"{link.job_path}/schema", json=schema).status_code == 204


def enable(mapping: dict[str, Any]) -> None:
    mapping["enabled"] = True


def allow_group_sync(link: Link, *, allowed: bool | None = True) -> None:
    """The target's identitySynchronization for Contoso: ``groupSyncInbound`` (beta only)."""
    path = f"{BETA}{PARTNERS}/{link.contoso.id}/identitySynchronization"
    body = {"groupSyncInbound": {"isSyncAllowed": allowed}}
    assert link.target.patch(path, json=body).status_code == 204


def writer(link: Link, tenant: str) -> httpx.Client:
    return client_with(link.demo, tenant, GROUP_WRITE)


def reference(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


@pytest.fixture
def link(demo: Emulator) -> Iterator[Link]:
    """CTS-Pilot assigned, group provisioning on and allowed, the job started."""
    made = make_link(demo)
    edit_group_mapping(made, enable)
    allow_group_sync(made)
    made.assign(made.group_id("CTS-Pilot"))
    made.start()
    yield made
    for client in (made.source, made.target, made.control):
        client.close()


def target_group(link: Link, group_id: str) -> dict[str, Any] | None:
    response = link.target.get(f"/groups/{group_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    group: dict[str, Any] = response.json()
    group.pop("@odata.context", None)
    assert_conforms("group", group)
    return group


def target_group_names(link: Link) -> list[str]:
    response = link.target.get("/groups")
    assert response.status_code == 200
    groups: list[dict[str, Any]] = response.json()["value"]
    for group in groups:
        assert_conforms("group", group)
    return sorted(g["displayName"] for g in groups)


def member_ids(link: Link, group_id: str) -> set[str]:
    response = link.target.get(f"/groups/{group_id}/members")
    assert response.status_code == 200, response.text
    members: list[dict[str, Any]] = response.json()["value"]
    for member in members:
        kind = member["@odata.type"].removeprefix("#microsoft.graph.")
        assert_conforms(kind, {k: v for k, v in member.items() if k != "@odata.type"})
    return {m["id"] for m in members}


def group_records(link: Link, name: str) -> list[dict[str, Any]]:
    """The provisioning records of a source group, newest first (through ``$filter``)."""
    gid = link.group_id(name)
    records = link.logs(**{"$filter": f"sourceIdentity/id eq '{gid}'"})
    for record in records:
        assert record["sourceIdentity"]["identityType"] == "Group"
        assert record["targetIdentity"]["identityType"] == "Group"
    return records


def created_group_id(link: Link, name: str) -> str:
    create = next(r for r in group_records(link, name) if r["provisioningAction"] == "create")
    assert create["provisioningStatusInfo"]["status"] == "success"
    target_id: str = create["targetIdentity"]["id"]
    return target_id


def synced_ids(link: Link, *aliases: str) -> set[str]:
    synced = link.synced()
    return {synced[alias]["id"] for alias in aliases}


def members_changed(record: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Target users a record added to and removed from its group."""
    members = [p for p in record["modifiedProperties"] if p["displayName"] == "members"]
    added = {p["newValue"] for p in members if p["newValue"] is not None}
    removed = {p["oldValue"] for p in members if p["oldValue"] is not None}
    return added, removed


def count_by_type(link: Link) -> dict[str, int]:
    entries = link.status()["synchronizedEntryCountByType"]
    return {e["key"]: e["value"] for e in entries}


# -- a cycle provisions the group after its members ---------------------------------------------


def test_one_cycle_creates_the_assigned_security_group_with_its_direct_members(
    link: Link,
) -> None:
    before = target_group_names(link)
    summary = link.run_cycle()
    assert (summary["state"], summary["failed"]) == ("Succeeded", 0)
    target_id = created_group_id(link, "CTS-Pilot")
    group = target_group(link, target_id)
    assert group is not None
    source = link.contoso.groups[link.group_id("CTS-Pilot")]
    assert group["displayName"] == "CTS-Pilot"
    assert group["description"] == source["description"]
    assert group["mailNickname"] == source["mailNickname"]
    assert (group["securityEnabled"], group["mailEnabled"], group["groupTypes"]) == (
        True,
        False,
        [],
    )
    # Fabrikam's own CTS-Pilot group is never matched: the synced group is a new one.
    assert target_group_names(link) == sorted([*before, "CTS-Pilot"])
    assert member_ids(link, target_id) == synced_ids(link, *IN_SCOPE)

    [create] = group_records(link, "CTS-Pilot")
    assert create["targetIdentity"] == {
        "id": target_id,
        "displayName": "CTS-Pilot",
        "identityType": "Group",
        "details": {},
    }
    assert create["sourceIdentity"]["details"]["odatatype"] == "Group"
    names = [s["name"] for s in create["provisioningSteps"]]
    assert names == [
        "EntryImportAdd",
        "EntrySynchronizationScoping",
        "EntrySynchronizationWarning",
        "EntrySynchronizationAdd",
        "EntryExportAdd",
    ]
    # The members the job did not provision (an external user, one with SMS sign-in).
    warning = create["provisioningSteps"][2]
    assert warning["status"] == "warning"
    assert warning["details"]["MembersNotProvisioned"].split(", ") == [
        "isaiah@contoso.com",
        "jordan_northwind.example#EXT#@contoso.onmicrosoft.com",
    ]
    created = {p["displayName"]: p for p in create["modifiedProperties"]}
    assert created["displayName"] == {
        "displayName": "displayName",
        "oldValue": None,
        "newValue": "CTS-Pilot",
    }
    assert members_changed(create) == (synced_ids(link, *IN_SCOPE), set())

    # The cycle's counts include the groups it evaluated and exported.
    execution = link.status()["lastExecution"]
    users, groups = len(link.contoso.users), len(link.contoso.groups)
    assert execution["countImported"] == users + groups
    assert execution["countExported"] == len(IN_SCOPE) + 1
    assert summary["created"] == len(IN_SCOPE) + 1
    # Groups come after the users (newest first: the groups' records, then the users').
    kinds = [r["sourceIdentity"]["identityType"] for r in link.logs()]
    assert kinds == ["Group"] * groups + ["User"] * (len(kinds) - groups)


def test_the_status_counts_linked_groups_beside_users(link: Link) -> None:
    link.run_cycle()
    status = link.status()  # checked against synchronizationJob
    assert status["synchronizedEntryCountByType"] == [
        {"key": "User to User", "value": len(IN_SCOPE)},
        {"key": "Group to Group", "value": 1},
    ]
    state = link.control.get("/state").json()
    contoso = next(t for t in state["tenants"] if t["name"] == "contoso")
    [job] = contoso["provisioning"]
    assert (job["linked_users"], job["linked_groups"]) == (len(IN_SCOPE), 1)


def test_unassigned_groups_are_skipped_as_not_entitled(link: Link) -> None:
    link.run_cycle()
    for name in ("Sales", "Engineering", "All Employees"):
        [record] = group_records(link, name)
        info = record["provisioningStatusInfo"]
        assert (record["provisioningAction"], info["status"]) == ("other", "skipped")
        assert info["errorInformation"]["errorCode"] == "NotEffectivelyEntitled"
    assert target_group_names(link).count("Sales") == 0


# -- memberships -------------------------------------------------------------------------------


def test_removing_a_member_in_the_source_removes_the_membership_next_cycle(link: Link) -> None:
    link.assign(link.uid("megan"))  # Megan stays in scope through her own assignment
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    megan = link.synced()["megan"]["id"]
    assert megan in member_ids(link, target_id)

    pilot = link.group_id("CTS-Pilot")
    source_writer = writer(link, "contoso")
    assert source_writer.delete(
        f"/groups/{pilot}/members/{link.uid('megan')}/$ref"
    ).status_code == (204)
    summary = link.run_cycle()
    assert summary["initial"] is False
    assert member_ids(link, target_id) == synced_ids(link, "adele", "alex", "diego")
    assert link.synced()["megan"]["id"] == megan  # the user stays; only the membership goes
    update = group_records(link, "CTS-Pilot")[0]
    assert (update["provisioningAction"], update["provisioningStatusInfo"]["status"]) == (
        "update",
        "success",
    )
    assert update["provisioningSteps"][0]["name"] == "EntryImportUpdate"
    assert members_changed(update) == (set(), {megan})

    # Adding her back adds the membership back.
    body = reference(link.uid("megan"))
    assert source_writer.post(f"/groups/{pilot}/members/$ref", json=body).status_code == 204
    link.run_cycle()
    assert megan in member_ids(link, target_id)
    assert members_changed(group_records(link, "CTS-Pilot")[0]) == ({megan}, set())


def test_a_member_the_job_did_not_provision_is_never_touched(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    # A Fabrikam admin adds one of their own users to the synced group.
    miriam = next(uid for uid, u in link.fabrikam.users.items() if u["mailNickname"] == "miriam")
    target_writer = writer(link, "fabrikam")
    add = target_writer.post(f"/groups/{target_id}/members/$ref", json=reference(miriam))
    assert add.status_code == 204
    # The source group changes: a member leaves, a nested group joins.
    pilot = link.group_id("CTS-Pilot")
    source_writer = writer(link, "contoso")
    assert source_writer.delete(f"/groups/{pilot}/members/{link.uid('alex')}/$ref").status_code == (
        204
    )
    engineering = reference(link.group_id("Engineering"))
    assert source_writer.post(f"/groups/{pilot}/members/$ref", json=engineering).status_code == 204
    link.run_cycle()
    members = member_ids(link, target_id)
    assert miriam in members
    assert members == {miriam, *synced_ids(link, "adele", "megan", "diego")}
    # Nested groups are not memberships that flow.
    update = group_records(link, "CTS-Pilot")[0]
    added, removed = members_changed(update)
    assert added == set()
    assert miriam not in removed


def test_a_member_the_job_deprovisions_leaves_the_group(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    gone = synced_ids(link, "megan", "diego")

    def sales_only(mapping: dict[str, Any]) -> None:
        clause = {
            "sourceOperandName": "department",
            "operatorName": "EQUALS",
            "targetOperand": {"values": ["Sales"]},
        }
        mapping["scope"]["groups"] = [{"name": "Sales", "clauses": [clause]}]

    link.put_schema(sales_only)  # Megan and Diego leave the users' scope: soft-deleted
    link.run_cycle()
    assert sorted(link.synced()) == ["adele", "alex"]
    update = group_records(link, "CTS-Pilot")[0]
    assert members_changed(update) == (set(), gone)
    assert set(link.fabrikam.group_members[target_id]) == synced_ids(link, "adele", "alex")


def test_a_changed_name_and_description_are_updated(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    pilot = link.group_id("CTS-Pilot")
    body = {"displayName": "CTS-Pilot (wave 1)", "description": "First wave"}
    assert writer(link, "contoso").patch(f"/groups/{pilot}", json=body).status_code == 204
    link.run_cycle()
    group = target_group(link, target_id)
    assert group is not None
    assert (group["displayName"], group["description"]) == ("CTS-Pilot (wave 1)", "First wave")
    [update, create] = group_records(link, "CTS-Pilot (wave 1)")
    # Each record shows the group as it was when the record was written.
    assert create["sourceIdentity"]["displayName"] == "CTS-Pilot"
    assert update["sourceIdentity"]["displayName"] == "CTS-Pilot (wave 1)"
    changed = {p["displayName"]: p for p in update["modifiedProperties"]}
    assert changed["displayName"]["oldValue"] == "CTS-Pilot"
    assert changed["displayName"]["newValue"] == "CTS-Pilot (wave 1)"
    assert changed["description"]["newValue"] == "First wave"
    assert members_changed(update) == (set(), set())


def test_a_reset_cache_matches_the_group_again_by_its_stamp(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    before = target_group_names(link)
    body = {"criteria": {"resetScope": "ConnectorDataStore"}}
    assert link.source.post(f"{link.job_path}/restart", json=body).status_code == 204
    link.run_cycle()
    assert target_group_names(link) == before  # no duplicate
    assert link.record().group_store == {link.group_id("CTS-Pilot"): target_id}
    latest = group_records(link, "CTS-Pilot")[0]
    assert latest["provisioningStatusInfo"]["errorInformation"]["errorCode"] == "RedundantExport"


# -- the gate: the mapping and the target's policy ------------------------------------------------


def test_not_allowed_by_the_target_nothing_is_written_and_the_reason_is_logged(
    link: Link,
) -> None:
    allow_group_sync(link, allowed=False)
    before = target_group_names(link)
    summary = link.run_cycle()
    assert target_group_names(link) == before
    assert sorted(link.synced()) == sorted(IN_SCOPE)  # users are not affected
    [failed] = group_records(link, "CTS-Pilot")
    info = failed["provisioningStatusInfo"]
    assert (failed["provisioningAction"], info["status"]) == ("create", "failure")
    assert info["errorInformation"]["errorCode"] == GROUP_SYNC_CODE
    assert "groupSyncInbound.isSyncAllowed" in info["errorInformation"]["reason"]
    assert failed["provisioningSteps"][-1]["status"] == "failure"
    assert (summary["state"], summary["failed"], summary["escrowed"]) == (
        "EntryLevelErrors",
        1,
        1,
    )
    assert link.status()["lastExecution"]["countEscrowed"] == 1

    # Allowed again: the next (incremental) cycle retries and creates the group.
    allow_group_sync(link)
    summary = link.run_cycle()
    assert (summary["initial"], summary["state"]) == (False, "Succeeded")
    target_id = created_group_id(link, "CTS-Pilot")
    assert member_ids(link, target_id) == synced_ids(link, *IN_SCOPE)

    # Disallowed once more: a group in scope is refused even with nothing to change (a full
    # cycle evaluates it again), and an unassigned group is not deleted.
    allow_group_sync(link, allowed=None)
    assert link.source.post(f"{link.job_path}/restart", json={}).status_code == 204
    link.run_cycle()
    unchanged = group_records(link, "CTS-Pilot")[0]
    assert unchanged["provisioningAction"] == "update"
    assert unchanged["modifiedProperties"] == []
    assert unchanged["provisioningStatusInfo"]["status"] == "failure"
    assert member_ids(link, target_id) == synced_ids(link, *IN_SCOPE)
    assignment = next(
        a
        for a in link.source.get(f"/servicePrincipals/{link.sp['id']}/appRoleAssignedTo").json()[
            "value"
        ]
        if a["principalId"] == link.group_id("CTS-Pilot")
    )
    link.unassign(assignment)
    link.run_cycle()
    assert target_group(link, target_id) is not None
    refused = group_records(link, "CTS-Pilot")[0]
    assert refused["provisioningAction"] == "delete"
    assert refused["provisioningStatusInfo"]["errorInformation"]["errorCode"] == GROUP_SYNC_CODE


def test_with_the_group_mapping_disabled_no_group_is_written(demo: Emulator) -> None:
    link = make_link(demo)
    allow_group_sync(link)
    link.assign(link.group_id("CTS-Pilot"))
    link.start()
    before = target_group_names(link)
    link.run_cycle()
    assert target_group_names(link) == before
    assert sorted(link.synced()) == sorted(IN_SCOPE)
    assert all(r["sourceIdentity"]["identityType"] == "User" for r in link.logs())
    assert count_by_type(link) == {"User to User": len(IN_SCOPE)}


@pytest.mark.parametrize(
    "kind",
    [
        # A Microsoft 365 group, and a mail-enabled security group.
        {"mailEnabled": True, "securityEnabled": False, "groupTypes": ["Unified"]},
        {"mailEnabled": True, "securityEnabled": True, "groupTypes": []},
    ],
)
def test_a_group_that_is_not_a_security_group_is_skipped(link: Link, kind: dict[str, Any]) -> None:
    contoso = link.contoso
    team = "0f1e2d3c-4b5a-4968-8776-655443322110"
    contoso.groups[team] = {
        "id": team,
        "displayName": "Sales Team",
        "description": None,
        "mailNickname": "salesteam",
        "createdDateTime": "2020-01-01T00:00:00Z",
        "deletedDateTime": None,
        **kind,
    }
    contoso.group_members[team] = [link.uid("lynne")]
    link.demo.note_change()
    link.assign(team)
    before = target_group_names(link)
    link.run_cycle()
    [record] = group_records(link, "Sales Team")
    info = record["provisioningStatusInfo"]
    assert (record["provisioningAction"], info["status"]) == ("other", "skipped")
    assert "only security groups are provisioned" in info["errorInformation"]["reason"]
    scoping = record["provisioningSteps"][1]
    assert (scoping["status"], scoping["details"]["Security group"]) == ("skipped", "False")
    assert target_group_names(link) == sorted([*before, "CTS-Pilot"])
    # Its members are still in scope as users (the assignment entitles them).
    assert "lynne" in link.synced()


def test_the_group_scoping_filter_narrows_the_groups(link: Link) -> None:
    link.assign(link.group_id("Sales"))

    def pilots_only(mapping: dict[str, Any]) -> None:
        clause = {
            "sourceOperandName": "displayName",
            "operatorName": "REGEX MATCH",
            "targetOperand": {"values": ["CTS-.*"]},
        }
        mapping["scope"] = {
            "groups": [{"name": "Pilot groups", "clauses": [clause]}],
            "inputFilterGroups": [],
            "categoryFilterGroups": [],
        }

    edit_group_mapping(link, pilots_only)
    link.run_cycle()
    names = target_group_names(link)
    assert names.count("CTS-Pilot") == 2  # Fabrikam's own and the synced one
    assert "Sales" not in names
    [sales] = group_records(link, "Sales")
    error = sales["provisioningStatusInfo"]["errorInformation"]
    assert error["errorCode"] == "EntrySynchronizationSkipped"
    assert "Pilot groups.displayName REGEX MATCH 'CTS-.*'" in error["reason"]
    scoping = sales["provisioningSteps"][1]["details"]
    assert json.loads(scoping["ScopeEvaluationResult"]) == {
        "Pilot groups.displayName REGEX MATCH 'CTS-.*'": False
    }
    target_id = created_group_id(link, "CTS-Pilot")

    # A filter the synced group no longer passes takes it out of scope: it is deleted.
    def description_filter(mapping: dict[str, Any]) -> None:
        mapping["scope"]["groups"][0]["clauses"][0] = {
            "sourceOperandName": "description",
            "operatorName": "IS NULL",
            "targetOperand": {"values": []},
        }

    edit_group_mapping(link, description_filter)
    link.run_cycle()
    assert target_group(link, target_id) is None
    assert group_records(link, "CTS-Pilot")[0]["provisioningAction"] == "delete"


# -- leaving scope ---------------------------------------------------------------------------


def _unassign_pilot(link: Link) -> None:
    assignments = link.source.get(f"/servicePrincipals/{link.sp['id']}/appRoleAssignedTo")
    pilot = link.group_id("CTS-Pilot")
    assignment = next(a for a in assignments.json()["value"] if a["principalId"] == pilot)
    link.unassign(assignment)


def test_unassigning_the_group_deletes_it_in_the_target(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    _unassign_pilot(link)
    summary = link.run_cycle()
    assert target_group(link, target_id) is None
    assert target_id not in link.fabrikam.group_members
    delete = group_records(link, "CTS-Pilot")[0]
    assert (delete["provisioningAction"], delete["provisioningStatusInfo"]["status"]) == (
        "delete",
        "success",
    )
    steps = [s["name"] for s in delete["provisioningSteps"]]
    assert steps[-2:] == ["EntrySynchronizationDelete", "EntryExportDelete"]
    assert summary["deleted"] >= 1
    assert count_by_type(link)["Group to Group"] == 0
    assert link.record().group_store == {}


def test_without_the_delete_flow_a_group_out_of_scope_is_left_and_forgotten(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")

    def no_deletes(mapping: dict[str, Any]) -> None:
        mapping["flowTypes"] = "Add, Update"

    edit_group_mapping(link, no_deletes)
    _unassign_pilot(link)
    link.run_cycle()
    assert target_group(link, target_id) is not None
    skipped = group_records(link, "CTS-Pilot")[0]
    error = skipped["provisioningStatusInfo"]["errorInformation"]
    assert error["errorCode"] == "EntrySynchronizationSkipped"
    assert "not assigned to the application" in error["reason"]
    assert "because deletes are disabled" in error["reason"]
    assert count_by_type(link)["Group to Group"] == 0
    assert link.record().group_store == {}


def test_a_group_deleted_in_the_source_is_deleted_in_the_target(link: Link) -> None:
    link.run_cycle()
    target_id = created_group_id(link, "CTS-Pilot")
    pilot = link.group_id("CTS-Pilot")
    del link.contoso.groups[pilot]
    del link.contoso.group_members[pilot]
    link.demo.note_change()
    link.run_cycle()
    assert target_group(link, target_id) is None
    records = link.logs(**{"$filter": f"sourceIdentity/id eq '{pilot}'"})
    assert records[0]["provisioningAction"] == "delete"
    assert records[0]["provisioningSteps"][0]["name"] == "EntryImportDelete"


# -- provision on demand -------------------------------------------------------------------------


def _on_demand(link: Link, object_id: str, type_name: str) -> dict[str, Any]:
    schema = link.source.get(f"{link.job_path}/schema").json()
    body = {
        "parameters": [
            {
                "ruleId": schema["synchronizationRules"][0]["id"],
                "subjects": [{"objectId": object_id, "objectTypeName": type_name}],
            }
        ]
    }
    response = link.source.post(f"{link.job_path}/provisionOnDemand", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_conforms("stringKeyStringValuePair", {k: v for k, v in answer.items() if k[0] != "@"})
    assert answer["key"] == STATUS_INFO_KEY
    [result] = json.loads(answer["value"])
    assert isinstance(result, dict)
    return result


def test_on_demand_of_a_group_provisions_it_with_the_members_already_provisioned(
    link: Link,
) -> None:
    adele = _on_demand(link, link.uid("adele"), "User")
    assert adele["statusInfo"]["status"] == "Success"
    result = _on_demand(link, link.group_id("CTS-Pilot"), "Group")
    assert result["action"] == "Create"
    assert result["statusInfo"]["status"] == "Success"
    assert result["sourceIdentity"]["type"] == result["targetIdentity"]["type"] == "Group"
    assert result["reportableIdentifier"] == "CTS-Pilot"
    target_id = result["targetIdentity"]["id"]
    assert member_ids(link, target_id) == synced_ids(link, "adele")
    names = [s["name"] for s in result["provisioningSteps"]]
    assert names[0] == "EntryImport"
    assert names[-1] == "EntryExportAdd"
    warning = next(s for s in result["provisioningSteps"] if s["type"] == "Processing")
    assert warning["status"] == "Warning"
    for alias in ("alex", "megan", "diego"):
        assert f"'{alias}@contoso.com'" in warning["description"]
    assert "not provisioned" in warning["description"]
    # Its record, initiated by the calling app.
    [record] = group_records(link, "CTS-Pilot")
    assert record["initiatedBy"]["initiatorType"] == "application"
    assert record["changeId"] == result["changeId"]

    # Once the other members are provisioned, on demand adds them.
    link.run_cycle()
    assert member_ids(link, target_id) == synced_ids(link, *IN_SCOPE)
    again = _on_demand(link, link.group_id("CTS-Pilot"), "Group")
    assert again["action"] == "Other"
    assert again["statusInfo"]["errorCode"] == "RedundantExport"


def test_on_demand_of_a_group_the_target_does_not_allow_fails_with_the_reason(
    link: Link,
) -> None:
    allow_group_sync(link, allowed=False)
    before = target_group_names(link)
    result = _on_demand(link, link.group_id("CTS-Pilot"), "Group")
    assert result["statusInfo"]["status"] == "Failure"
    assert result["statusInfo"]["errorCode"] == GROUP_SYNC_CODE
    assert "groupSyncInbound" in result["statusInfo"]["reason"]
    assert result["provisioningSteps"][-1]["status"] == "Failure"
    assert target_group_names(link) == before


def test_group_writes_the_engine_reads_are_checked(link: Link) -> None:
    pilot = link.group_id("CTS-Pilot")
    source_writer = writer(link, "contoso")
    twice = source_writer.post(f"/groups/{pilot}/members/$ref", json=reference(link.uid("adele")))
    assert twice.status_code == 400
    assert "already exist" in twice.json()["error"]["message"]
    unknown = "11111111-2222-4333-8444-555555555555"
    missing = source_writer.post(f"/groups/{pilot}/members/$ref", json=reference(unknown))
    assert missing.status_code == 404
    not_member = source_writer.delete(f"/groups/{pilot}/members/{link.uid('lee')}/$ref")
    assert not_member.status_code == 404
    read_only = source_writer.patch(f"/groups/{pilot}", json={"securityEnabled": False})
    assert read_only.status_code == 400
    # Reading groups is not enough to change them.
    reader = client_with(link.demo, "contoso", ["Group.Read.All"])
    denied = reader.delete(f"/groups/{pilot}/members/{link.uid('adele')}/$ref")
    assert denied.status_code == 403
    assert link.contoso.group_members[pilot].count(link.uid("adele")) == 1
