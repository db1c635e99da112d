"""Group sync (``sync.groups``): the target allows group sync in (``groupSyncInbound``, on
Graph's beta endpoint, only because the config opts in), the job's schema has its group
mapping enabled with the group filter, and a second plan shows nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctsync.engine import Plan, Session, execute, make_destroy_plan, make_plan
from ctsync.engine.schema import group_mapping
from ctsync.errors import NotFoundError
from ctsync.graph import GraphClient, WriteRecord
from ctsync.graph.sync import SynchronizationApi

from .conftest import Bench, make_bench

_POLICY = "/policies/crossTenantAccessPolicy/partners"


def _groups(text: str, *, group_filter: str | None = None) -> str:
    extra = "      groups: true\n"
    if group_filter is not None:
        extra += f'      group_filter: "{group_filter}"\n'
    text = text.replace(
        "      actions: [create, update]\n", "      actions: [create, update]\n" + extra
    )
    return text + "\nbeta: [group_sync]\n"


def _bench(tmp_path: Path, **kwargs: Any) -> Bench:
    return make_bench(
        tmp_path, links=[("contoso", "fabrikam")], edit=lambda t: _groups(t, **kwargs)
    )


def test_apply_allows_group_sync_in_the_target_and_enables_the_group_mapping(
    tmp_path: Path,
) -> None:
    bench = _bench(tmp_path, group_filter="displayName REGEX MATCH '^CTS'")
    desired = bench.desired()
    contoso = desired.tenants["contoso"].tenant_id

    async def run(session: Session) -> tuple[list[str], dict[str, Any], dict[str, Any], int]:
        plan = await make_plan(session.desired, session)
        applied = await execute(plan, session)
        statuses: list[str] = [o.status for o in applied.outcomes]
        target = session.client("fabrikam")
        beta = await target.get(target.beta_url(f"{_POLICY}/{contoso}/identitySynchronization"))
        source = session.client("contoso")
        sps = await source.get(
            "/servicePrincipals", params={"$filter": "tags/any(t:t eq 'ctsync:managed')"}
        )
        sp_id = sps.json_object()["value"][0]["id"]
        sync = SynchronizationApi(source)
        job = (await sync.list_jobs(sp_id))[0]
        schema = await sync.get_schema(sp_id, job["id"])
        again = await make_plan(session.desired, session)
        return statuses, beta.json_object(), schema, len(again.steps)

    statuses, policy, schema, steps_after = bench.run(run)
    assert set(statuses) == {"done"}
    assert policy["groupSyncInbound"] == {"isSyncAllowed": True}
    assert policy["userSyncInbound"] == {"isSyncAllowed": True}
    mapping = group_mapping(schema)
    assert mapping is not None
    assert mapping["enabled"] is True
    clauses = mapping["scope"]["groups"][0]["clauses"]
    assert clauses == [
        {
            "sourceOperandName": "displayName",
            "operatorName": "REGEX MATCH",
            "targetOperand": {"values": ["^CTS"]},
        }
    ]
    assert steps_after == 0


def test_the_plan_says_which_step_is_beta(tmp_path: Path) -> None:
    bench = _bench(tmp_path)

    async def run(session: Session) -> list[tuple[str, str, bool]]:
        plan = await make_plan(session.desired, session)
        return [(s.id, s.summary, bool(s.params.get("beta"))) for s in plan.steps]

    steps = bench.run(run)
    beta = [(sid, summary) for sid, summary, is_beta in steps if is_beta]
    assert beta == [
        (
            "fabrikam/identitySynchronization/contoso",
            "allow user and group sync in from contoso (Graph beta: groupSyncInbound)",
        )
    ]
    schema = next(summary for sid, summary, _ in steps if sid.endswith("/schema"))
    assert schema


def _beta_writes(bench: Bench) -> list[str]:
    seen: list[str] = []

    def note(record: WriteRecord) -> None:
        seen.append(f"{record.method} {record.path}")

    async def run(session: Session) -> None:
        plan = await make_plan(session.desired, session)
        await execute(plan, session)

    bench.run(run, observers=[note])
    return [w for w in seen if w.split(" ", 1)[1].startswith("/beta/")]


def test_only_the_group_sync_policy_is_written_on_beta(tmp_path: Path) -> None:
    contoso = "e3e70682-c209-4cac-a29f-6fbed82c07cd"
    assert _beta_writes(_bench(tmp_path)) == [
        f"PUT /beta{_POLICY}/{contoso}/identitySynchronization"
    ]


def test_without_groups_nothing_is_written_on_beta(tmp_path: Path) -> None:
    assert _beta_writes(make_bench(tmp_path, links=[("contoso", "fabrikam")])) == []


def _apply_then_destroy(bench: Bench, before: Any = None) -> tuple[Plan, dict[str, Any]]:
    contoso = bench.desired().tenants["contoso"].tenant_id
    policy = f"{_POLICY}/{contoso}/identitySynchronization"

    async def go(session: Session) -> tuple[Plan, dict[str, Any]]:
        target = session.client("fabrikam")
        if before is not None:
            await before(target)
        applied = await execute(await make_plan(session.desired, session), session)
        assert applied.ok
        plan = await make_destroy_plan(session.desired, session, keep_users=True)
        destroyed = await execute(plan, session)
        assert destroyed.ok, [o.to_dict() for o in destroyed.outcomes if o.status != "done"]
        try:
            left = (await target.get(target.beta_url(policy))).json_object()
        except NotFoundError:
            left = {}
        return plan, left

    return bench.run(go)


def test_destroy_deletes_the_sync_policy_ctsync_created(tmp_path: Path) -> None:
    plan, left = _apply_then_destroy(_bench(tmp_path))
    assert left == {}
    assert "fabrikam/identitySynchronization/contoso/delete" in {s.id for s in plan.steps}


def test_destroy_gives_back_group_sync_on_a_policy_ctsync_did_not_create(
    tmp_path: Path,
) -> None:
    """Someone allowed user sync in before ctsync: apply turns group sync on (beta), and
    destroy sets only that back; the policy and its user sync stay."""
    bench = _bench(tmp_path)
    contoso = bench.desired().tenants["contoso"].tenant_id

    async def theirs(target: GraphClient) -> None:
        # The partner configuration first, as an admin would have it.
        await target.post(_POLICY, json={"tenantId": contoso})
        await target.put(
            f"{_POLICY}/{contoso}/identitySynchronization",
            json={"displayName": "theirs", "userSyncInbound": {"isSyncAllowed": True}},
        )

    plan, left = _apply_then_destroy(bench, theirs)
    revert = next(s for s in plan.steps if s.id.endswith("identitySynchronization/contoso/revert"))
    assert revert.params.get("beta") is True
    assert [c.field for c in revert.changes] == ["groupSyncInbound.isSyncAllowed"]
    assert left["userSyncInbound"] == {"isSyncAllowed": True}
    assert left["displayName"] == "theirs"
    assert left["groupSyncInbound"]["isSyncAllowed"] is not True
