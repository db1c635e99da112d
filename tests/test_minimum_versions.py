"""Every runtime dependency's declared lower bound is the version `make test` runs the fast
layers of the suite against (constraints/minimum.txt): a declared minimum is a tested one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lower_bounds() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["emulator"]]
    bounds: dict[str, str] = {}
    for spec in specs:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)", spec)
        assert match, f"{spec!r} declares no lower bound"
        bounds[match.group(1).lower()] = match.group(2)
    return bounds


def _pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "constraints" / "minimum.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_every_lower_bound_is_pinned_in_the_minimum_constraints() -> None:
    assert _lower_bounds() == _pinned()
