"""provisionOnDemand (reference §3.9, §10.10) and ``/auditLogs/provisioning`` (§2.5, §10.13):
both answer shapes, validation, the 5-per-10-s limit, and the log's $filter / $orderby / $top /
paging, reports quota, permissions and retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.services.provisioning import STATUS_INFO_KEY
from tests.conformance import assert_conforms
from tests.emulator.cts_helpers import PARTNERS, error_of
from tests.emulator.test_engine import (
    IN_SCOPE,
    POLICY_CODE,
    Link,
    graph_client,
    make_link,
    without_details,
)

LOGS = "/auditLogs/provisioning"


@pytest.fixture
def link(demo: Emulator) -> Iterator[Link]:
    made = make_link(demo)
    made.assign(made.group_id("CTS-Pilot"))
    yield made
    for client in (made.source, made.target, made.control):
        client.close()


def _rule_id(link: Link) -> str:
    schema = link.source.get(f"{link.job_path}/schema").json()
    rule_id: str = schema["synchronizationRules"][0]["id"]
    return rule_id


def _body(link: Link, object_id: str, type_name: str = "User") -> dict[str, Any]:
    return {
        "parameters": [
            {
                "ruleId": _rule_id(link),
                "subjects": [{"objectId": object_id, "objectTypeName": type_name}],
            }
        ]
    }


def on_demand(link: Link, alias: str) -> httpx.Response:
    return link.source.post(f"{link.job_path}/provisionOnDemand", json=_body(link, link.uid(alias)))


def _cts_result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#microsoft.graph.stringKeyStringValuePair")
    assert_conforms("stringKeyStringValuePair", body)
    assert body["key"] == STATUS_INFO_KEY
    results = json.loads(body["value"])
    assert isinstance(results, list)
    [result] = results
    assert isinstance(result, dict)
    assert next(iter(result)) == "provisioningSteps"
    return result


# -- provisionOnDemand -------------------------------------------------------------------------


def test_on_demand_creates_a_user_on_a_job_that_never_started(link: Link) -> None:
    result = _cts_result(on_demand(link, "adele"))
    assert link.status()["code"] == "Paused"  # provisioning on demand needs no running job
    steps = result["provisioningSteps"]
    assert [(s["name"], s["type"], s["status"]) for s in steps] == [
        ("EntryImport", "Import", "Success"),
        ("EntrySynchronizationScoping", "Scoping", "Success"),
        ("EntrySynchronizationAdd", "Matching", "Success"),
        ("EntryExportAdd", "Export", "Success"),
    ]
    assert (
        steps[0]["description"] == "Retrieved User 'adele@contoso.com' from Azure Active Directory"
    )
    assert steps[0]["details"]["userPrincipalName"] == "adele@contoso.com"
    assert all(isinstance(v, str) for s in steps for v in s["details"].values())
    assert result["action"] == "Create"
    assert result["statusInfo"]["status"] == "Success"
    assert result["reportableIdentifier"] == "adele@contoso.com"
    adele = link.synced()["adele"]
    assert result["targetIdentity"]["id"] == adele["id"]
    assert {p["displayName"] for p in result["modifiedProperties"]} >= {"userType", "displayName"}
    # The call is logged, initiated by the calling application.
    records = link.logs_for("adele")
    assert [r["provisioningAction"] for r in records] == ["update", "create"]
    assert records[1]["initiatedBy"]["initiatorType"] == "application"
    assert records[1]["changeId"] == result["changeId"]
    # The job's next cycle matches the user instead of creating it again.
    link.start()
    link.run_cycle()
    assert sorted(link.synced()) == sorted(IN_SCOPE)


def test_on_demand_again_is_redundant_export_in_the_reference_shape(link: Link) -> None:
    on_demand(link, "megan")
    link.demo.provisioning.on_demand_shape = "reference"
    response = on_demand(link, "megan")
    assert response.status_code == 200
    body = response.json()
    assert_conforms("stringKeyStringValuePair", body)
    assert json.loads(body["key"]) == {
        "result": "Skipped",
        "details": {
            "errorCode": "RedundantExport",
            "errorMessage": (
                "The state of the user in both the source and target systems already match."
            ),
        },
    }
    value = json.loads(body["value"])
    assert isinstance(value, dict)
    assert value["action"] == "Other"
    assert value["statusInfo"]["status"] == "Skipped"
    assert set(value) >= {
        "changeId",
        "startTime",
        "endTime",
        "modifiedProperties",
        "provisioningSteps",
        "reportableIdentifier",
        "sourceIdentity",
        "sourceSystem",
        "targetIdentity",
        "targetSystem",
    }
    skip = value["provisioningSteps"][-1]
    assert (skip["name"], skip["type"], skip["status"]) == (
        "EntrySynchronizationSkip",
        "Export",
        "Skipped",
    )
    assert skip["details"] == {"SkipReason": "RedundantExport"}
    assert value["provisioningSteps"][2]["type"] == "Matching"
    assert value["sourceSystem"]["name"] == "Azure Active Directory"
    created = on_demand(link, "alex").json()
    assert json.loads(created["key"]) == {"result": "Success", "details": {}}


def test_on_demand_explains_a_skip_and_a_failure(link: Link) -> None:
    skipped = _cts_result(on_demand(link, "isaiah"))
    assert skipped["action"] == "Other"
    assert skipped["statusInfo"]["status"] == "Skipped"
    assert "SMS sign-in is enabled" in skipped["statusInfo"]["reason"]
    scoping = skipped["provisioningSteps"][1]
    assert scoping["status"] == "Skipped"
    unassigned = _cts_result(on_demand(link, "lee"))
    assert unassigned["statusInfo"]["errorCode"] == "NotEffectivelyEntitled"
    off = {"automaticUserConsentSettings": {"outboundAllowed": False}}
    assert link.source.patch(f"{PARTNERS}/{link.fabrikam.id}", json=off).status_code == 204
    failed = _cts_result(on_demand(link, "alex"))
    assert failed["statusInfo"]["status"] == "Failure"
    assert failed["statusInfo"]["errorCode"] == POLICY_CODE
    assert failed["provisioningSteps"][-1]["status"] == "Failure"
    assert "alex" not in link.synced()
    # On demand does not escrow or quarantine: the job is untouched.
    assert link.record().escrows == {}
    assert link.status()["quarantine"] is None


def test_a_group_subject_is_skipped_as_entity_type_not_supported(link: Link) -> None:
    body = _body(link, link.group_id("CTS-Pilot"), "Group")
    result = _cts_result(link.source.post(f"{link.job_path}/provisionOnDemand", json=body))
    assert result["statusInfo"]["status"] == "Skipped"
    assert result["statusInfo"]["errorCode"] == "EntityTypeNotSupported"
    assert result["provisioningSteps"][0]["details"] == {"SkipReason": "EntityTypeNotSupported"}
    assert link.synced() == {}


@pytest.mark.parametrize(
    "edit",
    [
        lambda b: b["parameters"][0].update(ruleId="00000000-0000-0000-0000-000000000001"),
        lambda b: b["parameters"][0]["subjects"][0].update(objectTypeName="Device"),
        lambda b: b["parameters"][0]["subjects"].append(dict(b["parameters"][0]["subjects"][0])),
        lambda b: b["parameters"][0].update(subjects=[]),
        lambda b: b.update(parameters=[]),
        lambda b: b.update(extra=1),
    ],
)
def test_bad_on_demand_bodies_are_400(link: Link, edit: Any) -> None:
    body = _body(link, link.uid("adele"))
    edit(body)
    response = link.source.post(f"{link.job_path}/provisionOnDemand", json=body)
    assert response.status_code == 400
    error_of(response)


def test_an_unknown_user_is_404(link: Link) -> None:
    body = _body(link, "11111111-2222-4333-8444-555555555555")
    response = link.source.post(f"{link.job_path}/provisionOnDemand", json=body)
    assert response.status_code == 404


def test_on_demand_is_limited_to_five_calls_in_ten_seconds(demo: Emulator) -> None:
    link = make_link(demo, quotas=True)
    link.assign(link.group_id("CTS-Pilot"))
    body = _body(link, link.uid("adele"))
    path = f"{link.job_path}/provisionOnDemand"
    for _ in range(5):
        assert link.source.post(path, json=body).status_code == 200
    throttled = link.source.post(path, json=body)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert error_of(throttled)["code"] == "TooManyRequests"
    # Other calls are not held up by the on-demand quota.
    assert link.source.get(link.job_path).status_code == 200
    demo.clock.advance(int(throttled.headers["Retry-After"]))
    assert link.source.post(path, json=body).status_code == 200


# -- /auditLogs/provisioning -------------------------------------------------------------------


@pytest.fixture
def logged(link: Link) -> Link:
    """One initial cycle (16 records: 4 creates with their updates, 8 skips), then an hour
    later an update cycle (1 record)."""
    link.start()
    link.run_cycle()
    link.demo.clock.advance(3600)
    link.patch_user("megan", {"jobTitle": "CMO"})
    link.run_cycle()
    return link


def test_logs_are_newest_first_and_conform(logged: Link) -> None:
    records = logged.logs()
    assert len(records) == 17
    times = [r["activityDateTime"] for r in records]
    assert times == sorted(times, reverse=True)
    assert records[0]["provisioningAction"] == "update"
    ascending = logged.logs(**{"$orderby": "activityDateTime asc"})
    assert [r["id"] for r in ascending] == [r["id"] for r in reversed(records)]
    body = logged.source.get(LOGS).json()
    assert (
        body["@odata.context"]
        == "https://graph.microsoft.com/v1.0/$metadata#auditLogs/provisioning"
    )
    for record in records:
        assert_conforms("provisioningObjectSummary", without_details(record))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("provisioningAction eq 'create'", 4),
        ("provisioningAction eq 'Create'", 0),  # filters are case-sensitive
        ("provisioningStatusInfo/status eq 'skipped'", 8),
        ("provisioningStatusInfo/errorInformation/errorCode eq 'NotEffectivelyEntitled'", 6),
        ("provisioningAction eq 'update' and activityDateTime gt 2026-01-05T09:30:00Z", 1),
        ("activityDateTime lt 2026-01-05T09:30:00Z", 16),
        ("activityDateTime ge 2026-01-05 and activityDateTime le 2026-01-06", 17),
        ("sourceIdentity/displayName eq 'Megan Bowen'", 3),
        ("contains(targetIdentity/displayName, 'Vance')", 2),
    ],
)
def test_log_filters(logged: Link, query: str, expected: int) -> None:
    assert len(logged.logs(**{"$filter": query})) == expected


def test_the_walkthrough_query_and_job_filter(logged: Link) -> None:
    sp_id = logged.sp["id"]
    query = (
        f"((contains(tolower(servicePrincipal/id), '{sp_id}') or "
        f"contains(tolower(servicePrincipal/displayName), '{sp_id}')) and "
        "activityDateTime gt 2026-01-05 and activityDateTime lt 2026-01-06)"
    )
    records = logged.logs(**{"$filter": query, "$top": "500", "$orderby": "activityDateTime desc"})
    assert len(records) == 17
    assert len(logged.logs(**{"$filter": f"jobId eq '{logged.job_id}'"})) == 17
    assert logged.logs(**{"$filter": "jobId eq 'Azure2Azure.other'"}) == []


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "userPrincipalName eq 'x'"},
        {"$filter": "startswith(jobId, 'A')"},
        {"$orderby": "jobId"},
        {"$top": "1001"},
        {"$top": "0"},
        {"$skip": "5"},
        {"$count": "true"},
        {"$skiptoken": "garbage"},
    ],
)
def test_unsupported_log_queries_are_400(logged: Link, params: dict[str, str]) -> None:
    response = logged.source.get(LOGS, params=params)
    assert response.status_code == 400
    error_of(response)


def test_paging_follows_absolute_next_links_over_a_stable_snapshot(logged: Link) -> None:
    first = logged.source.get(LOGS, params={"$top": "8", "$filter": "jobId ne 'x'"})
    assert first.status_code == 400  # ne is not a documented operator here
    page = logged.source.get(LOGS, params={"$top": "8"}).json()
    seen = [r["id"] for r in page["value"]]
    next_link = page["@odata.nextLink"]
    assert next_link.startswith("https://graph.microsoft.com/v1.0/auditLogs/provisioning?")
    assert parse_qs(urlsplit(next_link).query)["$top"] == ["8"]
    # Records written meanwhile do not shift the pages of a listing already begun.
    logged.patch_user("alex", {"jobTitle": "VP"})
    logged.run_cycle()
    while next_link:
        page = logged.source.get(next_link).json()
        seen.extend(r["id"] for r in page["value"])
        next_link = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == 17
    assert len(logged.logs()) == 18
    default = logged.source.get(LOGS).json()
    assert "@odata.nextLink" not in default
    assert len(default["value"]) == 18


def test_records_older_than_thirty_days_are_dropped(logged: Link) -> None:
    logged.demo.provisioning.interval = 10 * 24 * 3600.0  # fewer cycles to run meanwhile
    logged.demo.clock.advance(30 * 24 * 3600 - 1800)
    assert len(logged.logs()) == 1  # only the update record, an hour younger
    logged.demo.clock.advance(3600)
    assert logged.logs() == []


def test_logs_need_an_audit_permission_and_stay_in_the_source(logged: Link) -> None:
    demo = logged.demo
    reader = demo.add_client(demo.tenant("contoso"), permissions=["ProvisioningLog.Read.All"])
    with graph_client(demo, "contoso", reader.client_id) as client:
        assert client.get(LOGS).status_code == 200
    other = demo.add_client(demo.tenant("contoso"), permissions=["User.Read.All"])
    with graph_client(demo, "contoso", other.client_id) as client:
        assert client.get(LOGS).status_code == 403
    assert logged.target.get(LOGS).json()["value"] == []


def test_logs_are_limited_to_five_requests_in_ten_seconds(demo: Emulator) -> None:
    link = make_link(demo, quotas=True)
    for _ in range(5):
        assert link.source.get(LOGS).status_code == 200
    throttled = link.source.get(LOGS)
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers
    # Per tenant: the target's logs are another bucket.
    assert link.target.get(LOGS).status_code == 200
