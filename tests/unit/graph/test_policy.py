from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctsync.errors import ConflictError, NotFoundError
from ctsync.graph import (
    CrossTenantAccessPolicyApi,
    CrossTenantAccessPolicyB2BSetting,
    CrossTenantAccessPolicyConfigurationPartner,
    CrossTenantAccessPolicyInboundTrust,
    CrossTenantAccessPolicyTarget,
    CrossTenantAccessPolicyTargetConfiguration,
    InboundOutboundPolicyConfiguration,
    VirtualClock,
    models,
)
from tests import conformance
from tests.unit.graph.fakes import V1, FakeGraph, Reply, Seen, error, make_client

SOURCE = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"
BASE = "/policies/crossTenantAccessPolicy"

# The T2a response of graph-cts-api §1.1, undocumented member included.
CREATED = {
    "@odata.context": f"{V1}/$metadata#policies/crossTenantAccessPolicy/partners/$entity",
    "tenantId": SOURCE,
    "isServiceProvider": None,
    "inboundTrust": None,
    "b2bCollaborationOutbound": None,
    "b2bCollaborationInbound": None,
    "b2bDirectConnectOutbound": None,
    "b2bDirectConnectInbound": None,
    "tenantRestrictions": None,
    "crossCloudMeetingConfiguration": {"inboundAllowed": None, "outboundAllowed": None},
    "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": None},
}


def run(graph: FakeGraph, call: Any) -> Any:
    async def main() -> Any:
        async with make_client(graph) as client:
            return await call(CrossTenantAccessPolicyApi(client))

    return asyncio.run(main())


def test_create_partner_sends_graph_names_and_keeps_unknown_members() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("POST", f"{BASE}/partners", Reply(201, CREATED))
    partner = run(
        graph,
        lambda api: api.create_partner(
            SOURCE,
            automatic_user_consent_settings=InboundOutboundPolicyConfiguration(
                inbound_allowed=True
            ),
        ),
    )
    assert graph.requests[0].body == {
        "tenantId": SOURCE,
        "automaticUserConsentSettings": {"inboundAllowed": True},
    }
    assert isinstance(partner, CrossTenantAccessPolicyConfigurationPartner)
    assert partner.automatic_user_consent_settings is not None
    assert partner.automatic_user_consent_settings.inbound_allowed is True
    assert partner.model_extra is not None
    assert partner.model_extra["crossCloudMeetingConfiguration"] == {
        "inboundAllowed": None,
        "outboundAllowed": None,
    }


def test_create_existing_partner_is_a_conflict() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("POST", f"{BASE}/partners", error(409, "Request_MultipleObjectsWithSameKeyValue"))
    with pytest.raises(ConflictError):
        run(graph, lambda api: api.create_partner(SOURCE))


def test_update_partner_sends_explicit_none_as_null() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PATCH", f"{BASE}/partners/{SOURCE}", Reply(204))
    run(
        graph,
        lambda api: api.update_partner(
            SOURCE,
            {"inbound_trust": None, "automaticUserConsentSettings": {"inboundAllowed": True}},
        ),
    )
    [sent] = graph.requests
    assert sent.body == {
        "inboundTrust": None,
        "automaticUserConsentSettings": {"inboundAllowed": True},
    }
    assert "inboundTrust" in sent.body  # present and null: "inherit the default again"


def test_get_partner_and_missing_partner() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("GET", f"{BASE}/partners/{SOURCE}", Reply(200, CREATED))
    graph.on("GET", f"{BASE}/partners/nobody", error(404, "Directory_ObjectNotFound"))
    partner = run(graph, lambda api: api.get_partner(SOURCE))
    assert partner.tenant_id == SOURCE
    with pytest.raises(NotFoundError):
        run(graph, lambda api: api.get_partner("nobody"))


def test_list_partners_reads_every_page() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on(
        "GET",
        f"{BASE}/partners",
        Reply(200, {"value": [CREATED], "@odata.nextLink": f"{V1}{BASE}/partners?$skiptoken=2"}),
    )
    graph.on("GET", f"{BASE}/partners?$skiptoken=2", Reply(200, {"value": [{"tenantId": "other"}]}))
    partners = run(graph, lambda api: api.list_partners())
    assert [p.tenant_id for p in partners] == [SOURCE, "other"]


def test_identity_sync_calls() -> None:
    graph = FakeGraph(VirtualClock())
    path = f"{BASE}/partners/{SOURCE}/identitySynchronization"
    graph.on("PUT", path, Reply(204))
    graph.on("PATCH", path, Reply(204))
    graph.on("DELETE", path, Reply(204))
    graph.on("DELETE", f"{BASE}/partners/{SOURCE}", Reply(204))
    graph.on(
        "GET",
        path,
        Reply(
            200,
            {
                "tenantId": SOURCE,
                "displayName": "Fabrikam",
                "userSyncInbound": {"isSyncAllowed": True},
            },
        ),
    )

    async def calls(api: CrossTenantAccessPolicyApi) -> Any:
        await api.put_identity_sync(SOURCE, display_name="Fabrikam")
        await api.update_identity_sync(SOURCE, {"user_sync_inbound": {"isSyncAllowed": False}})
        policy = await api.get_identity_sync(SOURCE)
        await api.delete_identity_sync(SOURCE)
        await api.delete_partner(SOURCE)
        return policy

    policy = run(graph, calls)
    assert policy.user_sync_inbound.is_sync_allowed is True
    assert policy.display_name == "Fabrikam"
    put, patch, _, delete_sync, delete_partner = graph.requests
    assert put.body == {"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": True}}
    assert patch.body == {"userSyncInbound": {"isSyncAllowed": False}}
    assert (delete_sync.method, delete_sync.path) == ("DELETE", path)
    assert (delete_partner.method, delete_partner.path) == ("DELETE", f"{BASE}/partners/{SOURCE}")


