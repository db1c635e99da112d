"""`ctsync bootstrap` refuses what it cannot do before anyone signs in: one clear message, exit
1 (click's own usage errors too), no tenant contacted, nothing written beside the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ctsync.cli import cli
from tests.cli.test_bad_input import GOOD_TENANTS

CONFIG = (
    GOOD_TENANTS
    + """  tailspin:
    tenant_id: 33333333-3333-4333-8333-333333333333
    managed: false
    auth: {method: device_code}
links:
  - {source: contoso, target: fabrikam}
  - {source: contoso, target: tailspin}
"""
)
CASES = {
    "unknown tenant": (["nope"], "no tenant 'nope' in"),
    "read-only tenant": (["tailspin"], "tenant tailspin is managed: false"),
    "bad repository": (["contoso", "--github", "not a repo"], "--github takes OWNER/REPO"),
    "branch alone": (["contoso", "--branch", "main"], "go with --github OWNER/REPO"),
    "two kinds of run": (
        ["contoso", "--github", "o/r", "--branch", "main", "--environment", "prod"],
        "give one of --branch, --environment and --pull-requests",
    ),
    "github and issuer": (
        [
            "contoso",
            "--github",
            "o/r",
            "--federated-issuer",
            "https://x",
            "--federated-subject",
            "s",
        ],
        "not both",
    ),
    "issuer alone": (["contoso", "--federated-issuer", "https://x"], "go together"),
    "plain http issuer": (
        ["contoso", "--federated-issuer", "http://x", "--federated-subject", "s"],
        "must be an https:// URL",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bootstrap_refuses_before_signing_in(tmp_path: Path, name: str) -> None:
    args, said = CASES[name]
    config = tmp_path / "ctsync.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(cli, ["bootstrap", "-c", str(config), *args])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert said in lines[0]
    assert "Traceback" not in result.output
    assert config.read_text() == CONFIG
    assert not (tmp_path / ".ctsync").exists()


def test_a_tenant_in_no_link_has_nothing_to_bootstrap(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text(GOOD_TENANTS + "links:\n  - {source: contoso, target: fabrikam}\n")
    config.write_text(
        config.read_text().replace(
            "links:",
            "  northwind:\n    tenant_id: 44444444-4444-4444-8444-444444444444\n    "
            "auth: {method: device_code}\nlinks:",
        )
    )
    result = CliRunner().invoke(cli, ["bootstrap", "-c", str(config), "northwind"])
    assert result.exit_code == 1, result.output
    assert "tenant northwind is in no link" in result.output
    assert not (tmp_path / ".ctsync").exists()
