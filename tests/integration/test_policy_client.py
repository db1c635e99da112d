"""CrossTenantAccessPolicyApi against the emulator: every documented answer, as typed errors."""

from __future__ import annotations

import pytest

from ctsync.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from ctsync.graph import CrossTenantAccessPolicyApi
from tests.conformance import assert_conforms
from tests.integration.conftest import World


def test_the_walkthrough_policy_steps_in_both_tenants(world: World) -> None:
    source = world.emulator.tenant("contoso").id
    target = world.emulator.tenant("fabrikam").id

    async def walk() -> None:
        in_target = CrossTenantAccessPolicyApi(world.client("fabrikam"))
        in_source = CrossTenantAccessPolicyApi(world.client("contoso"))
        # Target: partner, inbound user sync, inbound automatic redemption (reference §1.1).
        created = await in_target.create_partner(source)
        assert created.tenant_id == source
        await in_target.put_identity_sync(source, display_name="Contoso", sync_allowed=True)
        await in_target.update_partner(
            source, {"automaticUserConsentSettings": {"inboundAllowed": True}}
        )
        # Source: partner with outbound automatic redemption in the create body (§6.1).
        await in_source.create_partner(
            target, automatic_user_consent_settings={"outboundAllowed": True}
        )

        partner = await in_target.get_partner(source)
        assert partner.automatic_user_consent_settings is not None
        assert partner.automatic_user_consent_settings.inbound_allowed is True
        sync = await in_target.get_identity_sync(source)
        assert sync.user_sync_inbound is not None
        assert sync.user_sync_inbound.is_sync_allowed is True
        outbound = await in_source.get_partner(target)
        assert outbound.automatic_user_consent_settings is not None
        assert outbound.automatic_user_consent_settings.outbound_allowed is True
        assert [p.tenant_id for p in await in_target.list_partners()] == [source]

    world.run(walk)
    # Every body ctsync sent is a valid (partial) v1.0 object.
    for method, path, body in world.transport.sent:
        if body is None:
            continue
        if path.endswith("/identitySynchronization"):
            assert_conforms("crossTenantIdentitySyncPolicyPartner", body)
        elif "/partners" in path:
            assert_conforms("crossTenantAccessPolicyConfigurationPartner", body)
        assert method in {"POST", "PUT", "PATCH"}


def test_errors_carry_the_whole_call(world: World) -> None:
    source = world.emulator.tenant("contoso").id
    fabrikam = world.emulator.tenant("fabrikam").id

    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("fabrikam"))
        with pytest.raises(NotFoundError) as missing:
            await policy.get_partner(source)
        error = missing.value
        assert error.status == 404
        assert error.code == "Directory_ObjectNotFound"
        assert error.tenant == fabrikam
        assert error.method == "GET"
        assert error.path.endswith(f"/partners/{source}")
        assert error.request_id
        assert error.client_request_id
        assert error.client_request_id in str(error)

        await policy.create_partner(source)
        with pytest.raises(ConflictError) as duplicate:
            await policy.create_partner(source)
        assert duplicate.value.code == "Request_MultipleObjectsWithSameKeyValue"

        await policy.put_identity_sync(source)
        with pytest.raises(ConflictError):
            await policy.put_identity_sync(source)
        with pytest.raises(BadRequestError):
            await policy.delete_partner(source)
        await policy.delete_identity_sync(source)
        await policy.delete_partner(source)
        with pytest.raises(NotFoundError):
            await policy.delete_partner(source)

    world.run(walk)


def test_null_resets_a_partner_member_to_inherit(world: World) -> None:
    source = world.emulator.tenant("contoso").id

    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("fabrikam"))
        await policy.create_partner(source, inbound_trust={"isMfaAccepted": True})
        assert (await policy.get_partner(source)).inbound_trust is not None
        await policy.update_partner(source, {"inboundTrust": None})
        assert (await policy.get_partner(source)).inbound_trust is None

    world.run(walk)


def test_default_policy_get_patch_reset(world: World) -> None:
    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("contoso"))
        default = await policy.get_default()
        assert default.is_service_default is True
        await policy.update_default({"inboundTrust": {"isMfaAccepted": True}})
        changed = await policy.get_default()
        assert changed.is_service_default is False
        assert changed.inbound_trust is not None
        assert changed.inbound_trust.is_mfa_accepted is True
        await policy.reset_default()
        assert (await policy.get_default()).is_service_default is True

    world.run(walk)


def test_a_missing_permission_is_forbidden(world: World) -> None:
    tenant = world.emulator.tenant("contoso")
    reader = world.emulator.add_client(tenant, permissions=["Policy.Read.All"])

    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("contoso", client_id=reader.client_id))
        assert await policy.list_partners() == []
        with pytest.raises(ForbiddenError) as denied:
            await policy.create_partner(world.emulator.tenant("fabrikam").id)
        assert denied.value.code == "Authorization_RequestDenied"

    world.run(walk)


def test_find_tenant_information(world: World) -> None:
    target = world.emulator.tenant("fabrikam")

    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("contoso"))
        info = await policy.find_tenant_information(target.id)
        assert info.display_name == "Fabrikam"
        assert info.default_domain_name == target.domain

    world.run(walk)


def test_tokens_are_renewed_when_emulator_time_passes(world: World) -> None:
    async def walk() -> None:
        policy = CrossTenantAccessPolicyApi(world.client("contoso"))
        await policy.list_partners()
        world.clock.advance(2 * 3600)  # past the 60-minute token lifetime
        assert await policy.list_partners() == []

    world.run(walk)
    assert world.emulator.stats.get("status_401", 0) <= 1
