"""The multitenant organization (MTO): create, add tenants, join on the emulator clock,
templates applied to partner configurations, removal, permissions and bad bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from tests.conformance import assert_conforms
from tests.emulator.conftest import GRAPH
from tests.emulator.cts_helpers import client_with, error_of

MTO = "/tenantRelationships/multiTenantOrganization"
TEMPLATES = "/policies/crossTenantAccessPolicy/templates"
PARTNER_TEMPLATE = TEMPLATES + "/multiTenantOrganizationPartnerConfiguration"
SYNC_TEMPLATE = TEMPLATES + "/multiTenantOrganizationIdentitySynchronization"
ADMIN = ["MultiTenantOrganization.ReadWrite.All", "Policy.ReadWrite.CrossTenantAccess"]
HOUR = 3600.0


def _bare(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("@")}


def _conforming(type_name: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(type_name, _bare(body))
    return body


class _Admins(dict[str, httpx.Client]):
    """An admin client per demo tenant, signed in again on each use: the clock moves past
    the tokens' lifetime."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator
        self.apps = {
            name: emulator.add_client(emulator.tenant(name), permissions=ADMIN, display_name="t")
            for name in ("contoso", "fabrikam", "tailspin")
        }

    def __getitem__(self, name: str) -> httpx.Client:
        token = EmulatorCredential(
            self.emulator, name, client_id=self.apps[name].client_id
        ).get_token("https://graph.microsoft.com/.default")
        client = httpx.Client(
            base_url=GRAPH,
            transport=EmulatorTransport(self.emulator),
            headers={"authorization": f"Bearer {token.token}"},
        )
        self.setdefault(f"{name}#{len(self)}", client)
        return client


@pytest.fixture
def admins(demo: Emulator) -> Iterator[_Admins]:
    clients = _Admins(demo)
    yield clients
    for client in clients.values():
        client.close()


def _create_with_members(demo: Emulator, admins: _Admins) -> None:
    created = admins["contoso"].put(
        MTO, json={"displayName": "Contoso group", "description": "all of us"}
    )
    assert created.status_code == 201, created.text
    assert_conforms("multiTenantOrganization", _bare(created.json()))
    assert created.json()["state"] == "active"
    for name in ("fabrikam", "tailspin"):
        tenant = demo.tenant(name)
        added = admins["contoso"].post(
            MTO + "/tenants", json={"tenantId": tenant.id, "displayName": tenant.display_name}
        )
        assert added.status_code == 201, added.text
        member = added.json()
        assert_conforms("multiTenantOrganizationMember", _bare(member))
        assert (member["state"], member["role"]) == ("pending", "member")
        assert member["addedByTenantId"] == demo.tenant("contoso").id


def _join_all(demo: Emulator, admins: _Admins) -> None:
    owner_id = demo.tenant("contoso").id
    for name in ("fabrikam", "tailspin"):
        joined = admins[name].patch(MTO + "/joinRequest", json={"addedByTenantId": owner_id})
        assert joined.status_code == 204, joined.text


def test_owner_creates_adds_members_and_joins_complete_on_the_clock(
    demo: Emulator, admins: _Admins
) -> None:
    before = _conforming("multiTenantOrganization", admins["fabrikam"].get(MTO))
    assert before["state"] == "inactive"
    blank = _conforming(
        "multiTenantOrganizationJoinRequestRecord", admins["fabrikam"].get(MTO + "/joinRequest")
    )
    assert blank["addedByTenantId"] == "00000000-0000-0000-0000-000000000000"
    _create_with_members(demo, admins)
    tenants = admins["contoso"].get(MTO + "/tenants").json()["value"]
    assert {(m["role"], m["state"]) for m in tenants} == {
        ("owner", "active"),
        ("member", "pending"),
    }
    for member in tenants:
        assert_conforms("multiTenantOrganizationMember", member)
    _join_all(demo, admins)
    record = _conforming(
        "multiTenantOrganizationJoinRequestRecord", admins["fabrikam"].get(MTO + "/joinRequest")
    )
    assert record["memberState"] == "pending"
    assert record["transitionDetails"]["status"] == "notStarted"
    demo.advance(1.5 * HOUR)
    record = admins["fabrikam"].get(MTO + "/joinRequest").json()
    assert (record["memberState"], record["transitionDetails"]["status"]) == ("pending", "running")
    # Not before the documented two hours.
    assert admins["fabrikam"].get(MTO).json()["state"] == "inactive"
    demo.advance(0.5 * HOUR)
    record = _conforming(
        "multiTenantOrganizationJoinRequestRecord", admins["fabrikam"].get(MTO + "/joinRequest")
    )
    assert (record["memberState"], record["role"], record["transitionDetails"]) == (
        "active",
        "member",
        None,
    )
    seen = _conforming("multiTenantOrganization", admins["fabrikam"].get(MTO))
    assert (seen["displayName"], seen["state"]) == ("Contoso group", "active")
    fabrikam_id = demo.tenant("fabrikam").id
    member = _conforming(
        "multiTenantOrganizationMember", admins["fabrikam"].get(f"{MTO}/tenants/{fabrikam_id}")
    )
    assert member["state"] == "active"
    assert member["joinedDateTime"] is not None
    assert admins["contoso"].patch(MTO, json={"description": "renamed"}).status_code == 204
    assert admins["fabrikam"].get(MTO).json()["description"] == "renamed"


