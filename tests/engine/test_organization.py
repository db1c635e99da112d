"""A multitenant organization as code: the owner creates it and adds the members, each member
sets its MTO templates and joins; re-plans repeat nothing while joins process; destroy takes out
only what ctsync made."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.errors import ConfigError
from tests.engine.conftest import Bench, make_bench

ORGANIZATION = """organization:
  name: Contoso group
  description: Contoso and its subsidiaries
  owner: contoso
  members: [fabrikam, tailspin]
  templates:
    partner_configuration:
      automatic_redemption: {inbound: true, outbound: true}
      apply_to: [newPartners, existingPartners]
    identity_synchronization:
      user_sync_inbound: true
      apply_to: newPartners
"""
GRANT = "MultiTenantOrganization.ReadWrite.All"


def _bench(tmp_path: Path, organization: str = ORGANIZATION, *, read_only: str = "") -> Bench:
    def edit(text: str) -> str:
        if read_only:
            head, _, rest = text.partition(f"  {read_only}:\n")
            text = f"{head}  {read_only}:\n" + rest.replace(
                "    auth:", "    managed: false\n    auth:", 1
            )
        return text + organization

    bench = make_bench(tmp_path, links=[], edit=edit)
    for tenant in bench.emulator.tenants.values():
        for client in tenant.clients.values():
            client.permissions.append(GRANT)
    return bench


def _plan(bench: Bench, *, destroy: bool = False) -> Plan:
    async def go(session: Session) -> Plan:
        if destroy:
            return await make_destroy_plan(session.desired, session)
        return await make_plan(session.desired, session)

    return bench.run(go)


def _apply(bench: Bench, plan: Plan) -> None:
    async def go(session: Session) -> None:
        report = await execute(plan, session)
        assert report.ok, report.to_dict()

    bench.run(go)


def _members(bench: Bench) -> dict[str, str]:
    home = bench.emulator.tenant("contoso").multi_tenant_org
    names = {t.id: name for name, t in ((t.name, t) for t in bench.emulator.tenants.values())}
    return {names.get(k, k): m["state"] for k, m in home.members.items()}


def _settle(bench: Bench) -> None:
    bench.emulator.advance(bench.emulator.provisioning.mto_processing_seconds + 60)


def test_an_organization_applies_from_nothing_and_replans_empty(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    plan = _plan(bench)
    ids = [s.id for s in plan.steps]
    assert ids[0] == "organization/create"
    assert {
        "organization/member/fabrikam",
        "organization/join/fabrikam",
        "organization/join/tailspin",
        "fabrikam/mtoTemplate/partner",
        "tailspin/mtoTemplate/sync",
        "contoso/mtoTemplate/partner",
    } <= set(ids)
    join = next(s for s in plan.steps if s.id == "organization/join/fabrikam")
    assert "organization/member/fabrikam" in join.depends_on
    assert "fabrikam/mtoTemplate/partner" in join.depends_on
    _apply(bench, plan)
    assert _members(bench) == {"contoso": "active", "fabrikam": "pending", "tailspin": "pending"}

    again = _plan(bench)
    assert again.steps == ()
    assert any("fabrikam is joining" in n and "2 hours" in n for n in again.notes)

    _settle(bench)
    assert set(_members(bench).values()) == {"active"}
    final = _plan(bench)
    assert final.steps == ()
    assert final.notes == ()
    template = bench.emulator.tenant("fabrikam").multi_tenant_org.partner_template
    assert template is not None
    assert template["automaticUserConsentSettings"] == {
        "inboundAllowed": True,
        "outboundAllowed": True,
    }


def test_destroy_removes_the_members_and_the_organization(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    _settle(bench)
    plan = _plan(bench, destroy=True)
    ids = [s.id for s in plan.steps]
    assert ids == [
        "organization/member/fabrikam/delete",
        "organization/member/tailspin/delete",
        "organization/delete",
    ]
    assert all(s.destructive for s in plan.steps)
    _apply(bench, plan)
    assert _plan(bench, destroy=True).steps == ()
    _settle(bench)
    assert bench.emulator.tenant("contoso").multi_tenant_org.organization is None


def test_destroy_leaves_an_organization_ctsync_did_not_create(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    _settle(bench)
    (bench.config.parent / ".ctsync" / "ownership.json").unlink()
    plan = _plan(bench, destroy=True)
    assert plan.steps == ()
    _apply(bench, plan)
    assert set(_members(bench).values()) == {"active"}


def test_a_read_only_member_gets_a_note_not_a_step(tmp_path: Path) -> None:
    bench = _bench(tmp_path, read_only="tailspin")
    plan = _plan(bench)
    assert all(s.tenant != "tailspin" for s in plan.steps)
    assert "organization/member/tailspin" in {s.id for s in plan.steps}
    assert any("tailspin is read-only" in n and "joinRequest" in n for n in plan.notes), plan.notes


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ("[fabrikam, contoso]", "contoso is the owner of the organization"),
        ("[fabrikam, fabrikam]", "fabrikam is listed twice"),
        ("[fabrikan]", "no tenant named 'fabrikan'"),
    ],
)
def test_bad_organization_blocks_are_refused_at_load(
    tmp_path: Path, members: str, message: str
) -> None:
    bench = _bench(tmp_path, ORGANIZATION.replace("[fabrikam, tailspin]", members))
    with pytest.raises(ConfigError) as caught:
        bench.desired()
    assert message in str(caught.value)
    assert caught.value.location is not None
    assert str(bench.config) in caught.value.location


def test_an_unknown_owner_is_refused_with_its_line(tmp_path: Path) -> None:
    bench = _bench(tmp_path, ORGANIZATION.replace("owner: contoso", "owner: northwind"))
    with pytest.raises(ConfigError, match=r"organization\.owner: no tenant named 'northwind'"):
        bench.desired()


def test_tenants_of_the_organization_need_the_mto_permission(tmp_path: Path) -> None:
    from ctsync.permissions import application_permissions, sides_of

    desired = _bench(tmp_path).desired()
    assert sides_of(desired, "tailspin") == ("organization",)
    assert GRANT in application_permissions(sides_of(desired, "contoso"))
    plain = make_bench(tmp_path / "plain", links=[("contoso", "fabrikam")]).desired()
    assert GRANT not in application_permissions(sides_of(plain, "contoso"))