def test_default_policy_calls() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on(
        "GET",
        f"{BASE}/default",
        Reply(
            200,
            {
                "id": "default",
                "isServiceDefault": True,
                "inboundTrust": {
                    "isMfaAccepted": False,
                    "isCompliantDeviceAccepted": False,
                    "isHybridAzureADJoinedDeviceAccepted": False,
                },
                "b2bCollaborationInbound": {
                    "usersAndGroups": {
                        "accessType": "allowed",
                        "targets": [{"target": "AllUsers", "targetType": "user"}],
                    }
                },
            },
        ),
    )
    graph.on("PATCH", f"{BASE}/default", Reply(204))
    graph.on("POST", f"{BASE}/default/resetToSystemDefault", Reply(204))

    async def calls(api: CrossTenantAccessPolicyApi) -> Any:
        default = await api.get_default()
        await api.update_default(
            {
                "inboundTrust": CrossTenantAccessPolicyInboundTrust(
                    is_hybrid_azure_ad_joined_device_accepted=True
                )
            }
        )
        await api.reset_default()
        return default

    default = run(graph, calls)
    assert default.is_service_default is True
    assert default.inbound_trust.is_hybrid_azure_ad_joined_device_accepted is False
    target = default.b2b_collaboration_inbound.users_and_groups.targets[0]
    assert (target.target, target.target_type) == ("AllUsers", "user")
    _, patch, reset = graph.requests
    assert patch.body == {"inboundTrust": {"isHybridAzureADJoinedDeviceAccepted": True}}
    assert (reset.method, reset.path, reset.body) == (
        "POST",
        f"{BASE}/default/resetToSystemDefault",
        None,
    )


def test_find_tenant_information() -> None:
    graph = FakeGraph(VirtualClock())

    def answer(seen: Seen) -> Reply:
        return Reply(
            200,
            {"tenantId": SOURCE, "displayName": "Fabrikam", "defaultDomainName": "fabrikam.com"},
        )

    graph.on(
        "GET", f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{SOURCE}')", answer
    )
    info = run(graph, lambda api: api.find_tenant_information(SOURCE))
    assert (info.tenant_id, info.display_name, info.default_domain_name) == (
        SOURCE,
        "Fabrikam",
        "fabrikam.com",
    )
    assert (
        graph.requests[0].url
        == f"{V1}/tenantRelationships/findTenantInformationByTenantId(tenantId='{SOURCE}')"
    )


def test_model_field_names_match_graph_v1_metadata() -> None:
    checked = 0
    for name in models.__all__:
        graph_type = name[0].lower() + name[1:]
        if graph_type not in conformance.types():
            continue
        model = getattr(models, name)
        aliases = {field.alias or key for key, field in model.model_fields.items()}
        assert aliases <= set(conformance.properties(graph_type)), name
        checked += 1
    assert checked == 11


def test_bodies_sent_conform_to_graph_v1() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("POST", f"{BASE}/partners", Reply(201, CREATED))
    graph.on("PATCH", f"{BASE}/partners/{SOURCE}", Reply(204))
    graph.on("PUT", f"{BASE}/partners/{SOURCE}/identitySynchronization", Reply(204))
    graph.on("PATCH", f"{BASE}/default", Reply(204))

    async def calls(api: CrossTenantAccessPolicyApi) -> None:
        await api.create_partner(
            SOURCE,
            automatic_user_consent_settings={"inboundAllowed": True},
            b2b_direct_connect_outbound=CrossTenantAccessPolicyB2BSetting(
                users_and_groups=CrossTenantAccessPolicyTargetConfiguration(
                    access_type="blocked",
                    targets=[CrossTenantAccessPolicyTarget(target="AllUsers", target_type="user")],
                )
            ),
        )
        await api.update_partner(SOURCE, {"inboundTrust": None, "isServiceProvider": True})
        await api.put_identity_sync(SOURCE, display_name="Fabrikam")
        await api.update_default(
            {"inbound_trust": {"isMfaAccepted": True, "isHybridAzureADJoinedDeviceAccepted": False}}
        )

    run(graph, calls)
    post, patch, put, default = graph.requests
    conformance.assert_conforms("crossTenantAccessPolicyConfigurationPartner", post.body)
    conformance.assert_conforms("crossTenantAccessPolicyConfigurationPartner", patch.body)
    conformance.assert_conforms("crossTenantIdentitySyncPolicyPartner", put.body)
    conformance.assert_conforms("crossTenantAccessPolicyConfigurationDefault", default.body)
    assert post.body["b2bDirectConnectOutbound"]["usersAndGroups"]["targets"] == [
        {"target": "AllUsers", "targetType": "user"}
    ]
