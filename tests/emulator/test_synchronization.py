"""Synchronization under a service principal: Microsoft's source-tenant flow end to end, over
HTTP through the in-process transport, every answer checked against the v1.0 types."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorTransport
from ctsync.emulator.engine.policy_check import check_cross_tenant_sync
from ctsync.emulator.state import SyncJobRecord
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import (
    NON_GALLERY_TEMPLATE,
    allow_sync,
    client_with,
    connection_body,
    cts_secrets,
    error_of,
    instantiate,
    sync_root,
)

NEVER = "0001-01-01T00:00:00Z"


def _ids(demo: Emulator) -> tuple[str, str]:
    return demo.tenant("contoso").id, demo.tenant("fabrikam").id


def _job_id(demo: Emulator, app_id: str) -> str:
    return f"Azure2Azure.{demo.tenant('contoso').id.replace('-', '')}.{app_id}"


def _user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    rule = schema["synchronizationRules"][0]
    mapping: dict[str, Any] = next(
        m for m in rule["objectMappings"] if m["sourceObjectName"] == "User"
    )
    return mapping


@dataclass
class Flow:
    """What the walkthrough's steps hand each other."""

    demo: Emulator
    source: httpx.Client
    target: httpx.Client
    source_id: str
    target_id: str
    sp: dict[str, Any] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return sync_root(self.sp["id"])

    @property
    def job_path(self) -> str:
        return f"{self.root}/jobs/{self.job['id']}"

    def record(self) -> SyncJobRecord:
        record = self.demo.tenant("contoso").synchronization[self.sp["id"]].job(self.job["id"])
        assert record is not None
        return record

    def test_connection(self, body: dict[str, Any]) -> httpx.Response:
        return self.source.post(f"{self.root}/jobs/validateCredentials", json=body)


def _s6_instantiate_and_wait_for_replication(flow: Flow) -> None:
    flow.demo.traffic.configure(flow.demo.faults.merged({"replication_lag": 5.0}))
    flow.sp = instantiate(flow.source)["servicePrincipal"]
    by_name = {"$filter": "displayName eq 'Fabrikam'"}
    # Still replicating: the service principal and its synchronization answer 404.
    assert flow.source.get(f"/servicePrincipals/{flow.sp['id']}").status_code == 404
    assert flow.test_connection(connection_body(flow.target_id)).status_code == 404
    assert flow.source.get("/servicePrincipals", params=by_name).json()["value"] == []
    flow.demo.clock.advance(5.0)
    listed = flow.source.get("/servicePrincipals", params=by_name).json()
    assert [s["id"] for s in listed["value"]] == [flow.sp["id"]]
    got = flow.source.get(f"/servicePrincipals/{flow.sp['id']}").json()
    assert_conforms("servicePrincipal", got)
    assert got["appRoles"][0]["displayName"] == "msiam_access"
    # The policy objects replicate too; the rest of the walkthrough is not about lag.
    flow.demo.traffic.configure(flow.demo.faults.merged({"replication_lag": 0}))


def _s7_test_connection_until_policies_allow_it(flow: Flow) -> None:
    failed = flow.test_connection(connection_body(flow.target_id))
    assert failed.status_code == 400
    error = error_of(failed)
    assert error["code"] == "AzureDirectoryB2BManagementPolicyCheckFailure"
    assert error["message"] == "Policy permitting auto-redemption of invitations not configured."
    assert {d["code"] for d in error["details"]} == {
        "target_inbound_consent",
        "source_outbound_consent",
        "target_inbound_sync",
    }
    allow_sync(flow.source, flow.target, flow.source_id, flow.target_id)
    ok = flow.test_connection(connection_body(flow.target_id))
    assert ok.status_code == 204, ok.text


def _s8_create_the_job(flow: Flow) -> None:
    response = flow.source.post(f"{flow.root}/jobs", json={"templateId": "Azure2Azure"})
    assert response.status_code == 201
    job = flow.job = response.json()
    assert job["@odata.context"].endswith(
        f"$metadata#servicePrincipals('{flow.sp['id']}')/synchronization/jobs/$entity"
    )
    assert job["id"] == _job_id(flow.demo, flow.sp["appId"])
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Disabled"}
    assert job["status"]["code"] == "Paused"
    assert job["status"]["lastExecution"] is None
    assert job["status"]["steadyStateFirstAchievedTime"] == NEVER
    assert job["synchronizationJobSettings"] == [
        {"name": "AzureIngestionAttributeOptimization", "value": "False"},
        {"name": "LookaheadQueryEnabled", "value": "False"},
    ]
    assert_conforms("synchronizationJob", job)


