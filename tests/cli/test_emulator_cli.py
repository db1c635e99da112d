"""``ctsync emulator serve`` option errors: clear messages and exit status 2, before serving."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ctsync.cli import cli


def _serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["emulator", "serve", "--port", "0", *args])
    return result.exit_code, result.output


def test_bad_faults_spec_is_a_usage_error() -> None:
    code, output = _serve("--faults", "no-such-fault=3")
    assert code == 1  # usage errors exit 1, as every error (the CLI contract)
    assert "--faults" in output


def test_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _serve("--scenario", str(tmp_path / "missing.json"))
    assert code == 1  # usage errors exit 1, as every error (the CLI contract)
    assert "--scenario" in output
    assert "missing.json" in output


def test_malformed_scenario_file_is_a_usage_error(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.json"
    scenario.write_text('{"tenants": [')
    code, output = _serve("--scenario", str(scenario))
    assert code == 1  # usage errors exit 1, as every error (the CLI contract)
    assert "invalid JSON" in output
