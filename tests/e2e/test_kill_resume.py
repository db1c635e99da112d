"""SIGKILL `ctsync apply` part-way (a real process, a served emulator), run it again: the
tenants end up exactly as after an uninterrupted apply, with no duplicate objects."""

from __future__ import annotations

import json
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ctsync.cli import cli
from tests.e2e.served import Served, child_env, init_config, start, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Latency makes an apply take long enough to be killed in the middle.
    served = start(tmp_path_factory.mktemp("emulator"), "--latency-ms", "40")
    yield served
    stop(served)


@pytest.fixture
def served(server: Served) -> Served:
    """The module's emulator, reset to the demo scenario (same seed: same ids and secrets)."""
    context = ssl.create_default_context(cafile=server.info["ca_cert"])
    httpx.post(f"{server.info['control_url']}/reset", json={}, verify=context).raise_for_status()
    seeded = httpx.post(
        f"{server.info['control_url']}/seed", json={"scenario": "demo"}, verify=context
    )
    seeded.raise_for_status()
    assert seeded.json()["tenants"] == server.info["tenants"]
    return server


def _writes(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
            count: int = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            return count
    except sqlite3.Error:
        return 0


def _state(served: Served) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    response = httpx.get(f"{served.info['control_url']}/state", verify=context)
    payload: dict[str, Any] = response.json()
    return payload


def _apply_and_kill(config: Path, after_writes: int) -> None:
    db = config.parent / ".ctsync" / "audit.sqlite"
    before = _writes(db)
    command = [sys.executable, "-m", "ctsync", "apply", "-c", str(config), "--auto-approve"]
    process = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while _writes(db) < before + after_writes and process.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)  # watching a real process: the test must wait on wall time here
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.parametrize("kill_points", [(2, 9), (5, 12)])
def test_sigkill_then_rerun_converges(
    monkeypatch: pytest.MonkeyPatch, served: Served, tmp_path: Path, kill_points: tuple[int, ...]
) -> None:
    # No replication lag here: a re-run need not wait long for an app a killed run may have
    # been creating when it died.
    monkeypatch.setenv("CTSYNC_REPLICATION_WAIT", "3")
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam,contoso:tailspin")
    for after in kill_points:
        _apply_and_kill(config, after)

    finished = CliRunner().invoke(cli, ["apply", "-c", str(config), "--auto-approve"])
    assert finished.exit_code == 0, finished.output
    assert (
        CliRunner().invoke(cli, ["plan", "-c", str(config), "--detailed-exitcode"]).exit_code == 0
    )

    tenants = {t["name"]: t for t in _state(served)["tenants"]}
    contoso = tenants["contoso"]
    assert contoso["applications"] == 2
    assert contoso["service_principals"] == 2
    assert contoso["app_role_assignments"] == 2
    assert [j["schedule"] for j in contoso["synchronization_jobs"]] == ["Active", "Active"]
    assert len(contoso["partners"]) == 2
    for name in ("fabrikam", "tailspin"):
        assert tenants[name]["partners"] == [contoso["tenant_id"]]
        assert tenants[name]["identity_synchronization"] == [contoso["tenant_id"]]
    verified = CliRunner().invoke(cli, ["audit", "verify", "-c", str(config), "--output", "json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["ok"] is True