def _s9_save_credentials(flow: Flow) -> None:
    secrets = cts_secrets(flow.target_id)
    assert flow.source.put(f"{flow.root}/secrets", json=secrets).status_code == 204
    saved = {"useSavedCredentials": True}
    assert flow.test_connection(saved).status_code == 204
    response = flow.source.post(f"{flow.job_path}/validateCredentials", json=saved)
    assert response.status_code == 204


def _s10_assign_a_user(flow: Flow) -> None:
    adele = flow.source.get("/users/adele@contoso.com").json()
    body = {
        "appRoleId": flow.sp["appRoles"][0]["id"],
        "resourceId": flow.sp["id"],
        "principalId": adele["id"],
    }
    response = flow.source.post(f"/servicePrincipals/{flow.sp['id']}/appRoleAssignedTo", json=body)
    assert response.status_code == 201
    assert_conforms("appRoleAssignment", response.json())


def _s11_add_a_scoping_filter(flow: Flow) -> None:
    schema = flow.source.get(f"{flow.job_path}/schema").json()
    assert schema["id"] == flow.job["id"]
    assert schema["synchronizationRules"][0]["name"] == "USER_INBOUND_USER"
    assert_conforms("synchronizationSchema", schema)
    clause = {
        "sourceOperandName": "department",
        "operatorName": "EQUALS",
        "targetOperand": {"values": ["Sales"]},
    }
    _user_mapping(schema)["scope"]["groups"] = [
        {"name": "Sales department filter", "clauses": [clause]}
    ]
    record = flow.record()
    record.full_sync_due, record.full_sync_reasons = False, []
    assert flow.source.put(f"{flow.job_path}/schema", json=schema).status_code == 204
    # Saving a new scoping filter makes the next cycle an initial one.
    assert record.full_sync_due
    assert record.full_sync_reasons == ["schema"]
    again = flow.source.get(f"{flow.job_path}/schema").json()
    assert _user_mapping(again)["scope"]["groups"][0]["name"] == "Sales department filter"


def _s12_start(flow: Flow) -> None:
    assert flow.source.post(f"{flow.job_path}/start").status_code == 204
    running = flow.source.get(flow.job_path).json()
    assert running["schedule"]["state"] == "Active"
    assert running["status"]["code"] == "NotRun"
    assert running["status"]["troubleshootingUrl"] == ""
    # S13a: the placeholder execution before the first cycle.
    placeholder = running["status"]["lastExecution"]
    assert placeholder["state"] == "Failed"
    assert placeholder["error"] == {"code": "None", "message": "", "tenantActionable": False}
    assert placeholder["timeBegan"] == placeholder["timeEnded"] == NEVER
    assert placeholder["countExported"] == 0
    assert_conforms("synchronizationJob", running)


def _pause_and_restart(flow: Flow) -> None:
    assert flow.source.post(f"{flow.job_path}/pause").status_code == 204
    paused = flow.source.get(flow.job_path).json()
    assert (paused["schedule"]["state"], paused["status"]["code"]) == ("Paused", "Paused")
    record = flow.record()
    record.watermark = "delta-token"
    record.escrows["x"] = {"attempts": 1}
    record.full_sync_due, record.full_sync_reasons = False, []
    restart = {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}
    assert flow.source.post(f"{flow.job_path}/restart", json=restart).status_code == 204
    assert record.watermark is None
    assert record.escrows == {}
    assert record.full_sync_due
    assert record.full_sync_reasons == ["restart"]
    assert flow.source.get(flow.job_path).json()["schedule"]["state"] == "Active"


