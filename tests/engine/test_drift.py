"""Drift without noise: what plan compares is exactly what apply would write (the whole
schema, from the job template), so one hand change shows as exactly one drifted field — while
what Graph normalises (key order, enum casing, nulls, extra properties, list order) shows none.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from ctsync.engine import Plan, Session, execute, make_plan
from ctsync.engine.schema import user_mapping
from tests.engine.conftest import Bench, make_bench

POLICY = "/policies/crossTenantAccessPolicy"


@pytest.fixture
def applied(tmp_path: Path) -> Bench:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])

    async def go(session: Session) -> bool:
        return (await execute(await make_plan(session.desired, session), session)).ok

    assert bench.run(go)
    return bench


def _plan(bench: Bench) -> Plan:
    return bench.run(lambda s: make_plan(s.desired, s))


def _schema(bench: Bench) -> dict[str, Any]:
    [sync] = bench.emulator.tenant("contoso").synchronization.values()
    [job] = sync.jobs.values()
    schema: dict[str, Any] = job.schema
    return schema


def _changes(plan: Plan) -> list[tuple[str, str]]:
    return [(s.id, c.field) for s in plan.steps for c in s.changes]


def test_a_hand_edit_of_a_default_mapping_is_exactly_one_drifted_field(applied: Bench) -> None:
    # In the portal: employeeId set to a constant — a mapping the config does not mention.
    mapping = next(
        a
        for a in user_mapping(_schema(applied))["attributeMappings"]
        if a["targetAttributeName"] == "employeeId"
    )
    for rule in _schema(applied)["synchronizationRules"]:
        for obj in rule["objectMappings"]:
            for attr in obj["attributeMappings"]:
                if attr is mapping or attr.get("targetAttributeName") == "employeeId":
                    attr["source"] = {
                        "type": "Constant",
                        "name": "N/A",
                        "expression": '"N/A"',
                        "parameters": [],
                    }
    plan = _plan(applied)
    assert _changes(plan) == [("contoso:fabrikam/schema", "mapping employeeId (template default)")]
    [change] = plan.steps[0].changes
    assert (change.old, change.new) == ('"N/A"', "[employeeId]")

    async def go(session: Session) -> bool:
        return (await execute(plan, session)).ok

    assert applied.run(go)
    assert _plan(applied).steps == ()


def test_a_hand_edit_of_a_partner_setting_is_exactly_that_field(applied: Bench) -> None:
    contoso = applied.emulator.tenant("contoso").id
    partner = applied.emulator.tenant("fabrikam").access_policy.partners[contoso]
    partner["inboundTrust"] = {**partner["inboundTrust"], "isMfaAccepted": False}
    assert _changes(_plan(applied)) == [("fabrikam/partner/contoso", "inboundTrust")]


def test_what_graph_normalises_is_not_drift(applied: Bench) -> None:
    schema = _schema(applied)
    rng = random.Random(7)

    def normalise(node: Any) -> Any:
        if isinstance(node, dict):
            items = [(k, normalise(v)) for k, v in node.items() if v is not None]
            rng.shuffle(items)  # key order
            out = dict(items)
            for key in ("flowType", "flowBehavior"):
                if isinstance(out.get(key), str):
                    out[key] = out[key].lower()  # enum casing
            out["undocumentedProperty"] = "added by the service"  # extra properties
            return out
        if isinstance(node, list):
            items = [normalise(v) for v in node]
            if all(isinstance(v, dict) and "targetAttributeName" in v for v in items):
                rng.shuffle(items)  # the order of attribute mappings means nothing
            return items
        return node

    normalised = normalise(copy.deepcopy(schema))
    schema.clear()
    schema.update(normalised)
    assert _plan(applied).steps == ()


def test_a_fleet_keeps_one_copy_of_the_schema_yet_sees_each_links_hand_edit(
    tmp_path: Path,
) -> None:
    """Live schemas share what they have in common (a fleet plan held ~90 KB per link); a hand
    edit in one link's schema is still that link's drift, and only that link's."""
    from ctsync.engine.desired import wants
    from ctsync.engine.live import read_live

    bench = make_bench(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])

    async def go(session: Session) -> bool:
        return (await execute(await make_plan(session.desired, session), session)).ok

    assert bench.run(go)
    contoso = bench.emulator.tenant("contoso")
    jobs = {
        contoso.service_principals[sp_id]["displayName"]: job
        for sp_id, sync in contoso.synchronization.items()
        for job in sync.jobs.values()
    }
    job_a, job_b = jobs["fabrikam (ctsync)"], jobs["tailspin (ctsync)"]
    user_mapping(job_b.schema)["attributeMappings"].append(
        {"targetAttributeName": "employeeId", "source": {"type": "Constant", "value": "X"}}
    )
    live = bench.run(lambda s: read_live(s, wants(s.desired)))
    a, b = (live.links[k].schema for k in ("contoso:fabrikam", "contoso:tailspin"))
    assert a is not None
    assert b is not None
    assert a["directories"][0]["objects"] is b["directories"][0]["objects"]
    assert a["id"] != b["id"]  # each keeps its own ids
    assert user_mapping(b) != user_mapping(a)
    drifted = {s.links[0] for s in _plan(bench).steps}
    assert drifted == {"contoso:tailspin"}
    assert job_a.schema["id"] == a["id"]
