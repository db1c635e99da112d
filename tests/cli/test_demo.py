from __future__ import annotations

import json

from click.testing import CliRunner

from ctsync.cli import cli


def test_demo_walks_the_partner_policy_and_converges() -> None:
    result = CliRunner().invoke(cli, ["demo", "--output", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    outcomes = [step["outcome"] for step in report["steps"]]
    assert outcomes[:3] == ["201 created", "204 created", "201 created"]
    assert outcomes[3:6] == ["409 exists → PATCH 204"] * 3
    assert outcomes[6] == "404 Directory_ObjectNotFound"
    target = report["state"]["fabrikam (target)"]
    assert target["automaticUserConsentSettings"]["inboundAllowed"] is True
    assert target["identitySynchronization"]["userSyncInbound"] == {"isSyncAllowed": True}
    source = report["state"]["contoso (source)"]
    assert source["automaticUserConsentSettings"]["outboundAllowed"] is True


def test_demo_table_output() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Partner policy walkthrough" in result.output