def _tear_down(flow: Flow) -> None:
    assert flow.source.delete(flow.job_path).status_code == 204
    assert flow.source.get(flow.job_path).status_code == 404
    assert flow.source.get(f"{flow.root}/jobs").json()["value"] == []
    sp_id = flow.sp["id"]
    # Deleting the service principal takes its synchronization and assignments with it.
    assert flow.source.delete(f"/servicePrincipals/{sp_id}").status_code == 204
    assert flow.source.get(f"/servicePrincipals/{sp_id}").status_code == 404
    assert flow.source.get(f"{flow.root}/jobs").status_code == 404
    contoso = flow.demo.tenant("contoso")
    assert sp_id not in contoso.app_role_assignments
    assert sp_id not in contoso.synchronization
    # The application stays until it is deleted itself.
    by_app_id = {"$filter": f"appId eq '{flow.sp['appId']}'"}
    assert len(flow.source.get("/applications", params=by_app_id).json()["value"]) == 1


def test_the_documented_source_flow_end_to_end(demo: Emulator, http_for: HttpFor) -> None:
    source_id, target_id = _ids(demo)
    flow = Flow(demo, http_for("contoso"), http_for("fabrikam"), source_id, target_id)
    _s6_instantiate_and_wait_for_replication(flow)
    _s7_test_connection_until_policies_allow_it(flow)
    _s8_create_the_job(flow)
    _s9_save_credentials(flow)
    _s10_assign_a_user(flow)
    _s11_add_a_scoping_filter(flow)
    _s12_start(flow)
    _pause_and_restart(flow)
    _tear_down(flow)


# -- fixtures for the narrower tests ---------------------------------------------------------


@pytest.fixture
def cts(demo: Emulator, http_for: HttpFor) -> dict[str, Any]:
    """A CTS service principal in Contoso, visible, with its job and saved secrets."""
    source = http_for("contoso")
    sp = instantiate(source)["servicePrincipal"]
    root = sync_root(sp["id"])
    job = source.post(f"{root}/jobs", json={"templateId": "Azure2Azure"}).json()
    _, target_id = _ids(demo)
    source.put(f"{root}/secrets", json=cts_secrets(target_id))
    return {"sp": sp, "root": root, "job": job, "job_path": f"{root}/jobs/{job['id']}"}


def test_templates_list_azure2azure_for_a_cts_app(http_for: HttpFor, cts: dict[str, Any]) -> None:
    body = http_for("contoso").get(f"{cts['root']}/templates").json()
    [template] = body["value"]
    assert template["id"] == "Azure2Azure"
    assert template["factoryTag"] == "Azure2Azure"
    assert template["default"] is True
    assert template["applicationId"] == cts["sp"]["appId"]
    assert template["metadata"] == []
    assert_conforms("synchronizationTemplate", template)
    assert_conforms("synchronizationSchema", template["schema"])


