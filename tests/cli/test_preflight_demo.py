"""`ctsync demo` shows a preflight with findings of each severity before it applies."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ctsync.cli import cli


def test_demo_preflight_has_each_severity_then_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--output", "json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    demo = json.loads(result.stdout)
    first = demo["preflight"]
    assert all(first["counts"][s] > 0 for s in ("error", "warning", "info"))
    errors = [f for f in first["findings"] if f["severity"] == "error"]
    assert [(f["code"], f["tenant"]) for f in errors] == [("invitations.blocked", "tailspin")]
    codes = {f["code"] for f in first["findings"]}
    assert {"user.sms-sign-in", "user.no-mfa", "user.external", "ca.mfa-missing"} <= codes
    after = demo["preflight_after_fix"]
    assert after["ok"] is True
    assert after["blocking_only"] is True
    assert demo["report"]["ok"] is True
    assert demo["audit"]["count"] == 22  # preflight itself wrote nothing


def test_demo_text_shows_preflight_before_plan() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "invitations.blocked" in text
    assert text.index("ctsync preflight") < text.index("ctsync plan")
    assert "apply may run" in text
