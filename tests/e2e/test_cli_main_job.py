"""The main job end to end, as a user runs it: `ctsync emulator serve` over HTTPS, then
init → plan → apply → plan → destroy, the audit trail verified, and tampering caught."""

from __future__ import annotations

import json
import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from ctsync.cli import cli
from tests.e2e.served import Served, init_config, start, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # The audit trail is counted exactly: retries of writes a replication lag refused add rows.
    served = start(tmp_path_factory.mktemp("serve"), "--replication-lag", "0")
    yield served
    stop(served)


def ctsync(*args: str, input: str | None = None) -> Result:  # noqa: A002 - click's name
    return CliRunner().invoke(cli, list(args), input=input)


def _state(served: Served) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    response = httpx.get(f"{served.info['control_url']}/state", verify=context)
    payload: dict[str, Any] = response.json()
    return payload


def _tenant(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in state["tenants"] if t["name"] == name)


def _edit_and_expect_verify_to_fail(config: Path) -> None:
    """Any edit of the database is caught (the append-only triggers dropped first)."""
    db = config.parent / ".ctsync" / "audit.sqlite"
    with sqlite3.connect(db) as conn:
        query = "SELECT name FROM sqlite_master WHERE type='trigger'"
        for (trigger,) in list(conn.execute(query)):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute("UPDATE records SET status = 200 WHERE seq = 3")
    tampered = ctsync("audit", "verify", "-c", str(config))
    assert tampered.exit_code == 1
    assert "seq 3" in tampered.output


def test_init_plan_apply_plan_destroy(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")
    for tenant in served.info["tenants"]:  # secrets live beside the config, never in it
        assert tenant["client_secret"] not in config.read_text()

    planned = ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    assert "create the CTS configuration app" in planned.output

    # Nothing changes without approval.
    refused = ctsync("apply", "-c", str(config), input="no\n")
    assert refused.exit_code == 1
    assert _tenant(_state(served), "contoso")["applications"] == 0

    applied = ctsync("apply", "-c", str(config), "--auto-approve", "--output", "json")
    assert applied.exit_code == 0, applied.output
    report = json.loads(applied.output)["report"]
    assert report["ok"] is True
    assert report["failed"] == 0

    state = _state(served)
    contoso, fabrikam = _tenant(state, "contoso"), _tenant(state, "fabrikam")
    assert contoso["applications"] == 1
    assert contoso["service_principals"] == 1
    assert contoso["app_role_assignments"] == 1
    assert [j["schedule"] for j in contoso["synchronization_jobs"]] == ["Active"]
    assert contoso["partners"] == [fabrikam["tenant_id"]]
    assert fabrikam["partners"] == [contoso["tenant_id"]]
    assert fabrikam["identity_synchronization"] == [contoso["tenant_id"]]

    again = ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output

    verified = ctsync("audit", "verify", "-c", str(config), "--output", "json")
    assert verified.exit_code == 0, verified.output
    # 11 writes, each recorded as its intent before it was sent and its outcome after.
    assert json.loads(verified.output)["count"] == 22
    assert json.loads(verified.output)["unknown_outcomes"] == []

    gone = ctsync("destroy", "-c", str(config), "--keep-users", "--auto-approve")
    assert gone.exit_code == 0, gone.output
    state = _state(served)
    for name in ("contoso", "fabrikam"):
        tenant = _tenant(state, name)
        assert tenant["partners"] == []
        assert tenant["identity_synchronization"] == []
        assert tenant["applications"] == tenant["service_principals"] == 0
        assert tenant["synchronization_jobs"] == []

    shown = ctsync("audit", "show", "-c", str(config), "--output", "json")
    records = json.loads(shown.output)
    assert len(records) == 16
    assert {r["method"] for r in records} >= {"POST", "PUT", "PATCH", "DELETE"}
    assert all(r["actor_client_id"] for r in records)
    assert ctsync("audit", "verify", "-c", str(config)).exit_code == 0

    _edit_and_expect_verify_to_fail(config)


def test_saved_plans_are_refused_when_live_state_moved(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:tailspin")
    saved = tmp_path / "plan.json"
    assert ctsync("plan", "-c", str(config), "--out", str(saved)).exit_code == 0

    # Someone else creates the target's partner configuration meanwhile.
    other = tmp_path / "other.yaml"
    init_config(served, other, "contoso:tailspin")
    assert ctsync("apply", "-c", str(other), "--auto-approve").exit_code == 0

    stale = ctsync("apply", "-c", str(config), str(saved))
    assert stale.exit_code == 1
    assert "live state has changed" in stale.output

    fresh = tmp_path / "fresh.json"
    assert ctsync("plan", "-c", str(config), "--out", str(fresh)).exit_code == 0
    assert ctsync("apply", "-c", str(config), str(fresh)).exit_code == 0
    assert ctsync("destroy", "-c", str(config), "--keep-users", "--auto-approve").exit_code == 0


def test_plan_as_powershell(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config)
    script = ctsync("plan", "-c", str(config), "--format", "powershell")
    assert script.exit_code == 0, script.output
    for cmdlet in (
        "Connect-MgGraph -TenantId",
        "New-MgPolicyCrossTenantAccessPolicyPartner",
        "Invoke-MgInstantiateApplicationTemplate",
        "New-MgServicePrincipalSynchronizationJob",
        "New-MgServicePrincipalAppRoleAssignedTo",
        "Start-MgServicePrincipalSynchronizationJob",
        "Invoke-MgGraphRequest -Method PUT",
    ):
        assert cmdlet in script.output, cmdlet


def test_destroy_as_powershell_changes_nothing(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:tailspin")
    assert ctsync("apply", "-c", str(config), "--auto-approve").exit_code == 0
    script = ctsync("destroy", "-c", str(config), "--format", "powershell")
    assert script.exit_code == 0, script.output
    assert "Remove-MgServicePrincipalSynchronizationJob" in script.output
    assert "Remove-MgApplicationByAppId" in script.output
    again = ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # nothing was torn down
    assert ctsync("destroy", "-c", str(config), "--keep-users", "--auto-approve").exit_code == 0
