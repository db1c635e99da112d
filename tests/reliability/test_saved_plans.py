"""A saved plan is the approval, not the program: `ctsync apply PLAN` plans again and applies
only what it would plan anyway. Every edited, stale or malformed plan file is refused with one
clear line, before any write reaches a tenant or the audit trail."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ctsync.cli import cli
from tests.reliability.harness import WRITE_METHODS, Lab, audit_records

pytestmark = pytest.mark.e2e

Edit = Callable[[dict[str, Any]], Any]


def ctsync(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _step(plan: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next(s for s in plan["steps"] if s["id"].endswith(suffix))


def _redirect(plan: dict[str, Any]) -> None:
    secrets = _step(plan, "contoso:fabrikam/secrets")["params"]["secrets"]
    secrets["CompanyId"] = "2cc0f859-aa65-44ab-b13b-7e05ebe21368"  # tailspin's tenant id


def _inject_delete(plan: dict[str, Any]) -> None:
    plan["steps"].append(
        {
            "id": "fabrikam/identitySynchronization/contoso/delete",
            "tenant": "fabrikam",
            "resource": "identitySynchronization",
            "action": "delete",
            "summary": "harmless",
            "links": ["contoso:fabrikam"],
            "changes": [],
            "depends_on": [],
            "destructive": False,
            "params": {
                "path": "/policies/crossTenantAccessPolicy/partners/"
                "e3e70682-c209-4cac-a29f-6fbed82c07cd/identitySynchronization"
            },
        }
    )


def _cycle(plan: dict[str, Any]) -> None:
    first, second = plan["steps"][0], plan["steps"][1]
    first["depends_on"] = [second["id"]]
    second["depends_on"] = [first["id"]]


def _nest(plan: dict[str, Any]) -> Any:
    return "[" * 100_000 + "]" * 100_000


EDITS: dict[str, Edit] = {
    "CompanyId redirected": _redirect,
    "delete step injected": _inject_delete,
    "unknown tenant": lambda p: p["steps"][0].update(tenant="northwind"),
    "unknown step kind": lambda p: p["steps"][0].update(resource="directoryRole"),
    "unknown field in a step": lambda p: p["steps"][0].update(bogus=1),
    "unknown field in the plan": lambda p: p.update(bogus=1),
    "dependency cycle": _cycle,
    "summary reworded": lambda p: p["steps"][0].update(summary="nothing to see"),
    "step removed": lambda p: p["steps"].pop(0),
    "steps reordered": lambda p: p["steps"].reverse(),
    "destructive flag dropped": lambda p: p["steps"][0].update(destructive=True),
    "live hash edited": lambda p: p.update(live_hash="0" * 64),
    "config hash edited": lambda p: p.update(config_hash="0" * 64),
    "kind changed": lambda p: p.update(kind="destroy"),
    "links edited": lambda p: p.update(links=["contoso:tailspin"]),
    "config path edited": lambda p: p.update(config_path="/elsewhere/ctsync.yaml"),
    "steps not a list": lambda p: p.update(steps={"a": 1}),
    "step not an object": lambda p: p["steps"].append(7),
    "version bumped": lambda p: p.update(version=2),
    "nested too deeply": _nest,
    "not an object": lambda p: [p],
}


@pytest.fixture
def saved(lab: Lab, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    config = lab.config(links="contoso:fabrikam,contoso:tailspin")
    out = tmp_path / "plan.json"
    made = ctsync("plan", "-c", str(config), "--out", str(out))
    assert made.exit_code == 0, made.output
    return config, out, json.loads(out.read_text())


def _no_writes(lab: Lab, mark: int, config: Path) -> None:
    writes = [r for r in lab.requests(after=mark) if r["method"] in WRITE_METHODS]
    assert [w for w in writes if w["path"] != "/$batch"] == []
    assert audit_records(config) == []


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edited_plan_is_refused_without_a_write(
    lab: Lab, saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path, name: str
) -> None:
    config, _, original = saved
    edited = copy.deepcopy(original)
    replaced = EDITS[name](edited)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(replaced if isinstance(replaced, str) else json.dumps(replaced or edited))
    mark = lab.last_request()
    result = ctsync("apply", "-c", str(config), str(tampered))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "error:" in result.output
    _no_writes(lab, mark, config)


def test_malformed_plan_files_are_refused(
    lab: Lab, saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    config, _, _ = saved
    cases: dict[str, bytes | None] = {
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "not JSON": b"{plan: yes}",
        "a number": b"42",
        "missing": None,
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        if content is not None:
            path.write_bytes(content)
        mark = lab.last_request()
        result = ctsync("apply", "-c", str(config), str(path))
        assert result.exit_code == 1, (name, result.output)
        assert isinstance(result.exception, SystemExit), (name, result.exception)
        _no_writes(lab, mark, config)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: no 65 MiB written to disk
    result = ctsync("apply", "-c", str(config), str(huge))
    assert result.exit_code == 1
    assert "larger than 64 MiB" in result.output


def test_the_plan_as_saved_applies_and_the_next_plan_is_empty(
    lab: Lab, saved: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    config, out, original = saved
    # Reformatted (not edited) is still the same plan.
    again = tmp_path / "reformatted.json"
    again.write_text(json.dumps(original, indent=None, sort_keys=True))
    applied = ctsync("apply", "-c", str(config), str(again), "--output", "json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["report"]["ok"] is True
    assert ctsync("plan", "-c", str(config), "--detailed-exitcode").exit_code == 0
    # Once applied, the file describes changes that are made: applying it again is refused.
    stale = ctsync("apply", "-c", str(config), str(out))
    assert stale.exit_code == 1
    assert "does not match what ctsync plans now" in stale.output


def test_a_plan_saved_for_some_links_applies_those_links(lab: Lab, tmp_path: Path) -> None:
    config = lab.config(links="contoso:fabrikam,contoso:tailspin")
    out = tmp_path / "one.json"
    made = ctsync("plan", "-c", str(config), "--link", "contoso:fabrikam", "--out", str(out))
    assert made.exit_code == 0, made.output
    applied = ctsync("apply", "-c", str(config), str(out))
    assert applied.exit_code == 0, applied.output
    left = ctsync("plan", "-c", str(config), "--output", "json")
    links = {link for step in json.loads(left.output)["steps"] for link in step["links"]}
    assert links == {"contoso:tailspin"}
    other = ctsync("apply", "-c", str(config), str(out), "--link", "contoso:tailspin")
    assert other.exit_code == 1
    assert "was planned for --link contoso:fabrikam" in other.output
