"""The command-line contract a pipeline relies on (Terraform's is the anchor): every error exits
1, usage errors included (2 is what `plan --detailed-exitcode` means by "changes"); under
`--output json` every error is one JSON object on stdout; `CTSYNC_CONFIG` and `CTSYNC_AUDIT_DB`
stand in for `-c` and `--audit-db`; data is never read as markup or emoji codes, and `NO_COLOR`
leaves no escape code in the output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ctsync.cli import cli

from ..e2e.served import child_env


def _json_commands() -> list[list[str]]:
    """Every command (and sub-command) with `--output json`."""
    found: list[list[str]] = []
    context = click.Context(cli)

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, [*path, name])
            return
        for param in command.params:
            choice = isinstance(param.type, click.Choice) and "json" in param.type.choices
            if param.name == "output" and choice:
                found.append(path)

    walk(cli, [])
    return found


JSON_COMMANDS = _json_commands()


def test_the_json_commands_are_found() -> None:
    names = {" ".join(p) for p in JSON_COMMANDS}
    assert {"plan", "apply", "destroy", "status", "preflight", "audit verify"} <= names


def test_a_mistyped_flag_exits_1_not_2() -> None:
    result = CliRunner().invoke(cli, ["plan", "--detailed-exitcode", "--no-such-flag"])
    assert result.exit_code == 1
    assert "No such option" in result.output
    assert "--no-such-flag" in result.output


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_every_json_command_reports_a_usage_error_as_json(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--output", "json", "--no-such-flag"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage"
    assert "--no-such-flag" in error["message"]


def test_a_config_error_as_json_names_its_location(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text("version: 1\ntenants:\n  a: {tenant_id: not-a-guid}\n")
    result = CliRunner().invoke(cli, ["plan", "-c", str(config), "--output", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config"
    assert error["location"].startswith(f"{config}:3")
    assert error["message"].startswith(error["location"])


def test_a_missing_config_is_json_for_every_json_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.yaml")
    for command in JSON_COMMANDS:
        if command[0] in {"demo", "bootstrap"}:
            continue  # no config to read (demo) or a tenant argument first (bootstrap)
        result = CliRunner().invoke(cli, [*command, "-c", missing, "--output", "json"])
        assert result.exit_code == 1, (command, result.output)
        error = json.loads(result.stdout)["error"]
        # The missing file — or, first, a missing required argument (promote's --link).
        assert error["code"] in {"config", "usage"}, (command, error)
        assert error["message"], command


def test_ctsync_config_stands_in_for_dash_c(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text("version: 1\ntenants: {}\n")
    result = CliRunner().invoke(cli, ["validate"], env={"CTSYNC_CONFIG": str(config)})
    assert result.exit_code == 1  # that file was read: an empty tenant list is refused
    assert f"{config}:2" in result.output


def _demo(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ctsync", "demo"],
        env={**child_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_color_means_no_escape_code_and_data_is_never_markup() -> None:
    coloured = _demo({"FORCE_COLOR": "1", "COLUMNS": "120"})
    assert "\x1b[" in coloured  # a terminal gets colour: the check below can see it
    plain = _demo({"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "120"})
    assert "\x1b[" not in plain
    assert "ctsync:link:" in plain  # the tag, not an emoji
    assert "\U0001f517" not in plain


def test_a_plan_on_a_terminal_colours_its_signs_and_never_its_data() -> None:
    from ctsync.engine.model import Plan, Step
    from ctsync.render.plan import plan_text

    steps = (
        Step("a", "contoso", "partner", "create", "create partner [bold]x[/]", links=("c:f",)),
        Step(
            "b", "contoso", "app", "delete", "delete app \x1b[31m", links=("c:f",), destructive=True
        ),
    )
    plan = Plan("apply", "ctsync.yaml", "h", "l", steps)
    plain, coloured = plan_text(plan), plan_text(plan, colour=True)
    assert "\x1b" not in plain.replace("\\x1b", "")
    assert "\x1b[32m+\x1b[0m create partner [bold]x[/]" in coloured
    assert "\x1b[31m-\x1b[0m delete app \\x1b[31m" in coloured  # the data's escape, spelled out
    assert "(destructive)" in coloured


def test_without_the_emulator_extra_serve_says_how_to_get_it() -> None:
    """A production install (no `ctsync[emulator]`) has no uvicorn: one line, exit 1."""
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from ctsync.cli import main\n"
        "sys.argv = ['ctsync', 'emulator', 'serve', '--port', '0']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "pip install 'ctsync[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_format_json_errors_are_json(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.yaml")
    result = CliRunner().invoke(cli, ["report", "-c", missing, "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "config"
    usage = CliRunner().invoke(cli, ["report", "--format", "json", "--bogus"])
    assert usage.exit_code == 1
    assert json.loads(usage.stdout)["error"]["code"] == "usage"
