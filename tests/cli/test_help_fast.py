"""``ctsync --help`` stays fast: heavy modules load only when the command that needs them runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctsync

HEAVY = ("azure.identity", "uvicorn", "rich")

_PROBE = """
import json, sys
from ctsync.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _run(*args: str) -> tuple[list[str], str]:
    env = dict(os.environ)
    src = str(Path(ctsync.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    *help_lines, loaded = result.stdout.rstrip("\n").split("\n")
    return json.loads(loaded), "\n".join(help_lines)


def test_top_level_help_imports_no_heavy_module_and_lists_emulator() -> None:
    loaded, text = _run("--help")
    assert loaded == []
    assert "emulator" in text


@pytest.mark.parametrize("args", [("emulator", "--help"), ("emulator", "serve", "--help")])
def test_emulator_help_imports_no_heavy_module(args: tuple[str, ...]) -> None:
    loaded, text = _run(*args)
    assert loaded == []
    assert "serve" in text
