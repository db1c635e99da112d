"""Hostile or broken input through the real CLI: exit 1, one clear line, no traceback, no hang,
and nothing written (no ``.ctsync`` directory). docs/config.md, "Limits", lists the limits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctsync.cli import cli

from .test_bad_input import GOOD_TENANTS

LINKED = GOOD_TENANTS + "links:\n  - source: contoso\n    target: fabrikam\n"

#: Nine lines that ruamel shares but a naive expansion turns into 387 million strings.
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

Setup = Callable[[Path], list[str]]


def _validate(text: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        config = tmp / "ctsync.yaml"
        config.write_text(text)
        return ["validate", "-c", str(config)]

    return setup


def _with_file(name: str, content: bytes, text: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(content)
        return _validate(text)(tmp)

    return setup


def _with_directory(name: str, text: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        (tmp / name).mkdir()
        return _validate(text)(tmp)

    return setup


def _too_large(tmp: Path) -> list[str]:
    config = tmp / "ctsync.yaml"
    with config.open("wb") as file:
        file.truncate(4 * 1024 * 1024 + 1)
    return ["validate", "-c", str(config)]


def _fifo(tmp: Path) -> list[str]:
    fifo = tmp / "ctsync.yaml"
    os.mkfifo(fifo)
    return ["validate", "-c", str(fifo)]


def _day2(*args: str, users: bytes | None = None, users_dir: bool = False) -> Setup:
    def setup(tmp: Path) -> list[str]:
        config = tmp / "ctsync.yaml"
        config.write_text(LINKED)
        extra: list[str] = []
        if users is not None:
            (tmp / "users.txt").write_bytes(users)
            extra = ["--users", str(tmp / "users.txt")]
        if users_dir:
            (tmp / "users").mkdir()
            extra = ["--users", str(tmp / "users")]
        return [args[0], "-c", str(config), *args[1:], *extra]

    return setup


def _sync(setting: str) -> str:
    return LINKED + f"    sync: {{{setting}}}\n"


CA_CLOUD = GOOD_TENANTS + (
    "  emu:\n    tenant_id: 33333333-3333-4333-8333-333333333333\n"
    "    cloud: {graph_url: 'https://127.0.0.1:1/v1.0', authority: 'https://127.0.0.1:1',\n"
    "            ca_bundle: ca.pem}\n"
    "    auth: {method: azure_cli}\n"
)
CERTIFICATE = GOOD_TENANTS + (
    "  cert:\n    tenant_id: 33333333-3333-4333-8333-333333333333\n"
    "    auth: {method: certificate, client_id: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa,\n"
    "           certificate_path: c.pem}\n"
)

#: id -> (setup giving the arguments, what the one line says, ":line:col" or "")
CASES: dict[str, tuple[Setup, str, str]] = {
    # 1. aliases
    "alias bomb": (_validate(ALIAS_BOMB), "too many values: more than 100,000", ":6:8"),
    # 2. nesting
    "deep flow nesting": (_validate("x: " + "[" * 5000 + "]" * 5000), "nested too deeply", ":1:69"),
    "deep block nesting": (_validate("- " * 5000 + "x\n"), "nested too deeply", ":1:131"),
    "bad date": (_validate("version: 1\nx: 2026-13-45\n"), "month must be in 1..12", ":2:4"),
    "huge integer": (_validate("version: 1\nx: " + "9" * 5000 + "\n"), "cannot read", ":2:4"),
    # 3. size and file kind
    "config over 4 MiB": (_too_large, "too large: 4,194,305 bytes", ""),
    "config is /dev/zero": (lambda tmp: ["validate", "-c", "/dev/zero"], "not a regular file", ""),
    "config is a FIFO": (_fifo, "not a regular file", ""),
    # 4. ranges
    "deletion threshold past int32": (
        _validate(_sync("deletion_threshold: 100000000000000000000000000000")),
        "must be at most 2147483647",
        ":14:32",
    ),
    "gate cycles": (
        _validate(_sync("scope: {rollout: {pilot: P, gate: {min_cycles: 99999}}}")),
        "must be at most 1000",
        ":14:59",
    ),
    # 5. regular expressions
    "invalid regex in a filter": (
        _validate(_sync("scope: {filter: \"jobTitle REGEX MATCH '^(CEO'\"}")),
        "REGEX MATCH needs a valid regular expression: missing )",
        ":14:52",
    ),
    # 6. control characters
    "newline in app_display_name": (
        _validate(_sync('app_display_name: "CTS\\nrm -rf"')),
        "contains the control character '\\n' (U+000A)",
        ":14:34",
    ),
    "escape in a group name": (
        _validate(_sync('scope: {assigned: [{group: "\\e[2JPilot"}]}')),
        "contains the control character '\\x1b' (U+001B)",
        ":14:40",
    ),
    # 7. CA bundle and certificate
    "garbage CA bundle": (
        _with_file("ca.pem", b"not a certificate\n", CA_CLOUD),
        "is not a PEM file of CA certificates",
        ":14:24",
    ),
    "CA bundle is a directory": (
        _with_directory("ca.pem", CA_CLOUD),
        "(it is a directory)",
        ":14:24",
    ),
    "garbage certificate": (
        _with_file("c.pem", b"\x00\xffnot a certificate", CERTIFICATE),
        "is not a certificate: expected PEM",
        ":14:30",
    ),
    # 8. day-2 arguments
    "--since overflowing": (
        _day2("logs", "--since", "99999999999d"),
        "--since 99999999999d reaches back before the year 1",
        "",
    ),
    "--since empty": (_day2("logs", "--since", ""), "--since needs a duration", ""),
    "--since blank": (_day2("logs", "--since", "  "), "--since needs a duration", ""),
    "--since zero": (_day2("logs", "--since", "0h"), "no entry is newer", ""),
    "--since in the future": (_day2("logs", "--since", "2999-01-01"), "in the future", ""),
    "--users binary": (
        _day2("provision", "--link", "contoso:fabrikam", users=b"\xff\xfeadele@contoso.com\n"),
        "--users file is not UTF-8 text (byte 0)",
        "",
    ),
    "--users directory": (
        _day2("provision", "--link", "contoso:fabrikam", users_dir=True),
        "--users file is a directory",
        "",
    ),
    "--users /dev/zero": (
        _day2("provision", "--link", "contoso:fabrikam", "--users", "/dev/zero"),
        "--users file is not a regular file",
        "",
    ),
    "--users with a control character": (
        _day2("provision", "--link", "contoso:fabrikam", users=b"# pilot\nadele\x1b[8m@x.com\n"),
        "users.txt:2: 'adele\\x1b[8m@x.com' holds the control character '\\x1b'",
        "",
    ),
    "--user empty": (
        _day2("provision", "--link", "contoso:fabrikam", "--user", " "),
        "--user: a user is a UPN or an object id, not an empty value",
        "",
    ),
    "--interval NaN": (
        _day2("status", "--watch", "--interval", "nan"),
        "--interval is seconds between polls, from 0 to 86400, not nan",
        "",
    ),
    "--interval huge": (_day2("status", "--watch", "--interval", "1e308"), "not 1e+308", ""),
    "--reset empty": (_day2("restart", "--reset", ","), "--reset needs what to clear", ""),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_clear_line(tmp_path: Path, name: str) -> None:
    setup, message, where = CASES[name]
    if "FIFO" in name and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    if "/dev/zero" in name and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    args = setup(tmp_path)

    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line
    if where:
        assert f"{tmp_path / 'ctsync.yaml'}{where}" in line
    assert not (tmp_path / ".ctsync").exists()


def test_a_good_users_file_and_since_pass_these_checks(tmp_path: Path) -> None:
    # The same commands with good values get past argument checking, to the missing secret.
    for setup in (
        _day2("logs", "--since", "24h"),
        _day2("provision", "--link", "contoso:fabrikam", users=b"# pilot\nadele@contoso.com\n"),
    ):
        result = CliRunner().invoke(cli, setup(tmp_path), env={"X": "", "Y": ""})
        assert result.exit_code == 1
        assert "environment variable X is empty" in result.output