def test_templates_shape_partner_configurations_when_tenants_join(
    demo: Emulator, admins: _Admins
) -> None:
    default = _conforming(
        "multiTenantOrganizationPartnerConfigurationTemplate",
        admins["fabrikam"].get(PARTNER_TEMPLATE),
    )
    assert default["templateApplicationLevel"] == "newPartners,existingPartners"
    inbound = {"isMfaAccepted": True, "isCompliantDeviceAccepted": False}
    patch = {"inboundTrust": inbound, "templateApplicationLevel": "newPartners"}
    assert admins["fabrikam"].patch(PARTNER_TEMPLATE, json=patch).status_code == 204
    sync = {"userSyncInbound": {"isSyncAllowed": True}}
    assert admins["fabrikam"].patch(SYNC_TEMPLATE, json=sync).status_code == 204
    got = _conforming(
        "multiTenantOrganizationIdentitySyncPolicyTemplate", admins["fabrikam"].get(SYNC_TEMPLATE)
    )
    assert got["userSyncInbound"] == {"isSyncAllowed": True}
    _create_with_members(demo, admins)
    _join_all(demo, admins)
    demo.advance(2 * HOUR)
    contoso_id, tailspin_id = demo.tenant("contoso").id, demo.tenant("tailspin").id
    partners = "/policies/crossTenantAccessPolicy/partners"
    for other in (contoso_id, tailspin_id):
        partner = _conforming(
            "crossTenantAccessPolicyConfigurationPartner",
            admins["fabrikam"].get(f"{partners}/{other}"),
        )
        assert partner["isInMultiTenantOrganization"] is True
        assert partner["inboundTrust"]["isMfaAccepted"] is True
        policy = admins["fabrikam"].get(f"{partners}/{other}/identitySynchronization").json()
        assert policy["userSyncInbound"]["isSyncAllowed"] is True
    # Contoso's templates are the defaults: partners made, flagged, nothing else set.
    fabrikam_id = demo.tenant("fabrikam").id
    partner = admins["contoso"].get(f"{partners}/{fabrikam_id}").json()
    assert partner["isInMultiTenantOrganization"] is True
    assert partner["inboundTrust"] is None
    missing = admins["contoso"].get(f"{partners}/{fabrikam_id}/identitySynchronization")
    assert missing.status_code == 404
    reset = admins["fabrikam"].post(PARTNER_TEMPLATE + "/resetToDefaultSettings")
    assert reset.status_code == 204
    assert admins["fabrikam"].get(PARTNER_TEMPLATE).json()["inboundTrust"] is None


def test_removal_completes_on_the_clock_and_clears_the_flag(
    demo: Emulator, admins: _Admins
) -> None:
    _create_with_members(demo, admins)
    _join_all(demo, admins)
    demo.advance(2 * HOUR)
    tailspin_id = demo.tenant("tailspin").id
    # A member may not remove another tenant.
    refused = admins["fabrikam"].delete(f"{MTO}/tenants/{tailspin_id}")
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "Authorization_RequestDenied"
    assert admins["contoso"].delete(f"{MTO}/tenants/{tailspin_id}").status_code == 204
    member = admins["contoso"].get(f"{MTO}/tenants/{tailspin_id}").json()
    assert member["state"] == "removed"
    assert member["transitionDetails"]["desiredState"] == "removed"
    demo.advance(2 * HOUR)
    gone = admins["contoso"].get(f"{MTO}/tenants/{tailspin_id}")
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "Directory_ObjectNotFound"
    partner = (
        admins["contoso"].get(f"/policies/crossTenantAccessPolicy/partners/{tailspin_id}").json()
    )
    assert partner["isInMultiTenantOrganization"] is False
    assert admins["tailspin"].get(MTO).json()["state"] == "inactive"
    # Adding a tenant twice is Graph's documented 400.
    fabrikam_id = demo.tenant("fabrikam").id
    again = admins["contoso"].post(
        MTO + "/tenants", json={"tenantId": fabrikam_id, "displayName": "F"}
    )
    assert again.status_code == 400
    assert (
        error_of(again)["message"] == "Tenant is already being added in Multi-Tenant Organization."
    )


