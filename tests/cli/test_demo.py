from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ctsync.cli import cli


def test_demo_plans_applies_and_converges(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--output", "json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["report"]["ok"] is True
    assert report["report"]["failed"] == 0
    assert report["plan"]["summary"]["create"] > 0
    assert report["replan_steps"] == 0
    assert report["audit"]["ok"] is True
    assert report["audit"]["count"] == 22
    contoso = next(t for t in report["tenants"] if t["tenant"] == "contoso")
    assert contoso["configuration_apps"] == 2
    assert contoso["jobs"] == "Active, Active"
    # The first cycle provisioned the pilot's internal members, and the logs say so.
    assert report["provisioned"]["fabrikam"] == [
        "Adele Vance",
        "Alex Wilber",
        "Diego Siciliani",
        "Megan Bowen",
    ]
    assert all(s["healthy"] for s in report["status"])
    reasons = {row["reason"] for row in report["log_summary"]}
    assert {"SmsSignInEnabled", "ExternalUser", "NotEffectivelyEntitled"} <= reasons
    # The config and the trail it wrote are kept where asked, and reload.
    assert (tmp_path / "ctsync.yaml").is_file()
    assert (tmp_path / ".ctsync" / "audit.sqlite").is_file()


def test_demo_text_output() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    for marker in ("ctsync plan", "Apply complete", "no changes", "chain intact"):
        assert marker in result.output
