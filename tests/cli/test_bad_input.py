"""Malformed configs and arguments: a clear message (file:line where there is a file), exit 1,
and nothing changed — no tenant is contacted, no audit trail is created."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ctsync.cli import cli

GOOD_TENANTS = """\
version: 1
tenants:
  contoso:
    tenant_id: 11111111-1111-4111-8111-111111111111
    auth: {method: client_secret, client_id: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa,
           client_secret_env: X}
  fabrikam:
    tenant_id: 22222222-2222-4222-8222-222222222222
    auth: {method: client_secret, client_id: bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb,
           client_secret_env: Y}
"""


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


CASES = {
    "unknown key": (
        GOOD_TENANTS + "links:\n  - {source: contoso, target: fabrikam, templte: x}\n",
        ":12:",
        "templte",
    ),
    "bad guid": (
        GOOD_TENANTS.replace("11111111-1111-4111-8111-111111111111", "not-a-guid"),
        ":4:",
        "GUID",
    ),
    "unknown template": (
        GOOD_TENANTS + "links:\n  - {source: contoso, target: fabrikam, template: nope}\n",
        ":12:",
        "nope",
    ),
    "undefined tenant": (
        GOOD_TENANTS + "links:\n  - {source: contoso, target: tailspin}\n",
        ":12:",
        "tailspin",
    ),
    "duplicate link": (
        GOOD_TENANTS
        + "links:\n  - {source: contoso, target: fabrikam}\n"
        + "  - {source: contoso, target: fabrikam}\n",
        ":13:",
        "defined twice",
    ),
    "yaml syntax": (GOOD_TENANTS + "links: [\n", ":12:", "YAML syntax error"),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "plan", "apply", "destroy"])
def test_malformed_configs(tmp_path: Path, name: str, command: str) -> None:
    text, where, what = CASES[name]
    config = tmp_path / "ctsync.yaml"
    config.write_text(text)
    result = _run(command, "-c", str(config))
    assert result.exit_code == 1, result.output
    assert f"{config}{where}" in result.output
    assert what.lower() in result.output.lower()
    assert not (tmp_path / ".ctsync").exists()


def test_missing_config(tmp_path: Path) -> None:
    result = _run("plan", "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "no such config file" in result.output


def test_unknown_link_argument(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text(GOOD_TENANTS + "links:\n  - {source: contoso, target: fabrikam}\n")
    result = _run("plan", "-c", str(config), "--link", "contoso:tailspin")
    assert result.exit_code == 1
    assert "no link 'contoso:tailspin'" in result.output
    assert "contoso:fabrikam" in result.output


def test_missing_secret_is_named_not_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X", raising=False)
    config = tmp_path / "ctsync.yaml"
    config.write_text(GOOD_TENANTS + "links:\n  - {source: contoso, target: fabrikam}\n")
    result = _run("plan", "-c", str(config))
    assert result.exit_code == 1
    assert "X" in result.output


def test_saved_plan_that_is_not_a_plan(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text(GOOD_TENANTS + "links: []\n")
    bogus = tmp_path / "plan.json"
    bogus.write_text('{"hello": 1}')
    result = _run("apply", "-c", str(config), str(bogus))
    assert result.exit_code == 1
    assert "not a plan" in result.output


def test_init_refuses_to_overwrite_and_bad_links(tmp_path: Path) -> None:
    out = tmp_path / "ctsync.yaml"
    assert _run("init", "-o", str(out)).exit_code == 0
    assert "exists" in _run("init", "-o", str(out)).output
    info = tmp_path / "info.json"
    info.write_text('{"graph_url": "x"}')
    bad = _run(
        "init", "--from-emulator", str(info), "--links", "a-b", "-o", str(tmp_path / "n.yaml")
    )
    assert bad.exit_code == 1
    assert "SOURCE:TARGET" in bad.output


def test_audit_without_a_trail(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text(GOOD_TENANTS + "links: []\n")
    result = _run("audit", "verify", "-c", str(config))
    assert result.exit_code == 1
    assert "no audit trail" in result.output