def test_join_without_being_added_fails_and_can_be_reset(demo: Emulator, admins: _Admins) -> None:
    assert admins["contoso"].put(MTO, json={"displayName": "C"}).status_code == 201
    owner_id = demo.tenant("contoso").id
    assert (
        admins["tailspin"]
        .patch(MTO + "/joinRequest", json={"addedByTenantId": owner_id})
        .status_code
        == 204
    )
    demo.advance(2 * HOUR)
    record = _conforming(
        "multiTenantOrganizationJoinRequestRecord", admins["tailspin"].get(MTO + "/joinRequest")
    )
    assert record["transitionDetails"]["status"] == "failed"
    assert record["memberState"] == "pending"
    zero = {"addedByTenantId": "00000000-0000-0000-0000-000000000000"}
    assert admins["tailspin"].patch(MTO + "/joinRequest", json=zero).status_code == 204
    assert admins["tailspin"].get(MTO + "/joinRequest").json()["transitionDetails"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "permission"),
    [
        ("GET", MTO, None, "Policy.Read.All"),
        ("PUT", MTO, {"displayName": "x"}, "MultiTenantOrganization.Read.All"),
        ("GET", MTO + "/joinRequest", None, "MultiTenantOrganization.ReadBasic.All"),
        ("PATCH", PARTNER_TEMPLATE, {"templateApplicationLevel": "none"}, "Policy.Read.All"),
        ("GET", SYNC_TEMPLATE, None, "MultiTenantOrganization.ReadWrite.All"),
    ],
)
def test_calls_without_the_permission_are_403(
    demo: Emulator, method: str, path: str, body: Any, permission: str
) -> None:
    with client_with(demo, "contoso", [permission]) as graph:
        response = graph.request(method, path, json=body)
    assert response.status_code == 403
    assert error_of(response)["code"] == "Authorization_RequestDenied"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", MTO, {}),
        ("PUT", MTO, {"displayName": "x", "state": "inactive"}),
        ("PUT", MTO, {"displayName": 5}),
        ("PUT", MTO, {"shoeSize": 42}),
        ("PATCH", MTO + "/joinRequest", {"addedByTenantId": "not-a-guid"}),
        ("PATCH", MTO + "/joinRequest", {"memberState": "active"}),
        ("PATCH", MTO + "/joinRequest", []),
        ("PATCH", PARTNER_TEMPLATE, {"templateApplicationLevel": "sometimes"}),
        ("PATCH", PARTNER_TEMPLATE, {"templateApplicationLevel": None}),
        ("PATCH", SYNC_TEMPLATE, {"userSyncInbound": {"isSyncAllowed": "yes"}}),
        ("PATCH", SYNC_TEMPLATE, {"id": "x"}),
    ],
)
def test_bad_bodies_are_400(admins: _Admins, method: str, path: str, body: Any) -> None:
    response = admins["contoso"].request(method, path, json=body)
    assert response.status_code == 400, response.text
    error_of(response)


def test_member_bodies_and_owner_rules(demo: Emulator, admins: _Admins) -> None:
    not_yet = admins["contoso"].post(
        MTO + "/tenants", json={"tenantId": demo.tenant("fabrikam").id}
    )
    assert not_yet.status_code == 400  # checked before the missing MTO: no displayName
    assert admins["contoso"].get(MTO + "/tenants").status_code == 404
    assert admins["contoso"].put(MTO, json={"displayName": "C"}).status_code == 201
    assert admins["contoso"].put(MTO, json={"displayName": "again"}).status_code == 400
    for body in (
        {"tenantId": "nope", "displayName": "x"},
        {"tenantId": demo.tenant("fabrikam").id, "displayName": "x", "state": "active"},
        {"tenantId": demo.tenant("fabrikam").id, "displayName": "x", "role": "boss"},
    ):
        assert admins["contoso"].post(MTO + "/tenants", json=body).status_code == 400
    # Unknown query options are refused, a path Graph lacks is 400, the templates root is 501.
    assert admins["contoso"].get(MTO, params={"$top": "1"}).status_code == 400
    assert admins["contoso"].get(MTO + "/nonsense").status_code == 400
    assert admins["contoso"].get(TEMPLATES).status_code == 501
    selected = admins["contoso"].get(MTO, params={"$select": "displayName"}).json()
    assert _bare(selected) == {"displayName": "C"}


def test_state_is_in_the_tenant_and_reset_forgets_it(demo: Emulator, admins: _Admins) -> None:
    _create_with_members(demo, admins)
    _join_all(demo, admins)
    from ctsync.emulator.core.control import state

    summary = {t["name"]: t["multitenant_organization"] for t in state(demo)["tenants"]}
    assert summary["contoso"]["home_of"] is not None
    assert summary["fabrikam"]["join_request"] == "pending"
    demo.reset()
    demo.seed("demo")
    assert demo.mto_due_at is None
    assert demo.tenant("contoso").multi_tenant_org.organization is None
