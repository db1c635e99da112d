"""Tenants in different Microsoft clouds: ``allowedCloudEndpoints`` gates their partner settings
and the provisioning between them (docs/emulator.md, "Cross-cloud")."""

from __future__ import annotations

import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.scenarios import ScenarioError
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import allow_sync, connection_body, error_of, instantiate, sync_root

POLICY = "/policies/crossTenantAccessPolicy"
PARTNERS = f"{POLICY}/partners"


def test_allowed_cloud_endpoints_read_and_patched(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    assert graph.get(POLICY).json()["allowedCloudEndpoints"] == []
    body = {"allowedCloudEndpoints": ["microsoftonline.us", "partner.microsoftonline.cn"]}
    assert graph.patch(POLICY, json=body).status_code == 204
    shown = graph.get(POLICY).json()
    assert shown["allowedCloudEndpoints"] == ["microsoftonline.us", "partner.microsoftonline.cn"]
    assert_conforms("crossTenantAccessPolicy", shown)
    # A PATCH replaces the collection whole.
    assert graph.patch(POLICY, json={"allowedCloudEndpoints": []}).status_code == 204
    assert graph.get(POLICY).json()["allowedCloudEndpoints"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"allowedCloudEndpoints": ["microsoftonline.de"]},
        {"allowedCloudEndpoints": "microsoftonline.us"},
        {"allowedCloudEndpoints": None},
        {"cloudEndpoints": ["microsoftonline.us"]},
        {"id": "x"},
    ],
)
def test_bad_policy_bodies_are_refused(http_for: HttpFor, body: dict[str, object]) -> None:
    response = http_for("contoso").patch(POLICY, json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] in {"Request_BadRequest", "BadRequest"}


def test_partner_in_another_cloud_needs_its_cloud_allowed(
    demo: Emulator, http_for: HttpFor
) -> None:
    demo.tenant("fabrikam").cloud = "usgov"
    contoso, fabrikam = http_for("contoso"), http_for("fabrikam")
    fabrikam_id, contoso_id = demo.tenant("fabrikam").id, demo.tenant("contoso").id
    refused = contoso.post(PARTNERS, json={"tenantId": fabrikam_id})
    assert refused.status_code == 400
    assert "microsoftonline.us" in error_of(refused)["message"]
    allow_us = {"allowedCloudEndpoints": ["microsoftonline.us"]}
    assert contoso.patch(POLICY, json=allow_us).status_code == 204
    assert contoso.post(PARTNERS, json={"tenantId": fabrikam_id}).status_code == 201
    # The other side is checked on its own: Fabrikam (usgov) must allow the commercial cloud.
    assert fabrikam.post(PARTNERS, json={"tenantId": contoso_id}).status_code == 400


def test_provisioning_across_clouds_needs_both_sides(demo: Emulator, http_for: HttpFor) -> None:
    source, target = http_for("contoso"), http_for("fabrikam")
    source_id, target_id = demo.tenant("contoso").id, demo.tenant("fabrikam").id
    # Everything set up while both were in the same cloud, then the target moves (as a
    # scenario can seed it): the cloud check is what fails.
    allow_sync(source, target, source_id, target_id)
    demo.tenant("fabrikam").cloud = "usgov"
    sp = instantiate(source)["servicePrincipal"]
    root = sync_root(sp["id"])
    failed = source.post(f"{root}/jobs/validateCredentials", json=connection_body(target_id))
    assert failed.status_code == 400
    checks = {d["code"] for d in error_of(failed)["details"]}
    assert checks == {"source_cloud_not_allowed", "target_cloud_not_allowed"}
    source.patch(POLICY, json={"allowedCloudEndpoints": ["microsoftonline.us"]})
    failed = source.post(f"{root}/jobs/validateCredentials", json=connection_body(target_id))
    assert {d["code"] for d in error_of(failed)["details"]} == {"target_cloud_not_allowed"}
    target.patch(POLICY, json={"allowedCloudEndpoints": ["microsoftonline.com"]})
    ok = source.post(f"{root}/jobs/validateCredentials", json=connection_body(target_id))
    assert ok.status_code == 204, ok.text


def test_scenario_tenants_carry_a_cloud() -> None:
    scenario = {
        "tenants": [
            {"name": "gov", "cloud": "usgov", "allowed_cloud_endpoints": ["microsoftonline.com"]},
            {"name": "com"},
        ]
    }
    emulator = Emulator(scenario=scenario)
    assert emulator.tenant("gov").cloud == "usgov"
    assert emulator.tenant("gov").access_policy.allowed_cloud_endpoints == ["microsoftonline.com"]
    assert emulator.tenant("com").cloud == "global"
    with pytest.raises(ScenarioError, match="cloud"):
        Emulator(scenario={"tenants": [{"name": "x", "cloud": "mars"}]})
    with pytest.raises(ScenarioError, match="allowed_cloud_endpoints"):
        Emulator(scenario={"tenants": [{"name": "x", "allowed_cloud_endpoints": ["nope"]}]})
