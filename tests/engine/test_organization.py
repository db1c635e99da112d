"""A multitenant organization as code: the owner creates it and adds the members, each member
sets its MTO templates and joins; re-plans repeat nothing while joins process; destroy takes out
only what ctsync made."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ctsync.config import load, merge_links
from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.live import MTO_TEMPLATES
from ctsync.errors import ConfigError
from ctsync.graph import WriteRecord
from ctsync.ops import preflight
from ctsync.ops.importer import ImportReport, discover
from ctsync.ops.report import Report, gather_report
from ctsync.render.plan import plan_text
from ctsync.render.powershell import plan_powershell
from ctsync.render.report import report_html, report_markdown
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


def test_apply_s_preflight_plans_the_organization_too(tmp_path: Path) -> None:
    """`ctsync apply` takes preflight's plan (its blocking checks plan once): it left the
    organization out, so apply never made it."""
    bench = _bench(tmp_path)

    async def go(session: Session) -> Plan:
        checked = await preflight(session, None, blocking_only=True)
        assert checked.plan is not None
        return checked.plan

    plan = bench.run(go)
    assert "organization/create" in {s.id for s in plan.steps}
    _apply(bench, plan)
    assert _members(bench)["contoso"] == "active"


def test_an_organization_imports_back_and_plans_nothing(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    _settle(bench)
    # The same tenants, as a config that says nothing of the organization (the ledger gone:
    # what ctsync finds is not what it made).
    text = bench.config.read_text()
    bench.config.write_text(text[: text.index("organization:")])
    (bench.config.parent / ".ctsync" / "ownership.json").unlink()
    writes: list[WriteRecord] = []
    report: ImportReport = bench.run(discover, observers=[writes.append])
    assert writes == []
    assert report.organization == {
        "name": "Contoso group",
        "description": "Contoso and its subsidiaries",
        "owner": "contoso",
        "members": ["fabrikam", "tailspin"],
        "templates": {
            "partner_configuration": {"automatic_redemption": {"inbound": True, "outbound": True}},
            "identity_synchronization": {"user_sync_inbound": True, "apply_to": "newPartners"},
        },
    }
    assert report.organization_notes == []
    merged = merge_links(
        bench.config.read_text(),
        name=str(bench.config),
        templates={},
        links=[],
        organization=report.organization,
    )
    bench.config.write_text(merged)
    assert "organization:\n  name: Contoso group\n" in merged
    replanned = _plan(bench)
    assert (replanned.steps, replanned.notes) == ((), ())
    # Imported, not made: destroy leaves it.
    assert _plan(bench, destroy=True).steps == ()


def test_an_organization_whose_owner_the_config_lacks_is_not_imported(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    _settle(bench)
    text = bench.config.read_text()
    head = text[: text.index("organization:")]
    # contoso's block holds the cloud anchor the others use: fabrikam's gets it instead.
    contoso = head.index("  contoso:\n")
    end = head.index("\n  fabrikam:\n")
    anchor = head[contoso:end].split("cloud: ", 1)[1].split("\n    auth:", 1)[0]
    rest = head[end + 1 :].replace("cloud: *emulator", "cloud: " + anchor, 1)
    bench.config.write_text(head[:contoso] + rest)
    report: ImportReport = bench.run(discover)
    assert report.organization is None
    assert report.organization_notes == [
        "the multitenant organization's owner is not a tenant of the config: add it to "
        "import the organization"
    ]


def _templates(bench: Bench) -> dict[str, Any]:
    async def go(session: Session) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("contoso", "fabrikam", "tailspin"):
            client = session.client(name)
            for kind, path in MTO_TEMPLATES.items():
                body = (await client.get(path)).json_object()
                out[f"{name}/{kind}"] = {k: v for k, v in body.items() if not k.startswith("@")}
        return out

    result: dict[str, Any] = bench.run(go)
    return result


def test_destroy_removes_the_members_and_the_organization(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    before = _templates(bench)
    _apply(bench, _plan(bench))
    _settle(bench)
    assert _templates(bench) != before
    plan = _plan(bench, destroy=True)
    ids = [s.id for s in plan.steps]
    # Each tenant's MTO templates go back to what they held; then the members, the MTO.
    assert ids == [
        *(
            f"{t}/mtoTemplate/{k}/revert"
            for t in ("contoso", "fabrikam", "tailspin")
            for k in ("partner", "sync")
        ),
        "organization/member/fabrikam/delete",
        "organization/member/tailspin/delete",
        "organization/delete",
    ]
    assert all(s.destructive for s in plan.steps)
    _apply(bench, plan)
    assert _plan(bench, destroy=True).steps == ()
    _settle(bench)
    assert bench.emulator.tenant("contoso").multi_tenant_org.organization is None
    assert _templates(bench) == before


def test_destroy_leaves_an_organization_ctsync_did_not_create(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    _settle(bench)
    (bench.config.parent / ".ctsync" / "ownership.json").unlink()
    plan = _plan(bench, destroy=True)
    assert plan.steps == ()
    _apply(bench, plan)
    assert set(_members(bench).values()) == {"active"}


def test_a_read_only_member_gets_its_steps_for_its_admin_not_run(tmp_path: Path) -> None:
    bench = _bench(tmp_path, read_only="tailspin")
    plan = _plan(bench)
    assert all(s.tenant != "tailspin" for s in plan.steps)
    assert "organization/member/tailspin" in {s.id for s in plan.steps}
    assert [s.id for s in plan.handoff] == [
        "tailspin/mtoTemplate/partner",
        "tailspin/mtoTemplate/sync",
        "organization/join/tailspin",
    ]
    assert any("tailspin is read-only" in n for n in plan.notes), plan.notes
    text = plan_text(plan)
    assert "For the admins of read-only tenants (ctsync does not run these):" in text
    assert "join the multitenant organization of contoso" in text.split("read-only tenants")[1]
    ids = {name: t.tenant_id for name, t in load(bench.config).tenants.items()}
    script = plan_powershell(plan, tenant_ids=ids)
    part = script.split("# ---- tenant tailspin: for its admin (read-only)\n")[1]
    assert part.startswith(f"Connect-MgGraph -TenantId '{ids['tailspin']}'")
    assert (
        "Invoke-MgGraphRequest -Method PATCH -Uri "
        "'v1.0/tenantRelationships/multiTenantOrganization/joinRequest'" in part
    )
    assert ids["contoso"] in part  # the join names the owner
    # apply runs none of them: the member stays out until its admin joins.
    _apply(bench, plan)
    _settle(bench)
    assert _members(bench)["tailspin"] == "pending"
    assert bench.emulator.tenant("tailspin").multi_tenant_org.partner_template is None
    # A saved plan keeps them (and its digest covers them).
    assert Plan.from_dict(plan.to_dict()).handoff == plan.handoff


def test_a_read_only_owner_gets_the_organization_s_creation_for_its_admin(tmp_path: Path) -> None:
    bench = _bench(tmp_path, read_only="contoso")
    plan = _plan(bench)
    assert [s.id for s in plan.handoff] == [
        "organization/create",
        "contoso/mtoTemplate/partner",
        "contoso/mtoTemplate/sync",
        "organization/member/fabrikam",
        "organization/member/tailspin",
    ]
    # The members set their templates; they join once the owner's admin has added them.
    assert {s.id for s in plan.steps} == {
        "fabrikam/mtoTemplate/partner",
        "fabrikam/mtoTemplate/sync",
        "tailspin/mtoTemplate/partner",
        "tailspin/mtoTemplate/sync",
    }
    assert "fabrikam joins once contoso's admin has added it to the organization" in plan.notes


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


def test_the_report_shows_the_organization_its_tenants_and_what_is_left(tmp_path: Path) -> None:
    bench = _bench(tmp_path, read_only="tailspin")
    _apply(bench, _plan(bench))
    now = bench.emulator.clock.now()
    writes: list[WriteRecord] = []
    report: Report = bench.run(
        lambda s: gather_report(s, since=now - timedelta(days=1), audit_path=None, now=now),
        observers=[writes.append],
    )
    assert writes == []
    org = report.organization
    assert org is not None
    assert (org.name, org.owner, org.state, org.health) == (
        "Contoso group",
        "contoso",
        "active",
        "drift",
    )
    states = {t["tenant"]: (t["role"], t["state"]) for t in org.tenants}
    assert states == {
        "contoso": ("owner", "active"),
        "fabrikam": ("member", "pending"),
        "tailspin": ("member", "pending"),
    }
    assert [s.id for s in org.handoff] == [
        "tailspin/mtoTemplate/partner",
        "tailspin/mtoTemplate/sync",
        "organization/join/tailspin",
    ]
    assert not any(s.resource.startswith("multiTenantOrganization") for s in report.tenant_steps)
    page = report_html(report)
    section = page.split('<section id="organization">')[1].split("</section>")[0]
    assert "Contoso group" in section
    assert "<td>fabrikam</td>" in section
    assert "pending" in section
    assert "For the admins of read-only tenants" in section
    markdown = report_markdown(report)
    assert "<b>Multitenant organization</b> Contoso group: drift, owner contoso" in markdown
    assert report.to_dict()["organization"]["tenants"][0]["state"] == "active"


def test_a_failed_join_is_said_and_planned_again(tmp_path: Path) -> None:
    """The owner's admin takes a member out while its join is processing: Microsoft fails the
    join; the next plan says why and adds and joins it again."""
    bench = _bench(tmp_path)
    _apply(bench, _plan(bench))
    fabrikam = bench.desired().tenants["fabrikam"].tenant_id

    async def remove(session: Session) -> None:
        await session.client("contoso").delete(
            f"/tenantRelationships/multiTenantOrganization/tenants/{fabrikam}"
        )

    bench.run(remove)
    _settle(bench)
    plan = _plan(bench)
    [note] = [n for n in plan.notes if "fabrikam's last request to join" in n]
    assert "failed (" in note
    assert "the plan joins again" in note
    ids = {s.id for s in plan.steps}
    assert {"organization/join/fabrikam"} <= ids
    _apply(bench, plan)
    _settle(bench)
    assert _members(bench)["fabrikam"] == "active"
