"""`--debug` shows every Graph request (method, path, status, request-id, time) and the SDKs'
own log lines — and never a secret or a token; `-v` shows ctsync's info lines only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .served import Served, child_env, init_config, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("debug-output"), "--replication-lag", "0") as running:
        yield running


def _ctsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctsync", *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_debug_shows_each_request_and_no_secret(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")
    secrets = [p.read_text().strip() for p in (tmp_path / ".ctsync" / "secrets").iterdir()]
    assert secrets

    debug = _ctsync("--debug", "plan", "-c", str(config))
    assert debug.returncode == 0, debug.stderr
    lines = [line for line in debug.stderr.splitlines() if line.startswith("debug: GET /v1.0/")]
    assert any(" -> 200 request-id " in line and line.endswith(" ms") for line in lines), lines
    assert "get_token succeeded" in debug.stderr  # azure-identity's own lines, routed
    for secret in secrets:
        assert secret not in debug.stderr
        assert secret not in debug.stdout
    assert "eyJ" not in debug.stderr  # no JWT (access token or assertion)

    verbose = _ctsync("-v", "plan", "-c", str(config))
    assert verbose.returncode == 0, verbose.stderr
    assert "debug: " not in verbose.stderr
    assert "get_token" not in verbose.stderr

    quiet = _ctsync("plan", "-c", str(config))
    assert quiet.stderr == ""