def test_a_non_gallery_app_has_no_templates_and_no_azure2azure_job(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    created = graph.post(
        f"/applicationTemplates/{NON_GALLERY_TEMPLATE}/instantiate", json={"displayName": "Plain"}
    )
    root = sync_root(created.json()["servicePrincipal"]["id"])
    assert graph.get(f"{root}/templates").json()["value"] == []
    response = graph.post(f"{root}/jobs", json={"templateId": "Azure2Azure"})
    assert response.status_code == 400


def test_jobs_are_listed_and_one_per_app(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    listed = graph.get(f"{cts['root']}/jobs").json()
    assert [j["id"] for j in listed["value"]] == [cts["job"]["id"]]
    for job in listed["value"]:
        assert_conforms("synchronizationJob", job)
    second = graph.post(f"{cts['root']}/jobs", json={"templateId": "Azure2Azure"})
    assert second.status_code == 409


@pytest.mark.parametrize(
    "body", [{"templateId": "aws"}, {}, {"templateId": "Azure2Azure", "id": "x"}]
)
def test_bad_job_bodies_are_400(http_for: HttpFor, body: dict[str, Any]) -> None:
    graph = http_for("contoso")
    sp = instantiate(graph)["servicePrincipal"]
    response = graph.post(f"{sync_root(sp['id'])}/jobs", json=body)
    assert response.status_code == 400
    assert graph.get(f"{sync_root(sp['id'])}/jobs").json()["value"] == []


def test_unknown_job_and_service_principal_are_404(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    missing_job = f"{cts['root']}/jobs/Azure2Azure.0000.1111"
    for response in (
        graph.get(missing_job),
        graph.delete(missing_job),
        graph.post(f"{missing_job}/start"),
        graph.post(f"{missing_job}/pause"),
        graph.get(f"{missing_job}/schema"),
        graph.get(sync_root("11111111-2222-4333-8444-555555555555") + "/jobs"),
    ):
        assert response.status_code == 404
        error_of(response)


def test_job_ids_match_case_insensitively(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    path = f"{cts['root']}/jobs/{cts['job']['id'].lower()}"
    assert graph.get(path).json()["id"] == cts["job"]["id"]


def test_job_settings_can_be_patched(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    settings = [{"name": "QuarantineTooManyDeletesThreshold", "value": "50"}]
    patched = graph.patch(cts["job_path"], json={"synchronizationJobSettings": settings})
    assert patched.status_code == 204
    assert graph.get(cts["job_path"]).json()["synchronizationJobSettings"] == settings
    assert graph.patch(cts["job_path"], json={"schedule": {"state": "Active"}}).status_code == 400


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_replace_the_whole_set_and_read_back_masked(
    demo: Emulator, http_for: HttpFor, cts: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    secrets = f"{cts['root']}/secrets"
    body = graph.get(secrets).json()
    assert [p["key"] for p in body["value"]] == [
        "AuthenticationType",
        "CompanyId",
        "SyncNotificationSettings",
        "SyncAll",
    ]
    for pair in body["value"]:
        assert_conforms("synchronizationSecretKeyStringValuePair", pair)
    replaced = {
        "value": [{"key": "SyncAll", "value": "true"}, {"key": "SecretToken", "value": "s3cr3t"}]
    }
    assert graph.put(secrets, json=replaced).status_code == 204
    shown = {p["key"]: p["value"] for p in graph.get(secrets).json()["value"]}
    assert shown == {"SyncAll": "true", "SecretToken": None}
    sync = demo.tenant("contoso").synchronization[cts["sp"]["id"]]
    assert sync.secret("SecretToken") == "s3cr3t"
    assert sync.secret("CompanyId") is None


@pytest.mark.parametrize(
    "body",
    [
        {"value": [{"key": "TenantId", "value": "x"}]},
        {"value": [{"value": "x"}]},
        {"value": [{"key": "CompanyId", "value": 5}]},
        {"value": {"key": "CompanyId"}},
        {"secrets": []},
    ],
)
def test_bad_secret_bodies_are_400(
    http_for: HttpFor, cts: dict[str, Any], body: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    response = graph.put(f"{cts['root']}/secrets", json=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
    # Nothing changed.
    assert len(graph.get(f"{cts['root']}/secrets").json()["value"]) == 4


# -- validateCredentials ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inbound", "outbound", "sync_allowed", "failed"),
    [
        (False, True, True, {"target_inbound_consent"}),
        (True, False, True, {"source_outbound_consent"}),
        (True, True, False, {"target_inbound_sync"}),
    ],
)
def test_each_missing_policy_fails_test_connection(
    *,
    demo: Emulator,
    http_for: HttpFor,
    cts: dict[str, Any],
    inbound: bool,
    outbound: bool,
    sync_allowed: bool,
    failed: set[str],
) -> None:
    source_id, target_id = _ids(demo)
    source, target = http_for("contoso"), http_for("fabrikam")
    allow_sync(
        source,
        target,
        source_id,
        target_id,
        inbound=inbound,
        outbound=outbound,
        sync_allowed=sync_allowed,
    )
    response = source.post(
        f"{cts['root']}/jobs/validateCredentials", json=connection_body(target_id)
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "AzureDirectoryB2BManagementPolicyCheckFailure"
    assert {d["code"] for d in error["details"]} == failed
    if failed == {"target_inbound_sync"}:
        assert "inbound synchronization" in error["message"]
    else:
        assert (
            error["message"] == "Policy permitting auto-redemption of invitations not configured."
        )


def test_a_null_partner_setting_inherits_the_default(demo: Emulator, http_for: HttpFor) -> None:
    source_id, target_id = _ids(demo)
    source, target = http_for("contoso"), http_for("fabrikam")
    allow_sync(source, target, source_id, target_id)
    # Back to "inherit": the target default does not allow automatic redemption.
    reset = {"automaticUserConsentSettings": {"inboundAllowed": None}}
    target.patch(f"/policies/crossTenantAccessPolicy/partners/{source_id}", json=reset)
    result = check_cross_tenant_sync(demo, demo.tenant("contoso"), target_id)
    assert not result.ok
    assert result.checks_failed == {"target_inbound_consent"}
    assert (result.inbound_redemption, result.outbound_redemption, result.inbound_sync_allowed) == (
        False,
        True,
        True,
    )
    # A default that allows it is inherited (only reachable through the emulator's PATCH).
    demo.tenant("fabrikam").access_policy.default = {
        "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": False}
    }
    assert check_cross_tenant_sync(demo, demo.tenant("contoso"), target_id).ok


@pytest.mark.parametrize(
    ("credentials", "fragment"),
    [
        (
            [
                {"key": "CompanyId", "value": "11111111-2222-4333-8444-555555555555"},
                {"key": "AuthenticationType", "value": "SyncPolicy"},
            ],
            "could not be found",
        ),
        (
            [
                {"key": "CompanyId", "value": "not-a-guid"},
                {"key": "AuthenticationType", "value": "SyncPolicy"},
            ],
            "CompanyId",
        ),
        (
            [{"key": "CompanyId", "value": "11111111-2222-4333-8444-555555555555"}],
            "AuthenticationType",
        ),
        ([{"key": "Bogus", "value": "x"}], "Bogus"),
    ],
)
def test_bad_credentials_are_400_with_a_clear_message(
    http_for: HttpFor, cts: dict[str, Any], credentials: list[dict[str, str]], fragment: str
) -> None:
    body = {"useSavedCredentials": False, "templateId": "Azure2Azure", "credentials": credentials}
    response = http_for("contoso").post(f"{cts['root']}/jobs/validateCredentials", json=body)
    assert response.status_code == 400
    assert fragment in error_of(response)["message"]


def test_own_tenant_is_not_a_target(demo: Emulator, http_for: HttpFor, cts: dict[str, Any]) -> None:
    source_id, _ = _ids(demo)
    response = http_for("contoso").post(
        f"{cts['root']}/jobs/validateCredentials", json=connection_body(source_id)
    )
    assert response.status_code == 400
    assert "itself" in error_of(response)["message"]


def test_saved_credentials_are_required_when_asked_for(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    sp = instantiate(graph)["servicePrincipal"]
    response = graph.post(
        f"{sync_root(sp['id'])}/jobs/validateCredentials", json={"useSavedCredentials": True}
    )
    assert response.status_code == 400
    assert "saved" in error_of(response)["message"]


# -- job control -----------------------------------------------------------------------------


def test_start_needs_saved_credentials(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    sp = instantiate(graph)["servicePrincipal"]
    root = sync_root(sp["id"])
    job = graph.post(f"{root}/jobs", json={"templateId": "Azure2Azure"}).json()
    response = graph.post(f"{root}/jobs/{job['id']}/start")
    assert response.status_code == 400
    assert "CompanyId" in error_of(response)["message"]
    assert graph.get(f"{root}/jobs/{job['id']}").json()["status"]["code"] == "Paused"


def test_start_clears_quarantine(demo: Emulator, http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    record = demo.tenant("contoso").synchronization[cts["sp"]["id"]].job(cts["job"]["id"])
    assert record is not None
    status = record.job["status"]
    record.job["schedule"]["state"] = "Active"
    status["code"] = "Quarantine"
    status["countSuccessiveCompleteFailures"] = 3
    status["quarantine"] = {
        "currentBegan": "2026-01-05T09:00:00Z",
        "nextAttempt": "2026-01-05T15:00:00Z",
        "reason": "EncounteredQuarantineException",
        "seriesBegan": "2026-01-05T09:00:00Z",
        "seriesCount": 1,
        "error": {
            "code": "AzureDirectoryB2BManagementPolicyCheckFailure",
            "message": "",
            "tenantActionable": True,
        },
    }
    assert_conforms("synchronizationJob", graph.get(cts["job_path"]).json())
    assert record.quarantine is not None
    assert graph.post(f"{cts['job_path']}/start").status_code == 204
    job = graph.get(cts["job_path"]).json()
    assert job["status"]["quarantine"] is None
    assert job["status"]["code"] == "NotRun"
    assert record.quarantine is None


def test_starting_a_running_job_changes_nothing(
    demo: Emulator, http_for: HttpFor, cts: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    assert graph.post(f"{cts['job_path']}/start").status_code == 204
    record = demo.tenant("contoso").synchronization[cts["sp"]["id"]].job(cts["job"]["id"])
    assert record is not None
    record.job["status"]["countSuccessiveCompleteFailures"] = 2
    before = copy.deepcopy(record.job)
    assert graph.post(f"{cts['job_path']}/start").status_code == 204
    assert record.job == before


def test_a_job_that_has_run_goes_back_to_active(
    demo: Emulator, http_for: HttpFor, cts: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    record = demo.tenant("contoso").synchronization[cts["sp"]["id"]].job(cts["job"]["id"])
    assert record is not None
    record.completed_cycles = 1
    graph.post(f"{cts['job_path']}/pause")
    graph.post(f"{cts['job_path']}/start")
    assert graph.get(cts["job_path"]).json()["status"]["code"] == "Active"


@pytest.mark.parametrize(
    ("scope", "watermark", "escrows", "store", "force"),
    [
        ("Full", None, 0, 0, False),
        ("ConnectorDataStore", "w", 1, 0, False),
        ("ForceDeletes", "w", 1, 1, True),
        ("None", "w", 1, 1, False),
        (None, "w", 1, 1, False),
    ],
)
def test_restart_scopes_reset_what_they_name(
    *,
    demo: Emulator,
    http_for: HttpFor,
    cts: dict[str, Any],
    scope: str | None,
    watermark: str | None,
    escrows: int,
    store: int,
    force: bool,
) -> None:
    record = demo.tenant("contoso").synchronization[cts["sp"]["id"]].job(cts["job"]["id"])
    assert record is not None
    record.watermark, record.escrows, record.connector_data_store = "w", {"u": {}}, {"u": "t"}
    body = {"criteria": {"resetScope": scope}} if scope is not None else None
    response = http_for("contoso").post(f"{cts['job_path']}/restart", json=body)
    assert response.status_code == 204
    assert record.watermark == watermark
    assert len(record.escrows) == escrows
    assert len(record.connector_data_store) == store
    assert record.force_deletes is force
    assert record.full_sync_due


@pytest.mark.parametrize(
    "body",
    [
        {"criteria": {"resetScope": "Everything"}},
        {"criteria": {"resetScope": "Watermark, Bogus"}},
        {"criteria": {"scope": "Full"}},
        {"reset": "Full"},
    ],
)
def test_bad_restart_scope_is_400(
    http_for: HttpFor, cts: dict[str, Any], body: dict[str, Any]
) -> None:
    response = http_for("contoso").post(f"{cts['job_path']}/restart", json=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


# -- schema ----------------------------------------------------------------------------------


def test_the_default_schema_is_the_cts_default(http_for: HttpFor, cts: dict[str, Any]) -> None:
    schema = http_for("contoso").get(f"{cts['job_path']}/schema").json()
    assert schema["@odata.context"].endswith(
        f"synchronization/jobs('{cts['job']['id']}')/schema/$entity"
    )
    assert schema["version"] == "v1.2"
    [rule] = schema["synchronizationRules"]
    assert rule["name"] == "USER_INBOUND_USER"
    assert (rule["priority"], rule["editable"]) == (1, True)
    assert rule["sourceDirectoryName"] == "Azure Active Directory"
    assert rule["targetDirectoryName"] == "Azure Active Directory (target tenant)"
    assert {m["key"] for m in rule["metadata"]} == {
        "defaultSourceObjectMappings",
        "supportsProvisionOnDemand",
    }
    users = _user_mapping(schema)
    assert users["name"] == "Provision Azure Active Directory Users"
    assert users["enabled"] is True
    assert users["flowTypes"] == "Add, Update, Delete"
    targets = [m["targetAttributeName"] for m in users["attributeMappings"]]
    assert targets[:4] == [
        "alternativeSecurityIds",
        "IsSoftDeleted",
        "accountEnabled",
        "streetAddress",
    ]
    assert {"mail", "userPrincipalName", "manager", "showInAddressList", "userType"} <= set(targets)
    assert len(targets) == 23  # rows 1-22 of cts-defaults §1.2, row 14 being two
    by_target = {m["targetAttributeName"]: m for m in users["attributeMappings"]}
    assert by_target["alternativeSecurityIds"]["matchingPriority"] == 1
    assert (
        by_target["alternativeSecurityIds"]["source"]["expression"] == "AltSecIdFromNetId([netId])"
    )
    assert [m for m in users["attributeMappings"] if m["matchingPriority"]] == [
        by_target["alternativeSecurityIds"]
    ]
    assert by_target["userType"]["flowType"] == "ObjectAddOnly"
    assert by_target["userType"]["source"] == {
        "type": "Constant",
        "name": "Member",
        "expression": '"Member"',
        "parameters": [],
    }
    assert by_target["showInAddressList"]["source"]["type"] == "Constant"
    assert users["scope"]["groups"] == []
    [input_filter] = users["scope"]["inputFilterGroups"]
    assert input_filter["name"] == "Filter external users"
    assert [
        (c["sourceOperandName"], c["operatorName"], c["targetOperand"]["values"])
        for c in input_filter["clauses"]
    ] == [
        ("alternativeSecurityIds", "EQUALS", ["None"]),
        ("userState", "NOT EQUALS", ["PendingAcceptance"]),
    ]
    groups = next(m for m in rule["objectMappings"] if m["sourceObjectName"] == "Group")
    assert groups["enabled"] is False
    assert_conforms("synchronizationSchema", schema)


def test_rule_ids_are_per_job(demo: Emulator, http_for: HttpFor) -> None:
    graph = http_for("contoso")
    ids = []
    for name in ("A", "B"):
        sp = instantiate(graph, name)["servicePrincipal"]
        root = sync_root(sp["id"])
        job = graph.post(f"{root}/jobs", json={"templateId": "Azure2Azure"}).json()
        schema = graph.get(f"{root}/jobs/{job['id']}/schema").json()
        ids.append(schema["synchronizationRules"][0]["id"])
    assert ids[0] != ids[1]


def test_changing_the_matching_attribute_is_schema_invalid(
    http_for: HttpFor, cts: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    original = graph.get(f"{cts['job_path']}/schema").json()

    added = copy.deepcopy(original)
    mail = next(
        m for m in _user_mapping(added)["attributeMappings"] if m["targetAttributeName"] == "mail"
    )
    mail["matchingPriority"] = 2
    moved = copy.deepcopy(original)
    for m in _user_mapping(moved)["attributeMappings"]:
        m["matchingPriority"] = 1 if m["targetAttributeName"] == "userPrincipalName" else 0
    for schema in (added, moved):
        response = graph.put(f"{cts['job_path']}/schema", json=schema)
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "schemaInvalid"
        assert "alternativeSecurityIds" in error["message"]
    assert graph.get(f"{cts['job_path']}/schema").json() == original


def test_unknown_scoping_operator_is_400(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    schema = graph.get(f"{cts['job_path']}/schema").json()
    _user_mapping(schema)["scope"]["groups"] = [
        {
            "name": "g",
            "clauses": [
                {
                    "sourceOperandName": "department",
                    "operatorName": "IS_TRUE",
                    "targetOperand": {"values": []},
                }
            ],
        }
    ]
    response = graph.put(f"{cts['job_path']}/schema", json=schema)
    assert response.status_code == 400
    assert "IS_TRUE" in error_of(response)["message"]


def test_schema_put_checks_the_v1_types(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    schema = graph.get(f"{cts['job_path']}/schema").json()
    _user_mapping(schema)["attributeMappings"][3]["flowType"] = "Sometimes"
    response = graph.put(f"{cts['job_path']}/schema", json=schema)
    assert response.status_code == 400
    assert "Sometimes" in error_of(response)["message"]
    assert (
        graph.put(f"{cts['job_path']}/schema", json={"synchronizationRules": []}).status_code == 400
    )


def test_saving_an_unchanged_schema_does_not_force_a_full_cycle(
    demo: Emulator, http_for: HttpFor, cts: dict[str, Any]
) -> None:
    graph = http_for("contoso")
    record = demo.tenant("contoso").synchronization[cts["sp"]["id"]].job(cts["job"]["id"])
    assert record is not None
    record.full_sync_due, record.full_sync_reasons = False, []
    schema = graph.get(f"{cts['job_path']}/schema").json()
    assert graph.put(f"{cts['job_path']}/schema", json=schema).status_code == 204
    assert not record.full_sync_due
    # Directories are discovered, not replaced: a PUT without them keeps them.
    del schema["directories"]
    assert graph.put(f"{cts['job_path']}/schema", json=schema).status_code == 204
    assert not record.full_sync_due
    assert graph.get(f"{cts['job_path']}/schema").json()["directories"]


def test_filter_operators_and_functions(http_for: HttpFor, cts: dict[str, Any]) -> None:
    graph = http_for("contoso")
    operators = graph.get(f"{cts['job_path']}/schema/filterOperators").json()["value"]
    names = [o["name"] for o in operators]
    assert names[:8] == [
        "EQUALS",
        "IS FALSE",
        "IS NOT NULL",
        "IS NULL",
        "IS TRUE",
        "NOT EQUALS",
        "NOT REGEX MATCH",
        "REGEX MATCH",
    ]
    assert set(names[8:]) == {
        "&",
        "!&",
        "ENDS_WITH",
        "Greater_Than",
        "Greater_Than_OR_EQUALS",
        "Includes",
    }
    for operator in operators:
        # Microsoft's examples name operators by "name", which v1.0 metadata does not declare.
        assert_conforms("filterOperatorSchema", {k: v for k, v in operator.items() if k != "name"})
    functions = graph.get(f"{cts['job_path']}/schema/functions").json()["value"]
    assert [f["name"] for f in functions][:3] == ["Append", "DefaultDomain", "AppRoleAssignments"]
    join = next(f for f in functions if f["name"] == "Join")
    assert join["parameters"][1] == {
        "allowMultipleOccurrences": True,
        "name": "source",
        "required": True,
        "type": "String",
    }
    for function in functions:
        assert_conforms(
            "attributeMappingFunctionSchema", {k: v for k, v in function.items() if k != "name"}
        )


# -- permissions and isolation ---------------------------------------------------------------


def test_read_only_sync_permission_cannot_write(demo: Emulator, cts: dict[str, Any]) -> None:
    with client_with(demo, "contoso", ["Synchronization.Read.All"]) as reader:
        assert reader.get(cts["job_path"]).status_code == 200
        assert reader.get(f"{cts['job_path']}/schema").status_code == 200
        for response in (
            reader.post(f"{cts['job_path']}/start"),
            reader.put(f"{cts['root']}/secrets", json={"value": []}),
            reader.delete(cts["job_path"]),
        ):
            assert response.status_code == 403
            assert error_of(response)["code"] == "Authorization_RequestDenied"
    with client_with(demo, "contoso", ["User.Read.All"]) as stranger:
        assert stranger.get(cts["job_path"]).status_code == 403


def test_owned_by_reaches_only_apps_the_caller_owns(demo: Emulator, cts: dict[str, Any]) -> None:
    with client_with(demo, "contoso", ["Application.ReadWrite.OwnedBy"]) as owner_app:
        # Someone else's configuration app.
        assert owner_app.get(cts["job_path"]).status_code == 403
        assert owner_app.post(f"{cts['job_path']}/pause").status_code == 403
        # Its own one: the instantiating client becomes owner.
        mine = instantiate(owner_app, "Mine")["servicePrincipal"]
        root = sync_root(mine["id"])
        job = owner_app.post(f"{root}/jobs", json={"templateId": "Azure2Azure"})
        assert job.status_code == 201
        assert owner_app.get(f"{root}/jobs/{job.json()['id']}/schema").status_code == 200


def test_tenant_b_cannot_see_tenant_a_synchronization(
    http_for: HttpFor, cts: dict[str, Any]
) -> None:
    other = http_for("fabrikam")
    assert other.get(cts["job_path"]).status_code == 404
    assert other.get(f"{cts['root']}/jobs").status_code == 404
    assert other.put(f"{cts['root']}/secrets", json={"value": []}).status_code == 404


def test_control_state_counts_jobs(demo: Emulator, cts: dict[str, Any]) -> None:
    with httpx.Client(transport=EmulatorTransport(demo)) as control:
        response = control.get("https://graph.microsoft.com/_emulator/state")
    contoso = next(t for t in response.json()["tenants"] if t["name"] == "contoso")
    assert contoso["applications"] == 1
    assert contoso["service_principals"] == 1
    assert contoso["synchronization_jobs"] == [
        {
            "service_principal_id": cts["sp"]["id"],
            "job_id": cts["job"]["id"],
            "status": "Paused",
            "schedule": "Disabled",
            "full_sync_due": True,
        }
    ]
